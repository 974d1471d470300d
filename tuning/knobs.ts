/**
 * The table of tuning knobs: for each field of {@link RocksDbTuning}, the
 * environment variable and YAML key that set it, how its text is parsed, and
 * the range Spire accepts. Also the profiles of DESIGN §4.
 *
 * @module
 */

import type { Profile, RocksDbTuning } from "./types.ts";

/** Prefix of every RocksDB tuning environment variable. */
export const ENV_PREFIX = "SPIRE_ROCKSDB_";

/** The environment variable that picks a profile. */
export const PROFILE_VARIABLE = "SPIRE_ROCKSDB_PROFILE";

/**
 * SPIRE_ROCKSDB_* variables that are not tuning knobs but are known to Spire,
 * so that the unknown-variable check does not reject them
 * (SPIRE_ROCKSDB_LIB points the engine at a librocksdb shared object).
 */
export const OTHER_KNOWN_VARIABLES: readonly string[] = ["SPIRE_ROCKSDB_LIB"];

/** How a knob's text or YAML value is read. */
export type KnobKind = "size" | "count" | "compression" | "boolean";

/** One tuning knob: where it is set from and what it accepts. */
export interface KnobSpec {
  /** The field of {@link RocksDbTuning} it sets. */
  readonly key: keyof RocksDbTuning;
  /** The environment variable, e.g. `SPIRE_ROCKSDB_BLOCK_CACHE_SIZE`. */
  readonly variable: string;
  /** The key inside the YAML `rocksdb:` section, e.g. `block_cache_size`. */
  readonly yamlKey: string;
  /** How values are read. */
  readonly kind: KnobKind;
  /** Smallest accepted value (sizes and counts); 0 is accepted only when `min` is 0. */
  readonly min?: number;
  /** Largest accepted value (sizes and counts). */
  readonly max?: number;
  /** One line for `spire config` and the docs. */
  readonly help: string;
}

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const TiB = 1024 * GiB;

function knob(spec: Omit<KnobSpec, "variable" | "yamlKey"> & { name: string }): KnobSpec {
  const { name, ...rest } = spec;
  return Object.freeze({ ...rest, variable: ENV_PREFIX + name, yamlKey: name.toLowerCase() });
}

/**
 * Every tuning knob, in the order `spire config` prints them.
 *
 * Ranges, and why:
 * - block cache 1MiB..1TiB: smaller makes every read a disk read; larger is a typo on any host.
 * - bloom bits 0..40 (0 = no filter): past ~20 the false-positive rate no longer improves.
 * - write buffer 64KiB..4GiB: RocksDB raises anything below 64KiB to 64KiB on its own.
 * - write buffer number 2..64: RocksDB silently raises 1 to 2.
 * - background jobs 1..64.
 * - rate limit 1MiB/s..100GiB/s: 0 would stop every flush and compaction.
 *
 * @example
 * ```ts
 * import { KNOBS } from "./knobs.ts";
 * const bloom = KNOBS.find((k) => k.key === "bloomBitsPerKey");
 * console.assert(bloom?.variable === "SPIRE_ROCKSDB_BLOOM_BITS_PER_KEY");
 * ```
 */
export const KNOBS: readonly KnobSpec[] = Object.freeze([
  knob({
    key: "blockCacheSizeBytes",
    name: "BLOCK_CACHE_SIZE",
    kind: "size",
    min: MiB,
    max: TiB,
    help: "LRU block cache capacity",
  }),
  knob({
    key: "bloomBitsPerKey",
    name: "BLOOM_BITS_PER_KEY",
    kind: "count",
    min: 0,
    max: 40,
    help: "bloom filter bits per key (0 = no filter)",
  }),
  knob({
    key: "compression",
    name: "COMPRESSION",
    kind: "compression",
    help: "block compression of every level",
  }),
  knob({
    key: "writeBufferSizeBytes",
    name: "WRITE_BUFFER_SIZE",
    kind: "size",
    min: 64 * KiB,
    max: 4 * GiB,
    help: "memtable size before it is switched and flushed",
  }),
  knob({
    key: "maxWriteBufferNumber",
    name: "MAX_WRITE_BUFFER_NUMBER",
    kind: "count",
    min: 2,
    max: 64,
    help: "memtables kept in memory, active plus immutable",
  }),
  knob({
    key: "maxBackgroundJobs",
    name: "MAX_BACKGROUND_JOBS",
    kind: "count",
    min: 1,
    max: 64,
    help: "flush and compaction threads",
  }),
  knob({
    key: "rateLimitBytesPerSec",
    name: "RATE_LIMIT_BYTES_PER_SEC",
    kind: "size",
    min: MiB,
    max: 100 * GiB,
    help: "rate limit of flush and compaction writes, bytes per second",
  }),
  knob({
    key: "syncWrites",
    name: "SYNC_WRITES",
    kind: "boolean",
    help: "sync the WAL before a write is acknowledged",
  }),
]);

/**
 * What each profile sets (DESIGN §4). Knobs a profile leaves out keep their
 * default (or whatever a higher layer sets).
 *
 * @example
 * ```ts
 * import { PROFILE_SETTINGS } from "./knobs.ts";
 * console.assert(PROFILE_SETTINGS["write-heavy"].maxBackgroundJobs === 8);
 * ```
 */
export const PROFILE_SETTINGS: Readonly<Record<Profile, Readonly<Partial<RocksDbTuning>>>> = Object
  .freeze({
    "write-heavy": Object.freeze({
      writeBufferSizeBytes: 268435456,
      maxWriteBufferNumber: 6,
      maxBackgroundJobs: 8,
    }),
    "read-heavy": Object.freeze({
      blockCacheSizeBytes: 2147483648,
      compression: "lz4",
    }),
    "mixed": Object.freeze({
      blockCacheSizeBytes: 1073741824,
      compression: "lz4",
      writeBufferSizeBytes: 134217728,
    }),
  });

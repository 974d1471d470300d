/**
 * Turns a {@link RocksDbTuning} into native RocksDB options. Every knob is
 * applied here and nowhere else; the proofs in `knobs_test.ts` read back what
 * RocksDB wrote (OPTIONS-*, LOG, SST properties) to show it.
 *
 * @module
 */

import {
  type Compression,
  COMPRESSIONS,
  DEFAULT_TUNING,
  type RocksDbTuning,
} from "../tuning/types.ts";
import type { RocksDbSymbols } from "./_ffi/symbols.ts";

/** Fixed leveled-compaction shape (DESIGN §4). */
export const LEVELED_COMPACTION = Object.freeze({
  level0FileNumCompactionTrigger: 4,
  maxBytesForLevelBaseBytes: 256 * 1024 * 1024,
  maxBytesForLevelMultiplier: 10,
});

/** Info LOG files RocksDB keeps in the data directory. */
export const INFO_LOG_FILES_KEPT = 10;

const COMPRESSION_CODES: Record<Compression, number> = {
  none: 0, // rocksdb_no_compression
  lz4: 4, // rocksdb_lz4_compression
  zstd: 7, // rocksdb_zstd_compression
};

/**
 * Sanity checks of a tuning handed to the engine directly (embedders may skip
 * `tuning/`, which validates with provenance and friendlier limits).
 * @throws {TypeError} for a field that is not a knob (a typo must not be ignored silently)
 * @throws {TypeError|RangeError} naming the knob, its value and what is allowed
 */
export function checkTuning(t: RocksDbTuning): void {
  const known = Object.keys(DEFAULT_TUNING);
  for (const name of Object.keys(t)) {
    if (!known.includes(name)) {
      throw new TypeError(
        `Invalid tuning ${name}: not a knob; allowed: ${known.join(", ")}`,
      );
    }
  }
  const int = (name: keyof RocksDbTuning, min: number, max: number) => {
    const v = t[name];
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max) {
      throw new RangeError(
        `Invalid tuning ${name}: ${String(v)}; an integer from ${min} to ${max} is allowed`,
      );
    }
  };
  int("blockCacheSizeBytes", 0, 2 ** 48);
  int("bloomBitsPerKey", 0, 100);
  int("writeBufferSizeBytes", 1, 2 ** 40);
  int("maxWriteBufferNumber", 1, 1000);
  int("maxBackgroundJobs", 1, 1000);
  int("rateLimitBytesPerSec", 1, 2 ** 50);
  if (!COMPRESSIONS.includes(t.compression)) {
    throw new RangeError(
      `Invalid tuning compression: ${JSON.stringify(t.compression)}; one of ${
        COMPRESSIONS.join(", ")
      } is allowed`,
    );
  }
  if (typeof t.syncWrites !== "boolean") {
    throw new TypeError(
      `Invalid tuning syncWrites: ${String(t.syncWrites)}; true or false is allowed`,
    );
  }
}

/** Native objects that must live as long as the database and be freed after it closes. */
export interface NativeOptions {
  options: NonNullable<Deno.PointerValue>;
  cache: NonNullable<Deno.PointerValue>;
  rateLimiter: NonNullable<Deno.PointerValue>;
}

/**
 * Creates RocksDB options applying every knob of `tuning`.
 * @param sym the library symbols
 * @param tuning the complete tuning
 * @param skip test-only: knobs to leave at RocksDB's defaults (the proofs show they then fail)
 * @returns the native options, block cache and rate limiter (freed with {@link destroyOptions})
 */
export function buildOptions(
  sym: RocksDbSymbols,
  tuning: RocksDbTuning,
  skip: ReadonlySet<keyof RocksDbTuning> = new Set(),
): NativeOptions {
  const options = nonNull(sym.rocksdb_options_create(), "rocksdb_options_create");
  sym.rocksdb_options_set_create_if_missing(options, 1);
  sym.rocksdb_options_enable_statistics(options);
  sym.rocksdb_options_set_info_log_level(options, 1); // INFO_LEVEL: operators read the LOG
  sym.rocksdb_options_set_keep_log_file_num(options, BigInt(INFO_LOG_FILES_KEPT));

  if (!skip.has("compression")) {
    const code = COMPRESSION_CODES[tuning.compression];
    sym.rocksdb_options_set_compression(options, code);
    sym.rocksdb_options_set_bottommost_compression(options, code);
  }
  if (!skip.has("writeBufferSizeBytes")) {
    sym.rocksdb_options_set_write_buffer_size(options, BigInt(tuning.writeBufferSizeBytes));
  }
  if (!skip.has("maxWriteBufferNumber")) {
    sym.rocksdb_options_set_max_write_buffer_number(options, tuning.maxWriteBufferNumber);
  }
  if (!skip.has("maxBackgroundJobs")) {
    sym.rocksdb_options_set_max_background_jobs(options, tuning.maxBackgroundJobs);
  }

  sym.rocksdb_options_set_compaction_style(options, 0); // rocksdb_level_compaction
  sym.rocksdb_options_set_level0_file_num_compaction_trigger(
    options,
    LEVELED_COMPACTION.level0FileNumCompactionTrigger,
  );
  sym.rocksdb_options_set_max_bytes_for_level_base(
    options,
    BigInt(LEVELED_COMPACTION.maxBytesForLevelBaseBytes),
  );
  sym.rocksdb_options_set_max_bytes_for_level_multiplier(
    options,
    LEVELED_COMPACTION.maxBytesForLevelMultiplier,
  );

  // refill every 100 ms, fairness 10: RocksDB's defaults for NewGenericRateLimiter.
  const rateLimiter = nonNull(
    sym.rocksdb_ratelimiter_create(BigInt(tuning.rateLimitBytesPerSec), 100_000n, 10),
    "rocksdb_ratelimiter_create",
  );
  if (!skip.has("rateLimitBytesPerSec")) sym.rocksdb_options_set_ratelimiter(options, rateLimiter);

  const table = nonNull(sym.rocksdb_block_based_options_create(), "block_based_options_create");
  const cache = nonNull(
    sym.rocksdb_cache_create_lru(BigInt(tuning.blockCacheSizeBytes)),
    "cache_create_lru",
  );
  if (!skip.has("blockCacheSizeBytes")) {
    sym.rocksdb_block_based_options_set_block_cache(table, cache);
  }
  if (tuning.bloomBitsPerKey > 0 && !skip.has("bloomBitsPerKey")) {
    const filter = nonNull(
      sym.rocksdb_filterpolicy_create_bloom_full(tuning.bloomBitsPerKey),
      "filterpolicy_create_bloom_full",
    );
    sym.rocksdb_block_based_options_set_filter_policy(table, filter); // table owns it now
    // The memtables get a bloom filter of whole keys too: a point read of a key that is not in
    // a memtable then skips its skiplist walk, several cache misses (measured: a GET of a
    // missing key went from about 5 us to well under 1 us with 100k keys in the memtable).
    sym.rocksdb_options_set_memtable_prefix_bloom_size_ratio(options, MEMTABLE_BLOOM_RATIO);
    sym.rocksdb_options_set_memtable_whole_key_filtering(options, 1);
  }
  sym.rocksdb_options_set_block_based_table_factory(options, table); // copies the table options
  sym.rocksdb_block_based_options_destroy(table);
  return { options, cache, rateLimiter };
}

/**
 * The memtable bloom filter's size as a fraction of the write buffer, when bloom filters are
 * on: 2% of a 64 MiB buffer is 1.3 MiB, about 20 bits per key of 100-byte values.
 */
export const MEMTABLE_BLOOM_RATIO = 0.02;

/** Frees what {@link buildOptions} created; call only after the database is closed. */
export function destroyOptions(sym: RocksDbSymbols, native: NativeOptions): void {
  sym.rocksdb_options_destroy(native.options);
  sym.rocksdb_cache_destroy(native.cache);
  sym.rocksdb_ratelimiter_destroy(native.rateLimiter);
}

function nonNull(ptr: Deno.PointerValue, what: string): NonNullable<Deno.PointerValue> {
  if (ptr === null) throw new Error(`Cannot create RocksDB object: ${what} returned NULL`);
  return ptr;
}

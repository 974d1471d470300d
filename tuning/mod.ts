/**
 * Spire's RocksDB tuning: the SPIRE_ROCKSDB_* environment variables, the three
 * profiles, the YAML config file and the provenance of every effective value.
 * Nothing here reads the process environment or the disk unless asked to
 * (`loadTuning` reads the config file it is given).
 *
 * ```ts
 * import { resolveTuning } from "./mod.ts";
 * const { tuning, provenance } = resolveTuning({ env: { SPIRE_ROCKSDB_PROFILE: "read-heavy" } });
 * console.assert(tuning.blockCacheSizeBytes === 2 * 1024 ** 3);
 * console.assert(provenance.blockCacheSizeBytes === "profile read-heavy");
 * ```
 *
 * @module
 */

export type { Compression, Profile, RocksDbTuning } from "./types.ts";
export { COMPRESSIONS, DEFAULT_TUNING, PROFILES } from "./types.ts";
export type { KnobKind, KnobSpec } from "./knobs.ts";
export {
  ENV_PREFIX,
  KNOBS,
  OTHER_KNOWN_VARIABLES,
  PROFILE_SETTINGS,
  PROFILE_VARIABLE,
} from "./knobs.ts";
export type { SizeParse } from "./units.ts";
export { formatSize, parseSize, SIZE_UNITS_TEXT, trySize } from "./units.ts";
export type {
  LoadTuningOptions,
  ResolvedTuning,
  ResolveTuningOptions,
  TuningProvenance,
} from "./resolve.ts";
export {
  engineMemoryBytes,
  loadTuning,
  resolveTuning,
  TuningError,
  YAML_SECTION,
} from "./resolve.ts";

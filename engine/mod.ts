/**
 * Spire's storage engine: RocksDB through its C API (`Deno.dlopen`), with
 * every tuning knob applied, group commit of synced writes, snapshots,
 * checkpoints and statistics as numbers.
 *
 * ```ts ignore
 * import { Engine } from "./mod.ts";
 * const engine = await Engine.open({ dataDir: "./data/data" });
 * await engine.put(new Uint8Array([1]), new Uint8Array([2]));
 * console.log(await engine.get(new Uint8Array([1])));
 * await engine.close();
 * ```
 *
 * @module
 */

export {
  type DeadlineLayout,
  deadlinePassed,
  type RangeMeasure,
  readDeadline,
} from "./deadline.ts";
export {
  Engine,
  type EngineOpenOptions,
  type Entry,
  type ExpiredPage,
  type MeasureOptions,
  type NativeReadAccess,
  type ReadOptions,
  type ScanBatch,
  type ScanExpiredOptions,
  type ScanOptions,
  Snapshot,
} from "./engine.ts";
export { decodeWriteBatch, WriteBatch, type WriteOp } from "./write_batch.ts";
export { EngineClosedError, EngineError, EngineOverloadedError } from "./errors.ts";
export {
  DEFAULT_GROUP_COMMIT_LIMITS,
  type GroupCommitCounters,
  type GroupCommitLimits,
  groupCommitLimits,
  GroupCommitter,
} from "./group_commit.ts";
export {
  DEFAULT_MISS_READS,
  type MissReadOptions,
  missReadOptions,
  MissReadPolicy,
  type MissReadStats,
} from "./miss_reads.ts";
export {
  GET_BATCH_KEYS_MAX,
  KEY_SIZE_MAX_BYTES,
  SCAN_BATCH_SIZE_MAX,
  VALUE_SIZE_MAX_BYTES,
  WRITE_BATCH_BYTES_MAX,
  WRITE_BATCH_OPS_MAX,
} from "./limits.ts";
export {
  type CacheInfo,
  type EffectiveOptions,
  type EngineStats,
  type Histogram,
  type LevelStats,
  type ParsedStatistics,
  parseStatistics,
} from "./stats.ts";
export { LEVELED_COMPACTION } from "./_options.ts";
export {
  LIBRARY_CANDIDATES,
  LibraryLoadError,
  openLibrary,
  type RocksDbLibrary,
} from "./_ffi/library.ts";

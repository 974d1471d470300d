/**
 * The durable region log store: checksummed segment files, hard state and
 * snapshots under `<data-dir>/raft/region_<id>/`, behind an injected
 * {@link FileSystem} (the real disk, or a simulated one that loses unsynced
 * writes).
 *
 * @module
 */

export { Crc32c } from "./crc32c.ts";
export {
  type AppendFile,
  DenoFileSystem,
  type FileSystem,
  fsyncDir,
  mkdirDurable,
} from "./file_system.ts";
export {
  JournalFileSystem,
  type JournalOptions,
  type JournalPlant,
  type JournalReplay,
  type JournalStats,
  raftJournalDir,
} from "./journal.ts";
export { DiskCrashedError, SimDisk, type SimDiskOptions } from "./sim_disk.ts";
export {
  CorruptLogError,
  type LogStoreStats,
  type LogUpdate,
  regionLogDir,
  RegionLogStore,
  type RegionLogStoreOptions,
} from "./region_log_store.ts";

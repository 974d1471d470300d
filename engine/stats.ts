/**
 * Engine statistics as numbers, parsed from RocksDB's statistics text and
 * integer properties.
 *
 * @module
 */

import type { RocksDbTuning } from "../tuning/types.ts";
import type { MissReadStats } from "./miss_reads.ts";

/** One histogram of RocksDB's statistics (microseconds or bytes, per its name). */
export interface Histogram {
  /** Median. */
  p50: number;
  /** 95th percentile. */
  p95: number;
  /** 99th percentile. */
  p99: number;
  /** Maximum. */
  p100: number;
  /** Samples. */
  count: number;
  /** Sum of samples. */
  sum: number;
}

/** RocksDB's statistics text, parsed. */
export interface ParsedStatistics {
  /** Counters by RocksDB name, e.g. `rocksdb.block.cache.hit`. */
  tickers: Record<string, number>;
  /** Histograms by RocksDB name, e.g. `rocksdb.db.get.micros`. */
  histograms: Record<string, Histogram>;
}

/**
 * Parses the text of `rocksdb_options_statistics_get_string`: lines such as
 * `rocksdb.block.cache.miss COUNT : 12` and
 * `rocksdb.db.get.micros P50 : 1.5 P95 : 3 P99 : 4 P100 : 9 COUNT : 10 SUM : 20`.
 *
 * @param text the statistics text
 * @returns the counters and histograms
 * @example
 * ```ts
 * import { parseStatistics } from "./stats.ts";
 * const s = parseStatistics("rocksdb.block.cache.hit COUNT : 7\n");
 * if (s.tickers["rocksdb.block.cache.hit"] !== 7) throw new Error("parse failed");
 * ```
 */
export function parseStatistics(text: string): ParsedStatistics {
  const tickers: Record<string, number> = {};
  const histograms: Record<string, Histogram> = {};
  for (const line of text.split("\n")) {
    const space = line.indexOf(" ");
    if (space <= 0) continue;
    const name = line.slice(0, space);
    const fields: Record<string, number> = {};
    const re = /([A-Z0-9]+) : ([0-9.eE+-]+)/g;
    for (let m = re.exec(line); m !== null; m = re.exec(line)) {
      fields[m[1] as string] = Number(m[2]);
    }
    if ("P50" in fields) {
      histograms[name] = {
        p50: fields.P50 ?? 0,
        p95: fields.P95 ?? 0,
        p99: fields.P99 ?? 0,
        p100: fields.P100 ?? 0,
        count: fields.COUNT ?? 0,
        sum: fields.SUM ?? 0,
      };
    } else if ("COUNT" in fields) {
      tickers[name] = fields.COUNT ?? 0;
    }
  }
  return { tickers, histograms };
}

/** Files and bytes at one LSM level. */
export interface LevelStats {
  /** Level number, 0 to 6. */
  level: number;
  /** SST files at this level. */
  files: number;
  /** Bytes of those files. */
  bytes: number;
}

/** The effective options the engine opened RocksDB with. */
export interface EffectiveOptions extends RocksDbTuning {
  /** Compaction style (always leveled). */
  compactionStyle: "leveled";
  /** L0 files that trigger a compaction. */
  level0FileNumCompactionTrigger: number;
  /** Target size of L1. */
  maxBytesForLevelBaseBytes: number;
  /** Growth of each level over the previous. */
  maxBytesForLevelMultiplier: number;
}

/** Block cache state (also returned by `getCacheInfo`). */
export interface CacheInfo {
  /** Configured capacity. */
  capacityBytes: number;
  /** Bytes in use. */
  usageBytes: number;
  /** Bytes pinned by readers. */
  pinnedUsageBytes: number;
  /** Block cache hits since open. */
  hits: number;
  /**
   * Block cache misses since open. A point read that missed is counted once, although
   * RocksDB's ticker also counts its memory-only attempt.
   */
  misses: number;
  /** hits / (hits + misses), 0 when there was no lookup. */
  hitRate: number;
}

/** Everything `getStats` reports; every field is a number (or numbers). */
export interface EngineStats {
  /** Block cache. */
  blockCache: CacheInfo;
  /**
   * Bloom filter: negatives that saved a read, and lookups checked. Unlike keysRead and
   * block cache misses these are RocksDB's counts as they are: a point read that missed
   * the block cache is checked twice (memory-only attempt, then disk).
   */
  bloom: { useful: number; checked: number };
  /** Memtables: bytes of all memtables, and immutable ones waiting to flush. */
  memtable: { bytes: number; immutableCount: number };
  /** L0 files (the stall trigger). */
  l0Files: number;
  /** Files and bytes per level, levels 0 to 6. */
  levels: LevelStats[];
  /** Estimated bytes compaction must rewrite to settle the LSM shape. */
  pendingCompactionBytes: number;
  /** Bytes compaction read and wrote. */
  compaction: { readBytes: number; writeBytes: number };
  /** Time writers were stalled, in microseconds. */
  stallMicros: number;
  /**
   * Keys read by gets and multi-gets. A read that missed the block cache is
   * counted once, although RocksDB counts its memory-only attempt too.
   */
  keysRead: number;
  /** Keys written. */
  keysWritten: number;
  /** Bytes returned by gets. */
  bytesRead: number;
  /** Bytes written (keys and values). */
  bytesWritten: number;
  /** WAL syncs (fsyncs). */
  walSyncs: number;
  /** Bytes written to the WAL. */
  walBytes: number;
  /** RocksDB's estimate of the live keys. */
  estimatedKeys: number;
  /** Bytes of all live SST files. */
  sstBytes: number;
  /** Groups of synced writes committed with one fsync each, and the requests in them. */
  groupCommit: { groups: number; requests: number };
  /** Unsynced writes that met a write stall and were finished on a worker thread. */
  writeStallRetries: number;
  /**
   * Point reads whose memory-only first attempt (memtables and block cache)
   * answered Incomplete and were read again from the files.
   */
  memoryOnlyMisses: number;
  /**
   * Where those reads ran: on the JavaScript thread (`sync`, while such reads stay
   * within the budget) or on a worker thread (`worker`); `slowSync` counts the
   * synchronous ones over the budget and `syncMaxUs` is the longest of them.
   */
  missReads: MissReadStats;
  /**
   * Whether point reads and scans go through Spire's native helpers
   * (engine/_native, built by `./spire`); false: through plain FFI calls, slower.
   */
  nativeHelpers: boolean;
  /**
   * Every ticker RocksDB keeps, by its name, raw: a point read that missed the block
   * cache appears twice in the read, block cache and bloom tickers (memory-only
   * attempt, then the disk read).
   */
  tickers: Record<string, number>;
  /** The effective options. */
  options: EffectiveOptions;
}

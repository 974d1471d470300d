/**
 * The contract between `tuning/` (which parses and validates the knobs) and
 * `engine/` (which applies them to RocksDB). Engine code takes a plain
 * {@link RocksDbTuning}; where each value came from is `tuning/`'s business.
 *
 * @module
 */

/** Block compression that Spire offers; each maps to RocksDB's compression type. */
export type Compression = "none" | "lz4" | "zstd";

/** The compression names, in the order error messages list them. */
export const COMPRESSIONS: readonly Compression[] = ["none", "lz4", "zstd"];

/** The tuning profiles of DESIGN §4. */
export type Profile = "write-heavy" | "read-heavy" | "mixed";

/** The profile names, in the order error messages list them. */
export const PROFILES: readonly Profile[] = ["write-heavy", "read-heavy", "mixed"];

/** Every RocksDB knob Spire applies. Sizes in bytes. */
export interface RocksDbTuning {
  /** LRU block cache capacity (SPIRE_ROCKSDB_BLOCK_CACHE_SIZE). */
  blockCacheSizeBytes: number;
  /** Bloom filter bits per key; 0 turns the filter off (SPIRE_ROCKSDB_BLOOM_BITS_PER_KEY). */
  bloomBitsPerKey: number;
  /** Compression of every level (SPIRE_ROCKSDB_COMPRESSION). */
  compression: Compression;
  /** Memtable size before it is switched to immutable (SPIRE_ROCKSDB_WRITE_BUFFER_SIZE). */
  writeBufferSizeBytes: number;
  /** Memtables kept, active plus immutable (SPIRE_ROCKSDB_MAX_WRITE_BUFFER_NUMBER). */
  maxWriteBufferNumber: number;
  /** Flush and compaction threads (SPIRE_ROCKSDB_MAX_BACKGROUND_JOBS). */
  maxBackgroundJobs: number;
  /** Rate limiter for flush and compaction I/O (SPIRE_ROCKSDB_RATE_LIMIT_BYTES_PER_SEC). */
  rateLimitBytesPerSec: number;
  /** Whether every write syncs the WAL before it is acknowledged (SPIRE_ROCKSDB_SYNC_WRITES). */
  syncWrites: boolean;
}

/** Built-in defaults (DESIGN §4). */
export const DEFAULT_TUNING: Readonly<RocksDbTuning> = Object.freeze({
  blockCacheSizeBytes: 536870912,
  bloomBitsPerKey: 10,
  compression: "lz4",
  writeBufferSizeBytes: 134217728,
  maxWriteBufferNumber: 4,
  maxBackgroundJobs: 2,
  rateLimitBytesPerSec: 104857600,
  syncWrites: true,
});

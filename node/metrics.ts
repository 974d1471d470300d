/**
 * The engine's statistics as Prometheus metrics (through prom-client),
 * collected at scrape time from an injected source, into a registry the caller
 * owns (never prom-client's global one).
 *
 * @module
 */

import { Counter, Gauge, type Registry } from "prom-client";
import type { EngineStats } from "../engine/mod.ts";

/** Where the metrics read from: usually `() => engine.getStats()`. */
export type EngineStatsSource = () => EngineStats | Promise<EngineStats>;

/** Options of {@link registerEngineMetrics}. */
export interface EngineMetricsOptions {
  /** Prefix of every metric name; default `"spire_engine_"`. */
  prefix?: string;
}

type Reader = (s: EngineStats) => number;

interface Scalar {
  name: string;
  help: string;
  kind: "gauge" | "counter";
  read: Reader;
}

const SCALARS: readonly Scalar[] = [
  {
    name: "block_cache_capacity_bytes",
    help: "Block cache capacity.",
    kind: "gauge",
    read: (s) => s.blockCache.capacityBytes,
  },
  {
    name: "block_cache_usage_bytes",
    help: "Bytes in the block cache.",
    kind: "gauge",
    read: (s) => s.blockCache.usageBytes,
  },
  {
    name: "block_cache_pinned_usage_bytes",
    help: "Block cache bytes pinned by readers.",
    kind: "gauge",
    read: (s) => s.blockCache.pinnedUsageBytes,
  },
  {
    name: "block_cache_hits_total",
    help: "Block cache hits since open.",
    kind: "counter",
    read: (s) => s.blockCache.hits,
  },
  {
    name: "block_cache_misses_total",
    help: "Block cache misses since open.",
    kind: "counter",
    read: (s) => s.blockCache.misses,
  },
  {
    name: "block_cache_hit_ratio",
    help: "Block cache hits / lookups since open (0 before any lookup).",
    kind: "gauge",
    read: (s) => s.blockCache.hitRate,
  },
  {
    name: "bloom_filter_useful_total",
    help: "Bloom filter negatives that avoided a read.",
    kind: "counter",
    read: (s) => s.bloom.useful,
  },
  {
    name: "bloom_filter_checked_total",
    help: "Bloom filter lookups.",
    kind: "counter",
    read: (s) => s.bloom.checked,
  },
  {
    name: "memtable_bytes",
    help: "Bytes of all memtables.",
    kind: "gauge",
    read: (s) => s.memtable.bytes,
  },
  {
    name: "memtable_immutable",
    help: "Immutable memtables waiting to be flushed.",
    kind: "gauge",
    read: (s) => s.memtable.immutableCount,
  },
  { name: "l0_files", help: "SST files at level 0.", kind: "gauge", read: (s) => s.l0Files },
  {
    name: "pending_compaction_bytes",
    help: "Estimated bytes compaction must rewrite.",
    kind: "gauge",
    read: (s) => s.pendingCompactionBytes,
  },
  {
    name: "compaction_read_bytes_total",
    help: "Bytes read by compaction.",
    kind: "counter",
    read: (s) => s.compaction.readBytes,
  },
  {
    name: "compaction_write_bytes_total",
    help: "Bytes written by compaction.",
    kind: "counter",
    read: (s) => s.compaction.writeBytes,
  },
  {
    name: "write_stall_seconds_total",
    help: "Time writers were stalled.",
    kind: "counter",
    read: (s) => s.stallMicros / 1e6,
  },
  {
    name: "keys_read_total",
    help: "Keys read by gets and multi-gets.",
    kind: "counter",
    read: (s) => s.keysRead,
  },
  {
    name: "keys_written_total",
    help: "Keys written.",
    kind: "counter",
    read: (s) => s.keysWritten,
  },
  {
    name: "read_bytes_total",
    help: "Bytes returned by gets.",
    kind: "counter",
    read: (s) => s.bytesRead,
  },
  {
    name: "written_bytes_total",
    help: "Bytes written (keys and values).",
    kind: "counter",
    read: (s) => s.bytesWritten,
  },
  { name: "wal_syncs_total", help: "WAL fsyncs.", kind: "counter", read: (s) => s.walSyncs },
  {
    name: "miss_reads_sync_total",
    help: "Keys that missed the block cache, read on the JavaScript thread.",
    kind: "counter",
    read: (s) => s.missReads.sync,
  },
  {
    name: "miss_reads_worker_total",
    help: "Keys that missed the block cache, read on a worker thread.",
    kind: "counter",
    read: (s) => s.missReads.worker,
  },
  {
    name: "miss_read_backoffs_total",
    help: "Times synchronous miss reads were found slow and sent to the worker thread.",
    kind: "counter",
    read: (s) => s.missReads.slowSync,
  },
  {
    name: "miss_read_sync_max_seconds",
    help: "Longest synchronous read of block-cache misses since open.",
    kind: "gauge",
    read: (s) => s.missReads.syncMaxUs / 1e6,
  },
  {
    name: "native_helpers",
    help: "1 when point reads and scans go through Spire's native helpers (built by ./spire), " +
      "0 when through plain FFI calls (slower).",
    kind: "gauge",
    read: (s) => s.nativeHelpers ? 1 : 0,
  },
  {
    name: "wal_written_bytes_total",
    help: "Bytes written to the WAL.",
    kind: "counter",
    read: (s) => s.walBytes,
  },
  {
    name: "estimated_keys",
    help: "RocksDB's estimate of live keys.",
    kind: "gauge",
    read: (s) => s.estimatedKeys,
  },
  { name: "sst_bytes", help: "Bytes of live SST files.", kind: "gauge", read: (s) => s.sstBytes },
  {
    name: "group_commit_groups_total",
    help: "Groups of synced writes committed with one fsync.",
    kind: "counter",
    read: (s) => s.groupCommit.groups,
  },
  {
    name: "group_commit_requests_total",
    help: "Synced write requests committed in groups.",
    kind: "counter",
    read: (s) => s.groupCommit.requests,
  },
];

/**
 * Reads the source at most once per scrape: prom-client starts every metric's
 * `collect` in the same tick, so the first call fetches and the rest of that
 * tick share the result. Correctness does not depend on this, only cost.
 */
class ScrapeMemo {
  #pending: Promise<EngineStats> | undefined;
  constructor(private readonly source: EngineStatsSource) {}

  get(): Promise<EngineStats> {
    if (this.#pending === undefined) {
      this.#pending = Promise.resolve().then(() => this.source());
      const clear = () => {
        this.#pending = undefined;
      };
      this.#pending.then(clear, clear);
    }
    return this.#pending;
  }
}

function setCounter(counter: Counter<string>, value: number, labels?: Record<string, string>) {
  // Counters here mirror RocksDB's own monotonic counters: replace, never add.
  if (labels === undefined) {
    counter.reset();
    counter.inc(Math.max(0, value));
  } else {
    counter.inc(labels, Math.max(0, value));
  }
}

/**
 * Registers the engine's statistics as metrics in `registry`: block cache,
 * bloom filter, memtables, per-level files and bytes, compaction, stalls,
 * reads and writes, WAL, group commit, every RocksDB ticker (as
 * `<prefix>rocksdb_ticker_total{ticker="rocksdb.…"}`) and the numeric effective
 * options (`<prefix>option{option="…"}`). Values are read from `source` when
 * the registry is scraped.
 *
 * @param registry A registry the caller owns.
 * @param source Returns the current statistics.
 * @param options Name prefix.
 * @throws {TypeError} When `source` is not a function.
 * @throws {Error} From prom-client when a metric of the same name is already registered.
 *
 * @example
 * ```ts ignore
 * import { Registry } from "prom-client";
 * import { registerEngineMetrics } from "./metrics.ts";
 * const registry = new Registry();
 * registerEngineMetrics(registry, () => engine.getStats());
 * console.log(await registry.metrics());
 * ```
 */
export function registerEngineMetrics(
  registry: Registry,
  source: EngineStatsSource,
  options: EngineMetricsOptions = {},
): void {
  if (typeof source !== "function") {
    throw new TypeError("Cannot register engine metrics: source must be a function");
  }
  const prefix = options.prefix ?? "spire_engine_";
  const memo = new ScrapeMemo(source);
  const registers = [registry];

  for (const scalar of SCALARS) {
    const name = prefix + scalar.name;
    if (scalar.kind === "gauge") {
      new Gauge({
        name,
        help: scalar.help,
        registers,
        async collect() {
          this.set(scalar.read(await memo.get()));
        },
      });
    } else {
      new Counter({
        name,
        help: scalar.help,
        registers,
        async collect() {
          setCounter(this, scalar.read(await memo.get()));
        },
      });
    }
  }

  new Gauge({
    name: prefix + "level_files",
    help: "SST files per LSM level.",
    labelNames: ["level"],
    registers,
    async collect() {
      this.reset();
      for (const l of (await memo.get()).levels) this.set({ level: String(l.level) }, l.files);
    },
  });
  new Gauge({
    name: prefix + "level_bytes",
    help: "Bytes of SST files per LSM level.",
    labelNames: ["level"],
    registers,
    async collect() {
      this.reset();
      for (const l of (await memo.get()).levels) this.set({ level: String(l.level) }, l.bytes);
    },
  });
  new Counter({
    name: prefix + "rocksdb_ticker_total",
    help: "Every RocksDB statistics ticker, by its RocksDB name.",
    labelNames: ["ticker"],
    registers,
    async collect() {
      this.reset();
      for (const [ticker, value] of Object.entries((await memo.get()).tickers)) {
        setCounter(this, value, { ticker });
      }
    },
  });
  new Gauge({
    name: prefix + "option",
    help: "Numeric options RocksDB was opened with (booleans as 0/1).",
    labelNames: ["option"],
    registers,
    async collect() {
      this.reset();
      for (const [option, value] of Object.entries((await memo.get()).options)) {
        if (typeof value === "number") this.set({ option }, value);
        else if (typeof value === "boolean") this.set({ option }, value ? 1 : 0);
      }
    },
  });
  new Gauge({
    name: prefix + "compression_info",
    help: "The block compression in use (value 1).",
    labelNames: ["compression"],
    registers,
    async collect() {
      this.reset();
      this.set({ compression: (await memo.get()).options.compression }, 1);
    },
  });
}

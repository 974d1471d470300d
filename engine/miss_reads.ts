/**
 * Where a point read that missed the block cache runs: on the JavaScript
 * thread or on a worker thread.
 *
 * A miss is usually served by the OS page cache: a few microseconds, less than
 * the hop to a worker thread and back (12 µs on a busy machine, 70 µs on an
 * idle one, where both threads must be woken). Only a read that reaches the
 * device (50 µs to milliseconds) is worth a hop. RocksDB cannot say in advance
 * which kind a read will be, so the policy measures. In `adaptive` mode a miss
 * is read synchronously while such reads stay cheap: the moving average of
 * their time per key (each sample capped at four times the budget, so that one
 * preempted read cannot decide alone) must stay within `syncBudgetUs`, and no
 * single read may take longer than `syncLimitUs`. When either is exceeded, the
 * misses that follow go to the worker thread for a back-off period, and then
 * are read synchronously again, judged afresh. A back-off starts at `backoffMs`
 * and doubles, up to `backoffMaxMs`, each time reads are found slow again soon
 * after the previous one (a device-bound workload); a lone slow read (a
 * preempted thread on a busy machine) costs one short back-off. A multi-key read goes to the worker thread
 * when its keys times the budget exceed the limit. While most point reads miss
 * the cache and misses may run here, a point read skips the memory-only
 * attempt and reads every tier at once (RocksDB's perf context then tells
 * whether it missed). So a workload that really
 * reads the device holds the event loop for a few device reads per back-off
 * period at most.
 *
 * @module
 */

/** How reads that miss the block cache are run. */
export interface MissReadOptions {
  /**
   * `adaptive`: synchronously while such reads stay within the budget, else on
   * a worker thread; `worker`: always on a worker thread (never holds the event
   * loop for a miss).
   */
  mode: "adaptive" | "worker";
  /** Budget of the moving average of synchronous miss reads, in µs per key. */
  syncBudgetUs: number;
  /** Longest synchronous read of misses, in µs; a slower one sends misses to the worker. */
  syncLimitUs: number;
  /** First back-off after slow synchronous reads, in milliseconds. */
  backoffMs: number;
  /** Longest back-off, in milliseconds. */
  backoffMaxMs: number;
}

/** Defaults of {@link MissReadOptions}. */
export const DEFAULT_MISS_READS: Readonly<MissReadOptions> = Object.freeze({
  mode: "adaptive",
  syncBudgetUs: 50,
  syncLimitUs: 1_000,
  backoffMs: 10,
  backoffMaxMs: 5_000,
});

/** Counts of {@link MissReadPolicy}, as getStats reports them. */
export interface MissReadStats {
  /** Keys that missed the block cache and were read on the JavaScript thread. */
  sync: number;
  /** Keys that missed the block cache and were read on a worker thread. */
  worker: number;
  /** Back-offs started: a synchronous read over the limit, the average over the budget, or a slow probe. */
  slowSync: number;
  /** The longest synchronous miss read, in microseconds. */
  syncMaxUs: number;
}

const LIMITS: Record<keyof Omit<MissReadOptions, "mode">, [number, number]> = {
  syncBudgetUs: [1, 100_000],
  syncLimitUs: [1, 1_000_000],
  backoffMs: [1, 3_600_000],
  backoffMaxMs: [1, 3_600_000],
};

/**
 * Checks and completes miss-read options.
 * @param options fields to override
 * @returns the complete options
 * @throws {TypeError} for an unknown field or a mode other than adaptive/worker
 * @throws {RangeError} for a number out of range or backoffMs above backoffMaxMs
 */
export function missReadOptions(options?: Partial<MissReadOptions>): MissReadOptions {
  const merged: MissReadOptions = { ...DEFAULT_MISS_READS, ...options };
  for (const field of Object.keys(options ?? {})) {
    if (!(field in DEFAULT_MISS_READS)) {
      throw new TypeError(
        `Invalid missReads: unknown field "${field}"; allowed: ${
          Object.keys(DEFAULT_MISS_READS).join(", ")
        }`,
      );
    }
  }
  if (merged.mode !== "adaptive" && merged.mode !== "worker") {
    throw new TypeError(
      `Invalid missReads.mode: ${JSON.stringify(merged.mode)}; allowed: "adaptive", "worker"`,
    );
  }
  for (const [field, [min, max]] of Object.entries(LIMITS)) {
    const value = merged[field as keyof typeof LIMITS];
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new RangeError(
        `Invalid missReads.${field}: ${value}; allowed: a whole number from ${min} to ${max}`,
      );
    }
  }
  if (merged.syncBudgetUs > merged.syncLimitUs) {
    throw new RangeError(
      `Invalid missReads.syncBudgetUs: ${merged.syncBudgetUs} is above syncLimitUs ` +
        `(${merged.syncLimitUs})`,
    );
  }
  if (merged.backoffMs > merged.backoffMaxMs) {
    throw new RangeError(
      `Invalid missReads.backoffMs: ${merged.backoffMs} is above backoffMaxMs ` +
        `(${merged.backoffMaxMs})`,
    );
  }
  return merged;
}

/** Weight of a new sample in the moving average of synchronous read times. */
const AVERAGE_WEIGHT = 1 / 16;
/** Above this share of misses, point reads skip the memory-only attempt. */
const DIRECT_MISS_RATIO = 0.5;
/** A back-off this many synchronous reads or fewer after the last one doubles it. */
export const RELAPSE_READS = 16;
/** A sample counts at most this many budgets in the moving average. */
const SAMPLE_CAP_BUDGETS = 4;

/** The adaptive decision, with the clock injected (milliseconds, monotonic). */
export class MissReadPolicy {
  readonly #options: MissReadOptions;
  readonly #now: () => number;
  #workerUntil = -Infinity;
  /** The last back-off, in milliseconds (doubled on a relapse). */
  #backoffMs: number;
  /** Synchronous reads since the last back-off ended (Infinity before the first). */
  #readsSinceBackoff = Infinity;
  #averageUs = 0;
  /** Moving average of the share of point reads that missed the cache. */
  #missRatio = 0;
  #stats: MissReadStats = { sync: 0, worker: 0, slowSync: 0, syncMaxUs: 0 };

  /**
   * @param options complete options (see {@link missReadOptions})
   * @param now monotonic clock in milliseconds
   */
  constructor(options: MissReadOptions, now: () => number) {
    this.#options = options;
    this.#now = now;
    this.#backoffMs = options.backoffMs;
  }

  /** The clock the caller times a synchronous read with. */
  now(): number {
    return this.#now();
  }

  /**
   * Whether the next point read should skip the memory-only attempt and read
   * every tier at once on the JavaScript thread: when most recent reads missed
   * the cache (the attempt would mostly be wasted) and misses may run here.
   */
  readDirect(): boolean {
    return this.#missRatio > DIRECT_MISS_RATIO && this.syncAllowed();
  }

  /** Records whether a point read missed the block cache (for {@link readDirect}). */
  recordLookup(missed: boolean): void {
    this.#missRatio += ((missed ? 1 : 0) - this.#missRatio) * AVERAGE_WEIGHT;
  }

  /** Whether the next read of `keys` missing keys may run on the JavaScript thread. */
  syncAllowed(keys = 1): boolean {
    const o = this.#options;
    return o.mode === "adaptive" && keys * o.syncBudgetUs <= o.syncLimitUs &&
      this.#now() >= this.#workerUntil;
  }

  /**
   * Records a synchronous read of `keys` keys that took `elapsedMs`. A read over
   * the limit, or the moving average over the budget, starts a back-off. The
   * back-off doubles when the previous one ended less than
   * {@link RELAPSE_READS} synchronous reads ago, and starts again from
   * `backoffMs` otherwise.
   */
  recordSync(keys: number, elapsedMs: number): void {
    const o = this.#options;
    this.#stats.sync += keys;
    this.#readsSinceBackoff++;
    const us = elapsedMs * 1000;
    if (us > this.#stats.syncMaxUs) this.#stats.syncMaxUs = us;
    const sample = Math.min(us / Math.max(1, keys), o.syncBudgetUs * SAMPLE_CAP_BUDGETS);
    this.#averageUs += (sample - this.#averageUs) * AVERAGE_WEIGHT;
    if (us <= o.syncLimitUs && this.#averageUs <= o.syncBudgetUs) return;
    this.#stats.slowSync++;
    this.#backoffMs = this.#readsSinceBackoff <= RELAPSE_READS
      ? Math.min(this.#backoffMs * 2, o.backoffMaxMs)
      : o.backoffMs;
    this.#workerUntil = this.#now() + this.#backoffMs;
    this.#readsSinceBackoff = 0;
    this.#averageUs = 0; // the reads after the back-off are judged afresh
  }

  /** Records keys sent to the worker thread. */
  recordWorker(keys: number): void {
    this.#stats.worker += keys;
  }

  /** A copy of the counts. */
  stats(): MissReadStats {
    return { ...this.#stats };
  }
}

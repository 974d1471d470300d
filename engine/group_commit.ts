/**
 * Group commit: while one synced write is in flight, later writes queue;
 * when it completes, everything queued (up to the group limits) is written
 * as ONE RocksDB write batch with one fsync. Each caller's operations stay
 * together inside that batch, so each caller's write remains atomic; a
 * failure of the group's write rejects every caller in it.
 *
 * The committer knows nothing of RocksDB: it is handed a `commit` function.
 *
 * @module
 */

import { EngineOverloadedError } from "./errors.ts";

/** Limits of the group committer. */
export interface GroupCommitLimits {
  /** Most key and value bytes merged into one group (a larger single request goes alone). */
  groupBytesMax: number;
  /** Most operations merged into one group (a larger single request goes alone). */
  groupOpsMax: number;
  /** Most requests waiting behind the write in flight; past it, writes fail fast. */
  queueRequestsMax: number;
}

/** Defaults: 8 MiB and 20 000 ops per group, 100 000 queued requests. */
export const DEFAULT_GROUP_COMMIT_LIMITS: Readonly<GroupCommitLimits> = Object.freeze({
  groupBytesMax: 8 * 1024 * 1024,
  groupOpsMax: 20_000,
  queueRequestsMax: 100_000,
});

/**
 * Merges `limits` over {@link DEFAULT_GROUP_COMMIT_LIMITS} and checks them.
 *
 * @param limits the limits to change
 * @returns the complete limits
 * @throws {TypeError} for an unknown limit
 * @throws {RangeError} for a limit that is not a whole number of 1 or more
 */
export function groupCommitLimits(limits: Partial<GroupCommitLimits> = {}): GroupCommitLimits {
  const merged = { ...DEFAULT_GROUP_COMMIT_LIMITS, ...limits };
  for (const [name, value] of Object.entries(merged)) {
    if (!(name in DEFAULT_GROUP_COMMIT_LIMITS)) {
      throw new TypeError(
        `Invalid group commit limit ${name}: unknown; allowed: ${
          Object.keys(DEFAULT_GROUP_COMMIT_LIMITS).join(", ")
        }`,
      );
    }
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new RangeError(
        `Invalid group commit limit ${name}: ${value}; a whole number of 1 or more is allowed`,
      );
    }
  }
  return merged;
}

interface Pending<Op> {
  ops: readonly Op[];
  bytes: number;
  /** What the group limit counts (`ops.length` unless the caller says otherwise). */
  count: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** Counters of a committer, for tests and statistics. */
export interface GroupCommitCounters {
  /** Calls of `commit` (each one fsync when writes are synced). */
  groups: number;
  /** Requests committed. */
  requests: number;
}

/**
 * Merges queued write requests into groups and commits one group at a time.
 *
 * @example
 * ```ts
 * import { GroupCommitter } from "./group_commit.ts";
 * const groups: number[][][] = [];
 * const committer = new GroupCommitter<number>(async (reqs) => {
 *   groups.push(reqs.map((r) => [...r]));
 * });
 * await Promise.all([committer.submit([1], 1), committer.submit([2], 1), committer.submit([3], 1)]);
 * // the first request goes alone; the two queued behind it share one commit
 * if (groups.length !== 2) throw new Error("expected 2 groups");
 * ```
 */
export class GroupCommitter<Op> {
  readonly #commit: (requests: readonly (readonly Op[])[]) => Promise<void>;
  readonly #limits: GroupCommitLimits;
  #queue: Pending<Op>[] = [];
  #running: Promise<void> | undefined;
  readonly #counters: GroupCommitCounters = { groups: 0, requests: 0 };

  /**
   * @param commit writes every request of a group atomically as one batch
   * @param limits group and queue limits
   * @throws {TypeError} for an unknown limit
   * @throws {RangeError} for a limit that is not a whole number of 1 or more
   */
  constructor(
    commit: (requests: readonly (readonly Op[])[]) => Promise<void>,
    limits: Partial<GroupCommitLimits> = {},
  ) {
    this.#commit = commit;
    this.#limits = groupCommitLimits(limits);
  }

  /** Groups and requests committed so far. */
  get counters(): Readonly<GroupCommitCounters> {
    return { ...this.#counters };
  }

  /**
   * Queues one atomic request and resolves once it is durable.
   * @param ops the request's operations
   * @param bytes its key and value bytes
   * @param count the operations it stands for, for groupOpsMax (default `ops.length`)
   * @throws {EngineOverloadedError} (as a rejection) when the queue is full
   */
  submit(ops: readonly Op[], bytes: number, count: number = ops.length): Promise<void> {
    if (this.#queue.length >= this.#limits.queueRequestsMax) {
      return Promise.reject(
        new EngineOverloadedError(
          `${this.#queue.length} writes are queued, the maximum is ${this.#limits.queueRequestsMax}`,
        ),
      );
    }
    const promise = new Promise<void>((resolve, reject) => {
      this.#queue.push({ ops, bytes, count, resolve, reject });
    });
    if (this.#running === undefined) this.#running = this.#run();
    return promise;
  }

  /** Whether a commit is in flight or requests are queued. */
  get busy(): boolean {
    return this.#running !== undefined;
  }

  /** Resolves when nothing is queued or in flight. */
  async idle(): Promise<void> {
    while (this.#running !== undefined) await this.#running;
  }

  async #run(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const group = this.#takeGroup();
        try {
          await this.#commit(group.map((p) => p.ops));
          this.#counters.groups++;
          this.#counters.requests += group.length;
          for (const p of group) p.resolve();
        } catch (error) {
          for (const p of group) p.reject(error);
        }
      }
    } finally {
      this.#running = undefined;
    }
  }

  #takeGroup(): Pending<Op>[] {
    let bytes = 0;
    let ops = 0;
    let count = 0;
    for (const p of this.#queue) {
      if (
        count > 0 &&
        (bytes + p.bytes > this.#limits.groupBytesMax ||
          ops + p.count > this.#limits.groupOpsMax)
      ) break;
      bytes += p.bytes;
      ops += p.count;
      count++;
    }
    return this.#queue.splice(0, count);
  }
}

/**
 * Id allocator for stores, regions and peers: ids are handed out in
 * increasing order and never reused, even after a crash, because the end of
 * each reserved step is persisted before any id in it is used.
 *
 * @module
 */

import { Serial } from "./_serial.ts";

/** Options of {@link IdAllocator}. */
export interface IdAllocatorOptions {
  /** The bound persisted before the last stop (0 for a new cluster); ids start there. */
  readonly savedLimit: number;
  /** Persists a new bound durably: no id at or above it has been handed out. */
  readonly saveLimit: (limit: number) => Promise<void>;
  /** Ids reserved per persisted step (default 1000, as in TiKV PD). */
  readonly step?: number;
  /** Largest `count` of one request (default 10000). */
  readonly countMax?: number;
  /** Requests that may wait for a step to be saved (default 10000). */
  readonly pendingMax?: number;
}

/**
 * Allocates ids, one persisted step at a time.
 *
 * @example
 * ```ts
 * import { IdAllocator } from "./id_allocator.ts";
 * const alloc = new IdAllocator({ savedLimit: 0, saveLimit: async () => {} });
 * console.assert((await alloc.alloc()) === 1 && (await alloc.alloc(3)) === 2);
 * ```
 */
export class IdAllocator {
  readonly #saveLimit: (limit: number) => Promise<void>;
  readonly #step: number;
  readonly #countMax: number;
  readonly #serial: Serial;
  /** Invariant: 1 <= #next <= #limit, #limit is durable, and no id >= #next was handed out. */
  #next: number;
  #limit: number;

  /**
   * Creates the instance.
   *
   * @param options The saved bound, how to save a new one, the step.
   * @throws {RangeError} When a limit or the saved bound is out of range.
   */
  constructor(options: IdAllocatorOptions) {
    this.#saveLimit = options.saveLimit;
    this.#step = options.step ?? 1000;
    this.#countMax = options.countMax ?? 10_000;
    for (const [name, v] of [["step", this.#step], ["countMax", this.#countMax]] as const) {
      if (!Number.isSafeInteger(v) || v < 1) {
        throw new RangeError(`Invalid id allocator ${name}: ${v} is not a positive integer`);
      }
    }
    const saved = options.savedLimit;
    if (!Number.isSafeInteger(saved) || saved < 0) {
      throw new RangeError(`Invalid id allocator savedLimit: ${saved} is not >= 0`);
    }
    this.#serial = new Serial("id allocator", options.pendingMax ?? 10_000);
    this.#next = Math.max(1, saved);
    this.#limit = this.#next;
  }

  /** Refuses new requests and resolves once every queued one has settled. */
  close(): Promise<void> {
    return this.#serial.close();
  }

  /** The durable bound: every id handed out so far is below it. */
  get limit(): number {
    return this.#limit;
  }

  /**
   * Allocates `count` consecutive ids.
   *
   * @param count How many, 1..countMax.
   * @returns The first id; the ids are `first .. first + count - 1`.
   * @throws {RangeError} When `count` is out of range or ids would pass 2^53.
   */
  alloc(count = 1): Promise<number> {
    if (!Number.isSafeInteger(count) || count < 1 || count > this.#countMax) {
      return Promise.reject(
        new RangeError(`Cannot allocate ids: count ${count} is not in 1..${this.#countMax}`),
      );
    }
    return this.#serial.run(async () => {
      if (this.#next + count > this.#limit) {
        const limit = this.#next + Math.max(count, this.#step);
        if (!Number.isSafeInteger(limit)) {
          throw new RangeError(`Cannot allocate ids: ${limit} passes Number.MAX_SAFE_INTEGER`);
        }
        await this.#saveLimit(limit);
        this.#limit = limit;
      }
      const first = this.#next;
      this.#next += count;
      return first;
    });
  }
}

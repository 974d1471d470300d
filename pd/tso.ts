/**
 * Timestamp oracle: hands out strictly increasing 64-bit timestamps made of a
 * 46-bit physical part (milliseconds since the Unix epoch) and an 18-bit
 * logical counter. No timestamp reaches the persisted upper bound: once half
 * the window is used a new bound (`physical + windowMs`) is saved in the
 * background, and a request that reaches the bound waits until one is
 * durable. After a restart it starts at the saved bound, so timestamps never
 * go back even when the wall clock did.
 *
 * @module
 */

import { Serial } from "./_serial.ts";

/** Bits of the physical part. */
export const TSO_PHYSICAL_BITS = 46;
/** Bits of the logical part. */
export const TSO_LOGICAL_BITS = 18;
/** Largest logical value. */
export const TSO_LOGICAL_MAX = 2 ** TSO_LOGICAL_BITS - 1;
/** Largest physical value (milliseconds), about the year 4199. */
export const TSO_PHYSICAL_MAX = 2 ** TSO_PHYSICAL_BITS - 1;

/**
 * Packs a physical and a logical part into one timestamp.
 *
 * @param physicalMs Milliseconds, 0..TSO_PHYSICAL_MAX.
 * @param logical Counter, 0..TSO_LOGICAL_MAX.
 * @returns `physicalMs << 18 | logical`.
 * @throws {RangeError} When a part is out of range.
 * @example
 * ```ts
 * import { composeTs, parseTs } from "./tso.ts";
 * const ts = composeTs(1_700_000_000_000, 5);
 * console.assert(parseTs(ts).logical === 5);
 * ```
 */
export function composeTs(physicalMs: number, logical: number): bigint {
  if (!Number.isSafeInteger(physicalMs) || physicalMs < 0 || physicalMs > TSO_PHYSICAL_MAX) {
    throw new RangeError(`Cannot compose timestamp: physical ${physicalMs} is not in 0..2^46-1`);
  }
  if (!Number.isSafeInteger(logical) || logical < 0 || logical > TSO_LOGICAL_MAX) {
    throw new RangeError(`Cannot compose timestamp: logical ${logical} is not in 0..2^18-1`);
  }
  return (BigInt(physicalMs) << BigInt(TSO_LOGICAL_BITS)) | BigInt(logical);
}

/**
 * Splits a timestamp into its parts.
 *
 * @param ts A timestamp from {@link composeTs}.
 * @returns The physical and logical parts.
 * @throws {RangeError} When `ts` is negative or wider than 64 bits.
 */
export function parseTs(ts: bigint): { physicalMs: number; logical: number } {
  if (ts < 0n || ts >= 1n << 64n) {
    throw new RangeError(`Cannot parse timestamp: ${ts} is not a 64-bit unsigned value`);
  }
  return {
    physicalMs: Number(ts >> BigInt(TSO_LOGICAL_BITS)),
    logical: Number(ts & BigInt(TSO_LOGICAL_MAX)),
  };
}

/** A run of `count` consecutive timestamps, all with the same physical part. */
export interface TimestampRange {
  /** The physical part shared by the run. */
  readonly physicalMs: number;
  /** Logical part of the first timestamp. */
  readonly firstLogical: number;
  /** Number of timestamps. */
  readonly count: number;
  /** The first timestamp. */
  readonly first: bigint;
  /** The last timestamp (`first + count - 1`). */
  readonly last: bigint;
}

/** Options of {@link Tso}. */
export interface TsoOptions {
  /** Wall clock in milliseconds (injected; may step back). */
  readonly clock: () => number;
  /** The upper bound persisted before the last stop, or 0 for a new cluster. */
  readonly savedLimitMs: number;
  /** Persists a new upper bound durably; resolves once it is on disk. */
  readonly saveLimit: (limitMs: number) => Promise<void>;
  /** How far ahead of the current physical time each saved bound lies (default 3000). */
  readonly windowMs?: number;
  /** Largest `count` of one request (default 2^18, a full logical range). */
  readonly countMax?: number;
  /** Requests that may wait for a bound to be saved (default 10000). */
  readonly pendingMax?: number;
}

/**
 * The timestamp oracle. Requests are served one at a time in arrival order.
 *
 * @example
 * ```ts
 * import { Tso } from "./tso.ts";
 * let saved = 0;
 * const tso = new Tso({ clock: () => 1000, savedLimitMs: 0, saveLimit: async (l) => { saved = l; } });
 * const a = await tso.getTs(1);
 * const b = await tso.getTs(10);
 * console.assert(b.first > a.last && saved === 4000);
 * ```
 */
export class Tso {
  readonly #clock: () => number;
  readonly #saveLimit: (limitMs: number) => Promise<void>;
  readonly #windowMs: number;
  readonly #countMax: number;
  readonly #serial: Serial;
  /** Invariant: every timestamp handed out has physical < #limitMs, and #limitMs is durable. */
  #limitMs: number;
  /** Invariant: the next timestamp handed out is >= (#physicalMs, #nextLogical). */
  #physicalMs: number;
  #nextLogical = 0;
  /** A save started ahead of need, so that requests rarely wait for the disk. */
  #saving: Promise<void> | undefined;

  /**
   * Creates the instance.
   *
   * @param options Clock, the saved bound and how to save a new one.
   * @throws {RangeError} When a limit or the saved bound is out of range.
   */
  constructor(options: TsoOptions) {
    this.#clock = options.clock;
    this.#saveLimit = options.saveLimit;
    this.#windowMs = options.windowMs ?? 3000;
    this.#countMax = options.countMax ?? TSO_LOGICAL_MAX + 1;
    if (!Number.isSafeInteger(this.#windowMs) || this.#windowMs < 1) {
      throw new RangeError(`Invalid TSO windowMs: ${this.#windowMs} is not a positive integer`);
    }
    if (
      !Number.isSafeInteger(this.#countMax) || this.#countMax < 1 ||
      this.#countMax > TSO_LOGICAL_MAX + 1
    ) {
      throw new RangeError(`Invalid TSO countMax: ${this.#countMax} is not in 1..2^18`);
    }
    const saved = options.savedLimitMs;
    if (!Number.isSafeInteger(saved) || saved < 0 || saved > TSO_PHYSICAL_MAX) {
      throw new RangeError(`Invalid TSO savedLimitMs: ${saved} is not in 0..2^46-1`);
    }
    this.#serial = new Serial("TSO", options.pendingMax ?? 10_000);
    // Everything handed out before the restart had physical < saved; start at it.
    this.#limitMs = saved;
    this.#physicalMs = saved;
  }

  /** Refuses new requests and resolves once every queued one has settled. */
  async close(): Promise<void> {
    await this.#serial.close();
    await this.#saving;
  }

  /** The durable upper bound: no timestamp handed out so far has reached it. */
  get limitMs(): number {
    return this.#limitMs;
  }

  /**
   * Hands out `count` consecutive timestamps, each greater than every one
   * handed out before (also before a restart).
   *
   * @param count How many, 1..countMax.
   * @returns The range.
   * @throws {RangeError} When `count` is out of range or the physical part would pass 2^46.
   */
  getTs(count = 1): Promise<TimestampRange> {
    if (!Number.isSafeInteger(count) || count < 1 || count > this.#countMax) {
      return Promise.reject(
        new RangeError(`Cannot get timestamps: count ${count} is not in 1..${this.#countMax}`),
      );
    }
    return this.#serial.run(() => this.#next(count));
  }

  /**
   * Saves a new bound in the background once half the window is used, as
   * TiKV PD's update loop does; a failure is not reported here, because the
   * request that reaches the bound saves again and reports it.
   */
  #saveAhead(limit: number): void {
    this.#saving = this.#saveLimit(limit).then(
      () => {
        this.#limitMs = Math.max(this.#limitMs, limit);
      },
      () => {},
    ).finally(() => {
      this.#saving = undefined;
    });
  }

  async #next(count: number): Promise<TimestampRange> {
    const now = Math.floor(this.#clock());
    if (now > this.#physicalMs) {
      this.#physicalMs = now;
      this.#nextLogical = 0;
    }
    if (this.#nextLogical + count > TSO_LOGICAL_MAX + 1) {
      // The logical part ran out within this millisecond: move physical on by
      // one instead of waiting; the saved bound still caps how far ahead we go.
      this.#physicalMs += 1;
      this.#nextLogical = 0;
    }
    if (this.#physicalMs > TSO_PHYSICAL_MAX - this.#windowMs) {
      throw new RangeError(`Cannot get timestamps: physical ${this.#physicalMs} passes 2^46 ms`);
    }
    if (this.#physicalMs >= this.#limitMs && this.#saving !== undefined) await this.#saving;
    if (this.#physicalMs >= this.#limitMs) {
      const limit = this.#physicalMs + this.#windowMs;
      await this.#saveLimit(limit);
      this.#limitMs = Math.max(this.#limitMs, limit);
    } else if (
      this.#saving === undefined && this.#limitMs - this.#physicalMs < this.#windowMs / 2
    ) {
      this.#saveAhead(this.#physicalMs + this.#windowMs);
    }
    const firstLogical = this.#nextLogical;
    this.#nextLogical += count;
    const first = composeTs(this.#physicalMs, firstLogical);
    return {
      physicalMs: this.#physicalMs,
      firstLogical,
      count,
      first,
      last: first + BigInt(count - 1),
    };
  }
}

/**
 * Time for the actor runtime, injected: a monotonic clock and one host
 * timer. The runtime multiplexes all of its timers (call timeouts,
 * `sendAfter`, shutdown deadlines) onto a single host timer, so a
 * {@linkcode ManualClock} gives tests full control of time.
 *
 * @module
 */

/** A monotonic clock in milliseconds. */
export interface Clock {
  /** The current time in milliseconds (monotonic, arbitrary origin). */
  now(): number;
}

/** One host timer at a time: the runtime arms it for its earliest deadline. */
export interface TimerHost {
  /**
   * Calls `callback` once, after `delayMs`.
   *
   * @returns A handle for {@linkcode TimerHost.clear}.
   */
  set(callback: () => void, delayMs: number): unknown;
  /** Cancels a timer set with {@linkcode TimerHost.set}. */
  clear(handle: unknown): void;
}

/**
 * The real clock (`performance.now`) and timers (`setTimeout`).
 *
 * @returns A clock and timer host on the system's time.
 * @example
 * ```ts
 * import { systemTime } from "./clock.ts";
 * const time = systemTime();
 * console.assert(time.now() >= 0);
 * ```
 */
export function systemTime(): Clock & TimerHost {
  return {
    now: () => performance.now(),
    set: (callback, delayMs) => setTimeout(callback, Math.max(0, delayMs)),
    clear: (handle) => clearTimeout(handle as number),
  };
}

/**
 * A clock that moves only when told: `advance(ms)` runs the timers that fall
 * due, in deadline order, at their deadlines.
 *
 * @example
 * ```ts
 * import { ManualClock } from "./clock.ts";
 * const clock = new ManualClock();
 * let fired = 0;
 * clock.set(() => fired++, 10);
 * clock.advance(9);
 * console.assert(fired === 0);
 * clock.advance(1);
 * console.assert(fired === 1 && clock.now() === 10);
 * ```
 */
export class ManualClock implements Clock, TimerHost {
  #now: number;
  #timers = new Map<number, { at: number; callback: () => void }>();
  #nextId = 1;

  /**
   * @param startMs The initial time.
   */
  constructor(startMs = 0) {
    this.#now = startMs;
  }

  /** The current time. */
  now(): number {
    return this.#now;
  }

  /** Schedules `callback` at `now() + delayMs`. */
  set(callback: () => void, delayMs: number): unknown {
    const id = this.#nextId++;
    this.#timers.set(id, { at: this.#now + Math.max(0, delayMs), callback });
    return id;
  }

  /** Cancels a scheduled callback. */
  clear(handle: unknown): void {
    this.#timers.delete(handle as number);
  }

  /** How many timers are pending. */
  get pending(): number {
    return this.#timers.size;
  }

  /**
   * Moves time forward by `ms`, running each timer that falls due at its
   * deadline (time is set to the deadline before the callback runs).
   *
   * @param ms How far to move, >= 0.
   * @throws {RangeError} If `ms` is negative or not finite.
   */
  advance(ms: number): void {
    if (!(ms >= 0) || !Number.isFinite(ms)) {
      throw new RangeError(`Cannot advance the clock: ${ms} ms; allowed: a finite number >= 0`);
    }
    const end = this.#now + ms;
    for (;;) {
      let nextId = -1;
      let nextAt = Infinity;
      for (const [id, timer] of this.#timers) {
        if (timer.at < nextAt) {
          nextAt = timer.at;
          nextId = id;
        }
      }
      if (nextId < 0 || nextAt > end) break;
      const timer = this.#timers.get(nextId)!;
      this.#timers.delete(nextId);
      this.#now = Math.max(this.#now, timer.at);
      timer.callback();
    }
    this.#now = end;
  }
}

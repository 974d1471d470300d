/**
 * Runs async steps one at a time, in arrival order, with a bounded backlog.
 * Private to pd/.
 *
 * @module
 */

import { PdBusyError, PdClosedError } from "./errors.ts";

/** A FIFO of async steps; at most `pendingMax` may wait. */
export class Serial {
  #tail: Promise<unknown> = Promise.resolve();
  #pending = 0;
  #closed = false;
  readonly #pendingMax: number;
  readonly #what: string;

  constructor(what: string, pendingMax: number) {
    if (!Number.isSafeInteger(pendingMax) || pendingMax < 1) {
      throw new RangeError(`Invalid ${what} queue: pendingMax ${pendingMax} is not >= 1`);
    }
    this.#what = what;
    this.#pendingMax = pendingMax;
  }

  /** Runs `step` after every step queued before it; rejects when the backlog is full. */
  run<T>(step: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new PdClosedError(this.#what));
    if (this.#pending >= this.#pendingMax) {
      return Promise.reject(new PdBusyError(this.#what, this.#pendingMax));
    }
    this.#pending++;
    const result = this.#tail.then(step);
    this.#tail = result.then(
      () => this.#pending--,
      () => this.#pending--,
    );
    return result;
  }

  /** Refuses new steps and resolves once every queued step has settled. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#tail;
  }
}

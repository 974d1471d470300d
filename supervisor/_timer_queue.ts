import type { Clock, TimerHost } from "./clock.ts";

/** An entry of the timer queue. `cancelled` entries are dropped lazily. */
export interface TimerEntry {
  /** Deadline on the runtime's clock. */
  at: number;
  /** Tie-breaker: insertion order. */
  seq: number;
  /** Set by cancel; the entry no longer fires. */
  cancelled: boolean;
  /** Runs when the deadline passes. */
  fire(): void;
}

/**
 * All of a runtime's timers on one host timer: a binary min-heap on
 * (at, seq) with lazy cancellation. Cancelled entries are compacted away
 * when they outnumber live ones, so memory stays within twice the live
 * timers. The host timer is cleared as soon as no live entry remains, so
 * an idle runtime holds no timer (Deno's test sanitizers see none).
 */
export class TimerQueue {
  #heap: TimerEntry[] = [];
  #live = 0;
  #seq = 0;
  #clock: Clock;
  #host: TimerHost;
  #handle: unknown = undefined;
  #armedAt = Infinity;
  #onFire = () => this.#fireDue();
  #disarmQueued = false;
  #disarmIfIdle = () => {
    this.#disarmQueued = false;
    if (this.#live === 0) this.#disarm();
  };

  constructor(clock: Clock, host: TimerHost) {
    this.#clock = clock;
    this.#host = host;
  }

  /** Live (not cancelled, not fired) entries. */
  get size(): number {
    return this.#live;
  }

  /** Schedules `entry` at `at`. */
  add(entry: TimerEntry, at: number): void {
    entry.at = at;
    entry.seq = this.#seq++;
    entry.cancelled = false;
    this.#push(entry);
    this.#live++;
    if (at < this.#armedAt) this.#arm(at);
  }

  /** Cancels `entry` if it is still pending; returns whether it was. */
  cancel(entry: TimerEntry): boolean {
    if (entry.cancelled) return false;
    entry.cancelled = true;
    this.#live--;
    if (this.#live === 0) {
      this.#heap.length = 0;
      // Disarm a microtask later: a call loop re-adds at once, and re-arming
      // the host timer per call would cost more than the call itself.
      if (!this.#disarmQueued) {
        this.#disarmQueued = true;
        queueMicrotask(this.#disarmIfIdle);
      }
    } else if (this.#heap.length > 1024 && this.#heap.length > 2 * this.#live) {
      this.#compact();
    }
    return true;
  }

  /** Cancels everything (runtime close). */
  clear(): void {
    for (const entry of this.#heap) entry.cancelled = true;
    this.#heap.length = 0;
    this.#live = 0;
    this.#disarm();
  }

  #fireDue(): void {
    this.#handle = undefined;
    this.#armedAt = Infinity;
    const now = this.#clock.now();
    for (;;) {
      const top = this.#heap[0];
      if (top === undefined) break;
      if (top.cancelled) {
        this.#pop();
        continue;
      }
      if (top.at > now) break;
      this.#pop();
      top.cancelled = true;
      this.#live--;
      top.fire();
    }
    while (this.#heap[0]?.cancelled) this.#pop();
    const next = this.#heap[0];
    if (next !== undefined && this.#live > 0) this.#arm(next.at);
  }

  #arm(at: number): void {
    this.#disarm();
    this.#armedAt = at;
    this.#handle = this.#host.set(this.#onFire, at - this.#clock.now());
  }

  #disarm(): void {
    if (this.#handle !== undefined) this.#host.clear(this.#handle);
    this.#handle = undefined;
    this.#armedAt = Infinity;
  }

  #compact(): void {
    const live = this.#heap.filter((e) => !e.cancelled);
    live.sort(less);
    this.#heap = live; // a sorted array is a valid heap
  }

  #push(entry: TimerEntry): void {
    const heap = this.#heap;
    let i = heap.length;
    heap.push(entry);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent]!;
      if (less(p, entry) <= 0) break;
      heap[i] = p;
      i = parent;
    }
    heap[i] = entry;
  }

  #pop(): void {
    const heap = this.#heap;
    const last = heap.pop()!;
    if (heap.length === 0) return;
    let i = 0;
    const n = heap.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && less(heap[r]!, heap[l]!) < 0 ? r : l;
      if (less(last, heap[c]!) <= 0) break;
      heap[i] = heap[c]!;
      i = c;
    }
    heap[i] = last;
  }
}

function less(a: TimerEntry, b: TimerEntry): number {
  return a.at - b.at || a.seq - b.seq;
}

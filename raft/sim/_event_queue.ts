// A min-heap of timed events (private to raft/sim). Ties run in scheduling order.

export interface SimEvent {
  readonly time: number;
  readonly seq: number;
  readonly run: () => void;
}

export class EventQueue {
  readonly #heap: SimEvent[] = [];
  #seq = 0;
  readonly #eventsMax: number;

  constructor(eventsMax: number) {
    this.#eventsMax = eventsMax;
  }

  get size(): number {
    return this.#heap.length;
  }

  push(time: number, run: () => void): void {
    if (this.#heap.length >= this.#eventsMax) {
      throw new RangeError(`Cannot schedule event: ${this.#eventsMax} events already queued`);
    }
    const h = this.#heap;
    h.push({ time, seq: this.#seq++, run });
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  pop(): SimEvent | undefined {
    const h = this.#heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last !== undefined) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < h.length && less(h[l]!, h[m]!)) m = l;
        if (r < h.length && less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}

function less(a: SimEvent, b: SimEvent): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq);
}

/**
 * A FIFO queue on a growable ring buffer: O(1) push and shift, no array
 * shifting. Used for mailboxes.
 */
export class Deque<T> {
  #items: (T | undefined)[];
  #head = 0;
  #length = 0;

  constructor(capacity = 4) {
    this.#items = new Array<T | undefined>(capacity);
  }

  get length(): number {
    return this.#length;
  }

  push(item: T): void {
    if (this.#length === this.#items.length) this.#grow();
    this.#items[(this.#head + this.#length) % this.#items.length] = item;
    this.#length++;
  }

  shift(): T | undefined {
    if (this.#length === 0) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head = (this.#head + 1) % this.#items.length;
    this.#length--;
    return item;
  }

  /** Removes every item for which `drop` is true, keeping order. */
  filter(keep: (item: T) => boolean): void {
    const kept: T[] = [];
    for (let item = this.shift(); item !== undefined; item = this.shift()) {
      if (keep(item)) kept.push(item);
    }
    for (const item of kept) this.push(item);
  }

  /** Takes all items out, in order. */
  drain(): T[] {
    const out: T[] = [];
    for (let item = this.shift(); item !== undefined; item = this.shift()) out.push(item);
    return out;
  }

  #grow(): void {
    const old = this.#items;
    const items = new Array<T | undefined>(Math.max(4, old.length * 2));
    for (let i = 0; i < this.#length; i++) items[i] = old[(this.#head + i) % old.length];
    this.#items = items;
    this.#head = 0;
  }
}

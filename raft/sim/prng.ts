/**
 * A seeded pseudo-random generator for the simulation: xoshiro128** with its
 * state filled by splitmix32 from a 32-bit seed. Same seed, same sequence.
 *
 * @module
 */

/**
 * Deterministic random numbers.
 *
 * @example
 * ```ts
 * import { Prng } from "./prng.ts";
 * const a = new Prng(7), b = new Prng(7);
 * if (a.next() !== b.next()) throw new Error("not deterministic");
 * ```
 */
export class Prng {
  readonly #s = new Uint32Array(4);

  /**
   * Creates a Prng.
   * @param seed any integer; only its low 32 bits matter
   */
  constructor(seed: number) {
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      // splitmix32
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.#s[i] = (z ^ (z >>> 16)) >>> 0;
    }
    if ((this.#s[0]! | this.#s[1]! | this.#s[2]! | this.#s[3]!) === 0) this.#s[0] = 1;
  }

  /** Returns the next 32-bit unsigned integer. */
  nextUint32(): number {
    const s = this.#s;
    const s0 = s[0]!, s1 = s[1]!, s2 = s[2]!, s3 = s[3]!;
    const m = Math.imul(s1, 5) >>> 0;
    const result = Math.imul((m << 7) | (m >>> 25), 9) >>> 0;
    const t = (s1 << 9) >>> 0;
    const n2 = (s2 ^ s0) >>> 0;
    const n3 = (s3 ^ s1) >>> 0;
    s[1] = s1 ^ n2;
    s[0] = s0 ^ n3;
    s[2] = n2 ^ t;
    s[3] = (n3 << 11) | (n3 >>> 21);
    return result;
  }

  /** Returns a uniform number in [0, 1). */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /**
   * Draws an integer.
   * @param n exclusive upper bound (> 0)
   * @returns a uniform integer in [0, n)
   */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /**
   * Draws a number in a range.
   * @param lo inclusive lower bound
   * @param hi exclusive upper bound
   * @returns a uniform number in [lo, hi)
   */
  range(lo: number, hi: number): number {
    return lo + this.next() * (hi - lo);
  }

  /**
   * Flips a biased coin.
   * @param p probability in [0, 1]
   * @returns true with probability `p`
   */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /**
   * Picks an element.
   * @param items a non-empty array
   * @returns one of its elements
   */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError("Cannot pick: the array is empty");
    return items[this.int(items.length)]!;
  }

  /** Returns an independent generator seeded from this one. */
  fork(): Prng {
    return new Prng(this.nextUint32());
  }

  /** Returns a `() => number` bound to this generator, for APIs that take one. */
  fn(): () => number {
    return () => this.next();
  }
}

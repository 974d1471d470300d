/**
 * An order-preserving, self-delimiting encoding of tuples into byte keys:
 * comparing two encodings byte by byte gives the same answer as
 * {@link compareTuples} on the tuples.
 *
 * Element order: `null` < numbers < bigints < strings < byte strings.
 *
 * - Numbers are IEEE-754 doubles in numeric order, -Infinity first and
 *   +Infinity last. `-0` is stored as `0` (they are one key, as `-0 === 0`).
 *   `NaN` is refused: it equals nothing, not even itself, so it cannot be a key.
 * - Bigints are whole numbers of up to {@link BIGINT_BYTES_MAX} bytes of
 *   magnitude, in numeric order, after every number: `1n` and `1` are
 *   different keys, and decoding gives back the type that was encoded.
 * - Strings compare by Unicode code point (the order of their UTF-8 bytes),
 *   which differs from JavaScript's `<` (UTF-16 code units) for characters
 *   above U+FFFF. Strings with lone surrogates are refused: they have no UTF-8
 *   form and would not come back unchanged.
 * - Byte strings (`Uint8Array`) compare bytewise.
 *
 * Every element encoding is prefix-free (none is a prefix of another), so an
 * encoded tuple is a byte prefix of another exactly when the first tuple is a
 * prefix of the second. {@link tuplePrefixRange} uses this for prefix scans.
 *
 * Layout: one tag byte per element, then
 * - null `0x05`; number `0x10` + 8 bytes; bigint `0x18` + length byte + magnitude;
 * - string `0x20` (UTF-8), bytes `0x30`: the bytes with `0x00` written as
 *   `0x00 0xFF`, then the terminator `0x00 0x00`. (A single `0x00` terminator,
 *   as in FoundationDB's tuple layer, would make `"a"` a byte prefix of `"a\0"`.)
 *
 * @module
 */

/** One element of a tuple key. */
export type TupleElement = null | number | bigint | string | Uint8Array;

/** A tuple key: a list of elements, compared element by element, shorter first on a tie. */
export type Tuple = readonly TupleElement[];

/** The largest bigint magnitude, in bytes, that a key can hold (1016 bits). */
export const BIGINT_BYTES_MAX = 127;

/** The most elements a tuple may have. */
export const TUPLE_ELEMENTS_MAX = 256;

const TAG_NULL = 0x05;
const TAG_NUMBER = 0x10;
const TAG_BIGINT = 0x18;
const TAG_STRING = 0x20;
const TAG_BYTES = 0x30;

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

class ByteWriter {
  #buf = new Uint8Array(64);
  #len = 0;
  readonly #scratch = new DataView(new ArrayBuffer(8));

  #reserve(n: number): void {
    this.#buf = grownBytes(this.#buf, this.#len, this.#len + n);
  }

  byte(b: number): void {
    this.#reserve(1);
    this.#buf[this.#len++] = b;
  }

  bytes(src: Uint8Array): void {
    this.#reserve(src.length);
    this.#buf.set(src, this.#len);
    this.#len += src.length;
  }

  /** Writes a double so that unsigned bytewise order is numeric order. */
  orderedFloat(n: number): void {
    const view = this.#scratch;
    view.setFloat64(0, n);
    let hi = view.getUint32(0);
    let lo = view.getUint32(4);
    if (hi & 0x80000000) {
      hi = ~hi >>> 0;
      lo = ~lo >>> 0;
    } else {
      hi = (hi | 0x80000000) >>> 0;
    }
    view.setUint32(0, hi);
    view.setUint32(4, lo);
    this.#reserve(8);
    for (let i = 0; i < 8; i++) this.#buf[this.#len++] = view.getUint8(i);
  }

  /** Writes `src` with 0x00 escaped as 0x00 0xFF, then the 0x00 0x00 terminator. */
  escaped(src: Uint8Array): void {
    this.#reserve(src.length * 2 + 2);
    for (let i = 0; i < src.length; i++) {
      const b = src[i] ?? 0;
      this.#buf[this.#len++] = b;
      if (b === 0x00) this.#buf[this.#len++] = 0xff;
    }
    this.#buf[this.#len++] = 0x00;
    this.#buf[this.#len++] = 0x00;
  }

  /** Writes a string as escaped UTF-8 without an intermediate copy when it has no U+0000. */
  escapedUtf8(text: string): void {
    if (text.includes("\0")) {
      this.escaped(utf8Encoder.encode(text));
      return;
    }
    this.#reserve(text.length * 3 + 2);
    const { written } = utf8Encoder.encodeInto(text, this.#buf.subarray(this.#len));
    this.#len += written;
    this.#buf[this.#len++] = 0x00;
    this.#buf[this.#len++] = 0x00;
  }

  result(): Uint8Array {
    return this.#buf.slice(0, this.#len);
  }
}

function elementName(e: unknown): string {
  if (e === null) return "null";
  if (e instanceof Uint8Array) return "Uint8Array";
  if (typeof e === "string") return JSON.stringify(e.length > 40 ? e.slice(0, 40) + "..." : e);
  if (typeof e === "bigint") return `${e}n`;
  return typeof e === "object" ? "object" : String(e);
}

function writeNumber(w: ByteWriter, n: number, index: number): void {
  if (Number.isNaN(n)) {
    throw new RangeError(
      `Cannot encode tuple element ${index}: NaN is not a key; allowed: any other number`,
    );
  }
  w.byte(TAG_NUMBER);
  w.orderedFloat(n === 0 ? 0 : n); // -0 becomes 0
}

function magnitudeBytes(m: bigint): Uint8Array {
  const hex = m.toString(16);
  const padded = hex.length % 2 === 0 ? hex : "0" + hex;
  const out = new Uint8Array(padded.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(padded.slice(i * 2, i * 2 + 2), 16);
  return out;
}

function writeBigInt(w: ByteWriter, n: bigint, index: number): void {
  w.byte(TAG_BIGINT);
  if (n === 0n) {
    w.byte(0x80);
    return;
  }
  const negative = n < 0n;
  const mag = magnitudeBytes(negative ? -n : n);
  if (mag.length > BIGINT_BYTES_MAX) {
    throw new RangeError(
      `Cannot encode tuple element ${index}: a bigint of ${mag.length} bytes is too large; ` +
        `allowed: up to ${BIGINT_BYTES_MAX} bytes of magnitude`,
    );
  }
  if (negative) {
    // Larger magnitudes sort first: a smaller length byte, then complemented bytes.
    w.byte(0x80 - mag.length);
    for (let i = 0; i < mag.length; i++) mag[i] = ~(mag[i] ?? 0) & 0xff;
  } else {
    w.byte(0x80 + mag.length);
  }
  w.bytes(mag);
}

function writeElement(w: ByteWriter, e: TupleElement, index: number): void {
  if (e === null) w.byte(TAG_NULL);
  else if (typeof e === "number") writeNumber(w, e, index);
  else if (typeof e === "bigint") writeBigInt(w, e, index);
  else if (typeof e === "string") {
    if (!e.isWellFormed()) {
      throw new RangeError(
        `Cannot encode tuple element ${index}: the string has a lone surrogate; ` +
          `allowed: well-formed Unicode strings`,
      );
    }
    w.byte(TAG_STRING);
    w.escapedUtf8(e);
  } else if (e instanceof Uint8Array) {
    w.byte(TAG_BYTES);
    w.escaped(e);
  } else {
    throw new TypeError(
      `Cannot encode tuple element ${index}: ${elementName(e)} is not a key element; ` +
        `allowed: null, number, bigint, string, Uint8Array`,
    );
  }
}

function checkTuple(tuple: Tuple): void {
  if (!Array.isArray(tuple)) {
    throw new TypeError(`Cannot encode tuple: ${elementName(tuple)} is not an array`);
  }
  if (tuple.length > TUPLE_ELEMENTS_MAX) {
    throw new RangeError(
      `Cannot encode tuple: ${tuple.length} elements are too many; allowed: up to ${TUPLE_ELEMENTS_MAX}`,
    );
  }
}

/**
 * Encodes a tuple into an order-preserving byte key.
 *
 * @param tuple The elements (null, number, bigint, string, Uint8Array).
 * @returns The key; bytewise order of keys equals {@link compareTuples} order.
 * @throws {TypeError} When an element has an unsupported type or `tuple` is not an array.
 * @throws {RangeError} For NaN, a string with a lone surrogate, a bigint above
 *   {@link BIGINT_BYTES_MAX} bytes, or more than {@link TUPLE_ELEMENTS_MAX} elements.
 *
 * @example
 * ```ts
 * import { compareBytes, encodeTuple } from "./tuple.ts";
 * const a = encodeTuple(["user", 7]);
 * const b = encodeTuple(["user", 10]);
 * console.assert(compareBytes(a, b) < 0);
 * ```
 */
export function encodeTuple(tuple: Tuple): Uint8Array {
  checkTuple(tuple);
  const w = new ByteWriter();
  tuple.forEach((e, i) => writeElement(w, e, i));
  return w.result();
}

class ByteReader {
  pos = 0;
  constructor(readonly buf: Uint8Array) {}

  fail(what: string): never {
    throw new RangeError(
      `Cannot decode tuple: ${what} at byte ${this.pos}; allowed: bytes from encodeTuple`,
    );
  }

  byte(): number {
    const b = this.buf[this.pos];
    if (b === undefined) this.fail("the key ends early");
    this.pos++;
    return b;
  }

  take(n: number): Uint8Array {
    if (this.pos + n > this.buf.length) this.fail("the key ends early");
    const out = this.buf.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  unescaped(): Uint8Array {
    const start = this.pos;
    const end = this.buf.indexOf(0x00, start);
    if (end === -1) {
      this.pos = this.buf.length;
      this.fail("the key ends early");
    }
    if (this.buf[end + 1] === 0x00) {
      // No escapes: the common case, one copy.
      this.pos = end + 2;
      return this.buf.slice(start, end);
    }
    const out: number[] = [];
    for (;;) {
      const b = this.byte();
      if (b !== 0x00) {
        out.push(b);
        continue;
      }
      const next = this.byte();
      if (next === 0x00) return Uint8Array.from(out);
      if (next !== 0xff) {
        this.pos--;
        this.fail("a 0x00 followed by neither 0x00 nor 0xFF");
      }
      out.push(0x00);
    }
  }
}

function readNumber(r: ByteReader): number {
  const bytes = r.take(8);
  if ((bytes[0] ?? 0) & 0x80) bytes[0] = (bytes[0] ?? 0) & 0x7f;
  else for (let i = 0; i < 8; i++) bytes[i] = ~(bytes[i] ?? 0) & 0xff;
  const n = new DataView(bytes.buffer).getFloat64(0);
  if (Number.isNaN(n) || Object.is(n, -0)) r.fail("a number that encodeTuple never writes");
  return n;
}

function readBigInt(r: ByteReader): bigint {
  const head = r.byte();
  if (head === 0x80) return 0n;
  const negative = head < 0x80;
  const length = negative ? 0x80 - head : head - 0x80;
  if (length > BIGINT_BYTES_MAX) r.fail("a bigint length past the maximum");
  const mag = r.take(length);
  if (negative) { for (let i = 0; i < mag.length; i++) mag[i] = ~(mag[i] ?? 0) & 0xff; }
  if (mag[0] === 0) r.fail("a bigint with a leading zero byte");
  let n = 0n;
  for (const b of mag) n = (n << 8n) | BigInt(b);
  return negative ? -n : n;
}

function readElement(r: ByteReader): TupleElement {
  const tag = r.byte();
  switch (tag) {
    case TAG_NULL:
      return null;
    case TAG_NUMBER:
      return readNumber(r);
    case TAG_BIGINT:
      return readBigInt(r);
    case TAG_STRING: {
      const bytes = r.unescaped();
      try {
        return utf8Decoder.decode(bytes);
      } catch {
        return r.fail("a string that is not UTF-8");
      }
    }
    case TAG_BYTES:
      return r.unescaped();
    default:
      r.pos--;
      return r.fail(`an unknown tag 0x${tag.toString(16).padStart(2, "0")}`);
  }
}

/**
 * Decodes a key written by {@link encodeTuple}.
 *
 * @param key The encoded tuple.
 * @returns The tuple; numbers, bigints, strings and bytes come back with their type.
 * @throws {TypeError} When `key` is not a Uint8Array.
 * @throws {RangeError} When `key` is not a complete encoding.
 *
 * @example
 * ```ts
 * import { decodeTuple, encodeTuple } from "./tuple.ts";
 * const [name, id] = decodeTuple(encodeTuple(["user", 7n]));
 * console.assert(name === "user" && id === 7n);
 * ```
 */
export function decodeTuple(key: Uint8Array): TupleElement[] {
  if (!(key instanceof Uint8Array)) {
    throw new TypeError(`Cannot decode tuple: ${elementName(key)} is not a Uint8Array`);
  }
  const r = new ByteReader(key);
  const out: TupleElement[] = [];
  while (r.pos < key.length) {
    if (out.length === TUPLE_ELEMENTS_MAX) r.fail("too many elements");
    out.push(readElement(r));
  }
  return out;
}

/**
 * A buffer with room for `need` bytes: `buf` itself when it has them, else a new one of twice its
 * size (doubled again as needed, at most `max`) holding its first `used` bytes.
 *
 * @param buf The buffer.
 * @param used How many of its bytes to keep.
 * @param need The bytes it must hold.
 * @param max The largest size to grow to (at least `need`).
 * @returns `buf`, or the larger copy.
 *
 * @example
 * ```ts
 * import { grownBytes } from "./tuple.ts";
 * console.assert(grownBytes(new Uint8Array(4), 4, 9).length === 16);
 * ```
 */
export function grownBytes<B extends ArrayBufferLike>(
  buf: Uint8Array<B>,
  used: number,
  need: number,
  max = Infinity,
): Uint8Array<B> | Uint8Array<ArrayBuffer> {
  if (need <= buf.length) return buf;
  let size = Math.max(buf.length * 2, 1);
  while (size < need) size *= 2;
  const next = new Uint8Array(Math.min(size, Math.max(max, need)));
  next.set(buf.subarray(0, used));
  return next;
}

/**
 * Compares byte strings lexicographically, shorter first on a common prefix.
 *
 * @param a First bytes.
 * @param b Second bytes.
 * @returns Negative, zero or positive, as `a` sorts before, with or after `b`.
 *
 * @example
 * ```ts
 * import { compareBytes } from "./tuple.ts";
 * console.assert(compareBytes(new Uint8Array([1]), new Uint8Array([1, 0])) < 0);
 * ```
 */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

function rank(e: TupleElement): number {
  if (e === null) return 0;
  if (typeof e === "number") return 1;
  if (typeof e === "bigint") return 2;
  if (typeof e === "string") return 3;
  return 4;
}

function compareCodePoints(a: string, b: string): number {
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next();
    const y = ib.next();
    if (x.done || y.done) return (x.done ? 0 : 1) - (y.done ? 0 : 1);
    const d = (x.value.codePointAt(0) ?? 0) - (y.value.codePointAt(0) ?? 0);
    if (d !== 0) return d;
  }
}

function compareElements(a: TupleElement, b: TupleElement): number {
  const r = rank(a) - rank(b);
  if (r !== 0) return r;
  if (typeof a === "number" && typeof b === "number") return a < b ? -1 : a > b ? 1 : 0;
  if (typeof a === "bigint" && typeof b === "bigint") return a < b ? -1 : a > b ? 1 : 0;
  if (typeof a === "string" && typeof b === "string") return compareCodePoints(a, b);
  if (a instanceof Uint8Array && b instanceof Uint8Array) return compareBytes(a, b);
  return 0;
}

/**
 * The order that {@link encodeTuple} preserves: element by element (null <
 * numbers < bigints < strings < bytes; strings by code point), and a tuple
 * that is a prefix of another sorts first.
 *
 * @param a First tuple.
 * @param b Second tuple.
 * @returns Negative, zero or positive, as `a` sorts before, with or after `b`.
 *
 * @example
 * ```ts
 * import { compareTuples } from "./tuple.ts";
 * console.assert(compareTuples([null], [-Infinity]) < 0);
 * console.assert(compareTuples(["a"], ["a", 1]) < 0);
 * ```
 */
export function compareTuples(a: Tuple, b: Tuple): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const c = compareElements(a[i] ?? null, b[i] ?? null);
    if (c !== 0) return c;
  }
  return a.length - b.length;
}

/**
 * The key range holding every tuple that starts with `prefix` (the prefix
 * itself included), for `scanRange(start, end)`: start inclusive, end exclusive.
 *
 * @param prefix The leading elements.
 * @returns `start` = the encoded prefix, `end` = the encoded prefix followed by
 *   0xFF, a byte no element tag uses.
 * @throws {TypeError} As {@link encodeTuple}.
 * @throws {RangeError} As {@link encodeTuple}.
 *
 * @example
 * ```ts
 * import { compareBytes, encodeTuple, tuplePrefixRange } from "./tuple.ts";
 * const { start, end } = tuplePrefixRange(["user"]);
 * const k = encodeTuple(["user", 42]);
 * console.assert(compareBytes(start, k) <= 0 && compareBytes(k, end) < 0);
 * ```
 */
export function tuplePrefixRange(prefix: Tuple): { start: Uint8Array; end: Uint8Array } {
  const start = encodeTuple(prefix);
  const end = new Uint8Array(start.length + 1);
  end.set(start);
  end[start.length] = 0xff;
  return { start, end };
}

/**
 * Bitmaps on string values, as redis-server 7.0 reads and writes them: SETBIT, GETBIT, BITCOUNT
 * and BITPOS. Bit 0 is the most significant bit of the first byte; a string is a bitmap as long
 * as it is, and reads past its end see zero bits. Pure functions over bytes: the executor parses
 * arguments with them and SETBIT's apply (write_ops.ts) writes with {@link withBit}.
 *
 * @module
 */

import { VALUE_BYTES_MAX } from "./kv_model.ts";

/** Redis's error for a bad SETBIT/GETBIT offset. */
export const BIT_OFFSET_ERROR = "ERR bit offset is not an integer or out of range";
/** Redis's error for a SETBIT value other than 0 or 1. */
export const BIT_VALUE_ERROR = "ERR bit is not an integer or out of range";

/**
 * A SETBIT/GETBIT offset: a non-negative integer whose byte lies inside the largest value Spire
 * stores (redis-server's bound is its proto-max-bulk-len, 512 MiB; Spire's values stop at 32 MiB).
 * @param v the offset as parsed (undefined when not an integer)
 * @returns the offset, or undefined when it is not allowed
 */
export function bitOffset(v: bigint | undefined): number | undefined {
  if (v === undefined || v < 0n || v >> 3n >= BigInt(VALUE_BYTES_MAX)) return undefined;
  return Number(v);
}

/**
 * The bit at `offset` (0 past the end).
 * @param bytes the string (undefined: a missing key)
 * @param offset the bit offset
 * @returns 0 or 1
 */
export function getBit(bytes: Uint8Array | undefined, offset: number): 0 | 1 {
  const byte = Math.floor(offset / 8);
  if (bytes === undefined || byte >= bytes.length) return 0;
  return (bytes[byte]! & (0x80 >> (offset % 8))) === 0 ? 0 : 1;
}

/**
 * A copy of `bytes` with the bit at `offset` set to `bit`, grown with zero bytes to reach it.
 * @param bytes the string (empty for a missing key)
 * @param offset the bit offset ({@link bitOffset})
 * @param bit the new bit
 * @returns the new string and the bit it held before
 */
export function withBit(
  bytes: Uint8Array,
  offset: number,
  bit: 0 | 1,
): { value: Uint8Array; was: 0 | 1 } {
  const byte = Math.floor(offset / 8);
  const value = new Uint8Array(Math.max(bytes.length, byte + 1));
  value.set(bytes);
  const mask = 0x80 >> (offset % 8);
  const was = (value[byte]! & mask) === 0 ? 0 : 1;
  value[byte] = bit === 1 ? value[byte]! | mask : value[byte]! & ~mask;
  return { value, was };
}

/** Set bits of each byte value. */
const POPCOUNT = Uint8Array.from({ length: 256 }, (_, b) => {
  let n = 0;
  for (let x = b; x !== 0; x >>= 1) n += x & 1;
  return n;
});

/** An inclusive range of bits, or undefined for an empty one. */
type BitRange = { first: number; last: number } | undefined;

/**
 * Redis's reading of a start and end index over `length` bytes, in bytes or in bits: negative
 * indexes count from the end, both are clamped to the string, and start after end is empty.
 */
function resolveRange(length: number, start: bigint, end: bigint, inBits: boolean): BitRange {
  const n = BigInt(inBits ? length * 8 : length);
  let s = start < 0n ? n + start : start;
  let e = end < 0n ? n + end : end;
  if (s < 0n) s = 0n;
  if (e < 0n) e = 0n;
  if (e >= n) e = n - 1n;
  if (s > e) return undefined;
  return inBits
    ? { first: Number(s), last: Number(e) }
    : { first: Number(s) * 8, last: Number(e) * 8 + 7 };
}

/** Counts the set bits of `bytes` in the inclusive bit range. */
function countBits(bytes: Uint8Array, first: number, last: number): number {
  let n = 0;
  let bit = first;
  for (; bit <= last && bit % 8 !== 0; bit++) n += getBit(bytes, bit);
  for (; bit + 7 <= last; bit += 8) n += POPCOUNT[bytes[bit / 8]!]!;
  for (; bit <= last; bit++) n += getBit(bytes, bit);
  return n;
}

/** The first bit equal to `bit` in the inclusive range, or -1. */
function findBit(bytes: Uint8Array, bit: 0 | 1, first: number, last: number): number {
  const skip = bit === 1 ? 0x00 : 0xff; // a byte with no such bit
  let at = first;
  for (; at <= last && at % 8 !== 0; at++) if (getBit(bytes, at) === bit) return at;
  for (; at + 7 <= last && bytes[at / 8] === skip; at += 8);
  for (; at <= last; at++) if (getBit(bytes, at) === bit) return at;
  return -1;
}

/** The range arguments of BITCOUNT or BITPOS. */
export interface BitRangeArgs {
  readonly start: bigint;
  readonly end?: bigint;
  /** BIT: the indexes count bits; BYTE (the default): bytes. */
  readonly inBits: boolean;
}

/**
 * BITCOUNT: the set bits of the string, or of the range.
 * @param bytes the string
 * @param range the range arguments, if any were given (with an end)
 * @returns the count
 */
export function bitCount(bytes: Uint8Array, range?: BitRangeArgs & { end: bigint }): number {
  if (range === undefined) return countBits(bytes, 0, bytes.length * 8 - 1);
  if (range.start < 0n && range.end < 0n && range.start > range.end) return 0;
  const r = resolveRange(bytes.length, range.start, range.end, range.inBits);
  return r === undefined ? 0 : countBits(bytes, r.first, r.last);
}

/**
 * BITPOS: the first bit equal to `bit`. Without an end, the string is read as followed by zero
 * bits, so a string of ones has its first clear bit just past its end; with an end, a range
 * without the bit answers -1.
 * @param bytes the string of an existing key (a missing key is the executor's case)
 * @param bit the bit looked for
 * @param range the range arguments, if any were given
 * @returns the bit's offset, or -1
 */
export function bitPos(bytes: Uint8Array, bit: 0 | 1, range?: BitRangeArgs): number {
  const endGiven = range?.end !== undefined;
  const r = range === undefined
    ? resolveRange(bytes.length, 0n, -1n, false)
    : resolveRange(bytes.length, range.start, range.end ?? -1n, range.inBits);
  if (r === undefined) return -1;
  const found = findBit(bytes, bit, r.first, r.last);
  if (found >= 0 || bit === 1 || endGiven) return found;
  return bytes.length * 8;
}

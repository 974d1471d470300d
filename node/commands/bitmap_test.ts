import assert from "node:assert/strict";
import fc from "fast-check";
import { bitCount, bitOffset, bitPos, type BitRangeArgs, getBit, withBit } from "./bitmap.ts";
import { VALUE_BYTES_MAX } from "./kv_model.ts";

// A model that reads one bit at a time: what bitmap.ts computes a byte (or a popcount) at a time.

function bitsOf(bytes: Uint8Array): (0 | 1)[] {
  const bits: (0 | 1)[] = [];
  for (const b of bytes) for (let i = 7; i >= 0; i--) bits.push(((b >> i) & 1) as 0 | 1);
  return bits;
}

/** Redis's start/end over n units: negative from the end, clamped; [first, last] in bits. */
function modelRange(bytes: Uint8Array, r: BitRangeArgs): [number, number] | undefined {
  const n = r.inBits ? bytes.length * 8 : bytes.length;
  const norm = (i: number) => Math.max(0, i < 0 ? n + i : i);
  const s = norm(Number(r.start));
  const e = Math.min(norm(Number(r.end ?? -1n)), n - 1);
  if (s > e) return undefined;
  return r.inBits ? [s, e] : [s * 8, e * 8 + 7];
}

function modelCount(bytes: Uint8Array, r?: BitRangeArgs & { end: bigint }): number {
  const bits = bitsOf(bytes);
  if (r === undefined) return bits.filter((b) => b === 1).length;
  if (r.start < 0n && r.end < 0n && r.start > r.end) return 0;
  const range = modelRange(bytes, r);
  return range === undefined ? 0 : bits.slice(range[0], range[1] + 1).filter((b) => b).length;
}

function modelPos(bytes: Uint8Array, bit: 0 | 1, r?: BitRangeArgs): number {
  const range = modelRange(bytes, r ?? { start: 0n, inBits: false });
  if (range === undefined) return -1;
  const bits = bitsOf(bytes);
  for (let i = range[0]; i <= range[1]; i++) if (bits[i] === bit) return i;
  // Without an end the string reads as followed by zeros.
  return bit === 0 && r?.end === undefined ? bits.length : -1;
}

const bytesArb = fc.oneof(
  fc.uint8Array({ maxLength: 24 }),
  // Runs of 0x00 and 0xff, which the byte-at-a-time search skips.
  fc.array(fc.constantFrom(0x00, 0xff, 0x80, 0x01), { maxLength: 24 }).map((a) =>
    Uint8Array.from(a)
  ),
);
const index = fc.integer({ min: -220, max: 220 }).map(BigInt);

Deno.test("BITCOUNT and BITPOS over random strings and ranges agree with a bit-at-a-time model", () => {
  fc.assert(
    fc.property(bytesArb, index, index, fc.boolean(), fc.constantFrom<0 | 1>(0, 1), fc.nat(3), (
      bytes,
      start,
      end,
      inBits,
      bit,
      form,
    ) => {
      assert.equal(bitCount(bytes), modelCount(bytes));
      assert.equal(
        bitCount(bytes, { start, end, inBits }),
        modelCount(bytes, { start, end, inBits }),
      );
      const range = form === 0
        ? undefined
        : form === 1
        ? { start, inBits }
        : { start, end, inBits };
      assert.equal(
        bitPos(bytes, bit, range),
        modelPos(bytes, bit, range),
        `${range?.start} ${range?.end} ${range?.inBits}`,
      );
    }),
    { numRuns: 3000 },
  );
});

Deno.test("SETBIT's new string and GETBIT agree with the model, growing the string with zeros", () => {
  fc.assert(
    fc.property(bytesArb, fc.nat(300), fc.constantFrom<0 | 1>(0, 1), (bytes, offset, bit) => {
      const { value, was } = withBit(bytes, offset, bit);
      const expected = bitsOf(bytes);
      while (expected.length <= offset || expected.length % 8 !== 0) expected.push(0);
      assert.equal(was, expected[offset]);
      expected[offset] = bit;
      assert.deepEqual(bitsOf(value), expected);
      assert.equal(value.length, Math.max(bytes.length, Math.floor(offset / 8) + 1));
      for (let i = 0; i < expected.length + 16; i++) {
        assert.equal(getBit(value, i), expected[i] ?? 0);
      }
      assert.equal(getBit(undefined, offset), 0);
    }),
    { numRuns: 2000 },
  );
});

Deno.test("bit offsets: non-negative, and inside the largest value Spire stores", () => {
  assert.equal(bitOffset(0n), 0);
  assert.equal(bitOffset(-1n), undefined);
  assert.equal(bitOffset(undefined), undefined);
  assert.equal(bitOffset(BigInt(VALUE_BYTES_MAX) * 8n - 1n), VALUE_BYTES_MAX * 8 - 1);
  assert.equal(bitOffset(BigInt(VALUE_BYTES_MAX) * 8n), undefined);
});

import assert from "node:assert/strict";
import fc from "fast-check";
import {
  compareBytes,
  compareTuples,
  decodeTuple,
  encodeTuple,
  type Tuple,
  type TupleElement,
  tuplePrefixRange,
} from "./mod.ts";

const RUNS = 2000;

// Small domains make ties and shared prefixes common; wide ones cover the rest.
const tinyString = fc.constantFrom(
  "",
  "a",
  "b",
  "ab",
  "a\0",
  "a\0b",
  "\0",
  "\uFFFF",
  "\uE000",
  "\u{10000}",
  "\u{1F600}",
  "\uFEFFx",
);
const element: fc.Arbitrary<TupleElement> = fc.oneof(
  fc.constant(null),
  fc.constantFrom(
    0,
    -0,
    1,
    -1,
    0.5,
    -0.5,
    Infinity,
    -Infinity,
    Number.MIN_VALUE,
    -Number.MAX_VALUE,
  ),
  fc.double({ noNaN: true }),
  fc.constantFrom(0n, 1n, -1n, 255n, 256n, -255n, -256n, 2n ** 64n, -(2n ** 64n)),
  fc.bigInt({ min: -(2n ** 1016n) + 1n, max: 2n ** 1016n - 1n }),
  tinyString,
  fc.string({ unit: "binary", maxLength: 12 }),
  fc.constantFrom(
    new Uint8Array([]),
    new Uint8Array([0]),
    new Uint8Array([0, 0xff]),
    new Uint8Array([1]),
  ),
  fc.uint8Array({ maxLength: 12 }),
);
const tuple: fc.Arbitrary<TupleElement[]> = fc.array(element, { maxLength: 5 });

function sign(n: number): number {
  return n < 0 ? -1 : n > 0 ? 1 : 0;
}

function normalize(t: Tuple): TupleElement[] {
  return t.map((e) => (typeof e === "number" && Object.is(e, -0) ? 0 : e));
}

function isBytePrefix(a: Uint8Array, b: Uint8Array): boolean {
  return a.length <= b.length && compareBytes(a, b.subarray(0, a.length)) === 0;
}

function isTuplePrefix(a: Tuple, b: Tuple): boolean {
  return a.length <= b.length && compareTuples(a, b.slice(0, a.length)) === 0;
}

type Encode = (t: Tuple) => Uint8Array;

const orderProperty = (encode: Encode, arb: fc.Arbitrary<TupleElement[]>) =>
  fc.property(
    arb,
    arb,
    (a, b) => sign(compareBytes(encode(a), encode(b))) === sign(compareTuples(a, b)),
  );

const prefixProperty = (encode: Encode, arb: fc.Arbitrary<TupleElement[]>) =>
  fc.property(arb, arb, (a, b) => isBytePrefix(encode(a), encode(b)) === isTuplePrefix(a, b));

Deno.test("tuple keys round-trip with their types (and -0 read back as 0)", () => {
  fc.assert(
    fc.property(tuple, (t) => {
      assert.deepStrictEqual(decodeTuple(encodeTuple(t)), normalize(t));
    }),
    { numRuns: RUNS },
  );
});

Deno.test("bytewise order of tuple keys equals tuple order", () => {
  fc.assert(orderProperty(encodeTuple, tuple), { numRuns: RUNS });
});

Deno.test("an encoded tuple is a byte prefix of another exactly when the tuple is a prefix", () => {
  fc.assert(prefixProperty(encodeTuple, tuple), { numRuns: RUNS });
});

Deno.test("tuplePrefixRange holds exactly the tuples that start with the prefix", () => {
  fc.assert(
    fc.property(tuple, tuple, (prefix, t) => {
      const { start, end } = tuplePrefixRange(prefix);
      const k = encodeTuple(t);
      const inside = compareBytes(start, k) <= 0 && compareBytes(k, end) < 0;
      return inside === isTuplePrefix(prefix, t);
    }),
    { numRuns: RUNS },
  );
});

Deno.test("type order is null < numbers < bigints < strings < bytes, with fixed points", () => {
  const sorted: Tuple[] = [
    [],
    [null],
    [null, null],
    [-Infinity],
    [-1e300],
    [-1],
    [-Number.MIN_VALUE],
    [0],
    [Number.MIN_VALUE],
    [1],
    [Infinity],
    [-(2n ** 1000n)],
    [-256n],
    [-1n],
    [0n],
    [1n],
    [255n],
    [256n],
    [""],
    ["", null],
    ["\0"],
    ["a"],
    ["a", null],
    ["a\0"],
    ["ab"],
    ["\uFFFF"],
    ["\u{10000}"],
    [new Uint8Array()],
    [new Uint8Array([0])],
    [new Uint8Array([0xff])],
  ];
  for (let i = 1; i < sorted.length; i++) {
    const a = sorted[i - 1] ?? [];
    const b = sorted[i] ?? [];
    assert.ok(compareTuples(a, b) < 0, `${i}: compareTuples`);
    assert.ok(compareBytes(encodeTuple(a), encodeTuple(b)) < 0, `${i}: bytes`);
  }
  assert.deepEqual(encodeTuple([-0]), encodeTuple([0]));
  assert.deepEqual([...encodeTuple(["a\0"])], [0x20, 0x61, 0x00, 0xff, 0x00, 0x00]);
});

Deno.test("bad elements are refused with a TypeError or RangeError naming the element", () => {
  assert.throws(() => encodeTuple([1, NaN]), /element 1: NaN is not a key/);
  assert.throws(
    () => encodeTuple(["\uD800"]),
    (e) => e instanceof RangeError && /lone surrogate/.test(e.message),
  );
  assert.throws(
    () => encodeTuple([2n ** 1016n]),
    (e) => e instanceof RangeError && /128 bytes is too large/.test(e.message),
  );
  assert.throws(
    () => encodeTuple([true as unknown as null]),
    (e) => e instanceof TypeError && /true is not a key element/.test(e.message),
  );
  assert.throws(() => encodeTuple([{} as unknown as null]), TypeError);
  assert.throws(() => encodeTuple(new Array(257).fill(null)), RangeError);
  assert.throws(() => encodeTuple("abc" as unknown as Tuple), TypeError);
});

Deno.test("malformed keys are refused with a RangeError, never a wrong tuple", () => {
  const cases: [number[], RegExp][] = [
    [[0x01], /unknown tag 0x01 at byte 0/],
    [[0x10, 0x80], /ends early/],
    [[0x20, 0x61], /ends early/],
    [[0x18, 0x82, 0x01], /ends early/],
    [[0x18, 0x81, 0x00], /leading zero/],
    [[0x20, 0xc3, 0x00, 0x00], /not UTF-8/],
    [[0x20, 0x61, 0x00, 0x01], /neither 0x00 nor 0xFF at byte 3/],
    [[0x30, 0x61, 0x00], /ends early/],
    [[0x10, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], /never writes/], // -0 written raw
  ];
  for (const [bytes, pattern] of cases) {
    assert.throws(
      () => decodeTuple(new Uint8Array(bytes)),
      (e) => e instanceof RangeError && pattern.test(e.message),
    );
  }
  assert.throws(() => decodeTuple("x" as unknown as Uint8Array), TypeError);
});

// The checkers above must catch the bugs they exist for. Each broken encoder
// below makes one classic mistake; fast-check must find a counterexample. The
// runs use a fixed seed so that an unlucky draw can never let a plant through.
const PLANTED = { numRuns: RUNS, seed: 1 };

const utf8 = new TextEncoder();
function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

Deno.test("the order checker catches floats stored without the sign flip", () => {
  const rawFloats: Encode = (t) =>
    concat(t.map((e) => {
      const b = new Uint8Array(9);
      b[0] = 0x10;
      new DataView(b.buffer).setFloat64(1, e as number);
      return b;
    }));
  const numbers = fc.array(
    fc.double({ noNaN: true, noDefaultInfinity: true }).map((n) => (n === 0 ? 0 : n)),
    {
      maxLength: 3,
    },
  );
  assert.ok(fc.check(orderProperty(rawFloats, numbers), PLANTED).failed);
});

Deno.test("the prefix checker catches strings without a terminator or without escaping", () => {
  const strings = fc.array(tinyString, { maxLength: 3 });
  const unterminated: Encode = (t) =>
    concat(t.flatMap((e) => [new Uint8Array([0x20]), utf8.encode(e as string)]));
  const unescaped: Encode = (t) =>
    concat(
      t.flatMap((e) => [new Uint8Array([0x20]), utf8.encode(e as string), new Uint8Array([0])]),
    );
  // FoundationDB-style single 0x00 terminator: "a" becomes a byte prefix of "a\0".
  const singleTerminator: Encode = (t) =>
    concat(t.map((e) => {
      const key = encodeTuple([e]);
      return key.subarray(0, key.length - 1);
    }));
  assert.ok(fc.check(prefixProperty(singleTerminator, tuple), PLANTED).failed);
  assert.ok(fc.check(prefixProperty(unterminated, strings), PLANTED).failed);
  assert.ok(fc.check(prefixProperty(unescaped, strings), PLANTED).failed);
  assert.ok(!fc.check(prefixProperty(encodeTuple, strings), { numRuns: RUNS }).failed);
});

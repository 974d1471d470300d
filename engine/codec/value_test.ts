import assert from "node:assert/strict";
import fc from "fast-check";
import { ValueCodec } from "./mod.ts";

Deno.test("MessagePack values round-trip: JSON-like values, bigints and byte arrays", () => {
  const codec = new ValueCodec();
  const value = fc.letrec((tie) => ({
    leaf: fc.oneof(
      fc.constant(null),
      fc.boolean(),
      fc.integer(),
      fc.double({ noNaN: true }).filter((n) => !Object.is(n, -0)),
      fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }),
      fc.string({ unit: "binary" }),
      fc.uint8Array({ maxLength: 16 }),
    ),
    node: fc.oneof(
      { depthSize: "small" },
      tie("leaf"),
      fc.array(tie("node"), { maxLength: 4 }),
      fc.dictionary(fc.string().filter((k) => k !== "__proto__"), tie("node"), {
        maxKeys: 4,
        noNullPrototype: true,
      }),
    ),
  })).node;
  fc.assert(
    fc.property(value, (v) => {
      assert.deepStrictEqual(codec.decode(codec.encode(v)), v);
    }),
    { numRuns: 500 },
  );
});

Deno.test("encoded values are fresh copies, readable by a plain MessagePack decoder", () => {
  const codec = new ValueCodec();
  const a = codec.encode({ a: 1 });
  const b = codec.encode({ b: 2 });
  assert.deepEqual(codec.decode(a), { a: 1 });
  assert.deepEqual(codec.decode(b), { b: 2 });
  assert.equal(a.constructor, Uint8Array);
  // fixmap of 1, fixstr "a", positive fixint 1: standard MessagePack, no record extension.
  assert.deepEqual([...a], [0x81, 0xa1, 0x61, 0x01]);
});

Deno.test("value size limits and bad input give RangeError and TypeError", () => {
  const codec = new ValueCodec({ valueBytesMax: 16 });
  assert.throws(
    () => codec.encode("x".repeat(32)),
    (e) => e instanceof RangeError && /too large/.test(e.message),
  );
  assert.throws(() => codec.decode(new Uint8Array(17)), RangeError);
  assert.throws(() => codec.decode(new Uint8Array([0x92, 0x01])), RangeError);
  assert.throws(() => codec.decode("x" as unknown as Uint8Array), TypeError);
  assert.throws(() => new ValueCodec({ valueBytesMax: 0 }), RangeError);
});

import assert from "node:assert/strict";
import fc from "fast-check";
import { addLongDouble, formatLongDouble, parseLongDouble } from "./_long_double.ts";

/** INCRBYFLOAT as redis-server 7.0.15 answered it on x86-64 (key value, increment, reply). */
const REDIS: [string, string, string][] = [
  ["10.5", "0.1", "10.6"],
  ["10.6", "-5.0e3", "-4989.39999999999999991"],
  [
    "-4989.39999999999999991",
    "1e300",
    "1000000000000000000008997324079559193870523944273290747938260082321265646596180935755849152083750497190350372508614274835903592556184672983913096260520748646287327135641843653294084255107606016789726652932370030551382947620994540294772781889620606179267611627097410650567187386105690089424915104006144",
  ],
  ["0", "3.0e-5", "0.00003"],
  ["0", "5.0000000000000000001", "5"],
  ["0", "-0.0", "0"],
  ["0", "1.23456789012345678901", "1.23456789012345679"],
  ["0", "1e-30", "0"],
  ["0", "123456789012345678901234567890", "123456789012345678899921813504"],
  ["0", "0x10", "16"],
  ["0", "0x1.8p3", "12"],
  ["0", "-0X.8", "-0.5"],
  ["0", ".5", "0.5"],
  ["0", "5.", "5"],
  ["0", "+.5e-1", "0.05"],
];

Deno.test("INCRBYFLOAT arithmetic and printing match redis-server's long doubles", () => {
  for (const [value, incr, want] of REDIS) {
    const sum = addLongDouble(parseLongDouble(value)!, parseLongDouble(incr)!);
    assert.equal(sum && formatLongDouble(sum), want, `${value} + ${incr}`);
  }
});

Deno.test("parseLongDouble refuses what Redis refuses", () => {
  for (const bad of ["", " 1", "1 ", "0x", "0xg", "1e", "nan", "1_0", "1e4933", "1e-4960", "--1"]) {
    assert.equal(parseLongDouble(bad), undefined, JSON.stringify(bad));
  }
  assert.equal(parseLongDouble("x".repeat(6000)), undefined);
  assert.deepEqual(parseLongDouble("-Infinity"), { kind: "inf", neg: true });
  assert.equal(addLongDouble(parseLongDouble("inf")!, parseLongDouble("-inf")!), undefined);
});

Deno.test("long doubles hold integers below 2^64 exactly and round like the FPU above", () => {
  fc.assert(
    fc.property(fc.bigInt({ min: -(2n ** 64n) + 1n, max: 2n ** 64n - 1n }), (n) => {
      assert.equal(formatLongDouble(parseLongDouble(String(n))!), String(n));
    }),
  );
  // 2^64 + 1 needs 65 bits: a tie between 2^64 and 2^64 + 2, rounded to even (2^64).
  assert.equal(formatLongDouble(parseLongDouble("18446744073709551617")!), "18446744073709551616");
  assert.equal(formatLongDouble(parseLongDouble("18446744073709551619")!), "18446744073709551620");
});

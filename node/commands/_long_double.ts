/**
 * INCRBYFLOAT's arithmetic as Redis does it on x86-64: numbers are parsed with
 * `strtold` into an 80-bit long double (64-bit significand), added in that
 * precision, and printed with `%.17Lf` with trailing zeros removed. JavaScript
 * doubles (53 bits) would print other digits (10.5 + 0.1 is "10.6" in Redis,
 * "10.59999999999999964" from a double), so the numbers here are exact
 * binary fractions in BigInts, rounded to 64 significant bits
 * (round-half-even, as the FPU does), and printed from their exact value.
 *
 * Accepted input, as Redis's string2ld: an optional sign, decimal digits with
 * an optional point and exponent, a hexadecimal float ("0x1.8p3"), or
 * "inf"/"infinity" in any case; no spaces. Not accepted here although strtold
 * takes them: numbers so small that they would be subnormal long doubles.
 *
 * @module
 */

/** A finite long double m × 2^e (m of at most 64 bits), or an infinity. */
export type LongDouble =
  | { readonly kind: "finite"; readonly neg: boolean; readonly m: bigint; readonly e: number }
  | { readonly kind: "inf"; readonly neg: boolean };

const BITS = 64;
/** 2^16384 overflows a long double; 2^-16382 is its smallest normal number. */
const EXP_MAX = 16384;
const EXP_MIN = -16382;
/** Redis's MAX_LONG_DOUBLE_CHARS: longer strings are not floats. */
export const LONG_DOUBLE_CHARS_MAX = 5 * 1024;

function bitLength(n: bigint): number {
  return n === 0n ? 0 : n.toString(2).length;
}

/** q = round-half-even(num / den) for num, den > 0. */
function divRound(num: bigint, den: bigint): bigint {
  const q = num / den;
  const r2 = (num % den) * 2n;
  if (r2 > den || (r2 === den && (q & 1n) === 1n)) return q + 1n;
  return q;
}

/** Rounds the exact positive value num / den × 2^shift to a long double. */
function round(neg: boolean, num: bigint, den: bigint): LongDouble | undefined {
  if (num === 0n) return { kind: "finite", neg, m: 0n, e: 0 };
  // Scale so that the quotient has BITS + 2 bits before rounding.
  let e = bitLength(num) - bitLength(den) - (BITS + 2);
  let n = num, d = den;
  if (e > 0) d <<= BigInt(e);
  else n <<= BigInt(-e);
  let q = n / d;
  // Exactly BITS + 1 or BITS + 2 bits now; reduce to BITS with half-even rounding.
  const extra = bitLength(q) - BITS;
  q = divRound(n, d << BigInt(extra));
  e += extra;
  if (bitLength(q) > BITS) {
    q >>= 1n; // rounding carried into a new bit: q was 2^64, now 2^63, exact
    e += 1;
  }
  const top = e + BITS; // the value is in [2^(top-1), 2^top)
  if (top > EXP_MAX) return { kind: "inf", neg };
  if (top - 1 < EXP_MIN) return undefined; // subnormal or underflow: not taken here
  return { kind: "finite", neg, m: q, e };
}

/**
 * Parses a float as Redis's string2ld does.
 * @returns the number, or undefined when it is not a valid float
 */
export function parseLongDouble(text: string): LongDouble | undefined {
  if (text.length === 0 || text.length >= LONG_DOUBLE_CHARS_MAX) return undefined;
  const m = /^([+-]?)(?:(\d+)\.?(\d*)|\.(\d+))(?:[eE]([+-]?\d+))?$/.exec(text);
  if (m === null) {
    const inf = /^([+-]?)(inf|infinity)$/i.exec(text);
    if (inf !== null) return { kind: "inf", neg: inf[1] === "-" };
    return parseHex(text);
  }
  const neg = m[1] === "-";
  const intDigits = m[2] ?? "";
  const fracDigits = m[3] ?? m[4] ?? "";
  const exp = m[5] === undefined ? 0 : Number(m[5]);
  const digits = BigInt(intDigits + fracDigits || "0");
  const e10 = exp - fracDigits.length;
  if (digits === 0n) return { kind: "finite", neg, m: 0n, e: 0 };
  // Far outside the range: decide without huge powers of ten.
  const magnitude = intDigits.replace(/^0+/, "").length + exp; // ~ decimal digits before the point
  if (magnitude > 4940) return undefined; // overflow: strtold's ERANGE with HUGE_VAL
  if (magnitude < -4960) return undefined; // underflow to zero: ERANGE with zero
  return finiteOnly(
    e10 >= 0
      ? round(neg, digits * 10n ** BigInt(e10), 1n)
      : round(neg, digits, 10n ** BigInt(-e10)),
  );
}

/** A number written out that overflows is not a float (strtold's ERANGE); only "inf" is infinite. */
function finiteOnly(x: LongDouble | undefined): LongDouble | undefined {
  return x?.kind === "finite" ? x : undefined;
}

/** A C99 hexadecimal float ("0x1.8p3", "0x10"), as strtold reads it. */
function parseHex(text: string): LongDouble | undefined {
  const m = /^([+-]?)0[xX](?:([0-9a-fA-F]+)\.?([0-9a-fA-F]*)|\.([0-9a-fA-F]+))(?:[pP]([+-]?\d+))?$/
    .exec(text);
  if (m === null) return undefined;
  const neg = m[1] === "-";
  const frac = m[3] ?? m[4] ?? "";
  const digits = BigInt(`0x${(m[2] ?? "") + frac || "0"}`);
  if (digits === 0n) return { kind: "finite", neg, m: 0n, e: 0 };
  const e2 = (m[5] === undefined ? 0 : Number(m[5])) - 4 * frac.length;
  if (bitLength(digits) + e2 > EXP_MAX + 64 || bitLength(digits) + e2 < EXP_MIN - 64) {
    return undefined;
  }
  return finiteOnly(
    e2 >= 0 ? round(neg, digits << BigInt(e2), 1n) : round(neg, digits, 1n << BigInt(-e2)),
  );
}

/** a + b rounded to a long double; undefined for NaN (inf - inf). */
export function addLongDouble(a: LongDouble, b: LongDouble): LongDouble | undefined {
  if (a.kind === "inf" || b.kind === "inf") {
    if (a.kind === "inf" && b.kind === "inf" && a.neg !== b.neg) return undefined;
    return a.kind === "inf" ? a : b;
  }
  const e = Math.min(a.e, b.e);
  const av = (a.neg ? -a.m : a.m) << BigInt(a.e - e);
  const bv = (b.neg ? -b.m : b.m) << BigInt(b.e - e);
  const sum = av + bv;
  if (sum === 0n) return { kind: "finite", neg: false, m: 0n, e: 0 };
  const neg = sum < 0n;
  const mag = neg ? -sum : sum;
  return e >= 0 ? round(neg, mag << BigInt(e), 1n) : round(neg, mag, 1n << BigInt(-e));
}

/**
 * Prints as Redis's ld2string in human mode: `%.17Lf`, trailing zeros and a
 * trailing point removed, "-0" as "0", infinities as "inf"/"-inf".
 */
export function formatLongDouble(x: LongDouble): string {
  if (x.kind === "inf") return x.neg ? "-inf" : "inf";
  const scale = 10n ** 17n;
  const q = x.e >= 0 ? (x.m << BigInt(x.e)) * scale : divRound(x.m * scale, 1n << BigInt(-x.e));
  const whole = (q / scale).toString();
  const frac = (q % scale).toString().padStart(17, "0").replace(/0+$/, "");
  const text = `${x.neg ? "-" : ""}${whole}${frac === "" ? "" : `.${frac}`}`;
  return text === "-0" ? "0" : text;
}

/** Signed 64-bit integer helpers with Redis's parsing rules (string2ll). */

/** Smallest signed 64-bit integer. */
export const INT64_MIN = -(1n << 63n);
/** Largest signed 64-bit integer. */
export const INT64_MAX = (1n << 63n) - 1n;

/**
 * Parses bytes as Redis's string2ll does: an optional minus sign, no leading
 * zeros (except "0" itself), no spaces or plus sign, within the int64 range.
 */
export function parseInt64(bytes: Uint8Array): bigint | undefined {
  const n = bytes.length;
  if (n === 0 || n > 20) return undefined;
  if (n === 1 && bytes[0] === 48) return 0n;
  let i = 0;
  if (bytes[0] === 45) {
    i = 1;
    if (n === 1) return undefined;
  }
  const first = bytes[i]!;
  if (first < 49 || first > 57) return undefined;
  for (let j = i + 1; j < n; j++) {
    const d = bytes[j]!;
    if (d < 48 || d > 57) return undefined;
  }
  let text = "";
  for (let j = 0; j < n; j++) text += String.fromCharCode(bytes[j]!);
  const v = BigInt(text);
  return v < INT64_MIN || v > INT64_MAX ? undefined : v;
}

/** A bigint as the ASCII bytes Redis stores for an integer string. */
export function int64Bytes(v: bigint): Uint8Array {
  // Digits and a sign are ASCII: copied here, without an encoder call out of JavaScript.
  const text = v.toString();
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

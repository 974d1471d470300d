/**
 * Byte sizes as people write them: a plain number of bytes, or a number with a
 * binary unit (`B`, `KiB`, `MiB`, `GiB`, `TiB`; 1 KiB = 1024 B). Decimal and
 * ambiguous units (`KB`, `MB`, `GB`, `K`, `M`, `G`) are rejected rather than
 * guessed, because RocksDB reads `64k` as 65536 while disk vendors read `64KB`
 * as 64000.
 *
 * @module
 */

const UNITS: Readonly<Record<string, number>> = {
  "": 1,
  b: 1,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};

const AMBIGUOUS_UNITS: Readonly<Record<string, string>> = {
  k: "KiB",
  kb: "KiB",
  m: "MiB",
  mb: "MiB",
  g: "GiB",
  gb: "GiB",
  t: "TiB",
  tb: "TiB",
};

/** The units {@link parseSize} accepts, for error messages. */
export const SIZE_UNITS_TEXT = "bytes, or a number with B, KiB, MiB, GiB or TiB (e.g. 512MiB)";

/** The outcome of reading a size: bytes, or why the text is not a size. */
export type SizeParse = { ok: true; bytes: number } | { ok: false; detail: string };

/**
 * Reads a size without throwing; `detail` says what is wrong with the text.
 *
 * @param text The size as written, e.g. `"512MiB"`, `"1.5GiB"`, `"4096"`.
 * @returns The whole number of bytes, or the reason it is not a size.
 *
 * @example
 * ```ts
 * import { trySize } from "./units.ts";
 * const r = trySize("64KB");
 * console.assert(!r.ok);
 * ```
 */
export function trySize(text: string): SizeParse {
  const trimmed = text.trim();
  if (trimmed === "") return { ok: false, detail: "is empty" };
  if (trimmed.startsWith("-")) return { ok: false, detail: "is negative" };
  const match = /^(\d+(?:\.\d+)?)\s*([A-Za-z]*)$/.exec(trimmed);
  if (match === null) return { ok: false, detail: "is not a size" };
  const [, digits = "", unitText = ""] = match;
  const unit = unitText.toLowerCase();
  const factor = UNITS[unit];
  if (factor === undefined) {
    const binary = AMBIGUOUS_UNITS[unit];
    const detail = binary === undefined
      ? `has an unknown unit "${unitText}"`
      : `uses the ambiguous unit "${unitText}": write ${digits}${binary} (x1024) or plain bytes`;
    return { ok: false, detail };
  }
  const bytes = Number(digits) * factor;
  if (!Number.isSafeInteger(bytes)) {
    const detail = Number.isInteger(bytes) ? "is too large" : "is not a whole number of bytes";
    return { ok: false, detail };
  }
  return { ok: true, bytes };
}

/**
 * Parses a byte size written as bytes or with a binary unit.
 *
 * @param text The size, e.g. `"2GiB"` or `"536870912"`.
 * @returns The number of bytes.
 * @throws {RangeError} When the text is not a size in the accepted forms.
 *
 * @example
 * ```ts
 * import { parseSize } from "./units.ts";
 * console.assert(parseSize("512MiB") === 536870912);
 * console.assert(parseSize("1.5KiB") === 1536);
 * ```
 */
export function parseSize(text: string): number {
  const result = trySize(text);
  if (!result.ok) {
    throw new RangeError(
      `Cannot parse size: "${text}" ${result.detail}; allowed: ${SIZE_UNITS_TEXT}`,
    );
  }
  return result.bytes;
}

/**
 * Formats bytes with the largest binary unit that divides them exactly.
 *
 * @param bytes A non-negative whole number of bytes.
 * @returns E.g. `"512MiB"`; `"1000B"` when no unit divides exactly (never a fraction).
 * @throws {RangeError} When `bytes` is not a non-negative safe integer.
 *
 * @example
 * ```ts
 * import { formatSize } from "./units.ts";
 * console.assert(formatSize(2147483648) === "2GiB");
 * console.assert(formatSize(1000) === "1000B");
 * ```
 */
export function formatSize(bytes: number): string {
  if (!Number.isSafeInteger(bytes) || bytes < 0) {
    throw new RangeError(`Cannot format size: ${bytes} is not a non-negative whole number`);
  }
  const named: [string, number][] = [["TiB", 1024 ** 4], ["GiB", 1024 ** 3], ["MiB", 1024 ** 2], [
    "KiB",
    1024,
  ]];
  for (const [name, factor] of named) {
    if (bytes >= factor && bytes % factor === 0) return `${bytes / factor}${name}`;
  }
  return `${bytes}B`;
}

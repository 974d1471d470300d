import type { KnobSpec } from "./knobs.ts";
import { COMPRESSIONS } from "./types.ts";
import { formatSize, SIZE_UNITS_TEXT, trySize } from "./units.ts";

/** A knob's value once read, or what is wrong with the input. */
export type ValueParse =
  | { ok: true; value: number | string | boolean }
  | { ok: false; detail: string };

/** What a knob accepts, for the "allowed:" part of an error message. */
export function allowedText(spec: KnobSpec): string {
  switch (spec.kind) {
    case "size":
      return `a size from ${formatSize(spec.min ?? 0)} to ${formatSize(spec.max ?? 0)}, as ` +
        SIZE_UNITS_TEXT;
    case "count":
      return `a whole number from ${spec.min ?? 0} to ${spec.max ?? 0}`;
    case "compression":
      return `one of ${COMPRESSIONS.join(", ")}`;
    case "boolean":
      return "true or false";
  }
}

function inRange(spec: KnobSpec, n: number): ValueParse {
  const min = spec.min ?? 0;
  const max = spec.max ?? Number.MAX_SAFE_INTEGER;
  if (n === 0 && min > 0) return { ok: false, detail: "is zero, which is meaningless here" };
  if (n < min) return { ok: false, detail: `is below the minimum` };
  if (n > max) return { ok: false, detail: `is above the maximum` };
  return { ok: true, value: n };
}

function readSize(raw: unknown): { ok: true; n: number } | { ok: false; detail: string } {
  if (typeof raw === "number") {
    if (raw < 0) return { ok: false, detail: "is negative" };
    if (!Number.isSafeInteger(raw)) {
      return {
        ok: false,
        detail: Number.isInteger(raw) ? "is too large" : "is not a whole number of bytes",
      };
    }
    return { ok: true, n: raw };
  }
  if (typeof raw !== "string") return { ok: false, detail: "is not a size" };
  const r = trySize(raw);
  return r.ok ? { ok: true, n: r.bytes } : r;
}

function readCount(raw: unknown): { ok: true; n: number } | { ok: false; detail: string } {
  if (typeof raw === "number") {
    if (raw < 0) return { ok: false, detail: "is negative" };
    if (!Number.isSafeInteger(raw)) {
      return {
        ok: false,
        detail: Number.isInteger(raw) ? "is too large" : "is not a whole number",
      };
    }
    return { ok: true, n: raw };
  }
  if (typeof raw !== "string") return { ok: false, detail: "is not a number" };
  const text = raw.trim();
  if (text === "") return { ok: false, detail: "is empty" };
  if (/^-\d/.test(text)) return { ok: false, detail: "is negative" };
  if (/^\d+\.\d+$/.test(text)) return { ok: false, detail: "is not a whole number" };
  if (!/^\d+$/.test(text)) return { ok: false, detail: "is not a number" };
  const n = Number(text);
  if (!Number.isSafeInteger(n)) return { ok: false, detail: "is too large" };
  return { ok: true, n };
}

/**
 * Reads one knob's value from environment text (always a string) or a YAML
 * scalar (string, number or boolean) and checks its range.
 */
export function parseKnobValue(spec: KnobSpec, raw: unknown): ValueParse {
  switch (spec.kind) {
    case "size": {
      const r = readSize(raw);
      return r.ok ? inRange(spec, r.n) : r;
    }
    case "count": {
      const r = readCount(raw);
      return r.ok ? inRange(spec, r.n) : r;
    }
    case "compression": {
      if (typeof raw !== "string") return { ok: false, detail: "is not a compression name" };
      const name = raw.trim().toLowerCase();
      if ((COMPRESSIONS as readonly string[]).includes(name)) return { ok: true, value: name };
      return { ok: false, detail: raw.trim() === "" ? "is empty" : "is not a known compression" };
    }
    case "boolean": {
      if (typeof raw === "boolean") return { ok: true, value: raw };
      if (typeof raw !== "string") return { ok: false, detail: "is not true or false" };
      const text = raw.trim().toLowerCase();
      if (text === "true") return { ok: true, value: true };
      if (text === "false") return { ok: true, value: false };
      return { ok: false, detail: text === "" ? "is empty" : "is not true or false" };
    }
  }
}

/** Quotes a raw input for a message: strings in quotes, other scalars as written. */
export function showRaw(raw: unknown): string {
  if (typeof raw === "string") return JSON.stringify(raw);
  if (raw === null || raw === undefined) return String(raw);
  if (typeof raw === "object") return JSON.stringify(raw);
  return String(raw);
}

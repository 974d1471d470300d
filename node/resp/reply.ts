/**
 * The reply values a command produces, independent of the wire protocol.
 * The encoder turns them into RESP2 or RESP3 bytes; RESP3-only kinds
 * (map, set, double, boolean, null) fall back to their RESP2 forms.
 *
 * @module
 */

/** A reply value. `bulk: null` and `array: null` are RESP2's nil forms. */
export type Reply =
  | { readonly kind: "simple"; readonly value: string }
  | { readonly kind: "error"; readonly message: string }
  | { readonly kind: "integer"; readonly value: bigint | number }
  | { readonly kind: "bulk"; readonly value: Uint8Array | null }
  | { readonly kind: "array"; readonly items: readonly Reply[] | null }
  | { readonly kind: "map"; readonly entries: readonly (readonly [Reply, Reply])[] }
  | { readonly kind: "set"; readonly items: readonly Reply[] }
  | { readonly kind: "double"; readonly value: number }
  | { readonly kind: "boolean"; readonly value: boolean }
  | { readonly kind: "null" }
  | { readonly kind: "verbatim"; readonly format: string; readonly text: string };

const encoder = new TextEncoder();

/** The reply `+OK`. */
export const OK: Reply = Object.freeze({ kind: "simple", value: "OK" });

/** The nil bulk string (`$-1` in RESP2, `_` in RESP3). */
export const NIL: Reply = Object.freeze({ kind: "bulk", value: null });

/**
 * A simple string reply.
 * @param value the text; must not contain CR or LF.
 * @returns the reply
 * @throws {RangeError} when the text contains CR or LF
 * @example
 * ```ts
 * import { simple } from "./reply.ts";
 * simple("PONG");
 * ```
 */
export function simple(value: string): Reply {
  if (/[\r\n]/.test(value)) {
    throw new RangeError(
      `Cannot build a simple string: ${JSON.stringify(value)} contains CR or LF`,
    );
  }
  return { kind: "simple", value };
}

/**
 * An error reply. The message starts with its code (`ERR`, `WRONGTYPE`, ...)
 * as Redis does; CR and LF are replaced by spaces so that the frame stays valid.
 * @param message the error text including its code
 * @returns the reply
 * @example
 * ```ts
 * import { error } from "./reply.ts";
 * error("ERR syntax error");
 * ```
 */
export function error(message: string): Reply {
  return { kind: "error", message: message.replace(/[\r\n]/g, " ") };
}

/**
 * An integer reply.
 * @param value a safe integer or a bigint in the signed 64-bit range
 * @returns the reply
 * @example
 * ```ts
 * import { integer } from "./reply.ts";
 * integer(42);
 * ```
 */
export function integer(value: number | bigint): Reply {
  return { kind: "integer", value };
}

/**
 * A bulk string reply from bytes or text; `null` gives the nil reply.
 * @param value bytes, text (UTF-8 encoded) or null
 * @returns the reply
 * @example
 * ```ts
 * import { bulk } from "./reply.ts";
 * bulk("hello");
 * ```
 */
export function bulk(value: Uint8Array | string | null): Reply {
  if (value === null) return NIL;
  return { kind: "bulk", value: typeof value === "string" ? encoder.encode(value) : value };
}

/**
 * An array reply.
 * @param items the elements, or null for the nil array
 * @returns the reply
 * @example
 * ```ts
 * import { array, bulk } from "./reply.ts";
 * array([bulk("a"), bulk(null)]);
 * ```
 */
export function array(items: readonly Reply[] | null): Reply {
  return { kind: "array", items };
}

/**
 * A map reply (RESP3 `%`; a flat array of key, value in RESP2).
 * @param entries key-value pairs; string keys become bulk strings
 * @returns the reply
 * @example
 * ```ts
 * import { integer, map } from "./reply.ts";
 * map([["proto", integer(3)]]);
 * ```
 */
export function map(entries: readonly (readonly [string | Reply, Reply])[]): Reply {
  return {
    kind: "map",
    entries: entries.map(([k, v]) => [typeof k === "string" ? bulk(k) : k, v] as const),
  };
}

/**
 * Converts a plain JSON-like value (numbers, strings, booleans, null, arrays,
 * objects) into a reply: objects become maps, integers integer replies,
 * other numbers doubles, strings bulk strings.
 * @param value the value to convert
 * @returns the reply
 * @example
 * ```ts
 * import { fromPlain } from "./reply.ts";
 * fromPlain({ regions: 1, leader: true });
 * ```
 */
export function fromPlain(value: unknown): Reply {
  if (value === null || value === undefined) return { kind: "null" };
  if (typeof value === "string") return bulk(value);
  if (typeof value === "bigint") return integer(value);
  if (typeof value === "number") {
    return Number.isSafeInteger(value) ? integer(value) : { kind: "double", value };
  }
  if (typeof value === "boolean") return { kind: "boolean", value };
  if (value instanceof Uint8Array) return bulk(value);
  if (Array.isArray(value)) return array(value.map(fromPlain));
  if (typeof value === "object") {
    return map(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, fromPlain(v)]));
  }
  return bulk(String(value));
}

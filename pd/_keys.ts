/**
 * Byte-string keys: ordering, and the hex form used in files and messages.
 * Private to pd/.
 *
 * @module
 */

import { compareBytes } from "../engine/codec/mod.ts";

/** Compares two keys bytewise (memcmp order, a prefix sorts first): the engine codec's order. */
export const compareKeys: (a: Uint8Array, b: Uint8Array) => number = compareBytes;

/** True when both keys hold the same bytes. */
export function keysEqual(a: Uint8Array, b: Uint8Array): boolean {
  return compareKeys(a, b) === 0;
}

const HEX = "0123456789abcdef";

/** Lowercase hex of a key ("" for the empty key). */
export function toHex(key: Uint8Array): string {
  let out = "";
  for (const byte of key) out += HEX[byte >> 4]! + HEX[byte & 15]!;
  return out;
}

/** Parses lowercase or uppercase hex; throws TypeError on anything else. */
export function fromHex(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
    throw new TypeError(`Cannot parse hex key: "${hex}" is not an even-length hex string`);
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** A key for error messages: hex, or "<unbounded>" for the empty key. */
export function showKey(key: Uint8Array): string {
  return key.length === 0 ? "<unbounded>" : `0x${toHex(key)}`;
}

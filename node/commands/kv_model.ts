/**
 * How Redis keys and values live in the engine. User keys take one prefix byte
 * ({@link USER_KEY_PREFIX}) so that Spire's own metadata (region applied index,
 * Raft state) can sit under other prefixes of the same RocksDB. A stored value
 * is a small header (type, flags, optional expiry time) followed by the bytes:
 *
 * ```
 * [type:u8 = 1 (string)] [flags:u8, bit 0 = has expiry] [expireAtMs:i64 BE]? [payload...]
 * ```
 *
 * Keeping the expiry inside the value keeps every byte of a key inside its own
 * key range, so a region's range (its snapshot, its split) carries its expiries.
 *
 * @module
 */

import type { BytePool } from "../resp/byte_pool.ts";
import type { DeadlineLayout } from "../../engine/deadline.ts";

/** Prefix byte of the user keyspace in the engine. */
export const USER_KEY_PREFIX = 0x75; // "u"

/** The engine range holding every user key: [start, end). */
export const USER_KEY_RANGE: { readonly start: Uint8Array; readonly end: Uint8Array } = Object
  .freeze({
    start: Uint8Array.of(USER_KEY_PREFIX),
    end: Uint8Array.of(USER_KEY_PREFIX + 1),
  });

/** The largest expiry time Spire stores, in ms since the epoch (2^53 - 1). */
export const EXPIRE_AT_MS_MAX: number = Number.MAX_SAFE_INTEGER;

/**
 * The largest user key, in bytes: the engine's key limit (64 KiB) minus the
 * prefix byte. Redis has no such limit; Spire refuses longer keys.
 */
export const KEY_BYTES_MAX = 64 * 1024 - 1;

/**
 * The largest string value, in bytes: the engine's value limit (32 MiB) minus
 * the header. Redis allows 512 MiB (proto-max-bulk-len).
 */
export const VALUE_BYTES_MAX = 32 * 1024 * 1024 - 10;

const TYPE_STRING = 1;
const FLAG_EXPIRY = 1;

/**
 * Where {@link encodeValue} puts a value's expiry: the flags byte (offset 1)
 * has FLAG_EXPIRY set and the expiry time follows as a big-endian int64 (offset
 * 2). The engine's `scanExpired` finds expired keys by it without decoding
 * values in TypeScript.
 */
export const VALUE_DEADLINE_LAYOUT: DeadlineLayout = Object.freeze({
  flagOffset: 1,
  flagMask: FLAG_EXPIRY,
  deadlineOffset: 2,
});

/** A decoded stored value. */
export interface StoredValue {
  /** The Redis type; only strings exist so far. */
  readonly type: "string";
  /** The value bytes. */
  readonly value: Uint8Array;
  /** When the key expires (ms since the epoch), or undefined for no expiry. */
  readonly expireAtMs: number | undefined;
}

/**
 * The engine key of a user key.
 * @param key the Redis key
 * @param pool where to cut it from (a fresh array without one)
 * @returns the prefixed engine key
 * @example
 * ```ts
 * import { engineKeyOf, USER_KEY_PREFIX } from "./kv_model.ts";
 * console.assert(engineKeyOf(new Uint8Array([7]))[0] === USER_KEY_PREFIX);
 * ```
 */
export function engineKeyOf(key: Uint8Array, pool?: BytePool): Uint8Array {
  const out = pool === undefined ? new Uint8Array(key.length + 1) : pool.take(key.length + 1);
  out[0] = USER_KEY_PREFIX;
  out.set(key, 1);
  return out;
}

/**
 * The user key of an engine key in the user keyspace.
 * @param engineKey a key produced by {@link engineKeyOf}
 * @returns the Redis key (a view, not a copy)
 * @throws {RangeError} when the key is not in the user keyspace
 */
export function userKeyOf(engineKey: Uint8Array): Uint8Array {
  if (engineKey[0] !== USER_KEY_PREFIX) {
    throw new RangeError(
      `Cannot decode user key: prefix ${engineKey[0]} is not the user prefix ${USER_KEY_PREFIX}`,
    );
  }
  return engineKey.subarray(1);
}

/**
 * Encodes a stored value.
 * @param value the value and its expiry
 * @param pool where to cut the bytes from (a fresh array without one)
 * @returns the bytes to store
 * @throws {RangeError} for an expiry that is not an integer in [0, 2^53)
 * @example
 * ```ts
 * import { decodeValue, encodeValue } from "./kv_model.ts";
 * const bytes = encodeValue({ type: "string", value: new Uint8Array([1]), expireAtMs: 5 });
 * console.assert(decodeValue(bytes).expireAtMs === 5);
 * ```
 */
export function encodeValue(value: StoredValue, pool?: BytePool): Uint8Array {
  const exp = value.expireAtMs;
  if (exp === undefined) {
    const n = 2 + value.value.length;
    const out = pool === undefined ? new Uint8Array(n) : pool.take(n);
    out[0] = TYPE_STRING;
    out[1] = 0;
    out.set(value.value, 2);
    return out;
  }
  if (!Number.isSafeInteger(exp) || exp < 0) {
    throw new RangeError(`Cannot encode expiry: ${exp} is not an integer in [0, 2^53)`);
  }
  const n = 10 + value.value.length;
  const out = pool === undefined ? new Uint8Array(n) : pool.take(n);
  out[0] = TYPE_STRING;
  out[1] = FLAG_EXPIRY;
  new DataView(out.buffer, out.byteOffset, out.byteLength).setBigInt64(2, BigInt(exp));
  out.set(value.value, 10);
  return out;
}

/**
 * Decodes stored bytes.
 * @param bytes bytes produced by {@link encodeValue}
 * @returns the value (its bytes are a view into `bytes`)
 * @throws {Error} when the bytes are not a stored value (corruption or a foreign key)
 */
export function decodeValue(bytes: Uint8Array): StoredValue {
  if (bytes.length < 2 || bytes[0] !== TYPE_STRING || (bytes[1]! & ~FLAG_EXPIRY) !== 0) {
    throw new Error(
      `Cannot decode stored value: header ${bytes[0]},${bytes[1]} is not a known type and flags`,
    );
  }
  if ((bytes[1]! & FLAG_EXPIRY) === 0) {
    return { type: "string", value: bytes.subarray(2), expireAtMs: undefined };
  }
  if (bytes.length < 10) throw new Error("Cannot decode stored value: expiry is cut short");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { type: "string", value: bytes.subarray(10), expireAtMs: Number(view.getBigInt64(2)) };
}

/**
 * Redis's rule: a key is logically gone once the clock is past its expiry time.
 * @param value the stored value
 * @param nowMs the current time in ms
 * @returns true when expired
 */
export function isExpired(value: StoredValue, nowMs: number): boolean {
  return value.expireAtMs !== undefined && nowMs > value.expireAtMs;
}

/**
 * Decodes stored bytes and hides expired values.
 * @param bytes the stored bytes or undefined
 * @param nowMs the current time in ms
 * @returns the live value or undefined
 */
export function liveValue(bytes: Uint8Array | undefined, nowMs: number): StoredValue | undefined {
  if (bytes === undefined) return undefined;
  const v = decodeValue(bytes);
  return isExpired(v, nowMs) ? undefined : v;
}

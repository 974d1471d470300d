/**
 * Spire's own metadata in the shared engine, under the prefix byte `m`
 * (0x6d), apart from the user keyspace (`u`, see `commands/kv_model.ts`):
 *
 * ```
 * m r <regionId:u64 BE> a   -> applied index (u64 BE), written in the same batch as the entries
 * m r <regionId:u64 BE> s   -> region metadata (MessagePack: id, startKey, endKey, epoch, peers)
 * m n                       -> node identity (MessagePack: storeId)
 * ```
 *
 * Region key ranges are ranges of Redis keys; {@link engineRangeOf} maps them
 * to the engine keys that hold their data.
 *
 * @module
 */

import { pack, unpack } from "msgpackr";
import type { Region } from "../pd/mod.ts";
import { compareBytes } from "../engine/codec/mod.ts";
import { engineKeyOf, USER_KEY_RANGE } from "./commands/kv_model.ts";

/** Prefix byte of Spire's metadata in the engine. */
export const META_PREFIX = 0x6d; // "m"

const REGION_TAG = 0x72; // "r"
const APPLIED_TAG = 0x61; // "a"
const STATE_TAG = 0x73; // "s"
const NODE_TAG = 0x6e; // "n"

function regionKey(regionId: number, tag: number): Uint8Array {
  if (!Number.isSafeInteger(regionId) || regionId < 1) {
    throw new RangeError(`Invalid region id: ${regionId} is not a positive safe integer`);
  }
  const out = new Uint8Array(11);
  out[0] = META_PREFIX;
  out[1] = REGION_TAG;
  new DataView(out.buffer).setBigUint64(2, BigInt(regionId));
  out[10] = tag;
  return out;
}

/** The engine key of a region's applied index. */
export function appliedIndexKey(regionId: number): Uint8Array {
  return regionKey(regionId, APPLIED_TAG);
}

/** The engine key of a region's metadata. */
export function regionStateKey(regionId: number): Uint8Array {
  return regionKey(regionId, STATE_TAG);
}

/** The engine key of the node's identity. */
export const NODE_IDENTITY_KEY: Uint8Array = Uint8Array.of(META_PREFIX, NODE_TAG);

/** The engine range holding every region's metadata: [start, end). */
export const REGION_META_RANGE: { readonly start: Uint8Array; readonly end: Uint8Array } = Object
  .freeze({
    start: Uint8Array.of(META_PREFIX, REGION_TAG),
    end: Uint8Array.of(META_PREFIX, REGION_TAG + 1),
  });

/** Whether an engine key in {@link REGION_META_RANGE} is a region-state key. */
export function isRegionStateKey(key: Uint8Array): boolean {
  return key.length === 11 && key[0] === META_PREFIX && key[1] === REGION_TAG &&
    key[10] === STATE_TAG;
}

/** Encodes an index as 8 bytes, big-endian. */
export function encodeIndex(index: number): Uint8Array {
  if (!Number.isSafeInteger(index) || index < 0) {
    throw new RangeError(`Invalid index: ${index} is not a non-negative safe integer`);
  }
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(index));
  return out;
}

/**
 * Decodes an index written by {@link encodeIndex}.
 * @throws {Error} when the bytes are not 8 long (corruption)
 */
export function decodeIndex(bytes: Uint8Array): number {
  if (bytes.length !== 8) {
    throw new Error(`Cannot decode applied index: ${bytes.length} bytes, 8 expected`);
  }
  return Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0));
}

/** Encodes region metadata for the engine. */
export function encodeRegion(region: Region): Uint8Array {
  return pack({
    id: region.id,
    startKey: region.startKey,
    endKey: region.endKey,
    epoch: { confVer: region.epoch.confVer, version: region.epoch.version },
    peers: region.peers.map((p) => ({ id: p.id, storeId: p.storeId, role: p.role })),
  });
}

const bytes = (v: unknown): Uint8Array => {
  if (!(v instanceof Uint8Array)) throw new Error("Cannot decode region: a key is not bytes");
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength).slice();
};

/**
 * Decodes region metadata written by {@link encodeRegion}.
 * @throws {Error} on bytes that are not region metadata (corruption)
 */
export function decodeRegion(data: Uint8Array): Region {
  const r = unpack(data) as {
    id: number;
    startKey: unknown;
    endKey: unknown;
    epoch: { confVer: number; version: number };
    peers: { id: number; storeId: number; role: "voter" | "learner" }[];
  };
  if (typeof r?.id !== "number" || typeof r.epoch?.version !== "number") {
    throw new Error("Cannot decode region: fields are missing");
  }
  return {
    id: r.id,
    startKey: bytes(r.startKey),
    endKey: bytes(r.endKey),
    epoch: { confVer: r.epoch.confVer, version: r.epoch.version },
    peers: r.peers.map((p) => ({ id: p.id, storeId: p.storeId, role: p.role })),
  };
}

/** The engine range `[start, end)` holding the user data of a region's key range. */
export function engineRangeOf(region: Pick<Region, "startKey" | "endKey">): {
  start: Uint8Array;
  end: Uint8Array;
} {
  return {
    start: engineKeyOf(region.startKey),
    end: region.endKey.length === 0 ? USER_KEY_RANGE.end : engineKeyOf(region.endKey),
  };
}

/** Whether a Redis key lies in a region's range. */
export function inRegion(region: Pick<Region, "startKey" | "endKey">, key: Uint8Array): boolean {
  return compareBytes(key, region.startKey) >= 0 &&
    (region.endKey.length === 0 || compareBytes(key, region.endKey) < 0);
}

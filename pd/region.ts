/**
 * Region metadata and routing: a region is a key range `[startKey, endKey)`
 * (an empty `endKey` means unbounded), an epoch and a set of peers. A
 * {@link RegionMap} holds regions that tile the whole keyspace and routes a key
 * to its region by binary search over the sorted start keys.
 *
 * @module
 */

import { compareKeys, keysEqual, showKey } from "./_keys.ts";

/** Whether a peer votes in its region's Raft group. */
export type PeerRole = "voter" | "learner";

/** One replica of a region, on one store. */
export interface Peer {
  /** Peer id, unique across the cluster (from the id allocator). */
  readonly id: number;
  /** The store that holds this replica. */
  readonly storeId: number;
  /** Voter or learner. */
  readonly role: PeerRole;
}

/**
 * A region's epoch. `confVer` grows with every membership change, `version`
 * with every range change (split). Metadata with a lower value in either field
 * is stale.
 */
export interface RegionEpoch {
  /** Membership change counter. */
  readonly confVer: number;
  /** Range change counter. */
  readonly version: number;
}

/** A region: a key range, its epoch, its peers and (when known) its leader. */
export interface Region {
  /** Region id, unique across the cluster (from the id allocator). */
  readonly id: number;
  /** First key of the range, inclusive; empty means the start of the keyspace. */
  readonly startKey: Uint8Array;
  /** End of the range, exclusive; empty means the end of the keyspace. */
  readonly endKey: Uint8Array;
  /** The region's epoch. */
  readonly epoch: RegionEpoch;
  /** The replicas, at most one per store. */
  readonly peers: readonly Peer[];
  /** The leader peer, when a heartbeat has told PD. Always one of `peers`, a voter. */
  readonly leader?: Peer;
}

function checkId(what: string, id: number): void {
  if (!Number.isSafeInteger(id) || id < 1) {
    throw new RangeError(`Invalid ${what}: ${id} is not a positive safe integer`);
  }
}

/**
 * Checks one region's own consistency: ids, key order, epoch, peers (unique
 * ids and stores, known roles) and leader (one of the voters).
 *
 * @param region The region to check.
 * @throws {RangeError} When a field is out of range or inconsistent.
 * @throws {TypeError} When a key is not a Uint8Array or a role is unknown.
 * @example
 * ```ts
 * import { validateRegion } from "./region.ts";
 * validateRegion({
 *   id: 1, startKey: new Uint8Array(), endKey: new Uint8Array(),
 *   epoch: { confVer: 1, version: 1 }, peers: [{ id: 2, storeId: 1, role: "voter" }],
 * });
 * ```
 */
export function validateRegion(region: Region): void {
  checkId("region id", region.id);
  if (!(region.startKey instanceof Uint8Array) || !(region.endKey instanceof Uint8Array)) {
    throw new TypeError(`Invalid region ${region.id}: startKey and endKey must be Uint8Array`);
  }
  if (region.endKey.length > 0 && compareKeys(region.startKey, region.endKey) >= 0) {
    throw new RangeError(
      `Invalid region ${region.id}: start ${showKey(region.startKey)} is not below end ` +
        `${showKey(region.endKey)}; a range must be non-empty`,
    );
  }
  for (const field of ["confVer", "version"] as const) {
    const v = region.epoch[field];
    if (!Number.isSafeInteger(v) || v < 0) {
      throw new RangeError(`Invalid region ${region.id}: epoch.${field} ${v} is not >= 0`);
    }
  }
  const peerIds = new Set<number>();
  const storeIds = new Set<number>();
  for (const peer of region.peers) {
    checkId("peer id", peer.id);
    checkId("store id", peer.storeId);
    if (peer.role !== "voter" && peer.role !== "learner") {
      throw new TypeError(
        `Invalid region ${region.id}: peer ${peer.id} has role "${peer.role}"; allowed: voter, learner`,
      );
    }
    if (peerIds.has(peer.id) || storeIds.has(peer.storeId)) {
      throw new RangeError(
        `Invalid region ${region.id}: peer ${peer.id} on store ${peer.storeId} repeats a peer id ` +
          `or a store; one peer per store is allowed`,
      );
    }
    peerIds.add(peer.id);
    storeIds.add(peer.storeId);
  }
  if (region.leader !== undefined) {
    const l = region.leader;
    const found = region.peers.find((p) => p.id === l.id);
    if (found === undefined || found.storeId !== l.storeId || found.role !== "voter") {
      throw new RangeError(
        `Invalid region ${region.id}: leader ${l.id} is not one of its voters`,
      );
    }
  }
}

/**
 * True when `incoming` is older than `known` in either epoch field, so that a
 * message carrying it must be rejected.
 *
 * @param incoming The epoch a message carries.
 * @param known The epoch PD holds.
 * @returns Whether `incoming` is stale.
 * @example
 * ```ts
 * import { isStaleEpoch } from "./region.ts";
 * console.assert(isStaleEpoch({ confVer: 1, version: 1 }, { confVer: 1, version: 2 }));
 * ```
 */
export function isStaleEpoch(incoming: RegionEpoch, known: RegionEpoch): boolean {
  return incoming.version < known.version || incoming.confVer < known.confVer;
}

/** True when both epochs are equal. */
export function epochEqual(a: RegionEpoch, b: RegionEpoch): boolean {
  return a.version === b.version && a.confVer === b.confVer;
}

/** True when `key` lies in `[region.startKey, region.endKey)`. */
export function regionContains(region: Region, key: Uint8Array): boolean {
  return compareKeys(key, region.startKey) >= 0 &&
    (region.endKey.length === 0 || compareKeys(key, region.endKey) < 0);
}

/**
 * An immutable set of regions that tile the keyspace: the first starts at the
 * empty key, each ends where the next starts, the last is unbounded. Every
 * constructor checks this, so routing always finds exactly one region.
 * Changes return a new map, so a reader never sees a half-applied split.
 */
export class RegionMap {
  /** Sorted by startKey; invariant: tiles the keyspace (see {@link RegionMap.check}). */
  readonly #sorted: readonly Region[];
  readonly #byId: ReadonlyMap<number, Region>;

  private constructor(sorted: readonly Region[]) {
    this.#sorted = sorted;
    this.#byId = new Map(sorted.map((r) => [r.id, r]));
    RegionMap.check(sorted, this.#byId.size);
  }

  /**
   * Builds a map from regions in any order.
   *
   * @param regions Regions that together tile the keyspace.
   * @returns The map.
   * @throws {RangeError} On a gap, an overlap, a repeated id or an invalid region.
   * @example
   * ```ts
   * import { RegionMap } from "./region.ts";
   * const map = RegionMap.from([{
   *   id: 1, startKey: new Uint8Array(), endKey: new Uint8Array(),
   *   epoch: { confVer: 1, version: 1 }, peers: [],
   * }]);
   * console.assert(map.getByKey(new Uint8Array([7])).id === 1);
   * ```
   */
  static from(regions: Iterable<Region>): RegionMap {
    const sorted = [...regions];
    for (const r of sorted) validateRegion(r);
    sorted.sort((a, b) => compareKeys(a.startKey, b.startKey));
    return new RegionMap(sorted);
  }

  /** Checks the tiling invariant; throws RangeError naming the first violation. */
  private static check(sorted: readonly Region[], distinctIds: number): void {
    if (sorted.length === 0) throw new RangeError("Invalid region map: no regions; at least one");
    if (distinctIds !== sorted.length) {
      throw new RangeError("Invalid region map: a region id repeats; ids must be unique");
    }
    const first = sorted[0]!;
    if (first.startKey.length !== 0) {
      throw new RangeError(
        `Invalid region map: gap before region ${first.id} at ${showKey(first.startKey)}`,
      );
    }
    for (let i = 0; i < sorted.length; i++) {
      const r = sorted[i]!;
      const next = sorted[i + 1];
      if (next === undefined) {
        if (r.endKey.length !== 0) {
          throw new RangeError(
            `Invalid region map: gap after the last region ${r.id} from ${showKey(r.endKey)}`,
          );
        }
      } else if (r.endKey.length === 0 || !keysEqual(r.endKey, next.startKey)) {
        throw new RangeError(
          `Invalid region map: region ${r.id} ends at ${showKey(r.endKey)} but region ` +
            `${next.id} starts at ${showKey(next.startKey)}; regions must tile the keyspace`,
        );
      }
    }
  }

  /** Number of regions. */
  get size(): number {
    return this.#sorted.length;
  }

  /**
   * The region whose range holds `key` (binary search; always exists).
   *
   * @param key Any key.
   * @returns The region holding it.
   */
  getByKey(key: Uint8Array): Region {
    // Find the last region whose startKey <= key; the first region starts at "".
    let lo = 0;
    let hi = this.#sorted.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (compareKeys(this.#sorted[mid]!.startKey, key) <= 0) lo = mid;
      else hi = mid - 1;
    }
    return this.#sorted[lo]!;
  }

  /** The region with this id, or undefined. */
  getById(id: number): Region | undefined {
    return this.#byId.get(id);
  }

  /** All regions in key order. */
  list(): readonly Region[] {
    return this.#sorted;
  }

  /**
   * Returns a new map with `removed` regions replaced by `added` ones, checked
   * for tiling as a whole, so a split is applied atomically or not at all.
   *
   * @param removedIds Ids of regions to drop.
   * @param added Regions to insert (may reuse a dropped id).
   * @returns The new map.
   * @throws {RangeError} When an id is unknown or the result does not tile.
   */
  replace(removedIds: readonly number[], added: readonly Region[]): RegionMap {
    for (const id of removedIds) {
      if (!this.#byId.has(id)) throw new RangeError(`Cannot replace region ${id}: unknown id`);
    }
    const drop = new Set(removedIds);
    return RegionMap.from([...this.#sorted.filter((r) => !drop.has(r.id)), ...added]);
  }

  /**
   * Returns a new map with one region's metadata changed, its range unchanged.
   *
   * @param region The new metadata for an existing id.
   * @returns The new map.
   * @throws {RangeError} When the id is unknown or the range differs.
   */
  update(region: Region): RegionMap {
    const old = this.#byId.get(region.id);
    if (old === undefined) throw new RangeError(`Cannot update region ${region.id}: unknown id`);
    if (!keysEqual(old.startKey, region.startKey) || !keysEqual(old.endKey, region.endKey)) {
      throw new RangeError(`Cannot update region ${region.id}: its range would change`);
    }
    validateRegion(region);
    return new RegionMap(this.#sorted.map((r) => r.id === region.id ? region : r));
  }
}

/**
 * The two regions a split produces, as TiKV derives them by default
 * (right-derive): the original region keeps its id for the right part
 * `[splitKey, endKey)`, the new region takes the left part
 * `[startKey, splitKey)` with one new peer per original peer, on the same
 * stores and in the same roles. Both get `version + 1`; `confVer` is kept.
 *
 * @param region The region being split.
 * @param splitKey Strictly inside the region's range.
 * @param newRegionId The new region's id.
 * @param newPeerIds One new peer id per peer of `region`, in the same order.
 * @returns The left (new) and right (original id) regions.
 * @throws {RangeError} When the key is not strictly inside or the ids do not fit.
 * @example
 * ```ts
 * import { splitRegionMeta } from "./region.ts";
 * const region = {
 *   id: 1, startKey: new Uint8Array(), endKey: new Uint8Array(),
 *   epoch: { confVer: 1, version: 1 }, peers: [{ id: 2, storeId: 1, role: "voter" as const }],
 * };
 * const { left, right } = splitRegionMeta(region, new Uint8Array([5]), 3, [4]);
 * console.assert(left.id === 3 && right.id === 1 && right.epoch.version === 2);
 * ```
 */
export function splitRegionMeta(
  region: Region,
  splitKey: Uint8Array,
  newRegionId: number,
  newPeerIds: readonly number[],
): { left: Region; right: Region } {
  if (
    splitKey.length === 0 || compareKeys(splitKey, region.startKey) <= 0 ||
    (region.endKey.length > 0 && compareKeys(splitKey, region.endKey) >= 0)
  ) {
    throw new RangeError(
      `Cannot split region ${region.id} at ${showKey(splitKey)}: the key must lie strictly ` +
        `inside ${showKey(region.startKey)}..${showKey(region.endKey)}`,
    );
  }
  if (newPeerIds.length !== region.peers.length) {
    throw new RangeError(
      `Cannot split region ${region.id}: ${newPeerIds.length} new peer ids for ` +
        `${region.peers.length} peers; one per peer is needed`,
    );
  }
  const epoch = { confVer: region.epoch.confVer, version: region.epoch.version + 1 };
  const left: Region = {
    id: newRegionId,
    startKey: region.startKey,
    endKey: splitKey.slice(),
    epoch,
    peers: region.peers.map((p, i) => ({ id: newPeerIds[i]!, storeId: p.storeId, role: p.role })),
  };
  const right: Region = { ...region, startKey: splitKey.slice(), epoch };
  validateRegion(left);
  validateRegion(right);
  return { left, right };
}

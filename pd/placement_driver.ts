/**
 * The placement driver as an object: stores, regions, routing, split
 * reports, scheduling operators, TSO and ids, persisted under its directory.
 * It holds no timers and no sockets; the PD process wraps it.
 *
 * @module
 */

import { compareKeys, keysEqual, showKey } from "./_keys.ts";
import { Serial } from "./_serial.ts";
import { PdCorruptError, StaleEpochError } from "./errors.ts";
import { DenoFileSystem, type PdFileSystem } from "./fs.ts";
import { IdAllocator } from "./id_allocator.ts";
import {
  epochEqual,
  isStaleEpoch,
  type Peer,
  type Region,
  type RegionEpoch,
  RegionMap,
  validateRegion,
} from "./region.ts";
import {
  type ClusterView,
  decide,
  type Decision,
  DEFAULT_SCHEDULE_CONFIG,
  type RegionStats,
  type ScheduleConfig,
  validateScheduleConfig,
} from "./scheduler.ts";
import { PdStorage } from "./storage.ts";
import {
  DEFAULT_STORE_LIVENESS,
  type StoreInfo,
  type StoreLivenessConfig,
  type StoreMeta,
  StoreRegistry,
  type StoreStats,
} from "./store.ts";
import { type TimestampRange, Tso } from "./tso.ts";

/** A change PD asks a region's leader to make. */
export type Operator =
  | {
    readonly kind: "add-peer";
    readonly regionId: number;
    readonly epoch: RegionEpoch;
    /** The peer to add (its id is allocated). */
    readonly peer: Peer;
    readonly reason: string;
  }
  | {
    readonly kind: "remove-peer";
    readonly regionId: number;
    readonly epoch: RegionEpoch;
    readonly peer: Peer;
    readonly reason: string;
  }
  | {
    readonly kind: "transfer-leader";
    readonly regionId: number;
    readonly epoch: RegionEpoch;
    readonly from: Peer;
    readonly to: Peer;
    readonly reason: string;
  }
  | {
    readonly kind: "split";
    readonly regionId: number;
    readonly epoch: RegionEpoch;
    readonly reason: "size" | "keys";
    /** The store picks a split key about this many bytes into the range. */
    readonly splitSizeBytes: number;
    /** ... or about this many keys into it. */
    readonly splitKeys: number;
  };

/** What a region's leader reports in each heartbeat. */
export interface RegionHeartbeat {
  /** The region as the leader sees it; `leader` must be set (to itself). */
  readonly region: Region;
  /** Approximate bytes in the range. */
  readonly approximateSizeBytes: number;
  /** Approximate keys in the range. */
  readonly approximateKeys: number;
  /**
   * The leader's Raft term. When given, a heartbeat with a lower term than
   * one already seen for the region (a deposed leader that has not noticed)
   * is rejected, so it cannot move PD's idea of the leader back.
   */
  readonly term?: number;
}

/** PD's answer to a region heartbeat. */
export interface RegionHeartbeatResponse {
  /**
   * At most one operator: a region has one change in flight at a time. The
   * same operator is returned on each heartbeat until the region's epoch (or,
   * for a leader transfer, its leader) shows it done, or it times out.
   */
  readonly operators: readonly Operator[];
}

/** Ids for a split, from {@link PlacementDriver.askSplit}. */
export interface SplitIds {
  /** Id of the new (left) region. */
  readonly newRegionId: number;
  /** One new peer id per peer of the region, in its order. */
  readonly newPeerIds: readonly number[];
}

/** Options of {@link PlacementDriver.open}. */
export interface PlacementDriverOptions {
  /** PD's directory, normally `<data-dir>/pd`. */
  readonly dir: string;
  /** Filesystem (default: the real one). */
  readonly fs?: PdFileSystem;
  /** Wall clock in ms (default Date.now); drives TSO, liveness and operator timeouts. */
  readonly clock?: () => number;
  /** Scheduling thresholds (defaults: TiKV's). */
  readonly schedule?: Partial<ScheduleConfig>;
  /** Store liveness thresholds (defaults: TiKV PD's). */
  readonly liveness?: Partial<StoreLivenessConfig>;
  /** How long an issued operator is re-sent before PD gives up on it (default 60 s). */
  readonly operatorTimeoutMs?: number;
  /** TSO window persisted ahead (default 3000 ms). */
  readonly tsoWindowMs?: number;
  /** Ids reserved per persisted step (default 1000). */
  readonly idStep?: number;
  /** Requests that may wait for one PD component (default 10000). */
  readonly pendingMax?: number;
}

/** Options of {@link PlacementDriver.bootstrap}. */
export interface BootstrapOptions {
  /** Registered stores that get a voter of every initial region. */
  readonly storeIds: readonly number[];
  /** Keys at which the keyspace is cut; none gives one region. */
  readonly splitKeys?: readonly Uint8Array[];
}

/** Counters from {@link PlacementDriver.stats}. */
export interface PdStats {
  /** Whether the initial regions exist. */
  readonly bootstrapped: boolean;
  /** Regions in the map. */
  readonly regions: number;
  /** Regions whose leader PD has heard from since it started. */
  readonly regionsWithLeader: number;
  /** Registered stores by liveness. */
  readonly stores: { readonly up: number; readonly disconnected: number; readonly down: number };
  /** Operators issued and not yet done or timed out. */
  readonly pendingOperators: number;
  /** Persisted TSO bound in ms. */
  readonly tsoLimitMs: number;
  /** Persisted id bound. */
  readonly idLimit: number;
  /** Timestamp requests answered since this instance started. */
  readonly tsoRequests: number;
  /** Timestamps handed out since this instance started (a request may take many). */
  readonly tsoTimestamps: number;
  /** Store heartbeats accepted since this instance started. */
  readonly storeHeartbeats: number;
  /** Region heartbeats accepted since this instance started. */
  readonly regionHeartbeats: number;
  /** Splits applied (reportSplit) since this instance started. */
  readonly splits: number;
}

interface PendingOperator {
  readonly operator: Operator;
  readonly issuedMs: number;
}

/** Replica counts per store derived from a region map, rebuilt when the map changes. */
interface Counts {
  readonly map: RegionMap;
  readonly regions: Map<number, number>;
}

/**
 * The placement driver. Metadata changes run one at a time and are durable
 * before they are visible; reads see the last applied state.
 *
 * @example
 * ```ts
 * import { MemoryFileSystem, PlacementDriver } from "./mod.ts";
 * const pd = await PlacementDriver.open({ dir: "/d/pd", fs: new MemoryFileSystem() });
 * const storeId = await pd.allocId();
 * await pd.registerStore({ id: storeId, address: "127.0.0.1:20160" });
 * await pd.bootstrap({ storeIds: [storeId] });
 * console.assert(pd.getRegionByKey(new Uint8Array([1])).peers[0]?.storeId === storeId);
 * ```
 */
export class PlacementDriver {
  readonly #storage: PdStorage;
  readonly #clock: () => number;
  readonly #schedule: ScheduleConfig;
  readonly #operatorTimeoutMs: number;
  readonly #stores: StoreRegistry;
  readonly #tso: Tso;
  readonly #ids: IdAllocator;
  readonly #meta: Serial;
  /**
   * Undefined until bootstrap; invariant: tiles the keyspace, ids below the id
   * bound, and no region in it carries a leader (leaders live in #leaders).
   */
  #regions: RegionMap | undefined;
  /** Soft state from heartbeats: the leader of each region; invariant: one of its voters. */
  readonly #leaders = new Map<number, Peer>();
  /** Soft state: the highest Raft term a leader of each region has reported. */
  readonly #terms = new Map<number, number>();
  /** Leaders per store, kept in step with #leaders. */
  readonly #leaderCounts = new Map<number, number>();
  readonly #stats = new Map<number, RegionStats>();
  readonly #pending = new Map<number, PendingOperator>();
  readonly #tallies = {
    tsoRequests: 0,
    tsoTimestamps: 0,
    storeHeartbeats: 0,
    regionHeartbeats: 0,
    splits: 0,
  };
  /** Leader moves under way, per store: +1 at the target, -1 at the source. */
  readonly #leaderAdjust = new Map<number, number>();
  #counts: Counts | undefined;

  private constructor(
    storage: PdStorage,
    parts: {
      clock: () => number;
      schedule: ScheduleConfig;
      operatorTimeoutMs: number;
      stores: StoreRegistry;
      tso: Tso;
      ids: IdAllocator;
      meta: Serial;
      regions: RegionMap | undefined;
    },
  ) {
    this.#storage = storage;
    this.#clock = parts.clock;
    this.#schedule = parts.schedule;
    this.#operatorTimeoutMs = parts.operatorTimeoutMs;
    this.#stores = parts.stores;
    this.#tso = parts.tso;
    this.#ids = parts.ids;
    this.#meta = parts.meta;
    this.#regions = parts.regions;
  }

  /**
   * Opens PD's directory, loading what an earlier run persisted.
   *
   * @param options Directory, filesystem, clock and thresholds.
   * @returns The placement driver.
   * @throws {PdCorruptError} When a metadata file fails its checks or breaks an invariant.
   * @throws {RangeError} When a threshold is invalid.
   */
  static async open(options: PlacementDriverOptions): Promise<PlacementDriver> {
    const schedule = { ...DEFAULT_SCHEDULE_CONFIG, ...options.schedule };
    validateScheduleConfig(schedule);
    const operatorTimeoutMs = options.operatorTimeoutMs ?? 60_000;
    if (!(operatorTimeoutMs > 0)) {
      throw new RangeError(`Invalid PD operatorTimeoutMs: ${operatorTimeoutMs} is not > 0`);
    }
    const stores = new StoreRegistry({ ...DEFAULT_STORE_LIVENESS, ...options.liveness });
    const clock = options.clock ?? Date.now;
    const pendingMax = options.pendingMax ?? 10_000;
    const { storage, state } = await PdStorage.open(
      options.fs ?? new DenoFileSystem(),
      options.dir,
    );
    const regionsPath = `${options.dir}/regions.meta`;
    let regions: RegionMap | undefined;
    if (state.regions !== undefined) {
      try {
        regions = RegionMap.from(state.regions);
      } catch (e) {
        throw new PdCorruptError(regionsPath, (e as Error).message);
      }
      for (const r of state.regions) {
        for (const id of [r.id, ...r.peers.map((p) => p.id), ...r.peers.map((p) => p.storeId)]) {
          if (id >= state.idLimit) {
            throw new PdCorruptError(
              regionsPath,
              `id ${id} is not below the id bound ${state.idLimit}`,
            );
          }
        }
      }
    }
    const now = clock();
    const storesPath = `${options.dir}/stores.meta`;
    for (const s of state.stores) {
      if (s.id >= state.idLimit) {
        throw new PdCorruptError(
          storesPath,
          `store id ${s.id} is not below the id bound ${state.idLimit}`,
        );
      }
      try {
        stores.register(s, now);
      } catch (e) {
        throw new PdCorruptError(storesPath, (e as Error).message);
      }
    }
    const tsoOptions = {
      clock,
      savedLimitMs: state.tsoLimitMs,
      saveLimit: (limitMs: number) => storage.saveTsoLimit(limitMs),
      pendingMax,
      ...(options.tsoWindowMs === undefined ? {} : { windowMs: options.tsoWindowMs }),
    };
    const idOptions = {
      savedLimit: state.idLimit,
      saveLimit: (limit: number) => storage.saveIdLimit(limit),
      pendingMax,
      ...(options.idStep === undefined ? {} : { step: options.idStep }),
    };
    return new PlacementDriver(storage, {
      clock,
      schedule,
      operatorTimeoutMs,
      stores,
      tso: new Tso(tsoOptions),
      ids: new IdAllocator(idOptions),
      meta: new Serial("metadata", pendingMax),
      regions,
    });
  }

  /**
   * Refuses further changes and resolves once every change, id and timestamp
   * request already queued has settled, so that its files are no longer
   * written. Reads keep working. Call it before opening the same directory again.
   */
  async close(): Promise<void> {
    // Metadata steps allocate ids, so they drain before the allocator closes.
    await this.#meta.close();
    await Promise.all([this.#tso.close(), this.#ids.close()]);
  }

  /**
   * Counters for metrics and status pages.
   *
   * @returns Region, store and operator counts and the persisted bounds.
   */
  stats(): PdStats {
    const stores = { up: 0, disconnected: 0, down: 0 };
    for (const s of this.listStores()) stores[s.state]++;
    return {
      bootstrapped: this.#regions !== undefined,
      regions: this.#regions?.size ?? 0,
      regionsWithLeader: this.#leaders.size,
      stores,
      pendingOperators: this.#pending.size,
      tsoLimitMs: this.#tso.limitMs,
      idLimit: this.#ids.limit,
      ...this.#tallies,
    };
  }

  /** The scheduling thresholds in use. */
  get scheduleConfig(): ScheduleConfig {
    return this.#schedule;
  }

  // ---- ids and timestamps -------------------------------------------------

  /**
   * Allocates `count` consecutive ids, never handed out before (even before a crash).
   *
   * @param count How many (default 1).
   * @returns The first id.
   */
  allocId(count = 1): Promise<number> {
    return this.#ids.alloc(count);
  }

  /**
   * Hands out `count` timestamps greater than all earlier ones.
   *
   * @param count How many (default 1).
   * @returns The range of timestamps.
   */
  async getTs(count = 1): Promise<TimestampRange> {
    const range = await this.#tso.getTs(count);
    this.#tallies.tsoRequests++;
    this.#tallies.tsoTimestamps += range.count;
    return range;
  }

  // ---- stores ---------------------------------------------------------------

  /**
   * Registers a store (or changes its address). Durable before it resolves.
   *
   * @param meta Store id (from {@link allocId}) and address.
   * @returns The store's info.
   * @throws {RangeError} When the id is invalid or another store has the address.
   */
  registerStore(meta: StoreMeta): Promise<StoreInfo> {
    return this.#meta.run(async () => {
      const now = this.#clock();
      const probe = new StoreRegistry(this.#stores.config);
      for (const s of this.#stores.metas()) if (s.id !== meta.id) probe.register(s, now);
      probe.register(meta, now); // validates without touching the live registry
      const old = this.#stores.get(meta.id, now);
      if (old === undefined || old.address !== meta.address) {
        await this.#storage.saveStores(probe.metas());
      }
      this.#stores.register(meta, now);
      return this.#stores.get(meta.id, now)!;
    });
  }

  /**
   * Records a store heartbeat (soft state, not persisted).
   *
   * @param storeId The store.
   * @param stats Its statistics.
   * @returns The store's info, with its state.
   * @throws {UnknownStoreError} When the store is not registered.
   */
  storeHeartbeat(storeId: number, stats: StoreStats): StoreInfo {
    const now = this.#clock();
    this.#stores.heartbeat(storeId, stats, now);
    this.#tallies.storeHeartbeats++;
    return this.#stores.get(storeId, now)!;
  }

  /** Every registered store with its liveness now. */
  listStores(): StoreInfo[] {
    return this.#stores.list(this.#clock());
  }

  /** One store with its liveness now, or undefined. */
  getStore(storeId: number): StoreInfo | undefined {
    return this.#stores.get(storeId, this.#clock());
  }

  // ---- regions --------------------------------------------------------------

  /** Whether the initial regions exist. */
  isBootstrapped(): boolean {
    return this.#regions !== undefined;
  }

  /**
   * Creates the initial regions: the keyspace cut at `splitKeys`, each region
   * with a voter on each of `storeIds`. Durable before it resolves.
   *
   * @param options Stores and split keys.
   * @returns The regions in key order.
   * @throws {RangeError} When already bootstrapped, a store is unknown, or the keys are
   *   empty, repeated or unsorted.
   */
  bootstrap(options: BootstrapOptions): Promise<readonly Region[]> {
    return this.#meta.run(async () => {
      if (this.#regions !== undefined) {
        throw new RangeError("Cannot bootstrap PD: it is already bootstrapped");
      }
      if (options.storeIds.length === 0) {
        throw new RangeError("Cannot bootstrap PD: no stores given; at least one is needed");
      }
      for (const id of options.storeIds) {
        if (!this.#stores.has(id)) {
          throw new RangeError(`Cannot bootstrap PD: store ${id} is not registered`);
        }
      }
      const keys = options.splitKeys ?? [];
      keys.forEach((k, i) => {
        if (k.length === 0 || (i > 0 && compareKeys(keys[i - 1]!, k) >= 0)) {
          throw new RangeError(
            `Cannot bootstrap PD: split key ${showKey(k)} is empty, repeated or out of order; ` +
              `keys must be non-empty and strictly increasing`,
          );
        }
      });
      const bounds = [new Uint8Array(), ...keys, new Uint8Array()];
      const perRegion = 1 + options.storeIds.length;
      const regions: Region[] = [];
      for (let i = 0; i + 1 < bounds.length; i++) {
        const base = await this.#ids.alloc(perRegion);
        regions.push({
          id: base,
          startKey: bounds[i]!.slice(),
          endKey: bounds[i + 1]!.slice(),
          epoch: { confVer: 1, version: 1 },
          peers: options.storeIds.map((storeId, j) => ({
            id: base + 1 + j,
            storeId,
            role: "voter" as const,
          })),
        });
      }
      const map = RegionMap.from(regions);
      await this.#storage.saveRegions(map.list());
      this.#regions = map;
      return map.list();
    });
  }

  #map(): RegionMap {
    if (this.#regions === undefined) {
      throw new RangeError("PD is not bootstrapped: call bootstrap first");
    }
    return this.#regions;
  }

  /**
   * Routes a key to the region holding it.
   *
   * @param key Any key.
   * @returns The region, with its leader when known.
   * @throws {RangeError} Before bootstrap.
   */
  getRegionByKey(key: Uint8Array): Region {
    return this.#withLeader(this.#map().getByKey(key));
  }

  /** The region with this id, with its leader when known, or undefined (also before bootstrap). */
  getRegionById(id: number): Region | undefined {
    const r = this.#regions?.getById(id);
    return r === undefined ? undefined : this.#withLeader(r);
  }

  /** Every region in key order, with leaders when known (empty before bootstrap). */
  listRegions(): readonly Region[] {
    return (this.#regions?.list() ?? []).map((r) => this.#withLeader(r));
  }

  #withLeader(r: Region): Region {
    const leader = this.#leaders.get(r.id);
    return leader === undefined ? r : { ...r, leader };
  }

  #setLeader(regionId: number, leader: Peer | undefined): void {
    const old = this.#leaders.get(regionId);
    if (old?.id === leader?.id && old?.storeId === leader?.storeId) return;
    if (old !== undefined) this.#count(this.#leaderCounts, old.storeId, -1);
    if (leader === undefined) this.#leaders.delete(regionId);
    else {
      this.#leaders.set(regionId, leader);
      this.#count(this.#leaderCounts, leader.storeId, +1);
    }
  }

  #count(counts: Map<number, number>, storeId: number, delta: number): void {
    const v = (counts.get(storeId) ?? 0) + delta;
    if (v === 0) counts.delete(storeId);
    else counts.set(storeId, v);
  }

  /** The last reported size of a region, if any. */
  getRegionStats(id: number): RegionStats | undefined {
    return this.#stats.get(id);
  }

  /**
   * Takes a region heartbeat from its leader: checks the epoch, records the
   * leader, size and (after a membership change) the new peers, and returns
   * what PD wants done: replica repair first, then a split, then a leader move.
   *
   * @param hb The heartbeat.
   * @returns At most one operator.
   * @throws {StaleEpochError} When the epoch is older than PD's, or the range or
   *   peers changed in a way that was not reported (a split goes through reportSplit).
   * @throws {RangeError} On an unknown region or invalid metadata.
   */
  regionHeartbeat(hb: RegionHeartbeat): Promise<RegionHeartbeatResponse> {
    return this.#meta.run(async () => {
      const incoming = hb.region;
      validateRegion(incoming);
      if (incoming.leader === undefined) {
        throw new RangeError(`Invalid heartbeat of region ${incoming.id}: no leader set`);
      }
      for (const [name, v] of [["size", hb.approximateSizeBytes], ["keys", hb.approximateKeys]]) {
        if (!(typeof v === "number" && v >= 0 && Number.isFinite(v))) {
          throw new RangeError(
            `Invalid heartbeat of region ${incoming.id}: ${name} ${v} is not >= 0`,
          );
        }
      }
      if (hb.term !== undefined && !(Number.isSafeInteger(hb.term) && hb.term >= 0)) {
        throw new RangeError(
          `Invalid heartbeat of region ${incoming.id}: term ${hb.term} is not >= 0`,
        );
      }
      const map = this.#map();
      const known = map.getById(incoming.id);
      if (known === undefined) {
        throw new RangeError(
          `Unknown region ${incoming.id}: a region created by a split must be reported with reportSplit`,
        );
      }
      const knownTerm = this.#terms.get(incoming.id);
      if (hb.term !== undefined && knownTerm !== undefined && hb.term < knownTerm) {
        throw new StaleEpochError(
          `Stale heartbeat of region ${incoming.id}: term ${hb.term} is below ${knownTerm}, ` +
            `which a newer leader reported`,
          this.#withLeader(known),
        );
      }
      const { leader, ...updated } = this.#reconcile(known, incoming);
      if (!epochEqual(updated.epoch, known.epoch)) {
        const next = map.update(updated);
        await this.#storage.saveRegions(next.list());
        this.#regions = next;
      }
      this.#setLeader(updated.id, leader);
      if (hb.term !== undefined) this.#terms.set(updated.id, hb.term);
      this.#stats.set(incoming.id, {
        approximateSizeBytes: hb.approximateSizeBytes,
        approximateKeys: hb.approximateKeys,
      });
      const op = await this.#operatorFor(this.#withLeader(updated));
      this.#tallies.regionHeartbeats++;
      return { operators: op === undefined ? [] : [op] };
    });
  }

  /** PD's new view of a region after a heartbeat; throws when it cannot be reconciled. */
  #reconcile(known: Region, incoming: Region): Region {
    const current = this.#withLeader(known);
    const where =
      `region ${incoming.id} (epoch ${incoming.epoch.confVer}/${incoming.epoch.version}, ` +
      `PD has ${known.epoch.confVer}/${known.epoch.version})`;
    if (isStaleEpoch(incoming.epoch, known.epoch)) {
      throw new StaleEpochError(`Stale heartbeat of ${where}: refresh the region from PD`, current);
    }
    if (
      !keysEqual(incoming.startKey, known.startKey) || !keysEqual(incoming.endKey, known.endKey)
    ) {
      throw new StaleEpochError(
        `Rejected heartbeat of ${where}: its range changed without a reportSplit`,
        current,
      );
    }
    const samePeers = incoming.peers.length === known.peers.length &&
      incoming.peers.every((p) =>
        known.peers.some((q) => q.id === p.id && q.storeId === p.storeId && q.role === p.role)
      );
    if (!samePeers && incoming.epoch.confVer === known.epoch.confVer) {
      throw new StaleEpochError(
        `Rejected heartbeat of ${where}: its peers changed but confVer did not`,
        current,
      );
    }
    return incoming;
  }

  /** The operator to send for a region: a pending one, or a new decision. */
  async #operatorFor(region: Region): Promise<Operator | undefined> {
    const now = this.#clock();
    const pending = this.#pending.get(region.id);
    if (pending !== undefined) {
      const op = pending.operator;
      const done = !epochEqual(op.epoch, region.epoch) ||
        (op.kind === "transfer-leader" && region.leader?.id !== op.from.id);
      if (!done && now - pending.issuedMs < this.#operatorTimeoutMs) return op;
      this.#dropPending(region.id);
    }
    const stats = this.#stats.get(region.id) ?? { approximateSizeBytes: 0, approximateKeys: 0 };
    const decision = decide(region, stats, this.#schedule, this.#view());
    if (decision === undefined) return undefined;
    const op = await this.#toOperator(region, decision);
    this.#pending.set(region.id, { operator: op, issuedMs: now });
    if (op.kind === "transfer-leader") {
      this.#count(this.#leaderAdjust, op.from.storeId, -1);
      this.#count(this.#leaderAdjust, op.to.storeId, +1);
    }
    return op;
  }

  async #toOperator(region: Region, d: Decision): Promise<Operator> {
    const base = { regionId: region.id, epoch: region.epoch };
    switch (d.kind) {
      case "add-peer": {
        const id = await this.#ids.alloc();
        return {
          kind: "add-peer",
          ...base,
          peer: { id, storeId: d.storeId, role: "voter" },
          reason: d.reason,
        };
      }
      case "remove-peer":
        return { kind: "remove-peer", ...base, peer: d.peer, reason: d.reason };
      case "transfer-leader":
        return { kind: "transfer-leader", ...base, from: d.from, to: d.to, reason: d.reason };
      case "split":
        return {
          kind: "split",
          ...base,
          reason: d.reason,
          splitSizeBytes: d.splitSizeBytes,
          splitKeys: d.splitKeys,
        };
    }
  }

  #dropPending(regionId: number): void {
    const pending = this.#pending.get(regionId);
    if (pending === undefined) return;
    this.#pending.delete(regionId);
    const op = pending.operator;
    if (op.kind === "transfer-leader") {
      this.#count(this.#leaderAdjust, op.from.storeId, +1);
      this.#count(this.#leaderAdjust, op.to.storeId, -1);
    }
  }

  /** Replica counts per store, rebuilt only when the region map changed. */
  #countsNow(): Counts {
    const map = this.#map();
    if (this.#counts?.map === map) return this.#counts;
    const regions = new Map<number, number>();
    for (const r of map.list()) {
      for (const p of r.peers) regions.set(p.storeId, (regions.get(p.storeId) ?? 0) + 1);
    }
    this.#counts = { map, regions };
    return this.#counts;
  }

  #view(): ClusterView {
    const now = this.#clock();
    const counts = this.#countsNow();
    const ids = this.#stores.metas().map((s) => s.id);
    return {
      storeState: (id) => this.#stores.state(id, now),
      storeIds: () => ids,
      regionCount: (id) => counts.regions.get(id) ?? 0,
      leaderCount: (id) => (this.#leaderCounts.get(id) ?? 0) + (this.#leaderAdjust.get(id) ?? 0),
    };
  }

  /**
   * Allocates the ids a split needs: one region id and one peer id per peer.
   * The store then proposes the split through Raft (see `splitRegionMeta`) and
   * reports the result with {@link reportSplit}.
   *
   * @param regionId The region to split.
   * @param epoch The epoch the store holds.
   * @returns The new ids.
   * @throws {StaleEpochError} When the epoch is older than PD's.
   * @throws {RangeError} When the region is unknown.
   */
  askSplit(regionId: number, epoch: RegionEpoch): Promise<SplitIds> {
    return this.#meta.run(async () => {
      const region = this.#map().getById(regionId);
      if (region === undefined) throw new RangeError(`Cannot split region ${regionId}: unknown id`);
      if (isStaleEpoch(epoch, region.epoch)) {
        throw new StaleEpochError(`Cannot split region ${regionId}: its epoch is stale`, region);
      }
      const first = await this.#ids.alloc(1 + region.peers.length);
      return {
        newRegionId: first,
        newPeerIds: region.peers.map((_, i) => first + 1 + i),
      };
    });
  }

  /**
   * Applies a split the store has carried out: `left` and `right` replace the
   * original region (whose id is one of theirs) in one durable, atomic step.
   * Repeating a report that was already applied is a no-op.
   *
   * @param left The region below the split key.
   * @param right The region from the split key on.
   * @throws {StaleEpochError} When the original region's epoch in PD is not older.
   * @throws {RangeError} When the two do not exactly cover one known region, or the
   *   new id was not allocated by PD.
   */
  reportSplit(left: Region, right: Region): Promise<void> {
    return this.#meta.run(async () => {
      validateRegion(left);
      validateRegion(right);
      const map = this.#map();
      const knownLeft = map.getById(left.id);
      const knownRight = map.getById(right.id);
      if (
        knownLeft !== undefined && knownRight !== undefined &&
        epochEqual(knownLeft.epoch, left.epoch) &&
        epochEqual(knownRight.epoch, right.epoch) && keysEqual(knownLeft.endKey, left.endKey) &&
        keysEqual(knownRight.startKey, right.startKey)
      ) {
        return; // already applied
      }
      const original = knownRight ?? knownLeft;
      const fresh = knownRight === undefined ? right : left;
      const what = `Cannot apply split of region ${original?.id ?? `${left.id}/${right.id}`}`;
      if (original === undefined || (knownLeft !== undefined && knownRight !== undefined)) {
        throw new RangeError(`${what}: exactly one of ids ${left.id}, ${right.id} must be known`);
      }
      if (fresh.id >= this.#ids.limit) {
        throw new RangeError(`${what}: new region id ${fresh.id} was not allocated by PD`);
      }
      if (
        !keysEqual(left.startKey, original.startKey) || !keysEqual(right.endKey, original.endKey) ||
        !keysEqual(left.endKey, right.startKey)
      ) {
        throw new RangeError(
          `${what}: ${showKey(left.startKey)}..${showKey(left.endKey)} + ` +
            `${showKey(right.startKey)}..${showKey(right.endKey)} does not cover ` +
            `${showKey(original.startKey)}..${showKey(original.endKey)}`,
        );
      }
      for (const part of [left, right]) {
        if (
          part.epoch.version <= original.epoch.version || isStaleEpoch(part.epoch, original.epoch)
        ) {
          throw new StaleEpochError(
            `${what}: region ${part.id} has version ${part.epoch.version}, PD has ` +
              `${original.epoch.version}; a split must raise it`,
            original,
          );
        }
      }
      const { leader: leftLeader, ...leftMeta } = left;
      const { leader: rightLeader, ...rightMeta } = right;
      const next = map.replace([original.id], [leftMeta, rightMeta]);
      await this.#storage.saveRegions(next.list());
      this.#regions = next;
      this.#setLeader(left.id, leftLeader);
      this.#setLeader(right.id, rightLeader);
      this.#dropPending(original.id);
      this.#stats.delete(original.id);
      this.#tallies.splits++;
      this.#terms.delete(fresh.id); // a new Raft group: its terms start afresh
    });
  }
}

/**
 * Store registry: which stores (nodes holding region replicas) exist, their
 * latest heartbeat statistics, and their liveness judged from heartbeat age
 * against a clock reading passed in by the caller.
 *
 * @module
 */

import { UnknownStoreError } from "./errors.ts";

/**
 * Liveness of a store: `up` while heartbeats arrive, `disconnected` after
 * `storeDisconnectMs` without one (no new leaders or replicas go there),
 * `down` after `storeDownMs` (its replicas are replaced elsewhere).
 */
export type StoreState = "up" | "disconnected" | "down";

/** The durable part of a store: what registration records. */
export interface StoreMeta {
  /** Store id (from the id allocator). */
  readonly id: number;
  /** Address peers and clients reach the store at, e.g. "127.0.0.1:20160". */
  readonly address: string;
}

/** What a store reports in each heartbeat. */
export interface StoreStats {
  /** Disk capacity in bytes. */
  readonly capacityBytes: number;
  /** Free disk space in bytes. */
  readonly availableBytes: number;
  /** Number of region replicas on the store. */
  readonly regionCount: number;
}

/** A store as PD sees it. */
export interface StoreInfo extends StoreMeta {
  /** Clock reading of the last heartbeat (or of registration / PD start). */
  readonly lastHeartbeatMs: number;
  /** Statistics from the last heartbeat, if any. */
  readonly stats?: StoreStats;
  /** Liveness at the time the info was read. */
  readonly state: StoreState;
}

/** Liveness thresholds. */
export interface StoreLivenessConfig {
  /** Heartbeat age after which a store is `disconnected` (TiKV PD: 20 s). */
  readonly storeDisconnectMs: number;
  /** Heartbeat age after which a store is `down` (TiKV PD max-store-down-time: 30 min). */
  readonly storeDownMs: number;
}

/** TiKV PD's liveness defaults. */
export const DEFAULT_STORE_LIVENESS: StoreLivenessConfig = {
  storeDisconnectMs: 20_000,
  storeDownMs: 30 * 60_000,
};

/**
 * Judges a store's liveness from the age of its last heartbeat.
 *
 * @param lastHeartbeatMs When the last heartbeat arrived.
 * @param nowMs The current clock reading.
 * @param config Thresholds.
 * @returns The store state.
 * @example
 * ```ts
 * import { DEFAULT_STORE_LIVENESS, storeState } from "./store.ts";
 * console.assert(storeState(0, 25_000, DEFAULT_STORE_LIVENESS) === "disconnected");
 * ```
 */
export function storeState(
  lastHeartbeatMs: number,
  nowMs: number,
  config: StoreLivenessConfig,
): StoreState {
  const age = nowMs - lastHeartbeatMs;
  if (age >= config.storeDownMs) return "down";
  if (age >= config.storeDisconnectMs) return "disconnected";
  return "up";
}

interface StoreEntry {
  meta: StoreMeta;
  lastHeartbeatMs: number;
  stats?: StoreStats;
}

/**
 * The stores PD knows. Heartbeat times and statistics are soft state: after a
 * PD restart every store counts from the restart, so none looks down merely
 * because PD was away.
 */
export class StoreRegistry {
  readonly #stores = new Map<number, StoreEntry>();
  readonly #config: StoreLivenessConfig;

  /**
   * Creates the instance.
   *
   * @param config Liveness thresholds.
   * @throws {RangeError} When storeDisconnectMs is not positive or exceeds storeDownMs.
   */
  constructor(config: StoreLivenessConfig = DEFAULT_STORE_LIVENESS) {
    if (!(config.storeDisconnectMs > 0) || !(config.storeDownMs >= config.storeDisconnectMs)) {
      throw new RangeError(
        `Invalid store liveness: storeDisconnectMs ${config.storeDisconnectMs} and storeDownMs ` +
          `${config.storeDownMs}; need 0 < storeDisconnectMs <= storeDownMs`,
      );
    }
    this.#config = config;
  }

  /** Liveness thresholds in use. */
  get config(): StoreLivenessConfig {
    return this.#config;
  }

  /**
   * Adds or updates a store. Returns true when the durable metadata changed.
   *
   * @param meta Store id and address.
   * @param nowMs Clock reading, counted as a heartbeat.
   * @returns Whether the store is new or its address changed.
   * @throws {RangeError} When the id is invalid or another store has the address.
   */
  register(meta: StoreMeta, nowMs: number): boolean {
    if (!Number.isSafeInteger(meta.id) || meta.id < 1) {
      throw new RangeError(`Cannot register store: id ${meta.id} is not a positive safe integer`);
    }
    if (typeof meta.address !== "string" || meta.address.length === 0) {
      throw new TypeError(`Cannot register store ${meta.id}: address must be a non-empty string`);
    }
    for (const other of this.#stores.values()) {
      if (other.meta.id !== meta.id && other.meta.address === meta.address) {
        throw new RangeError(
          `Cannot register store ${meta.id}: address ${meta.address} belongs to store ` +
            `${other.meta.id}; each address holds one store`,
        );
      }
    }
    const old = this.#stores.get(meta.id);
    const changed = old === undefined || old.meta.address !== meta.address;
    const entry: StoreEntry = {
      meta: { id: meta.id, address: meta.address },
      lastHeartbeatMs: nowMs,
    };
    if (old?.stats !== undefined) entry.stats = old.stats;
    this.#stores.set(meta.id, entry);
    return changed;
  }

  /**
   * Records a heartbeat.
   *
   * @param storeId The store.
   * @param stats Its statistics.
   * @param nowMs Clock reading.
   * @throws {UnknownStoreError} When the store is not registered.
   * @throws {RangeError} When a statistic is negative or not a number.
   */
  heartbeat(storeId: number, stats: StoreStats, nowMs: number): void {
    for (const [name, v] of Object.entries(stats)) {
      if (typeof v !== "number" || !(v >= 0) || !Number.isFinite(v)) {
        throw new RangeError(`Invalid heartbeat of store ${storeId}: ${name} ${v} is not >= 0`);
      }
    }
    const entry = this.#stores.get(storeId);
    if (entry === undefined) throw new UnknownStoreError(storeId);
    entry.lastHeartbeatMs = Math.max(entry.lastHeartbeatMs, nowMs);
    entry.stats = { ...stats };
  }

  /** True when the store is registered. */
  has(storeId: number): boolean {
    return this.#stores.has(storeId);
  }

  /** The store's info at `nowMs`, or undefined. */
  get(storeId: number, nowMs: number): StoreInfo | undefined {
    const e = this.#stores.get(storeId);
    return e === undefined ? undefined : this.#info(e, nowMs);
  }

  /** The store's liveness at `nowMs`; an unknown store counts as down. */
  state(storeId: number, nowMs: number): StoreState {
    const e = this.#stores.get(storeId);
    return e === undefined ? "down" : storeState(e.lastHeartbeatMs, nowMs, this.#config);
  }

  /** All stores, by id. */
  list(nowMs: number): StoreInfo[] {
    return [...this.#stores.values()].sort((a, b) => a.meta.id - b.meta.id).map((e) =>
      this.#info(e, nowMs)
    );
  }

  /** The durable part of every store, for persistence. */
  metas(): StoreMeta[] {
    return [...this.#stores.values()].map((e) => e.meta).sort((a, b) => a.id - b.id);
  }

  #info(e: StoreEntry, nowMs: number): StoreInfo {
    const info: StoreInfo = {
      ...e.meta,
      lastHeartbeatMs: e.lastHeartbeatMs,
      state: storeState(e.lastHeartbeatMs, nowMs, this.#config),
      ...(e.stats === undefined ? {} : { stats: e.stats }),
    };
    return info;
  }
}

/**
 * What the node's processes share: the configuration, the runtime, the
 * engine the engine process currently holds, the local routing table and
 * the metrics hooks. One instance per node (several nodes can run in one
 * process, as tests do); it is handed to every process as its init argument.
 *
 * The engine reference changes when the engine process restarts: processes
 * that depend on the engine start after it under a rest_for_one supervisor,
 * so they are restarted with it and read the new reference in their init.
 *
 * @module
 */

import type { Engine } from "../engine/mod.ts";
import { DenoFileSystem, type FileSystem, type JournalFileSystem } from "../raft/log_store/mod.ts";
import { type Region, RegionMap } from "../pd/mod.ts";
import type { Runtime } from "../supervisor/mod.ts";
import type { RocksDbTuning } from "../tuning/mod.ts";
import type { NodeConfig } from "./config.ts";
import type { RegionPlant } from "./region_state_machine.ts";
import { ValueCache, type ValueCacheLike } from "./value_cache.ts";
import { NativeValueCache } from "./native_value_cache.ts";
import type { NativeGets } from "./native_gets.ts";

/** Registered names of the node's processes. */
export const NAMES: {
  readonly config: string;
  readonly engine: string;
  readonly raftLogs: string;
  readonly pd: string;
  readonly regions: string;
  readonly store: string;
  readonly clients: string;
  readonly connections: string;
  readonly admin: string;
  readonly region: (id: number) => string;
} = Object.freeze({
  config: "spire.config",
  engine: "spire.engine",
  raftLogs: "spire.raftlogs",
  pd: "spire.pd",
  regions: "spire.regions",
  store: "spire.store",
  clients: "spire.listener",
  connections: "spire.connections",
  admin: "spire.admin",
  /** A region peer's name. */
  region: (id: number): string => `spire.region.${id}`,
});

/**
 * Test-only planted bugs of the node. Never set in production. Besides the region state
 * machine's: `journal-skip-fsync`, the Raft log journal acknowledges syncs it never fsyncs.
 */
export type NodePlant = RegionPlant | "journal-skip-fsync";

/** Raft figures of one region, for /regions and /metrics. */
export interface RegionRaftInfo {
  /** The region. */
  readonly region: Region;
  /** This store's peer id. */
  readonly peerId: number;
  /** Raft term. */
  readonly term: number;
  /** Commit index. */
  readonly commit: number;
  /** Applied index. */
  readonly applied: number;
  /** First index still in the log. */
  readonly firstIndex: number;
  /** Last index of the log. */
  readonly lastIndex: number;
  /** Whether this peer leads. */
  readonly leader: boolean;
  /**
   * Whether it leads and has applied an entry of its own term, so that everything acknowledged
   * before (by it or an earlier incarnation) is applied: reads may then skip ReadIndex when
   * it is the only voter.
   */
  readonly appliedOwnTerm: boolean;
  /** Proposals made since the peer started. */
  readonly proposals: number;
  /** Fsyncs of the region's log since the peer started (proposals arriving together share one). */
  readonly logSyncs: number;
  /** Key and value bytes put since the store last counted the region. */
  readonly bytesPutSinceCount: number;
  /** Keys put since the store last counted the region. */
  readonly keysPutSinceCount: number;
}

/** Hooks the metrics layer sets; all optional. */
export interface NodeObservers {
  /** A proposal committed and applied, after `ms`. */
  commitLatency?(regionId: number, ms: number): void;
  /** A journal fsync done, `ms` after its write and fsync were issued. */
  journalSync?(ms: number): void;
}

/** Everything a node's processes share. */
export class NodeServices {
  /** The node's settings. */
  readonly config: NodeConfig;
  /** The effective RocksDB knobs. */
  readonly tuning: RocksDbTuning;
  /** The actor runtime. */
  readonly runtime: Runtime;
  /** Clock (ms since the epoch) stamped on writes. */
  readonly now: () => number;
  /** Seeded or system randomness for Raft election timeouts. */
  readonly random: () => number;
  /** Test-only planted bugs. */
  readonly plants: readonly NodePlant[];
  /** Metric hooks. */
  readonly observers: NodeObservers = {};
  /** A new handle on the disk of the Raft logs (see SpireNodeOptions.raftDisk). */
  readonly raftDisk: () => FileSystem;
  /** The open engine, while the engine process runs. */
  engine: Engine | undefined;
  /**
   * The disk of the region logs while the raft-logs process runs: their appends are made
   * durable by one node-wide journal (see raft/log_store/journal.ts).
   */
  raftFs: JournalFileSystem | undefined;
  /** This node's store id (set by the store process). */
  storeId: number | undefined;
  #routes: RegionMap | undefined;
  /** Ports the servers bound (kept across their restarts, so port 0 stays the same port). */
  readonly listening: { client?: number; admin?: number } = {};
  /**
   * The Raft driver of each region's current peer process. A killed process
   * cannot stop its driver (no terminate runs), so the next incarnation stops
   * the previous driver before it opens the region's log: two drivers never
   * apply the same log at once.
   */
  readonly regionDrivers = new Map<number, { stop(): Promise<void> }>();
  /** Raft figures per region, refreshed by the region processes. */
  readonly raftInfo = new Map<number, RegionRaftInfo>();
  /** Recently written and read values (see node/value_cache.ts), `valueCacheBytes` large. */
  readonly valueCache: ValueCacheLike;

  /**
   * Creates the shared services of one node.
   * @param options the parts
   */
  constructor(options: {
    config: NodeConfig;
    tuning: RocksDbTuning;
    runtime: Runtime;
    now?: () => number;
    random?: () => number;
    plants?: readonly NodePlant[];
    /** The disk of the Raft logs (default: the real one). */
    raftDisk?: () => FileSystem;
    /** The native library: the value cache lives in native memory (default: in the JS heap). */
    nativeGets?: NativeGets;
  }) {
    this.config = options.config;
    this.tuning = options.tuning;
    this.runtime = options.runtime;
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    this.plants = options.plants ?? [];
    this.raftDisk = options.raftDisk ?? (() => new DenoFileSystem());
    const cacheBytes = options.config.valueCacheBytes ?? 0;
    this.valueCache = options.nativeGets === undefined
      ? new ValueCache(cacheBytes)
      : new NativeValueCache(options.nativeGets, cacheBytes);
  }

  /** The engine, or an error saying it is not running. */
  requireEngine(what: string): Engine {
    const e = this.engine;
    if (e === undefined || e.closed) {
      throw new EngineUnavailableError(`Cannot ${what}: the engine is not running (restarting?)`);
    }
    return e;
  }

  /** The region logs' disk, or an error saying the raft-logs process is not running. */
  requireRaftFs(what: string): JournalFileSystem {
    const fs = this.raftFs;
    if (fs === undefined || fs.closed) {
      throw new Error(`Cannot ${what}: the Raft log journal is not open (restarting?)`);
    }
    return fs;
  }

  /** Replaces the whole routing table (at store start). */
  setRegions(regions: readonly Region[]): void {
    this.#routes = RegionMap.from(regions);
  }

  /** Applies a split to the routing table: `left` and `right` replace the region they came from. */
  applySplit(left: Region, right: Region): void {
    const map = this.#routes;
    if (map === undefined) return;
    const removed = [left.id, right.id].filter((id) => map.getById(id) !== undefined);
    this.#routes = map.replace(removed, [left, right]);
  }

  /** The region holding a key, from the local routing table. */
  route(key: Uint8Array): Region {
    if (this.#routes === undefined) {
      throw new EngineUnavailableError("Cannot route: the store has not loaded its regions yet");
    }
    return this.#routes.getByKey(key);
  }

  /** Every region in key order. */
  regions(): readonly Region[] {
    return this.#routes?.list() ?? [];
  }
}

/** Storage is restarting (engine or store not up): retry shortly. */
export class EngineUnavailableError extends Error {
  /**
   * Creates the error.
   * @param message what could not be done
   */
  constructor(message: string) {
    super(message);
    this.name = "EngineUnavailableError";
  }
}

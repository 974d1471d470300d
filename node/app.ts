/**
 * A Spire node as a supervision tree (standalone mode: one store, embedded
 * PD, single-replica Raft groups):
 *
 * ```
 * spire (one_for_one)
 * ├── config            the effective node settings and RocksDB tuning (served at /config)
 * ├── pd                PD process, persisted under <data-dir>/pd
 * ├── storage (rest_for_one)
 * │   ├── engine        RocksDB in <data-dir>/data; permanent, 60 s shutdown
 * │   ├── regions       DynamicSupervisor of region peers (spire.region.<id>),
 * │   │                 each with its Raft log in <data-dir>/raft/region_<id>
 * │   └── store         store identity, region bootstrap, heartbeats, splits
 * ├── clients (rest_for_one)
 * │   ├── connections   DynamicSupervisor: one temporary process per client connection
 * │   ├── listener      accepts connections (RESP over the RaftBackend)
 * │   └── expiry        idle connections closed, expired keys swept
 * └── admin             admin HTTP: /health /ready /stats /regions /tree /config /metrics
 * ```
 *
 * Why these strategies: region peers and the store hold the engine, so they
 * sit after it under rest_for_one and restart when it does. The client and
 * admin servers reach storage through names, not references, so they stay
 * up across a storage restart: clients see errors (TRYAGAIN, or an "outcome
 * unknown" for writes caught in the crash) for the restart window only. PD
 * is independent of the engine: its crash restarts only itself. The Raft
 * logs are owned by their region peer processes (opened in init, closed in
 * terminate).
 *
 * @module
 */

import { resolve as resolvePath } from "node:path";
import { Registry as PromRegistry } from "prom-client";
import { pdChildSpec, PdClient } from "../pd/mod.ts";
import {
  DynamicSupervisor,
  type ExitReason,
  formatReason,
  type GenServer,
  type Pid,
  Runtime,
  type RuntimeEvent,
  Supervisor,
  supervisorSpec,
  type TreeNode,
  workerSpec,
} from "../supervisor/mod.ts";
import type { RocksDbTuning } from "../tuning/mod.ts";
import { AdminServer } from "./admin_http.ts";
import { ConnectionServer } from "./connection_server.ts";
import { NativeGets } from "./native_gets.ts";
import type { NodeConfig } from "./config.ts";
import { EngineServer } from "./engine_process.ts";
import { registerEngineMetrics } from "./metrics.ts";
import { registerNodeMetrics } from "./node_metrics.ts";
import { RaftBackend } from "./raft_backend.ts";
import { NAMES, type NodePlant, NodeServices } from "./services.ts";
import { RaftLogsServer } from "./raft_logs_process.ts";
import { type FileSystem, mkdirDurable } from "../raft/log_store/mod.ts";
import { StoreServer } from "./store.ts";

/** Options of {@link SpireNode.start}. */
export interface SpireNodeOptions {
  /** The node's settings. */
  readonly config: NodeConfig;
  /** The effective RocksDB knobs. */
  readonly tuning: RocksDbTuning;
  /** Clock for writes (ms since the epoch); default Date.now. */
  readonly now?: () => number;
  /** Randomness for Raft election timeouts; default Math.random. */
  readonly random?: () => number;
  /** Test-only planted bugs. */
  readonly plants?: readonly NodePlant[];
  /** Crash reports of the runtime; default console.error. */
  readonly report?: (line: string) => void;
  /**
   * The disk the Raft logs and their journal are written to (called at each start of the
   * raftlogs process); default the real one. Tests hand in one that fails.
   */
  readonly raftDisk?: () => FileSystem;
  /**
   * false: every GET takes the executor's path, through the value cache (default: the native
   * GET path when it is built; see docs/node.md).
   */
  readonly nativeGets?: false;
}

/** What `/config` shows: the node settings (password hidden) and the engine's RocksDB options. */
export interface ConfigView {
  /** The node settings; the password only as whether one is set. */
  readonly node: Omit<NodeConfig, "password"> & { readonly password: "(set)" | null };
  /** The RocksDB options the engine opens with. */
  readonly rocksdb: RocksDbTuning;
}

/**
 * The config process: holds the settings the node was started with and
 * answers `"get"` with a {@link ConfigView}. The other processes got their
 * settings at start; this one is what the admin server (and an operator)
 * asks for the effective values.
 */
const ConfigProcess: GenServer<ConfigView, ConfigView, "get", ConfigView> = {
  label: "config",
  init(view) {
    return { state: view };
  },
  handleCall(_msg, _from, state) {
    return { reply: state, state };
  },
};

function configView(config: NodeConfig, tuning: RocksDbTuning): ConfigView {
  return {
    node: { ...config, password: config.password === undefined ? null : "(set)" },
    rocksdb: tuning,
  };
}

interface AdminArgs {
  readonly services: NodeServices;
  readonly registry: PromRegistry;
  readonly node: SpireNode;
  readonly holder: { server?: AdminServer };
}

const AdminProcess: GenServer<
  AdminArgs,
  { server: AdminServer; holder: { server?: AdminServer } }
> = {
  label: "admin",
  async init({ services, registry, node, holder }, ctx) {
    ctx.trapExit(true);
    const previous = holder.server;
    delete holder.server;
    await previous?.close();
    const cfg = services.config;
    const json = (body: unknown, status = 200) =>
      new Response(JSON.stringify(body, null, 2) + "\n", {
        status,
        headers: { "content-type": "application/json; charset=utf-8" },
      });
    const server = AdminServer.start({
      hostname: cfg.host,
      port: cfg.adminPort === 0 ? services.listening.admin ?? 0 : cfg.adminPort,
      registry,
      health: () => ({
        ok: true,
        engine: services.engine !== undefined && !services.engine.closed,
      }),
      stats: () => node.stats(),
      routes: {
        "/ready": () => {
          const r = node.readiness();
          return json(r, r.ready ? 200 : 503);
        },
        "/regions": () => json(regionsView(services)),
        "/tree": () => json(treeView(node.tree())),
        "/config": async () =>
          json(
            await node.runtime.call<"get", ConfigView>(NAMES.config, "get", { timeoutMs: 5000 }),
          ),
      },
    });
    services.listening.admin = server.port;
    holder.server = server;
    return { state: { server, holder } };
  },
  async terminate(_reason, state) {
    if (state.holder.server === state.server) delete state.holder.server;
    await state.server.close();
  },
};

function showKey(key: Uint8Array): string {
  let s = "";
  for (const b of key) {
    s += b >= 0x20 && b < 0x7f && b !== 0x5c
      ? String.fromCharCode(b)
      : `\\x${b.toString(16).padStart(2, "0")}`;
  }
  return s;
}

/** The regions this node serves, with their Raft figures, as plain data. */
export function regionsView(services: NodeServices): unknown[] {
  return services.regions().map((r) => {
    const info = services.raftInfo.get(r.id);
    return {
      id: r.id,
      startKey: showKey(r.startKey),
      endKey: showKey(r.endKey),
      epoch: r.epoch,
      peers: r.peers,
      ...(info === undefined ? {} : {
        peerId: info.peerId,
        leader: info.leader,
        term: info.term,
        commit: info.commit,
        applied: info.applied,
        logFirstIndex: info.firstIndex,
        logLastIndex: info.lastIndex,
        proposals: info.proposals,
      }),
    };
  });
}

interface TreeView {
  id: string;
  pid: string | null;
  type: string;
  status: string;
  restartCount: number;
  mailboxLength: number;
  children: TreeView[];
}

function treeView(node: TreeNode | undefined): TreeView | null {
  if (node === undefined) return null;
  return {
    id: node.id,
    pid: node.pid === null ? null : String(node.pid),
    type: node.type,
    status: node.status,
    restartCount: node.restartCount,
    mailboxLength: node.mailboxLength,
    children: node.children.map((c) => treeView(c)!),
  };
}

/**
 * Takes `<data-dir>/spire.lock` (an exclusive flock, released by the OS when
 * the process dies), so that a second node on the same directory stops before
 * any of its processes touches PD's files or the Raft logs.
 */
async function lockDataDir(dir: string): Promise<Deno.FsFile> {
  const file = await Deno.open(`${dir}/spire.lock`, { create: true, write: true });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const gotIt = await Promise.race([
    file.lock(true).then(() => true),
    new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), 1000))),
  ]);
  clearTimeout(timer);
  if (!gotIt) {
    // The lock request stays queued in the OS; the caller exits, which drops it.
    throw new Error(
      `Cannot start node: data directory ${dir} is in use by another Spire node ` +
        `(${dir}/spire.lock is locked); stop it or choose another --data-dir`,
    );
  }
  return file;
}

function describeEvent(e: RuntimeEvent): string {
  const parts: string[] = [e.type];
  for (const [k, v] of Object.entries(e)) {
    if (k === "type") continue;
    parts.push(`${k}=${k === "reason" ? formatReason(v as ExitReason) : String(v)}`);
  }
  return parts.join(" ");
}

/** A running node. */
export class SpireNode {
  /** The actor runtime the tree runs in. */
  readonly runtime: Runtime;
  /** What the processes share. */
  readonly services: NodeServices;
  readonly #registry = new PromRegistry();
  #clients: ConnectionServer | undefined;
  #root: Pid | undefined;
  #closeMetrics: () => void = () => {};
  #lock: Deno.FsFile | undefined;
  #exited: Promise<ExitReason> = new Promise(() => {});
  #stopping: Promise<void> | undefined;
  readonly #native: NativeGets | undefined;

  private constructor(options: SpireNodeOptions) {
    const report = options.report ?? ((line: string) => console.error(line));
    this.runtime = new Runtime({ report: (e) => report(`spire: ${describeEvent(e)}`) });
    // The native GET path and the value cache it reads live in one library (when built).
    this.#native = options.nativeGets === false ? undefined : NativeGets.open();
    this.services = new NodeServices({
      ...(this.#native !== undefined ? { nativeGets: this.#native } : {}),
      config: options.config,
      tuning: options.tuning,
      runtime: this.runtime,
      ...(options.now ? { now: options.now } : {}),
      ...(options.random ? { random: options.random } : {}),
      ...(options.plants ? { plants: options.plants } : {}),
      ...(options.raftDisk ? { raftDisk: options.raftDisk } : {}),
    });
  }

  /**
   * Starts the tree: config, PD, the engine, the region peers, the store, the client
   * and admin servers, in that order.
   *
   * @param options settings, tuning and injected clock and randomness
   * @returns the running node
   * @throws {StartError} when a part cannot start (the message names it)
   */
  static async start(options: SpireNodeOptions): Promise<SpireNode> {
    const node = new SpireNode(options);
    const s = node.services;
    const cfg = s.config;
    // Durably, with RocksDB's directory (RocksDB would make it without fsyncing its parent).
    await mkdirDurable(`${cfg.dataDir}/data`);
    node.#lock = await lockDataDir(cfg.dataDir);
    registerEngineMetrics(node.#registry, () => s.requireEngine("read statistics").getStats());
    const hooks = registerNodeMetrics(node.#registry, node.runtime, {
      services: s,
      tree: () => node.tree(),
      pdStats: async () => {
        try {
          return await new PdClient(node.runtime, NAMES.pd, { timeoutMs: 1000 }).stats();
        } catch {
          return undefined;
        }
      },
      clients: () => node.#clients?.stats,
    });
    node.#closeMetrics = hooks.close;
    node.#clients = new ConnectionServer({
      backend: new RaftBackend({ services: s }),
      writeOrder: cfg.writeOrder,
      nativeGets: node.#native ?? false,
      hostname: cfg.host,
      port: cfg.port,
      password: cfg.password,
      now: s.now,
      engineStats: () => s.requireEngine("read statistics").getStats(),
      regions: () => regionsView(s),
      // What Redis's durability parameters mean here: every write is in the fsynced Raft log
      // before it is acknowledged; there are no RDB snapshots and no eviction.
      configParameters: () => ({
        dir: resolvePath(cfg.dataDir),
        appendonly: "yes",
        appendfsync: "always",
        save: "",
        maxmemory: "0",
        "maxmemory-policy": "noeviction",
      }),
      memoryFields: () => {
        const cache = s.valueCache.stats;
        const engine = s.engine === undefined || s.engine.closed ? undefined : s.engine.getStats();
        return {
          ...(engine === undefined ? {} : {
            rocksdb_memtable_bytes: engine.memtable.bytes,
            rocksdb_block_cache_usage_bytes: engine.blockCache.usageBytes,
            rocksdb_block_cache_capacity_bytes: engine.blockCache.capacityBytes,
          }),
          value_cache_bytes: cache.bytes,
          value_cache_capacity_bytes: cache.capacityBytes,
          maxmemory: 0,
          maxmemory_policy: "noeviction",
        };
      },
      onCommand: hooks.onCommand,
      namePrefix: "spire",
    });
    const children = [
      workerSpec("config", ConfigProcess, configView(cfg, s.tuning), { name: NAMES.config }),
      pdChildSpec({
        dir: `${cfg.dataDir}/pd`,
        clock: s.now,
        schedule: {
          replicas: 1,
          regionMaxSizeBytes: cfg.regionMaxSizeBytes,
          regionSplitSizeBytes: cfg.regionSplitSizeBytes,
          regionMaxKeys: cfg.regionMaxKeys,
          regionSplitKeys: cfg.regionSplitKeys,
        },
      }, { id: "pd", name: NAMES.pd }),
      supervisorSpec("storage", [
        workerSpec("engine", EngineServer, s, { name: NAMES.engine, shutdown: 60_000 }),
        workerSpec("raftlogs", RaftLogsServer, s, { name: NAMES.raftLogs, shutdown: 30_000 }),
        DynamicSupervisor.childSpec("regions", { name: NAMES.regions, label: "regions" }),
        workerSpec("store", StoreServer, s, { name: NAMES.store, shutdown: 10_000 }),
      ], { strategy: "rest_for_one", label: "storage" }),
      node.#clients.childSpec("clients"),
      workerSpec("admin", AdminProcess, {
        services: s,
        registry: node.#registry,
        node,
        holder: {},
      }, {
        name: NAMES.admin,
        shutdown: 5_000,
      }),
    ];
    try {
      node.#root = await Supervisor.start(node.runtime, children, {
        strategy: "one_for_one",
        name: "spire",
        label: "spire",
        maxRestarts: 10,
        maxSeconds: 10,
      });
    } catch (e) {
      node.#closeMetrics();
      node.runtime.close();
      node.#lock?.close();
      throw e;
    }
    node.#exited = node.runtime.waitForExit(node.#root).then((r) => r ?? "normal");
    return node;
  }

  /** The client (RESP) port. */
  get clientPort(): number {
    return this.#clients?.boundPort ?? 0;
  }

  /** The admin HTTP port. */
  get adminPort(): number {
    return this.services.listening.admin ?? 0;
  }

  /** The root supervisor's pid (undefined once stopped). */
  get root(): Pid | undefined {
    return this.#root;
  }

  /**
   * Resolves with the root supervisor's exit reason when the tree stops: after
   * {@link stop}, or when restarts exceeded the root's intensity (the node is down).
   */
  get exited(): Promise<ExitReason> {
    return this.#exited;
  }

  /** The live supervision tree. */
  tree(): TreeNode | undefined {
    if (this.#root === undefined || !this.runtime.isAlive(this.#root)) return undefined;
    return this.runtime.tree(this.#root);
  }

  /** Whether the node serves: engine open, every region led here, client port open. */
  readiness(): {
    ready: boolean;
    engine: boolean;
    regions: number;
    regionsLed: number;
    clients: boolean;
  } {
    const s = this.services;
    const regions = s.regions();
    const led = regions.filter((r) => s.raftInfo.get(r.id)?.leader === true).length;
    const engine = s.engine !== undefined && !s.engine.closed;
    const clients = this.#clients?.listener !== undefined;
    return {
      ready: engine && regions.length > 0 && led === regions.length && clients,
      engine,
      regions: regions.length,
      regionsLed: led,
      clients,
    };
  }

  /**
   * Engine statistics, block cache, value cache, regions, the Raft log journal and clients, as
   * JSON-ready data.
   */
  stats(): unknown {
    const e = this.services.engine;
    return {
      engine: e === undefined || e.closed ? null : e.getStats(),
      cache: e === undefined || e.closed ? null : e.getCacheInfo(),
      valueCache: this.services.valueCache.stats,
      // Whether the native GET path and the native value cache run (built by ./spire).
      native: {
        getPath: this.#native !== undefined,
        valueCache: this.services.valueCache.nativeHandle !== null,
      },
      regions: regionsView(this.services),
      // The Raft log journal's counters since the raftlogs process started, and its replay.
      raftJournal: this.services.raftFs === undefined
        ? null
        : { ...this.services.raftFs.stats, replayed: this.services.raftFs.replayed },
      clients: this.#clients?.stats ?? null,
    };
  }

  /**
   * Stops the tree in reverse start order (admin, clients, storage: store,
   * region peers, raft logs, engine; then PD and config) and closes the runtime. Safe to call
   * twice.
   */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      const root = this.#root;
      this.#root = undefined;
      if (root !== undefined && this.runtime.isAlive(root)) {
        await this.runtime.stop(root, "shutdown");
      }
      this.#closeMetrics();
      this.#clients?.close();
      this.services.valueCache.close?.();
      this.#native?.close();
      this.runtime.close();
      this.#lock?.close();
      this.#lock = undefined;
    })();
    return this.#stopping;
  }
}

/**
 * The node's Prometheus metrics beside the engine's (see `metrics.ts`): Raft
 * per region, actor restarts and mailbox lengths, PD and TSO, client
 * commands by name with a latency histogram, and connections. Everything is
 * read at scrape time from injected sources, into a registry the caller owns.
 *
 * @module
 */

import { Counter, Gauge, type Registry } from "prom-client";
import {
  type CounterCell,
  type HistogramCell,
  LocalCounter,
  LocalHistogram,
} from "./local_metrics.ts";
import type { PdStats } from "../pd/mod.ts";
import { regionLogDir } from "../raft/log_store/mod.ts";
import { isCleanExit, type Runtime, type TreeNode } from "../supervisor/mod.ts";
import type { ClientServerStats, CommandHook } from "./client_server.ts";
import type { NodeServices } from "./services.ts";

/** Where the node metrics read from. */
export interface NodeMetricsSources {
  /** The node's services (Raft figures per region, routing). */
  readonly services: NodeServices;
  /** The supervision tree, for mailbox lengths. */
  readonly tree: () => TreeNode | undefined;
  /** PD's figures, when PD runs. */
  readonly pdStats: () => Promise<PdStats | undefined>;
  /** Client connection counters, when the client server runs. */
  readonly clients: () => ClientCounters | undefined;
}

/** The client port's counters the metrics show. */
export type ClientCounters = Pick<
  ClientServerStats,
  | "connectedClients"
  | "totalConnectionsReceived"
  | "keyspaceHits"
  | "keyspaceMisses"
  | "expiredKeys"
  | "nativeCommandsProcessed"
  | "nativeGetPath"
>;

/** What the metrics need to be told as things happen. */
export interface NodeMetricsHooks {
  /** Give to the client server: counts commands and their latency by name. */
  readonly onCommand: CommandHook;
  /** Stops listening to the runtime's events. */
  readonly close: () => void;
}

const LATENCY_BUCKETS_SECONDS = [
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
];

/** Total size of the files in a directory (not recursive); undefined when it is gone. */
async function directoryBytes(dir: string): Promise<number | undefined> {
  let total = 0;
  try {
    for await (const e of Deno.readDir(dir)) {
      if (!e.isFile) continue;
      try {
        total += (await Deno.stat(`${dir}/${e.name}`)).size;
      } catch {
        // Removed meanwhile (a compacted segment).
      }
    }
  } catch {
    return undefined;
  }
  return total;
}

function walk(node: TreeNode, path: string, visit: (n: TreeNode, path: string) => void): void {
  visit(node, path);
  for (const c of node.children) walk(c, `${path}/${c.id}`, visit);
}

/**
 * Gauges and counters whose values a stats source gives at scrape time (a
 * source answering undefined leaves them as they were). A counter shows the
 * source's own running count.
 */
function statsMetrics<T>(
  registers: Registry[],
  source: () => T | undefined | Promise<T | undefined>,
) {
  return {
    gauge: (name: string, help: string, read: (t: T) => number) =>
      new Gauge({
        name,
        help,
        registers,
        async collect() {
          const t = await source();
          if (t !== undefined) this.set(read(t));
        },
      }),
    counter: (name: string, help: string, read: (t: T) => number) =>
      new Counter({
        name,
        help,
        registers,
        async collect() {
          const t = await source();
          if (t === undefined) return;
          this.reset();
          this.inc(read(t));
        },
      }),
  };
}

/**
 * Registers the node's metrics.
 *
 * @param registry where to register (not prom-client's global one)
 * @param runtime the actor runtime (its restart events are counted)
 * @param sources scrape-time sources
 * @returns hooks to feed commands into, and `close`
 */
export function registerNodeMetrics(
  registry: Registry,
  runtime: Runtime,
  sources: NodeMetricsSources,
): NodeMetricsHooks {
  const registers = [registry];
  const s = sources.services;
  const regionGauge = (
    name: string,
    help: string,
    read: (i: {
      term: number;
      commit: number;
      applied: number;
      firstIndex: number;
      lastIndex: number;
      proposals: number;
      logSyncs: number;
    }) => number,
  ) =>
    new Gauge({
      name,
      help,
      labelNames: ["region"],
      registers,
      collect() {
        this.reset();
        for (const [id, info] of s.raftInfo) this.set({ region: String(id) }, read(info));
      },
    });
  regionGauge("spire_raft_term", "Raft term of the region's peer.", (i) => i.term);
  regionGauge("spire_raft_commit_index", "Raft commit index.", (i) => i.commit);
  regionGauge("spire_raft_applied_index", "Raft applied index.", (i) => i.applied);
  regionGauge(
    "spire_raft_log_entries",
    "Entries in the region's Raft log (last - first + 1).",
    (i) => Math.max(0, i.lastIndex - i.firstIndex + 1),
  );
  regionGauge(
    "spire_raft_proposals",
    "Proposals made to the region's current peer process since it started.",
    (i) => i.proposals,
  );
  regionGauge(
    "spire_raft_log_syncs",
    "Syncs of the region's Raft log asked by its current peer process since it started " +
      "(proposals that arrive together share one; the journal serves the syncs of all regions " +
      "asked together with one fsync: spire_raft_journal_fsyncs_total).",
    (i) => i.logSyncs,
  );
  const journal = statsMetrics(registers, () => s.raftFs?.stats);
  const byJournal = " Counted by the running raftlogs process (restarts at 0 when it restarts).";
  journal.counter(
    "spire_raft_journal_fsyncs_total",
    "Fsyncs of the Raft log journal, each making the appends of every region log durable." +
      byJournal,
    (j) => j.syncs,
  );
  journal.counter(
    "spire_raft_journal_sync_requests_total",
    "Syncs the region logs asked of the journal (what they would have cost in fsyncs)." +
      byJournal,
    (j) => j.syncRequests,
  );
  journal.counter(
    "spire_raft_journal_bytes_total",
    "Bytes written to the Raft log journal." + byJournal,
    (j) => j.bytes,
  );
  journal.counter(
    "spire_raft_journal_checkpoints_total",
    "Checkpoints of the Raft log journal (region log files fsynced, old journal deleted)." +
      byJournal,
    (j) => j.checkpoints,
  );
  const journalSync = new LocalHistogram({
    name: "spire_raft_journal_sync_duration_seconds",
    help: "Time from a Raft log journal write and fsync being issued until the node saw them " +
      "done (a wait for the busy event loop included).",
    labelNames: [],
    buckets: LATENCY_BUCKETS_SECONDS,
    registers,
  });
  const journalSyncCell = journalSync.cell();
  s.observers.journalSync = (ms) => journalSyncCell.observe(ms / 1000);
  new Gauge({
    name: "spire_raft_log_bytes",
    help: "Bytes on disk of the region's Raft log directory (segments, hard state, snapshot).",
    labelNames: ["region"],
    registers,
    async collect() {
      this.reset();
      for (const id of [...s.raftInfo.keys()]) {
        const bytes = await directoryBytes(regionLogDir(s.config.dataDir, id));
        if (bytes !== undefined) this.set({ region: String(id) }, bytes);
      }
    },
  });
  const commitLatency = new LocalHistogram({
    name: "spire_raft_commit_latency_seconds",
    help: "Time from proposal to applied, per region.",
    labelNames: ["region"],
    buckets: LATENCY_BUCKETS_SECONDS,
    registers,
  });
  // Once per proposal (a batch of writes), not per command: the cell lookup is cheap enough.
  s.observers.commitLatency = (regionId, ms) =>
    commitLatency.cell(String(regionId)).observe(ms / 1000);

  const valueCache = statsMetrics(registers, () => s.valueCache.stats);
  valueCache.gauge("spire_value_cache_bytes", "Bytes held by the value cache.", (c) => c.bytes);
  valueCache.gauge(
    "spire_value_cache_capacity_bytes",
    "The value cache's capacity.",
    (c) => c.capacityBytes,
  );
  valueCache.gauge("spire_value_cache_entries", "Keys held by the value cache.", (c) => c.entries);
  valueCache.counter(
    "spire_value_cache_hits_total",
    "Reads answered by the value cache.",
    (c) => c.hits,
  );
  valueCache.counter(
    "spire_value_cache_misses_total",
    "Reads the value cache sent to the engine.",
    (c) => c.misses,
  );
  valueCache.counter(
    "spire_value_cache_evictions_total",
    "Entries evicted from the value cache.",
    (c) => c.evictions,
  );

  new Gauge({
    name: "spire_regions",
    help: "Regions this node serves.",
    registers,
    collect() {
      this.set(s.regions().length);
    },
  });

  const restarts = new Counter({
    name: "spire_actor_restarts_total",
    help: "Child restarts by supervisors, by child id.",
    labelNames: ["child"],
    registers,
  });
  const exits = new Counter({
    name: "spire_actor_crashes_total",
    help: "Abnormal process exits, by process label.",
    labelNames: ["label"],
    registers,
  });
  const unsubscribe = runtime.subscribe((e) => {
    if (e.type === "child_restarted") restarts.inc({ child: e.id });
    else if (e.type === "exit" && !isCleanExit(e.reason)) exits.inc({ label: e.label });
  });
  new Gauge({
    name: "spire_actor_processes",
    help: "Live processes in the runtime.",
    registers,
    collect() {
      this.set(runtime.processCount);
    },
  });
  new Gauge({
    name: "spire_actor_mailbox_length",
    help: "Messages waiting in each supervised process's mailbox, by tree path.",
    labelNames: ["path"],
    registers,
    collect() {
      this.reset();
      const tree = sources.tree();
      if (tree === undefined) return;
      walk(tree, tree.id, (n, path) => {
        if (n.pid !== null) this.set({ path }, n.mailboxLength);
      });
    },
  });

  const pd = statsMetrics(registers, () => sources.pdStats());
  const pdGauge = pd.gauge;
  pdGauge("spire_pd_regions", "Regions in PD's map.", (p) => p.regions);
  pdGauge("spire_pd_stores_up", "Stores PD sees up.", (p) => p.stores.up);
  pdGauge(
    "spire_pd_pending_operators",
    "Operators PD issued and awaits.",
    (p) => p.pendingOperators,
  );
  pdGauge(
    "spire_pd_tso_limit_ms",
    "Persisted upper bound of the TSO's physical time.",
    (p) => p.tsoLimitMs,
  );
  pdGauge("spire_pd_id_limit", "Persisted bound of the id allocator.", (p) => p.idLimit);
  const pdCounter = (name: string, help: string, read: (p: PdStats) => number) =>
    pd.counter(
      name,
      `${help} Counted by the running PD process (restarts at 0 when PD restarts).`,
      read,
    );
  pdCounter("spire_pd_tso_requests_total", "Timestamp requests PD answered.", (p) => p.tsoRequests);
  pdCounter("spire_pd_tso_timestamps_total", "Timestamps PD handed out.", (p) => p.tsoTimestamps);
  pdCounter(
    "spire_pd_store_heartbeats_total",
    "Store heartbeats PD accepted.",
    (p) => p.storeHeartbeats,
  );
  pdCounter(
    "spire_pd_region_heartbeats_total",
    "Region heartbeats PD accepted.",
    (p) => p.regionHeartbeats,
  );
  pdCounter("spire_pd_splits_total", "Region splits PD applied.", (p) => p.splits);

  const commands = new LocalCounter({
    name: "spire_client_commands_total",
    help: "Client commands executed, by command name and outcome.",
    labelNames: ["command", "outcome"],
    registers,
  });
  const commandLatency = new LocalHistogram({
    name: "spire_client_command_duration_seconds",
    help: "Client command latency, by command name.",
    labelNames: ["command"],
    buckets: LATENCY_BUCKETS_SECONDS,
    registers,
  });
  const clients = statsMetrics(registers, sources.clients);
  clients.gauge("spire_client_connections", "Open client connections.", (c) => c.connectedClients);
  clients.gauge(
    "spire_client_connections_received",
    "Client connections accepted by the current client server process.",
    (c) => c.totalConnectionsReceived,
  );
  clients.counter(
    "spire_keyspace_hits_total",
    "Keys looked up by read commands that held a live value (INFO keyspace_hits).",
    (c) => c.keyspaceHits,
  );
  clients.counter(
    "spire_keyspace_misses_total",
    "Keys looked up by read commands that were missing or expired (INFO keyspace_misses).",
    (c) => c.keyspaceMisses,
  );
  clients.counter(
    "spire_expired_keys_total",
    "Keys removed by the background expiry (INFO expired_keys).",
    (c) => c.expiredKeys,
  );
  clients.gauge(
    "spire_native_get_path",
    "1 when the client port's native GET path is loaded (built by ./spire), 0 otherwise.",
    (c) => c.nativeGetPath,
  );
  clients.counter(
    "spire_native_commands_total",
    "GETs and SETs the client port's native paths took (also counted by command).",
    (c) => c.nativeCommandsProcessed,
  );
  // The cells of each command name, looked up once. Names come from the command table, plus
  // "unknown".
  const children = new Map<
    string,
    { ok: CounterCell; error: CounterCell; latency: HistogramCell }
  >();
  return {
    onCommand: (e) => {
      let c = children.get(e.name);
      if (c === undefined) {
        c = {
          ok: commands.cell(e.name, "ok"),
          error: commands.cell(e.name, "error"),
          latency: commandLatency.cell(e.name),
        };
        children.set(e.name, c);
      }
      (e.failed ? c.error : c.ok).inc();
      c.latency.observe(e.durationMs / 1000);
    },
    close: unsubscribe,
  };
}

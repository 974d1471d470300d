/**
 * Deterministic simulation of a Raft group: real core, real driver, real
 * region log store on a simulated disk, a simulated network and clients, all
 * on one fake clock and one seeded generator. Faults come from the seed.
 * Every run checks election safety, log matching, leader completeness,
 * agreement of applied entries and linearizability of the client history.
 *
 * @module
 */

import {
  type Entry,
  type HardState,
  type NodeId,
  type PlantName,
  ProposalDroppedError,
} from "../core/mod.ts";
import {
  encodeKvRequest,
  type KvRequest,
  type KvResult,
  KvStateMachine,
  NotLeaderError,
  OutcomeUnknownError,
  RegionPeer,
} from "../driver/mod.ts";
import { checkLinearizable, HistoryRecorder, type RegisterOp } from "../lin/mod.ts";
import { JournalFileSystem, RegionLogStore, SimDisk } from "../log_store/mod.ts";
import type { Frame } from "../transport/mod.ts";
import { EventQueue } from "./_event_queue.ts";
import { Prng } from "./prng.ts";

/** Fault kinds the simulation can inject. */
export const FAULTS = [
  "loss",
  "dup",
  "reorder",
  "delay",
  "partition",
  "crash",
  "drift",
  "transfer",
] as const;

/** One kind of fault. */
export type Fault = (typeof FAULTS)[number];

/** What to simulate. */
export interface SimConfig {
  /** The seed; everything else random derives from it. */
  readonly seed: number;
  /** Group size: 3 or 5. */
  readonly nodes: 3 | 5;
  /** Faults to inject. */
  readonly faults: readonly Fault[];
  /** A planted bug to switch on in the core. */
  readonly plant?: PlantName;
  /** Simulated milliseconds. Default 4,000. */
  readonly durationMs?: number;
  /** Clients that follow leader hints. Default 4. Two more per node stay on their node. */
  readonly clients?: number;
  /** Keys the clients use. Default 3. */
  readonly keys?: number;
  /**
   * With the `drift` fault, each node's tick period is stretched by a factor drawn from
   * [1, 1 + driftRatioMax). Default 0.09, within the core's stated `clockDriftRatioMax` of 0.1;
   * larger values run outside the bound under which lease reads are safe.
   */
  readonly driftRatioMax?: number;
  /**
   * Writes the region logs through a {@link JournalFileSystem} (as the node does), with a
   * small checkpoint size, so crashes also test the journal's replay and checkpoints.
   */
  readonly journal?: boolean;
  /** Receives a line per notable event (faults, leaders, client outcomes), for debugging. */
  readonly trace?: (line: string) => void;
}

/** Counters of one run. */
export interface SimStats {
  /** Events executed. */
  events: number;
  /** Client operations invoked. */
  ops: number;
  /** Operations that completed with a known result. */
  okOps: number;
  /** Operations certainly not executed. */
  failedOps: number;
  /** Operations whose outcome is unknown. */
  unknownOps: number;
  /** Distinct (term, leader) pairs seen. */
  leaders: number;
  /** Crashes injected. */
  crashes: number;
  /** Partitions injected. */
  partitions: number;
  /** Leadership transfers asked of the leader (the `transfer` fault). */
  transfers: number;
  /** Frames sent / dropped by the network. */
  framesSent: number;
  /** Frames the network dropped (loss, partitions, dead receivers). */
  framesDropped: number;
  /** Highest applied index on any node. */
  appliedMax: number;
  /** Leader snapshots installed by followers that were too far behind. */
  snapshotsInstalled: number;
  /** Snapshot chunks sent (snapshots larger than the run's chunk size travel in chunks). */
  snapshotChunksSent: number;
  /** Whether the linearizability search gave up (inconclusive, not a violation). */
  linInconclusive: boolean;
  /** With `journal`: region log files a restart rewrote from the journal (they lost synced bytes). */
  journalFilesRepaired: number;
}

/** Outcome of one run. */
export interface SimReport {
  /** The run's config. */
  readonly config: SimConfig;
  /** True when every check held. */
  readonly ok: boolean;
  /** What failed, each with details. */
  readonly violations: readonly string[];
  /** The command that replays this run exactly. */
  readonly replay: string;
  /** Counters. */
  readonly stats: SimStats;
  /** One line per node at the end of the run: role, term, commit, applied, log range. */
  readonly nodes: readonly string[];
}

/**
 * The command line that replays a run.
 *
 * @param c the run's config
 * @returns `./spire sim --seed S --nodes N --faults ... [--plant P]`
 */
export function replayCommand(c: SimConfig): string {
  const parts = [
    `./spire sim --seed ${c.seed} --nodes ${c.nodes}`,
    `--faults ${c.faults.length === 0 ? "none" : c.faults.join(",")}`,
  ];
  if (c.plant !== undefined) parts.push(`--plant ${c.plant}`);
  if (c.durationMs !== undefined && c.durationMs !== DEFAULT_DURATION_MS) {
    parts.push(`--duration-ms ${c.durationMs}`);
  }
  if (c.clients !== undefined && c.clients !== DEFAULT_CLIENTS) {
    parts.push(`--clients ${c.clients}`);
  }
  if (c.keys !== undefined && c.keys !== DEFAULT_KEYS) parts.push(`--keys ${c.keys}`);
  if (c.journal === true) parts.push("--journal");
  if (c.driftRatioMax !== undefined && c.driftRatioMax !== DEFAULT_DRIFT_RATIO) {
    parts.push(`--drift-max ${c.driftRatioMax}`);
  }
  return parts.join(" ");
}

const DEFAULT_DURATION_MS = 4_000;
const DEFAULT_CLIENTS = 4;
const DEFAULT_KEYS = 3;
const TICK_MS = 10;
const ELECTION_TICKS = 10;
const HEARTBEAT_TICKS = 2;
const DRIFT_RATIO_MAX = 0.1;
const DEFAULT_DRIFT_RATIO = 0.09;
const OP_TIMEOUT_MS = 400;
const CHECK_EVERY_MS = 50;
const EVENTS_MAX = 200_000;
const SPINS_MAX = 100_000;
const REGION_DIR = "/data/raft/region_1";
const JOURNAL_DIR = "/data/raft/journal";
/** Small, so that runs checkpoint the journal often (the node's default is 64 MiB). */
const JOURNAL_CHECKPOINT_BYTES = 4096;

interface Incarnation {
  readonly n: number;
  peer: RegionPeer<KvResult> | null;
  starting: boolean;
  dead: boolean;
  pendingSyncs: number;
  /** The journal the incarnation's log is written through (with `journal`). */
  journal?: JournalFileSystem;
}

interface Slot {
  readonly id: NodeId;
  readonly disk: SimDisk;
  readonly tickMs: number;
  inc: Incarnation;
  down: boolean;
}

interface Client {
  process: number;
  /**
   * `roaming` clients follow leader hints and issue put, get and cas; `reader` and `writer`
   * clients stay on one node (as Jepsen binds clients to nodes) and issue only gets, or only
   * puts and cas: a deposed leader's lease reads and a new leader's first writes then happen
   * side by side, which is what a lease that outlives its promise gets wrong.
   */
  readonly role: "roaming" | "reader" | "writer";
  guess: NodeId;
  /** Distinguishes the current operation from stale completions. */
  opToken: number;
}

/**
 * Runs one simulation.
 *
 * @param config what to simulate
 * @returns the report (never throws for a failed check; violations are listed)
 * @throws {RangeError} on an invalid config
 * @example
 * ```ts
 * import { runSimulation } from "./simulation.ts";
 * const r = await runSimulation({ seed: 1, nodes: 3, faults: ["loss"], durationMs: 600 });
 * if (!r.ok) throw new Error(r.violations.join("\n"));
 * ```
 */
export async function runSimulation(config: SimConfig): Promise<SimReport> {
  const sim = new Simulation(config);
  return await sim.run();
}

class Simulation {
  readonly #cfg: SimConfig;
  readonly #faults: ReadonlySet<Fault>;
  readonly #durationMs: number;
  readonly #rng: Prng;
  readonly #net: Prng;
  readonly #chaos: Prng;
  readonly #clientsRng: Prng;
  readonly #queue = new EventQueue(EVENTS_MAX);
  readonly #ids: NodeId[];
  readonly #slots = new Map<NodeId, Slot>();
  readonly #blocked = new Set<string>();
  readonly #history = new HistoryRecorder(1_000_000);
  readonly #violations: string[] = [];
  readonly #leaders = new Map<number, NodeId>();
  readonly #committed = new Map<number, { term: number; data: string }>();
  readonly #lastApplied = new Map<NodeId, number>();
  /** Per incarnation, the last persisted hard state and whether the node then led. */
  readonly #lastPersisted = new WeakMap<Incarnation, { hs: HardState; leader: boolean }>();
  readonly #clients: Client[] = [];
  readonly #stats: SimStats = {
    events: 0,
    ops: 0,
    okOps: 0,
    failedOps: 0,
    unknownOps: 0,
    leaders: 0,
    crashes: 0,
    partitions: 0,
    transfers: 0,
    framesSent: 0,
    framesDropped: 0,
    appliedMax: 0,
    snapshotsInstalled: 0,
    snapshotChunksSent: 0,
    linInconclusive: false,
    journalFilesRepaired: 0,
  };
  readonly #lossP: number;
  readonly #dupP: number;
  readonly #delayP: number;
  readonly #readOnly: "safe" | "leaseBased";
  readonly #msgBytesMax: number;
  /** Snapshot chunk size: small ones split even the small KV snapshots into many chunks. */
  readonly #chunkBytes: number;
  readonly #chaosGapMs: number;
  /** Chance that a new leader is crashed within a few milliseconds of its election. */
  readonly #leaderCrashP: number;
  /** Per-seed mix of fault actions, so that seeds differ in character. */
  readonly #weights: {
    partition: number;
    isolate: number;
    heal: number;
    crash: number;
    leaderCrash: number;
    transfer: number;
  };
  readonly #faultEnd: number;
  readonly #clientEnd: number;
  #now = 0;
  #nextProcess = 0;
  #nextValue = 0;
  #okAfterFaults = 0;
  /** Set at shutdown: recurring events stop rescheduling themselves. */
  #ended = false;

  constructor(cfg: SimConfig) {
    if (cfg.nodes !== 3 && cfg.nodes !== 5) {
      throw new RangeError(`Cannot simulate: nodes ${cfg.nodes} is not 3 or 5`);
    }
    for (const f of cfg.faults) {
      if (!(FAULTS as readonly string[]).includes(f)) {
        throw new RangeError(`Cannot simulate: fault "${f}" is not one of ${FAULTS.join(", ")}`);
      }
    }
    this.#cfg = cfg;
    this.#faults = new Set(cfg.faults);
    this.#durationMs = cfg.durationMs ?? DEFAULT_DURATION_MS;
    if (!Number.isSafeInteger(this.#durationMs) || this.#durationMs < 200) {
      throw new RangeError(`Cannot simulate: durationMs ${this.#durationMs} must be >= 200`);
    }
    this.#faultEnd = Math.floor(this.#durationMs * 0.65);
    this.#clientEnd = Math.floor(this.#durationMs * 0.92);
    this.#rng = new Prng(cfg.seed);
    this.#net = this.#rng.fork();
    this.#chaos = this.#rng.fork();
    this.#clientsRng = this.#rng.fork();
    this.#lossP = this.#faults.has("loss") ? this.#chaos.range(0.01, 0.2) : 0;
    this.#dupP = this.#faults.has("dup") ? this.#chaos.range(0.01, 0.1) : 0;
    this.#delayP = this.#faults.has("delay") ? this.#chaos.range(0.01, 0.1) : 0;
    this.#readOnly = cfg.plant === "lease-read-without-check-quorum" || this.#chaos.chance(0.5)
      ? "leaseBased"
      : "safe";
    // Small messages split a new leader's backlog from its own no-op (Figure 8 needs that).
    this.#msgBytesMax = this.#chaos.pick([256, 1024, 4096]);
    this.#chaosGapMs = this.#chaos.range(100, 400);
    this.#chunkBytes = this.#chaos.pick([8, 24, 4096]);
    this.#leaderCrashP = this.#faults.has("crash") ? this.#chaos.range(0, 0.5) : 0;
    this.#weights = {
      partition: this.#chaos.range(0.05, 1),
      isolate: this.#chaos.range(0.05, 1),
      heal: this.#chaos.range(0.05, 1),
      crash: this.#chaos.range(0.05, 1),
      leaderCrash: this.#chaos.range(0.05, 1),
      // Drawn only with the fault, so that seeds without it replay as before.
      transfer: this.#faults.has("transfer") ? this.#chaos.range(0.05, 1) : 0,
    };
    this.#ids = Array.from({ length: cfg.nodes }, (_, i) => i + 1);
    const driftMax = cfg.driftRatioMax ?? DEFAULT_DRIFT_RATIO;
    if (!(driftMax >= 0 && driftMax <= 10)) {
      throw new RangeError(`Cannot simulate: driftRatioMax ${driftMax} is not in [0, 10]`);
    }
    for (const id of this.#ids) {
      // By default tick rates differ by less than the stated drift bound (ratio < 1 + 0.1).
      const drift = this.#faults.has("drift") ? this.#chaos.range(0, driftMax) : 0;
      const slot: Slot = {
        id,
        // The disk's fsync delay counts against the slot's current incarnation.
        disk: new SimDisk({ syncDelay: () => this.#syncDelay(slot) }),
        tickMs: TICK_MS * (1 + drift),
        inc: { n: 0, peer: null, starting: false, dead: true, pendingSyncs: 0 },
        down: true,
      };
      this.#slots.set(id, slot);
    }
  }

  /** The simulated time shown in histories, in milliseconds to 0.01. */
  #clock(): number {
    return Math.round(this.#now * 100) / 100;
  }

  #trace(what: () => string): void {
    if (this.#cfg.trace !== undefined) this.#cfg.trace(`t=${this.#now.toFixed(2)} ${what()}`);
  }

  #at(time: number, run: () => void): void {
    this.#queue.push(time, run);
  }

  #violation(what: string): void {
    if (this.#violations.length < 20) this.#violations.push(`t=${this.#now.toFixed(1)}ms: ${what}`);
  }

  #syncDelay(slot: Slot): Promise<void> {
    const inc = slot.inc;
    inc.pendingSyncs++;
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#at(this.#now + this.#net.range(0.2, 2), () => {
      inc.pendingSyncs--;
      resolve();
    });
    return promise;
  }

  async run(): Promise<SimReport> {
    for (const slot of this.#slots.values()) {
      this.#startNode(slot);
      const first = this.#chaos.range(0, slot.tickMs);
      this.#scheduleTick(slot, first);
    }
    for (let c = 0; c < (this.#cfg.clients ?? DEFAULT_CLIENTS); c++) {
      const client: Client = {
        process: this.#nextProcess++,
        role: "roaming",
        guess: this.#clientsRng.pick(this.#ids),
        opToken: 0,
      };
      this.#clients.push(client);
      this.#at(this.#clientsRng.range(20, 60), () => this.#clientStep(client));
    }
    for (const id of this.#ids) {
      for (const role of ["reader", "writer"] as const) {
        const client: Client = { process: this.#nextProcess++, role, guess: id, opToken: 0 };
        this.#clients.push(client);
        this.#at(this.#clientsRng.range(20, 60), () => this.#clientStep(client));
      }
    }
    this.#scheduleChaos(this.#chaos.range(100, 400));
    this.#at(this.#faultEnd, () => this.#heal());
    let nextCheck = CHECK_EVERY_MS;
    await this.#quiesce();
    for (;;) {
      const ev = this.#queue.pop();
      if (ev === undefined || ev.time > this.#durationMs) break;
      this.#now = ev.time;
      this.#stats.events++;
      try {
        ev.run();
      } catch (error) {
        this.#violation(`event failed: ${(error as Error).stack ?? error}`);
      }
      await this.#quiesce();
      if (this.#now >= nextCheck) {
        nextCheck = this.#now + CHECK_EVERY_MS;
        this.#checkLogs();
      }
      if (this.#violations.length > 0) break;
    }
    this.#checkLogs();
    const nodes = this.#describeNodes();
    await this.#shutdown();
    if (this.#violations.length === 0) this.#checkHistory();
    if (this.#violations.length === 0 && this.#okAfterFaults === 0 && this.#stats.ops > 0) {
      this.#violation("no client operation succeeded after the faults stopped (liveness)");
    }
    return {
      config: this.#cfg,
      ok: this.#violations.length === 0,
      violations: this.#violations,
      replay: replayCommand(this.#cfg),
      stats: this.#stats,
      nodes,
    };
  }

  /** One line per node; also reports a peer that stopped on an error. */
  #describeNodes(): string[] {
    const nodes: string[] = [];
    for (const slot of this.#slots.values()) {
      const peer = slot.inc.peer;
      if (peer?.failure) this.#violation(`node ${slot.id} failed: ${peer.failure.message}`);
      if (peer === null) {
        nodes.push(`node ${slot.id}: down`);
        continue;
      }
      const st = peer.status();
      nodes.push(
        `node ${slot.id}: ${st.softState.raftState} term ${st.hardState.term} vote ${st.hardState.vote} ` +
          `lead ${st.softState.lead} commit ${st.hardState.commit} applied ${peer.applied} ` +
          `log [${peer.storage.firstIndex()}, ${peer.storage.lastIndex()}]` +
          [...st.progress].map(([p, pr]) =>
            ` | ${p}: ${pr.state} match ${pr.match} next ${pr.next} inflight ${pr.inflightMsgs}` +
            (pr.pendingSnapshot > 0 ? ` snap ${pr.pendingSnapshot}` : "")
          ).join(""),
      );
    }
    return nodes;
  }

  /** Lets every peer finish the work it can do without the clock moving. */
  async #quiesce(): Promise<void> {
    let idleSpins = 0;
    for (let i = 0; i < SPINS_MAX; i++) {
      let active = false;
      for (const slot of this.#slots.values()) {
        const inc = slot.inc;
        if (inc.dead || inc.pendingSyncs > 0) continue;
        if (inc.starting || inc.peer?.pending) {
          active = true;
          break;
        }
      }
      idleSpins = active ? 0 : idleSpins + 1;
      if (idleSpins > 4) return;
      await Promise.resolve();
    }
  }

  async #shutdown(): Promise<void> {
    this.#ended = true;
    const stops: Promise<void>[] = [];
    for (const slot of this.#slots.values()) {
      const peer = slot.inc.peer;
      slot.inc.dead = true;
      slot.inc.peer = null;
      if (peer !== null) {
        this.#stats.snapshotChunksSent += peer.stats.snapshotChunksSent;
        stops.push(peer.stop().catch(() => {}));
      }
    }
    // Fire the remaining disk syncs so that stopped loops can finish.
    for (;;) {
      const ev = this.#queue.pop();
      if (ev === undefined) break;
      this.#now = Math.max(this.#now, ev.time);
      ev.run();
      await Promise.resolve();
    }
    await Promise.all(stops);
  }

  // ---- nodes ----

  #startNode(slot: Slot): void {
    this.#trace(() => `start node ${slot.id}`);
    const inc: Incarnation = {
      n: slot.inc.n + 1,
      peer: null,
      starting: true,
      dead: false,
      pendingSyncs: 0,
    };
    slot.inc = inc;
    slot.down = false;
    const random = this.#rng.fork().fn();
    const plants = this.#cfg.plant === undefined ? [] : [this.#cfg.plant];
    const start = async () => {
      let fs: JournalFileSystem | SimDisk = slot.disk;
      if (this.#cfg.journal === true) {
        fs = inc.journal = await JournalFileSystem.open({
          fs: slot.disk,
          dir: JOURNAL_DIR,
          checkpointBytes: JOURNAL_CHECKPOINT_BYTES,
        });
        const { records, filesRepaired, bytesRepaired } = fs.replayed;
        this.#stats.journalFilesRepaired += filesRepaired;
        this.#trace(() =>
          `node ${slot.id} journal replay: ${records} appends, ${filesRepaired} files repaired ` +
          `(${bytesRepaired} bytes)`
        );
        if (inc.dead) {
          fs.abandon();
          return;
        }
      }
      const storage = await RegionLogStore.open({
        fs,
        dir: REGION_DIR,
        segmentBytesMax: 8192,
      });
      if (inc.dead) {
        storage.close();
        return;
      }
      // The state machine starts empty and is restored from the log's snapshot (or bootstrapped at 1).
      this.#lastApplied.set(slot.id, Math.max(1, storage.snapshot().metadata.index));
      const peer = await RegionPeer.start({
        id: slot.id,
        peers: this.#ids,
        storage,
        stateMachine: new KvStateMachine(),
        transport: { send: (to, frame) => this.#send(inc, slot.id, to, frame) },
        random,
        raft: {
          electionTick: ELECTION_TICKS,
          heartbeatTick: HEARTBEAT_TICKS,
          checkQuorum: this.#cfg.plant !== "lease-read-without-check-quorum",
          preVote: true,
          readOnlyOption: this.#readOnly,
          clockDriftRatioMax: DRIFT_RATIO_MAX,
          maxSizePerMsg: this.#msgBytesMax,
          maxInflightMsgs: 32,
          plants,
        },
        compactEntriesThreshold: 60,
        compactKeepEntries: 10,
        snapshotChunkBytes: this.#chunkBytes,
        observer: {
          softState: (id, s, term) => {
            if (!inc.dead && s.raftState === "leader") this.#onLeader(id, term, inc);
          },
          applied: (id, entries) => {
            if (!inc.dead) this.#onApplied(id, entries);
          },
          persisted: (id, hs, role) => {
            if (!inc.dead) this.#onPersisted(id, hs, role, inc);
          },
          restored: (id, index) => {
            if (inc.dead) return;
            this.#stats.snapshotsInstalled++;
            this.#lastApplied.set(id, index);
          },
        },
      });
      if (inc.dead) {
        void peer.stop().catch(() => {});
        return;
      }
      inc.peer = peer;
    };
    start().catch((error) => {
      if (!inc.dead) {
        this.#violation(`node ${slot.id} could not start: ${(error as Error).message}`);
      }
    }).finally(() => {
      inc.starting = false;
    });
  }

  #crash(slot: Slot): void {
    this.#trace(() => `crash node ${slot.id}`);
    const inc = slot.inc;
    inc.dead = true;
    slot.down = true;
    this.#stats.crashes++;
    const peer = inc.peer;
    inc.peer = null;
    if (peer !== null) {
      this.#stats.snapshotChunksSent += peer.stats.snapshotChunksSent;
      void peer.stop().catch(() => {});
    }
    inc.journal?.abandon();
    slot.disk.crash(this.#chaos.chance(0.5) ? () => 0 : this.#chaos.fn());
    this.#at(this.#now + this.#chaos.range(50, 600), () => {
      if (slot.down && this.#now < this.#faultEnd) this.#startNode(slot);
    });
  }

  #scheduleTick(slot: Slot, at: number): void {
    this.#at(at, () => {
      if (this.#ended) return;
      slot.inc.peer?.tick();
      this.#scheduleTick(slot, at + slot.tickMs);
    });
  }

  // ---- network ----

  #send(inc: Incarnation, from: NodeId, to: NodeId, frame: Frame): boolean {
    if (inc.dead) return true;
    if (!this.#slots.has(to)) return false;
    this.#stats.framesSent++;
    const faulty = this.#now < this.#faultEnd;
    if (
      this.#blocked.has(`${from}>${to}`) ||
      (faulty && this.#lossP > 0 && this.#net.chance(this.#lossP))
    ) {
      this.#stats.framesDropped++;
      return true;
    }
    this.#deliverLater(to, frame);
    if (faulty && this.#dupP > 0 && this.#net.chance(this.#dupP)) this.#deliverLater(to, frame);
    return true;
  }

  #deliverLater(to: NodeId, frame: Frame): void {
    let delay = this.#net.range(0.5, 2);
    if (this.#faults.has("reorder")) delay += this.#net.range(0, 15);
    if (this.#now < this.#faultEnd && this.#delayP > 0 && this.#net.chance(this.#delayP)) {
      delay += this.#net.range(30, 400);
    }
    this.#at(this.#now + delay, () => {
      const peer = this.#slots.get(to)!.inc.peer;
      if (peer === null) {
        this.#stats.framesDropped++;
        return;
      }
      peer.receive(frame);
    });
  }

  // ---- faults ----

  #scheduleChaos(at: number): void {
    if (at >= this.#faultEnd) return;
    this.#at(at, () => {
      if (this.#ended) return;
      this.#chaosStep();
      this.#scheduleChaos(this.#now + this.#chaos.range(0.25, 1.75) * this.#chaosGapMs);
    });
  }

  #chaosStep(): void {
    const options: [number, () => void][] = [];
    const w = this.#weights;
    if (this.#faults.has("partition")) {
      options.push([w.partition, () => this.#partition()]);
      const leader = [...this.#slots.values()].find((s) => s.inc.peer?.isLeader === true);
      if (leader !== undefined) options.push([w.isolate, () => this.#isolate(leader.id)]);
      if (this.#blocked.size > 0) options.push([w.heal, () => this.#blocked.clear()]);
    }
    if (this.#faults.has("crash")) {
      const up = [...this.#slots.values()].filter((s) => !s.down);
      if (up.length > 0) options.push([w.crash, () => this.#crash(this.#chaos.pick(up))]);
      // Crashing leaders makes the interesting histories (old-term entries, divergent logs).
      const leaders = up.filter((s) => s.inc.peer?.isLeader === true);
      if (leaders.length > 0) {
        options.push([w.leaderCrash, () => this.#crash(this.#chaos.pick(leaders))]);
      }
    }
    if (this.#faults.has("transfer")) {
      const up = [...this.#slots.values()].filter((s) => !s.down);
      const leader = up.find((s) => s.inc.peer?.isLeader === true);
      const others = up.filter((s) => s !== leader);
      if (leader !== undefined && others.length > 0) {
        options.push([w.transfer, () => this.#transfer(leader, this.#chaos.pick(others))]);
      }
    }
    let total = 0;
    for (const [weight] of options) total += weight;
    let roll = this.#chaos.range(0, total);
    for (const [weight, act] of options) {
      roll -= weight;
      if (roll < 0) {
        act();
        return;
      }
    }
  }

  #partition(): void {
    this.#trace(() => `partition ${[...this.#blocked].join(" ")}`);
    this.#stats.partitions++;
    this.#blocked.clear();
    const ids = [...this.#ids];
    if (this.#chaos.chance(0.6)) {
      // Symmetric: split into two sides.
      for (let i = ids.length - 1; i > 0; i--) {
        const j = this.#chaos.int(i + 1);
        [ids[i], ids[j]] = [ids[j]!, ids[i]!];
      }
      const cut = 1 + this.#chaos.int(ids.length - 1);
      const a = ids.slice(0, cut), b = ids.slice(cut);
      for (const x of a) {
        for (const y of b) {
          this.#blocked.add(`${x}>${y}`);
          this.#blocked.add(`${y}>${x}`);
        }
      }
    } else {
      // Asymmetric: some one-way links fail.
      const links = 1 + this.#chaos.int(ids.length);
      for (let k = 0; k < links; k++) {
        const x = this.#chaos.pick(ids), y = this.#chaos.pick(ids);
        if (x !== y) this.#blocked.add(`${x}>${y}`);
      }
    }
  }

  /** Asks the leader to hand leadership to `to` (it may fail: `to` may lag or be cut off). */
  #transfer(leader: Slot, to: Slot): void {
    this.#stats.transfers++;
    this.#trace(() => `transfer leadership ${leader.id} -> ${to.id}`);
    leader.inc.peer?.transferLeader(to.id);
  }

  /** Cuts a (presumed) leader off from everyone, both ways. */
  #isolate(id: NodeId): void {
    this.#stats.partitions++;
    this.#blocked.clear();
    for (const other of this.#ids) {
      if (other === id) continue;
      this.#blocked.add(`${id}>${other}`);
      this.#blocked.add(`${other}>${id}`);
    }
    this.#trace(() => `isolate node ${id}`);
  }

  #heal(): void {
    this.#trace(() => "heal all, restart down nodes");
    this.#blocked.clear();
    for (const slot of this.#slots.values()) if (slot.down) this.#startNode(slot);
  }

  // ---- clients ----

  #clientStep(c: Client): void {
    if (this.#now >= this.#clientEnd || this.#ended) return;
    const r = this.#clientsRng;
    const key = `k${r.int(this.#cfg.keys ?? DEFAULT_KEYS)}`;
    const value = `v${this.#nextValue++}`;
    const roll = r.next();
    let op: RegisterOp;
    if (c.role === "reader") op = { f: "get", key };
    else if (c.role === "writer" && roll < 0.6) op = { f: "put", key, value };
    else if (c.role === "writer") {
      op = { f: "cas", key, expected: `v${Math.max(0, this.#nextValue - 1 - r.int(6))}`, value };
    } else if (roll < 0.35) op = { f: "put", key, value };
    else if (roll < 0.75) op = { f: "get", key };
    else {
      const expected = r.chance(0.2) ? null : `v${Math.max(0, this.#nextValue - 1 - r.int(6))}`;
      op = { f: "cas", key, expected, value };
    }
    const roams = c.role === "roaming";
    const token = ++c.opToken;
    const process = c.process;
    this.#stats.ops++;
    this.#history.invoke(process, op, this.#clock());
    const next = () => this.#at(this.#now + r.range(0, 20), () => this.#clientStep(c));
    const target = c.guess;
    let why = "";
    const finish = (kind: "ok" | "fail" | "info", result?: KvResult) => {
      if (c.opToken !== token) return;
      c.opToken++;
      this.#trace(() =>
        `p${process} ${op.f} ${op.key} at node ${target}: ${kind} ${String(result ?? why)}`
      );
      if (kind === "ok") {
        this.#stats.okOps++;
        if (this.#now >= this.#faultEnd) this.#okAfterFaults++;
        if (op.f === "put") this.#history.ok(process, this.#clock());
        else this.#history.ok(process, this.#clock(), result);
      } else if (kind === "fail") {
        this.#stats.failedOps++;
        this.#history.fail(process, this.#clock());
      } else {
        this.#stats.unknownOps++;
        this.#history.info(process, this.#clock());
        c.process = this.#nextProcess++;
      }
      next();
    };
    const peer = this.#slots.get(c.guess)!.inc.peer;
    if (peer === null) {
      if (roams) c.guess = r.pick(this.#ids);
      finish("fail");
      return;
    }
    if (op.f === "put" && op.value === null) throw new Error("the simulation's KV has no delete");
    const request = op as KvRequest;
    const bytes = encodeKvRequest(request);
    const pending = op.f === "get" ? peer.read(bytes) : peer.propose(bytes);
    pending.then(
      (result) => finish("ok", result),
      (error: unknown) => {
        why = (error as Error).message;
        if (error instanceof NotLeaderError) {
          if (roams) c.guess = error.leaderHint > 0 ? error.leaderHint : r.pick(this.#ids);
          finish("fail");
        } else if (error instanceof ProposalDroppedError || error instanceof RangeError) {
          if (roams) c.guess = r.pick(this.#ids);
          finish("fail");
        } else if (error instanceof OutcomeUnknownError) {
          finish("info");
        } else {
          this.#violation(`client ${process}: unexpected error ${(error as Error).message}`);
          finish("info");
        }
      },
    );
    this.#at(this.#now + r.range(50, OP_TIMEOUT_MS), () => {
      if (c.opToken === token) {
        why = "timeout";
        if (r.chance(0.5) && roams) c.guess = r.pick(this.#ids);
        finish("info");
      }
    });
  }

  // ---- checks ----

  #onLeader(id: NodeId, term: number, inc: Incarnation): void {
    this.#trace(() => `node ${id} leads term ${term}`);
    const other = this.#leaders.get(term);
    if (other === undefined) {
      this.#leaders.set(term, id);
      this.#stats.leaders++;
    } else if (other !== id) {
      this.#violation(`election safety: nodes ${other} and ${id} are both leader of term ${term}`);
    }
    // Completeness is judged only while the node still leads that term: a leader deposed while
    // its Ready was being persisted may rightly miss entries committed by its successor.
    const peer = inc.peer;
    if (peer !== null && peer.isLeader && peer.status().hardState.term === term) {
      this.#checkCompleteness(id, term);
    }
    if (
      this.#leaderCrashP > 0 && this.#now < this.#faultEnd && this.#chaos.chance(this.#leaderCrashP)
    ) {
      const slot = this.#slots.get(id)!;
      const inc = slot.inc;
      this.#at(this.#now + this.#chaos.range(0, 40), () => {
        if (slot.inc === inc && !inc.dead && this.#now < this.#faultEnd) this.#crash(slot);
      });
    }
  }

  /**
   * Leader completeness, checked the moment a node reports leadership (its log
   * is durable then): every entry applied anywhere before now was committed in
   * an earlier term, so the new leader's log must hold it.
   */
  #checkCompleteness(id: NodeId, term: number): void {
    const peer = this.#slots.get(id)!.inc.peer;
    if (peer === null) return;
    const s = peer.storage;
    let committedMax = 0;
    for (const i of this.#committed.keys()) committedMax = Math.max(committedMax, i);
    if (s.lastIndex() < committedMax) {
      this.#violation(
        `leader completeness: node ${id} became leader of term ${term} with last index ` +
          `${s.lastIndex()}, but entry ${committedMax} was committed before`,
      );
      return;
    }
    for (let i = s.firstIndex(); i <= committedMax; i++) {
      const c = this.#committed.get(i);
      if (c !== undefined && s.term(i) !== c.term) {
        this.#violation(
          `leader completeness: node ${id} became leader of term ${term} with term ${s.term(i)} ` +
            `at index ${i}, but the entry committed there has term ${c.term}`,
        );
        return;
      }
    }
  }

  /**
   * The leader commit rule (Raft §5.4.2): a leader advances its commit index
   * only to an entry of its own term, so whenever a leader's persisted commit
   * grows, the entry there carries the leader's term.
   */
  #onPersisted(id: NodeId, hs: HardState, role: string, inc: Incarnation): void {
    const before = this.#lastPersisted.get(inc);
    const leader = role === "leader";
    this.#lastPersisted.set(inc, { hs, leader });
    // Only a node that led this term from the previous hard state to this one advanced its
    // commit as leader (a leader that steps down never leads the same term again).
    if (!leader || before === undefined || !before.leader || before.hs.term !== hs.term) return;
    if (hs.commit <= before.hs.commit) return;
    const peer = inc.peer;
    if (peer === null) return;
    const s = peer.storage;
    if (hs.commit < s.firstIndex() || hs.commit > s.lastIndex()) return;
    const t = s.term(hs.commit);
    if (t !== hs.term) {
      this.#violation(
        `leader commit rule: leader ${id} of term ${hs.term} advanced its commit to ${hs.commit}, ` +
          `an entry of term ${t} (only entries of the leader's own term may be committed by counting)`,
      );
    }
  }

  #onApplied(id: NodeId, entries: readonly Entry[]): void {
    let last = this.#lastApplied.get(id) ?? 0;
    for (const e of entries) {
      if (e.index <= last) continue;
      if (e.index !== last + 1) {
        this.#violation(`node ${id} applied index ${e.index} right after ${last}`);
      }
      last = e.index;
      const data = bytesKey(e.data);
      const seen = this.#committed.get(e.index);
      if (seen === undefined) this.#committed.set(e.index, { term: e.term, data });
      else if (seen.term !== e.term || seen.data !== data) {
        this.#violation(
          `state machine safety: node ${id} applied entry ${e.index} of term ${e.term}, ` +
            `another node applied a different entry (term ${seen.term}) at that index`,
        );
      }
    }
    this.#lastApplied.set(id, last);
    this.#stats.appliedMax = Math.max(this.#stats.appliedMax, last);
  }

  /** Log matching across idle live nodes. */
  #checkLogs(): void {
    const live: { id: NodeId; peer: RegionPeer<KvResult> }[] = [];
    for (const slot of this.#slots.values()) {
      const peer = slot.inc.peer;
      if (peer !== null && !slot.inc.dead && !peer.pending && slot.inc.pendingSyncs === 0) {
        live.push({ id: slot.id, peer });
      }
    }
    for (let a = 0; a < live.length; a++) {
      for (let b = a + 1; b < live.length; b++) this.#checkMatching(live[a]!, live[b]!);
    }
  }

  #checkMatching(
    x: { id: NodeId; peer: RegionPeer<KvResult> },
    y: { id: NodeId; peer: RegionPeer<KvResult> },
  ): void {
    const sx = x.peer.storage, sy = y.peer.storage;
    const lo = Math.max(sx.firstIndex(), sy.firstIndex());
    const hi = Math.min(sx.lastIndex(), sy.lastIndex());
    if (lo > hi) return;
    const ex = sx.entries(lo, hi + 1, Infinity), ey = sy.entries(lo, hi + 1, Infinity);
    let top = -1;
    for (let k = ex.length - 1; k >= 0; k--) {
      if (ex[k]!.term === ey[k]!.term) {
        top = k;
        break;
      }
    }
    for (let k = 0; k < top; k++) {
      const a = ex[k]!, b = ey[k]!;
      if (a.term !== b.term || bytesKey(a.data) !== bytesKey(b.data)) {
        this.#violation(
          `log matching: nodes ${x.id} and ${y.id} agree on term ${ex[top]!.term} at index ` +
            `${ex[top]!.index} but differ at index ${a.index} (terms ${a.term} and ${b.term})`,
        );
        return;
      }
    }
  }

  #checkHistory(): void {
    const r = checkLinearizable(this.#history.events, { statesMax: 500_000 });
    if (r.valid === false) this.#violations.push(`client history: ${r.explanation}`);
    else if (r.valid === "unknown") this.#stats.linInconclusive = true;
  }
}

function bytesKey(data: Uint8Array): string {
  let s = "";
  for (let i = 0; i < data.length; i++) s += String.fromCharCode(data[i]!);
  return s;
}

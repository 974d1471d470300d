/**
 * A region peer: drives one Raft node. It persists each `Ready` (one fsync
 * for everything that arrived together) before sending its messages, applies
 * committed entries to a state machine, answers proposals when they apply and
 * reads once they are linearizable, streams snapshots in chunks and compacts
 * the log. Persisting a `Ready` overlaps applying the one before it (two
 * stages, as etcd's raft allows): entries are applied in order, only once
 * durable, and a proposal is answered only after its entry is durable and
 * applied.
 *
 * @module
 */

import {
  type Config,
  type Entry,
  type HardState,
  type Message,
  type NodeId,
  RawNode,
  type Ready,
  type Snapshot,
  type SoftState,
  type Status,
} from "../core/mod.ts";
import type { Frame, Transport } from "../transport/mod.ts";
import type { LogStorage } from "./log_storage.ts";
import type { StateMachine } from "./state_machine.ts";

/** Thrown to a client when this peer is not the leader; retry at `leaderHint`. */
export class NotLeaderError extends Error {
  /** The leader this peer knows of, or 0. */
  readonly leaderHint: NodeId;
  /**
   * Creates a NotLeaderError.
   * @param message what was refused
   * @param leaderHint the known leader or 0
   */
  constructor(message: string, leaderHint: NodeId) {
    super(message);
    this.name = "NotLeaderError";
    this.leaderHint = leaderHint;
  }
}

/**
 * Thrown to a client when its proposal was accepted but its fate is unknown
 * (leadership changed or the peer stopped): it may still commit.
 */
export class OutcomeUnknownError extends Error {
  /**
   * Creates a OutcomeUnknownError.
   * @param message why the outcome is unknown
   */
  constructor(message: string) {
    super(message);
    this.name = "OutcomeUnknownError";
  }
}

/** Raft options the driver passes through (id, storage, applied and random are its own). */
export type PeerRaftConfig = Partial<Omit<Config, "id" | "storage" | "applied" | "random">>;

/** Hooks for tests and the simulation. */
export interface PeerObserver {
  /**
   * A `Ready` changed the role or leader; `state` and `term` are as of the moment the `Ready`
   * was taken (the node may have moved on while it was being persisted).
   */
  softState?(id: NodeId, state: SoftState, term: number): void;
  /** Committed entries (all kinds) were applied, in order. */
  applied?(id: NodeId, entries: readonly Entry[]): void;
  /**
   * A hard state was persisted (after its `Ready`'s entries, before its messages went out);
   * `role` is the node's role when the `Ready` was taken.
   */
  persisted?(id: NodeId, hardState: HardState, role: SoftState["raftState"]): void;
  /** The state machine was replaced by a leader's snapshot at `index`. */
  restored?(id: NodeId, index: number): void;
}

/** Options of {@link RegionPeer.start}. */
export interface RegionPeerOptions<R> {
  /** This peer's node id (> 0). */
  readonly id: NodeId;
  /** The founding voters, used only when `storage` is empty (a new group). */
  readonly peers?: readonly NodeId[];
  /** The region log (durable `RegionLogStore` or `MemoryLogStorage`). */
  readonly storage: LogStorage;
  /** What committed commands apply to. */
  readonly stateMachine: StateMachine<R>;
  /** How frames reach other peers. */
  readonly transport: Transport;
  /** Seeded uniform source in [0, 1): election timeouts and request ids. */
  readonly random: () => number;
  /** Raft options (defaults: electionTick 10, heartbeatTick 1, checkQuorum and preVote on). */
  readonly raft?: PeerRaftConfig;
  /** Take a snapshot and compact when this many entries were applied since the last one. Default 10,000. */
  readonly compactEntriesThreshold?: number;
  /** Entries kept below the snapshot for slow followers. Default 1,000. */
  readonly compactKeepEntries?: number;
  /** Snapshot images larger than this travel in chunks of this size. Default 1 MiB. */
  readonly snapshotChunkBytes?: number;
  /** Largest snapshot image accepted from a leader. Default 1 GiB. */
  readonly snapshotBytesMax?: number;
  /** Proposals awaiting their result; more are refused. Default 65,536. */
  readonly pendingProposalsMax?: number;
  /** Reads awaiting their read index; more are refused. Default 4,096. */
  readonly pendingReadsMax?: number;
  /** Test hooks. */
  readonly observer?: PeerObserver;
}

interface PendingProposal<R> {
  resolve(r: R): void;
  reject(e: Error): void;
}

interface PendingRead<R> {
  readonly seq: number;
  readonly request: Uint8Array;
  index: number;
  resolve(r: R): void;
  reject(e: Error): void;
}

/** Envelope of a proposal: u32 origin | u32 nonce | f64 sequence | command. */
const ENVELOPE_BYTES = 16;

/** Counters of a {@link RegionPeer}. */
export interface PeerStats {
  /** `Ready` batches handled. */
  readies: number;
  /** `Ready` batches that needed an fsync. */
  syncedReadies: number;
  /** Entries persisted. */
  entriesPersisted: number;
  /** Entries applied. */
  entriesApplied: number;
  /** Snapshots taken for compaction. */
  snapshotsTaken: number;
  /** Snapshot chunks sent. */
  snapshotChunksSent: number;
}

/**
 * Drives one Raft node: a plain class with an internal processing loop; the
 * node layer wraps it in an actor. Call {@link tick} on a timer, hand it
 * received frames with {@link receive}, and ask it for {@link propose} and
 * {@link read}.
 *
 * @example
 * ```ts
 * import { KvStateMachine, MemoryLogStorage, RegionPeer, encodeKvRequest } from "./mod.ts";
 * import { MemoryNetwork } from "../transport/mod.ts";
 * const net = new MemoryNetwork();
 * const slot: { peer?: RegionPeer<unknown> } = {};
 * const peer = await RegionPeer.start({
 *   id: 1, peers: [1], storage: new MemoryLogStorage(), stateMachine: new KvStateMachine(),
 *   transport: net.endpoint(1, (f) => slot.peer?.receive(f)), random: () => 0.5,
 * });
 * slot.peer = peer;
 * peer.campaign();
 * while (!peer.isLeader) await new Promise((r) => setTimeout(r, 1));
 * await peer.propose(encodeKvRequest({ f: "put", key: "k", value: "v" }));
 * if (await peer.read(encodeKvRequest({ f: "get", key: "k" })) !== "v") throw new Error("lost");
 * await peer.stop();
 * net.close();
 * ```
 */
export class RegionPeer<R> {
  /** This peer's node id. */
  readonly id: NodeId;
  readonly #node: RawNode;
  readonly #storage: LogStorage;
  readonly #sm: StateMachine<R>;
  readonly #transport: Transport;
  readonly #observer: PeerObserver;
  readonly #nonce: number;
  readonly #compactThreshold: number;
  readonly #compactKeep: number;
  readonly #chunkBytes: number;
  readonly #snapshotBytesMax: number;
  readonly #proposalsMax: number;
  readonly #readsMax: number;
  readonly #proposals = new Map<number, PendingProposal<R>>();
  readonly #reads = new Map<number, PendingRead<R>>();
  /** Reads with a read index, in read-index order, waiting for `applied >= index`. */
  #readyReads: PendingRead<R>[] = [];
  #seq = 0;
  #applied: number;
  /** Term and role as of the last `Ready` taken (what the node was when it produced it). */
  #readyTerm: number;
  #readyRole: SoftState["raftState"] = "follower";
  #stopped = false;
  #failure: Error | null = null;
  #wake: (() => void) | null = null;
  #busy = false;
  /** The apply stage of the last `Ready` taken, while it runs (see #handle). */
  #applying: Promise<void> | null = null;
  /**
   * The last `Ready`'s committed entries, not yet being applied: their apply stage starts once
   * the next `Ready`'s write and fsync are under way (or at once when there is none), so the
   * fsync overlaps it (see #handle).
   */
  #toApply: readonly Entry[] | null = null;
  #loop: Promise<void> = Promise.resolve();
  /** Incoming snapshot chunks per sender. */
  readonly #incoming = new Map<
    NodeId,
    { index: number; parts: (Uint8Array | undefined)[]; bytes: number }
  >();
  readonly #stats: PeerStats = {
    readies: 0,
    syncedReadies: 0,
    entriesPersisted: 0,
    entriesApplied: 0,
    snapshotsTaken: 0,
    snapshotChunksSent: 0,
  };

  private constructor(opts: RegionPeerOptions<R>, node: RawNode, applied: number) {
    this.id = opts.id;
    this.#node = node;
    this.#storage = opts.storage;
    this.#sm = opts.stateMachine;
    this.#transport = opts.transport;
    this.#observer = opts.observer ?? {};
    this.#nonce = Math.floor(opts.random() * 0x1_0000_0000) >>> 0;
    this.#compactThreshold = positive(
      "compactEntriesThreshold",
      opts.compactEntriesThreshold ?? 10_000,
    );
    this.#compactKeep = nonNegative("compactKeepEntries", opts.compactKeepEntries ?? 1_000);
    this.#chunkBytes = positive("snapshotChunkBytes", opts.snapshotChunkBytes ?? 1024 * 1024);
    this.#snapshotBytesMax = positive("snapshotBytesMax", opts.snapshotBytesMax ?? 1024 ** 3);
    this.#proposalsMax = positive("pendingProposalsMax", opts.pendingProposalsMax ?? 65_536);
    this.#readsMax = positive("pendingReadsMax", opts.pendingReadsMax ?? 4_096);
    this.#applied = applied;
    this.#readyTerm = node.status().hardState.term;
  }

  /**
   * Starts a peer over a recovered (or empty) log: bootstraps a new group when
   * the log is empty and `peers` is given, restores the state machine from the
   * log's snapshot when it is behind, and starts processing.
   *
   * @param opts the peer's parts and limits
   * @returns the running peer
   * @throws {RangeError} on invalid options
   */
  static async start<R>(opts: RegionPeerOptions<R>): Promise<RegionPeer<R>> {
    if (!Number.isSafeInteger(opts.id) || opts.id <= 0) {
      throw new RangeError(`Cannot start region peer: id ${opts.id} must be a positive integer`);
    }
    const storage = opts.storage;
    if (storage.lastIndex() === 0 && opts.peers !== undefined && opts.peers.length > 0) {
      // A new group starts from a bootstrap snapshot at index 1 holding the founding membership.
      const voters = [...opts.peers].sort((a, b) => a - b);
      const data = await opts.stateMachine.snapshot();
      await storage.save({
        snapshot: { metadata: { index: 1, term: 1, confState: { voters, learners: [] } }, data },
        entries: [],
        hardState: { term: 1, vote: 0, commit: 1 },
      }, true);
    }
    const snap = storage.snapshot();
    if (snap.metadata.index > opts.stateMachine.appliedIndex()) {
      await opts.stateMachine.restore(snap);
    }
    const applied = opts.stateMachine.appliedIndex();
    const r = opts.raft ?? {};
    const node = new RawNode({
      electionTick: 10,
      heartbeatTick: 1,
      checkQuorum: true,
      preVote: true,
      ...r,
      id: opts.id,
      storage,
      applied,
      random: opts.random,
    });
    const peer = new RegionPeer(opts, node, applied);
    peer.#loop = peer.#run();
    return peer;
  }

  // ---- inputs ----

  /** Advances logical time by one tick. */
  tick(): void {
    if (this.#stopped) return;
    this.#node.tick();
    this.#kick();
  }

  /** Starts an election now. */
  campaign(): void {
    if (this.#stopped) return;
    this.#node.campaign();
    this.#kick();
  }

  /** Asks the leader to hand leadership to `transferee`. */
  transferLeader(transferee: NodeId): void {
    if (this.#stopped) return;
    this.#node.transferLeader(transferee);
    this.#kick();
  }

  /**
   * Handles a frame from another peer. Malformed frames are dropped.
   * @param frame a Raft message or a snapshot chunk
   */
  receive(frame: Frame): void {
    if (this.#stopped) return;
    let message: Message | undefined;
    if (frame.kind === "message") message = frame.message;
    else {message = this.#assemble(
        frame.chunk.message,
        frame.chunk.seq,
        frame.chunk.total,
        frame.chunk.bytes,
      );}
    if (message === undefined) return;
    try {
      this.#node.step(message);
    } catch (error) {
      if (!(error instanceof RangeError)) throw error;
      return; // a local message kind or a misaddressed message: not for us
    }
    this.#kick();
  }

  /**
   * Proposes a command on the leader.
   *
   * @param command the command bytes for the state machine
   * @returns the state machine's result once the command is applied here
   * @throws {NotLeaderError} at once when this peer is not the leader (the command is not in the log)
   * @throws {ProposalDroppedError} when the core refused it (it is not in the log)
   * @throws {RangeError} when too many proposals are pending
   * @throws {OutcomeUnknownError} when leadership changed or the peer stopped before it applied
   */
  propose(command: Uint8Array): Promise<R> {
    try {
      this.#checkLeader("propose");
      if (this.#proposals.size >= this.#proposalsMax) {
        throw new RangeError(
          `Cannot propose: ${this.#proposals.size} proposals pending, the limit is ${this.#proposalsMax}`,
        );
      }
      const seq = ++this.#seq;
      const data = new Uint8Array(ENVELOPE_BYTES + command.length);
      const v = new DataView(data.buffer);
      v.setUint32(0, this.id, true);
      v.setUint32(4, this.#nonce, true);
      v.setFloat64(8, seq, true);
      data.set(command, ENVELOPE_BYTES);
      this.#node.propose(data);
      const { promise, resolve, reject } = Promise.withResolvers<R>();
      this.#proposals.set(seq, { resolve, reject });
      this.#kick();
      return promise;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Serves a linearizable read (ReadIndex, or the leader lease when the Raft
   * config says `leaseBased`).
   *
   * @param request the query for the state machine
   * @returns the query's answer once the state machine has applied the read index
   * @throws {NotLeaderError} when this peer is not (or stops being) the leader
   * @throws {ProposalDroppedError} when the core cannot serve reads now
   */
  read(request: Uint8Array): Promise<R> {
    try {
      this.#checkLeader("read");
      if (this.#reads.size >= this.#readsMax) {
        throw new RangeError(
          `Cannot read: ${this.#reads.size} reads pending, the limit is ${this.#readsMax}`,
        );
      }
      const seq = ++this.#seq;
      const ctx = new Uint8Array(12);
      const v = new DataView(ctx.buffer);
      v.setUint32(0, this.#nonce, true);
      v.setFloat64(4, seq, true);
      this.#node.readIndex(ctx);
      const { promise, resolve, reject } = Promise.withResolvers<R>();
      this.#reads.set(seq, { seq, request, index: -1, resolve, reject });
      this.#kick();
      return promise;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  // ---- state ----

  /** The node's status (role, term, commit, progress). */
  status(): Status {
    return this.#node.status();
  }

  /** Whether this peer is the leader now. */
  get isLeader(): boolean {
    return this.#node.leader === this.id;
  }

  /** The leader this peer knows of, or 0. */
  get leader(): NodeId {
    return this.#node.leader;
  }

  /**
   * Whether this peer is the leader and has applied an entry of its current term. Entries of
   * a term start with the leader's empty entry, so every entry that an earlier leader (an
   * earlier incarnation of this peer, say) committed or acknowledged is applied by then: a
   * sole voter may serve reads from its state machine without a ReadIndex round.
   */
  get appliedOwnTerm(): boolean {
    if (!this.isLeader) return false;
    try {
      return this.#storage.term(this.#applied) === this.#node.status().hardState.term;
    } catch {
      return false; // compacted below the snapshot: not an entry of this term
    }
  }

  /** The last index applied to the state machine. */
  get applied(): number {
    return this.#applied;
  }

  /** Counters. */
  get stats(): Readonly<PeerStats> {
    return { ...this.#stats };
  }

  /** The error that stopped the peer (a storage failure), or null. */
  get failure(): Error | null {
    return this.#failure;
  }

  /** Whether the processing loop is handling a `Ready` (persisting or applying it) right now. */
  get busy(): boolean {
    return this.#busy || this.#applying !== null || this.#toApply !== null;
  }

  /** Whether the peer has work: a `Ready` in hand, being applied or waiting to be taken. */
  get pending(): boolean {
    return !this.#stopped &&
      (this.#busy || this.#applying !== null || this.#toApply !== null || this.#node.hasReady());
  }

  /** The log this peer writes (for inspection by tests and the simulation). */
  get storage(): LogStorage {
    return this.#storage;
  }

  /**
   * Stops processing. Pending proposals fail with {@link OutcomeUnknownError},
   * pending reads with {@link NotLeaderError}. The storage is closed once the
   * loop has finished. Safe to call twice.
   */
  async stop(): Promise<void> {
    if (!this.#stopped) {
      this.#stopped = true;
      this.#failPending("the peer stopped");
      this.#kick();
    }
    await this.#loop;
    this.#storage.close();
  }

  // ---- the loop ----

  #kick(): void {
    const wake = this.#wake;
    if (wake !== null) {
      this.#wake = null;
      wake();
    }
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      try {
        if (!this.#node.hasReady()) {
          this.#startApply();
          if (this.#applying !== null) {
            // Finish the apply in flight unless new work arrives first.
            const woken = new Promise<void>((resolve) => this.#wake = resolve);
            await Promise.race([this.#applying, woken]);
            if (!this.#node.hasReady()) await this.#settle();
            continue;
          }
          this.#busy = false;
          await new Promise<void>((resolve) => this.#wake = resolve);
          continue;
        }
        this.#busy = true;
        await this.#handle(this.#node.ready());
      } catch (error) {
        this.#fail(error as Error);
      }
    }
    this.#startApply();
    await this.#applying;
    this.#applying = null;
    this.#busy = false;
  }

  #fail(error: Error): void {
    if (this.#stopped) return;
    this.#failure = error;
    this.#stopped = true;
    this.#failPending(`the peer failed: ${error.message}`);
    this.#kick();
  }

  /**
   * Waits for the apply stage in flight (the previous `Ready`'s committed
   * entries and reads), then compacts the log if due; nothing else writes the
   * log meanwhile.
   */
  async #settle(): Promise<void> {
    this.#startApply();
    const applying = this.#applying;
    if (applying === null) return;
    await applying;
    this.#applying = null;
    if (!this.#stopped) await this.#maybeCompact();
  }

  /**
   * Handles one `Ready` in two stages. Persist: its entries, snapshot and hard
   * state are written and their fsync issued, and only then does the previous
   * `Ready`'s apply stage start, so it runs while the fsync does (a durable
   * SET's cycle is the fsync plus whatever runs after it: the apply, when
   * it started afterwards, added its own time to every cycle). Once the fsync
   * is done and that apply has finished, messages go out, the `Ready` is
   * advanced and its committed entries wait for their own apply stage:
   * applied in order (each already durable: persisted by this `Ready` or an
   * earlier one), proposals answered, ready reads served. It starts when the
   * next `Ready`'s persist is under way, or at once when no `Ready` is waiting.
   */
  async #handle(rd: Ready): Promise<void> {
    this.#stats.readies++;
    if (rd.hardState !== undefined) this.#readyTerm = rd.hardState.term;
    if (rd.softState !== undefined) this.#readyRole = rd.softState.raftState;
    // 1. Persist: snapshot, entries and hard state in one write, one fsync when needed.
    const update = {
      entries: rd.entries,
      ...(rd.snapshot === undefined ? {} : { snapshot: rd.snapshot }),
      ...(rd.hardState === undefined ? {} : { hardState: rd.hardState }),
    };
    if (rd.entries.length > 0 || rd.snapshot !== undefined || rd.hardState !== undefined) {
      if (rd.snapshot !== undefined) await this.#settle(); // installing replaces the log
      const saving = this.#storage.save(update, rd.mustSync);
      this.#startApply(); // the previous Ready's apply runs while this one is written and synced
      await saving;
      if (rd.mustSync) this.#stats.syncedReadies++;
      this.#stats.entriesPersisted += rd.entries.length;
      if (rd.hardState !== undefined) {
        this.#observer.persisted?.(this.id, rd.hardState, this.#readyRole);
      }
    }
    // The previous apply stage ends before this Ready's effects (its apply stays in order).
    await this.#settle();
    if (this.#stopped) return;
    if (rd.snapshot !== undefined && rd.snapshot.metadata.index > this.#applied) {
      await this.#sm.restore(rd.snapshot);
      this.#applied = rd.snapshot.metadata.index;
      this.#observer.restored?.(this.id, this.#applied);
    }
    // 2. Only now, with everything durable, may messages go out.
    for (const m of rd.messages) this.#send(m);
    if (rd.softState !== undefined) {
      this.#observer.softState?.(this.id, rd.softState, this.#readyTerm);
      if (rd.softState.raftState !== "leader") this.#failPending("leadership changed");
    }
    for (const rs of rd.readStates) {
      const v = new DataView(
        rs.requestCtx.buffer,
        rs.requestCtx.byteOffset,
        rs.requestCtx.byteLength,
      );
      if (rs.requestCtx.length !== 12 || v.getUint32(0, true) !== this.#nonce) continue;
      const read = this.#reads.get(v.getFloat64(4, true));
      if (read === undefined) continue;
      read.index = rs.index;
      this.#readyReads.push(read);
    }
    // 3. Acknowledge (everything in it is durable) and start applying; the loop goes on.
    const committed = rd.committedEntries;
    this.#node.advance(rd);
    if (committed.length > 0 || this.#readyReads.length > 0) this.#toApply = committed;
  }

  /** Starts the apply stage of the entries #handle left for it, if any. */
  #startApply(): void {
    const committed = this.#toApply;
    if (committed === null) return;
    this.#toApply = null;
    this.#applying = this.#applyStage(committed).catch((error) => this.#fail(error as Error));
  }

  /** Applies committed entries in order, then serves the reads whose index they reached. */
  async #applyStage(committed: readonly Entry[]): Promise<void> {
    if (committed.length > 0) await this.#apply(committed);
    if (this.#stopped) return;
    await this.#serveReads();
  }

  async #apply(entries: readonly Entry[]): Promise<void> {
    const commands: Entry[] = [];
    const mine: (number | undefined)[] = [];
    for (const e of entries) {
      if (e.index <= this.#applied || e.type !== "normal" || e.data.length < ENVELOPE_BYTES) {
        continue;
      }
      const v = new DataView(e.data.buffer, e.data.byteOffset, e.data.byteLength);
      const own = v.getUint32(0, true) === this.id && v.getUint32(4, true) === this.#nonce;
      mine.push(own ? v.getFloat64(8, true) : undefined);
      commands.push({
        term: e.term,
        index: e.index,
        type: e.type,
        data: e.data.subarray(ENVELOPE_BYTES),
      });
    }
    const last = entries[entries.length - 1]!.index;
    const results = await this.#sm.apply(commands, last);
    this.#applied = Math.max(this.#applied, last);
    this.#stats.entriesApplied += entries.length;
    this.#observer.applied?.(this.id, entries);
    for (let i = 0; i < mine.length; i++) {
      const seq = mine[i];
      if (seq === undefined) continue;
      const p = this.#proposals.get(seq);
      if (p === undefined) continue;
      this.#proposals.delete(seq);
      p.resolve(results[i] as R);
    }
  }

  async #serveReads(): Promise<void> {
    while (this.#readyReads.length > 0 && this.#readyReads[0]!.index <= this.#applied) {
      const read = this.#readyReads.shift()!;
      this.#reads.delete(read.seq);
      try {
        read.resolve(await this.#sm.query(read.request));
      } catch (error) {
        read.reject(error as Error);
      }
    }
  }

  async #maybeCompact(): Promise<void> {
    const snapIndex = this.#storage.snapshot().metadata.index;
    if (this.#applied - snapIndex < this.#compactThreshold) return;
    const index = this.#applied;
    const data = await this.#sm.snapshot();
    await this.#storage.createSnapshot(index, this.#node.status().confState, data);
    await this.#storage.compact(Math.max(snapIndex, index - this.#compactKeep));
    this.#stats.snapshotsTaken++;
  }

  #send(m: Message): void {
    if (
      m.type === "MsgSnap" && m.snapshot !== undefined && m.snapshot.data.length > this.#chunkBytes
    ) {
      this.#sendSnapshot(m, m.snapshot);
      return;
    }
    const sent = this.#transport.send(m.to, { kind: "message", message: m });
    if (m.type === "MsgSnap") {
      // Leave snapshot state either way: after "finish" the leader probes the follower
      // and sends the snapshot again if it never arrived.
      this.#node.reportSnapshot(m.to, sent ? "finish" : "failure");
    }
    if (!sent) this.#node.reportUnreachable(m.to);
  }

  #sendSnapshot(m: Message, snap: Snapshot): void {
    const data = snap.data;
    const total = Math.ceil(data.length / this.#chunkBytes);
    const head: Message = { ...m, snapshot: { metadata: snap.metadata, data: new Uint8Array(0) } };
    for (let seq = 0; seq < total; seq++) {
      const bytes = data.subarray(seq * this.#chunkBytes, (seq + 1) * this.#chunkBytes);
      const ok = this.#transport.send(m.to, {
        kind: "snapshotChunk",
        chunk: { message: head, seq, total, bytes },
      });
      if (!ok) {
        this.#node.reportSnapshot(m.to, "failure");
        this.#node.reportUnreachable(m.to);
        return;
      }
      this.#stats.snapshotChunksSent++;
    }
    // All chunks handed to the transport; the follower answers the assembled MsgSnap.
    this.#node.reportSnapshot(m.to, "finish");
  }

  /** Collects snapshot chunks; returns the whole `MsgSnap` when the last one arrives. */
  #assemble(head: Message, seq: number, total: number, bytes: Uint8Array): Message | undefined {
    const snap = head.snapshot;
    if (snap === undefined || !(total > 0 && seq >= 0 && seq < total)) return undefined;
    let inc = this.#incoming.get(head.from);
    if (inc === undefined || inc.index !== snap.metadata.index || inc.parts.length !== total) {
      inc = { index: snap.metadata.index, parts: new Array(total), bytes: 0 };
      this.#incoming.set(head.from, inc);
    }
    if (inc.parts[seq] === undefined) {
      if (inc.bytes + bytes.length > this.#snapshotBytesMax) {
        this.#incoming.delete(head.from);
        return undefined;
      }
      inc.parts[seq] = bytes.slice();
      inc.bytes += bytes.length;
    }
    for (const p of inc.parts) if (p === undefined) return undefined;
    this.#incoming.delete(head.from);
    const data = new Uint8Array(inc.bytes);
    let at = 0;
    for (const p of inc.parts as Uint8Array[]) {
      data.set(p, at);
      at += p.length;
    }
    return { ...head, snapshot: { metadata: snap.metadata, data } };
  }

  #checkLeader(what: string): void {
    if (this.#stopped) {
      throw new NotLeaderError(`Cannot ${what}: peer ${this.id} is stopped`, 0);
    }
    if (!this.isLeader) {
      throw new NotLeaderError(
        `Cannot ${what}: peer ${this.id} is not the leader (leader hint ${this.#node.leader})`,
        this.#node.leader,
      );
    }
  }

  #failPending(why: string): void {
    for (const p of this.#proposals.values()) {
      p.reject(new OutcomeUnknownError(`Proposal outcome unknown: ${why}; it may still commit`));
    }
    this.#proposals.clear();
    for (const r of this.#reads.values()) {
      r.reject(new NotLeaderError(`Cannot read: ${why}`, this.#node.leader));
    }
    this.#reads.clear();
    this.#readyReads = [];
  }
}

function positive(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v <= 0) {
    throw new RangeError(`Cannot start region peer: ${name} ${v} must be a positive integer`);
  }
  return v;
}

function nonNegative(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v < 0) {
    throw new RangeError(`Cannot start region peer: ${name} ${v} must be an integer >= 0`);
  }
  return v;
}

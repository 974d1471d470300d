/**
 * The Raft state machine proper (election, replication, commit, snapshots,
 * membership, transfer, reads). Pure and synchronous: it only mutates itself
 * and appends to `msgs` / `readStates`; `RawNode` turns that into `Ready`s.
 *
 * @module
 */

import { assert, RaftLog } from "./_log.ts";
import { type Progress, ProgressTracker } from "./_progress.ts";
import {
  CAMPAIGN_TRANSFER,
  CompactedError,
  type ConfChange,
  type Config,
  type ConfState,
  decodeConfChange,
  DEFAULT_MAX_SIZE_PER_MSG,
  type Entry,
  entrySizeBytes,
  type HardState,
  type Message,
  type MessageType,
  type NodeId,
  NONE,
  type PlantName,
  type RaftState,
  type ReadOnlyOption,
  type ReadState,
  type Snapshot,
  SnapshotTemporarilyUnavailableError,
  type SoftState,
  UnavailableError,
} from "./types.ts";

const EMPTY = new Uint8Array(0);
const EMPTY_ENTRIES: readonly Entry[] = Object.freeze([]);
/** Bound on read requests waiting at a leader (queued or awaiting heartbeat acks). */
export const READ_INDEX_PENDING_MAX = 4096;
/** Bound on the size of a read request context. */
export const READ_CONTEXT_BYTES_MAX = 1024;

type CampaignType = "preElection" | "election" | "transfer";

/** Fills the unused fields of a message. */
export function newMessage(
  m: Partial<Message> & { type: MessageType; to?: NodeId; from?: NodeId },
): Message {
  const out: { -readonly [K in keyof Message]: Message[K] } = {
    type: m.type,
    to: m.to ?? NONE,
    from: m.from ?? NONE,
    term: m.term ?? 0,
    logTerm: m.logTerm ?? 0,
    index: m.index ?? 0,
    entries: m.entries ?? EMPTY_ENTRIES,
    commit: m.commit ?? 0,
    reject: m.reject ?? false,
    rejectHint: m.rejectHint ?? 0,
    leaseTick: m.leaseTick ?? 0,
  };
  if (m.snapshot !== undefined) out.snapshot = m.snapshot;
  if (m.context !== undefined) out.context = m.context;
  return out;
}

function ctxKey(ctx: Uint8Array): string {
  return ctx.join(",");
}

function sameBytes(a: Uint8Array | undefined, b: Uint8Array): boolean {
  if (a === undefined || a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

interface PendingRead {
  readonly index: number;
  readonly req: Message;
  readonly acks: Set<NodeId>;
}

/** Normalized config with defaults applied. */
export interface ResolvedConfig {
  id: NodeId;
  electionTick: number;
  heartbeatTick: number;
  applied: number;
  maxSizePerMsg: number;
  maxInflightMsgs: number;
  maxInflightBytes: number;
  maxCommittedSizePerReady: number;
  maxUncommittedEntriesSize: number;
  checkQuorum: boolean;
  preVote: boolean;
  readOnlyOption: ReadOnlyOption;
  clockDriftRatioMax: number;
  disableProposalForwarding: boolean;
  random: () => number;
  plants: ReadonlySet<PlantName>;
  leaseTicks: number;
}

function positiveInt(name: string, v: number): void {
  if (!Number.isSafeInteger(v) || v <= 0) {
    throw new RangeError(`Invalid raft config ${name}: ${v} is not a positive integer`);
  }
}

/**
 * Validates a config and applies defaults.
 * @throws {RangeError} on a bad value or relationship.
 */
export function resolveConfig(c: Config): ResolvedConfig {
  positiveInt("id", c.id);
  positiveInt("electionTick", c.electionTick);
  positiveInt("heartbeatTick", c.heartbeatTick);
  if (c.heartbeatTick >= c.electionTick) {
    throw new RangeError(
      `Invalid raft config electionTick: ${c.electionTick} must be greater than heartbeatTick ${c.heartbeatTick}`,
    );
  }
  const maxSizePerMsg = c.maxSizePerMsg ?? DEFAULT_MAX_SIZE_PER_MSG;
  positiveInt("maxSizePerMsg", maxSizePerMsg);
  const maxInflightMsgs = c.maxInflightMsgs ?? 256;
  positiveInt("maxInflightMsgs", maxInflightMsgs);
  const maxInflightBytes = c.maxInflightBytes ?? 0;
  if (!Number.isSafeInteger(maxInflightBytes) || maxInflightBytes < 0) {
    throw new RangeError(`Invalid raft config maxInflightBytes: ${maxInflightBytes} is not >= 0`);
  }
  if (maxInflightBytes > 0 && maxInflightBytes < maxSizePerMsg) {
    throw new RangeError(
      `Invalid raft config maxInflightBytes: ${maxInflightBytes} must be 0 or >= maxSizePerMsg ${maxSizePerMsg}`,
    );
  }
  const maxCommittedSizePerReady = c.maxCommittedSizePerReady ?? maxSizePerMsg;
  positiveInt("maxCommittedSizePerReady", maxCommittedSizePerReady);
  const maxUncommittedEntriesSize = c.maxUncommittedEntriesSize ?? 64 * 1024 * 1024;
  if (!Number.isSafeInteger(maxUncommittedEntriesSize) || maxUncommittedEntriesSize < 0) {
    throw new RangeError(
      `Invalid raft config maxUncommittedEntriesSize: ${maxUncommittedEntriesSize} is not >= 0`,
    );
  }
  const applied = c.applied ?? 0;
  if (!Number.isSafeInteger(applied) || applied < 0) {
    throw new RangeError(`Invalid raft config applied: ${applied} is not >= 0`);
  }
  const plants = new Set<PlantName>(c.plants ?? []);
  const readOnlyOption = c.readOnlyOption ?? "safe";
  if (readOnlyOption !== "safe" && readOnlyOption !== "leaseBased") {
    throw new RangeError(
      `Invalid raft config readOnlyOption: ${String(readOnlyOption)} is not safe or leaseBased`,
    );
  }
  const drift = c.clockDriftRatioMax ?? 0.1;
  if (!(drift >= 0 && drift < 1)) {
    throw new RangeError(`Invalid raft config clockDriftRatioMax: ${drift} is not in [0, 1)`);
  }
  const leaseTicks = Math.floor((c.electionTick - 1) / (1 + drift));
  if (readOnlyOption === "leaseBased" && !plants.has("lease-read-without-check-quorum")) {
    if (!c.checkQuorum) {
      throw new RangeError(
        "Invalid raft config readOnlyOption: leaseBased requires checkQuorum to be true",
      );
    }
    if (leaseTicks <= c.heartbeatTick) {
      throw new RangeError(
        `Invalid raft config electionTick: the lease of ${leaseTicks} ticks ((electionTick - 1) / (1 + clockDriftRatioMax)) must exceed heartbeatTick ${c.heartbeatTick}`,
      );
    }
  }
  if (typeof c.random !== "function") {
    throw new TypeError("Invalid raft config random: not a function returning [0, 1)");
  }
  return {
    id: c.id,
    electionTick: c.electionTick,
    heartbeatTick: c.heartbeatTick,
    applied,
    maxSizePerMsg,
    maxInflightMsgs,
    maxInflightBytes,
    maxCommittedSizePerReady,
    maxUncommittedEntriesSize,
    checkQuorum: c.checkQuorum,
    preVote: c.preVote,
    readOnlyOption,
    clockDriftRatioMax: drift,
    disableProposalForwarding: c.disableProposalForwarding ?? false,
    random: c.random,
    plants,
    leaseTicks,
  };
}

/** The Raft state machine. */
export class Raft {
  readonly id: NodeId;
  readonly cfg: ResolvedConfig;
  readonly log: RaftLog;
  readonly trk: ProgressTracker;

  term = 0;
  vote: NodeId = NONE;
  lead: NodeId = NONE;
  state: RaftState = "follower";
  isLearner = false;
  /** Outgoing messages, drained by `RawNode.ready`. */
  msgs: Message[] = [];
  /** Reads that became ready, drained by `RawNode.ready`. */
  readStates: ReadState[] = [];

  leadTransferee: NodeId = NONE;
  /** A conf change may be proposed only once the log is applied up to here. */
  pendingConfIndex = 0;
  /** Bytes of entries appended by this leader and not yet committed. */
  uncommittedSize = 0;

  electionElapsed = 0;
  heartbeatElapsed = 0;
  randomizedElectionTimeout = 0;
  /** Ticks since this node was created (the leader's clock for leases). */
  tickCount = 0;
  /**
   * Ticks since this node last heard from a leader. While < electionTick (and checkQuorum is
   * on) the node refuses to vote for anyone else: this is the promise a leader's lease rests
   * on. Starts at 0 under leaseBased so a restarted node also keeps the promise.
   */
  ticksSinceLeaderContact: number;
  /** Leader: per voter, the latest `tickCount` of ours it acknowledged in this term. */
  readonly leaseAcks = new Map<NodeId, number>();
  /** Leader: lease given up for this term (a MsgTimeoutNow was sent). */
  leaseRevoked = false;

  /** The log index as of which the membership in `trk` is current. */
  confIndex: number;
  /** Leader: entries were proposed since the last `flushAppends`. */
  #appendsPending = false;
  readonly #pendingReads = new Map<string, PendingRead>();
  #readQueue: string[] = [];
  /** MsgReadIndex received before this leader committed an entry of its term. */
  #waitingReads: Message[] = [];

  constructor(cfg: ResolvedConfig, log: RaftLog, hs: HardState, cs: ConfState) {
    this.id = cfg.id;
    this.cfg = cfg;
    this.log = log;
    this.trk = new ProgressTracker(cfg.maxInflightMsgs, cfg.maxInflightBytes);
    this.ticksSinceLeaderContact = cfg.readOnlyOption === "leaseBased" ? 0 : cfg.electionTick;
    this.#applyConfState(cs);
    this.confIndex = log.firstIndex() - 1;
    if (hs.term !== 0 || hs.vote !== NONE || hs.commit !== 0) this.#loadState(hs);
    if (cfg.applied > log.applied) this.#restoreApplied(cfg.applied);
    this.becomeFollower(this.term, NONE);
  }

  /**
   * Restarting with a state machine that applied beyond the snapshot: those entries were
   * committed (nothing is applied uncommitted), even if a commit-only hard state was lost
   * unsynced; and the membership changes among them are in effect, though the storage's
   * conf state is the snapshot's.
   */
  #restoreApplied(applied: number): void {
    const log = this.log;
    if (applied > log.committed) log.commitTo(applied);
    const ents = log.slice(log.applied + 1, applied + 1, Number.MAX_SAFE_INTEGER);
    for (const e of ents) {
      if (e.type === "confChange") this.applyConfChange(decodeConfChange(e.data), e.index);
    }
    log.appliedTo(applied);
  }

  has(p: PlantName): boolean {
    return this.cfg.plants.has(p);
  }

  #loadState(hs: HardState): void {
    assert(
      hs.commit >= this.log.committed && hs.commit <= this.log.lastIndex(),
      () =>
        `hard state commit ${hs.commit} is out of range [${this.log.committed}, ${this.log.lastIndex()}]`,
    );
    this.log.committed = hs.commit;
    this.term = hs.term;
    this.vote = hs.vote;
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  softState(): SoftState {
    return { lead: this.lead, raftState: this.state };
  }

  // ---- sending ----

  /**
   * Queues a message, stamping `from` (when unset) and our term (except on votes, which
   * carry their own, and on term-less forwarded requests). `m` must be a fresh object
   * (from `newMessage` or a copy): it is stamped in place.
   */
  send(m: Message): void {
    const out = m as { -readonly [K in keyof Message]: Message[K] };
    if (out.from === NONE) out.from = this.id;
    if (
      out.type === "MsgVote" || out.type === "MsgVoteResp" || out.type === "MsgPreVote" ||
      out.type === "MsgPreVoteResp"
    ) {
      assert(out.term !== 0, () => `term should be set when sending ${out.type}`);
    } else {
      assert(out.term === 0, () => `term should not be set when sending ${out.type}`);
      // Proposals, forwarded reads and transfer requests are term-less (local or forwarded).
      const termless = out.type === "MsgProp" || out.type === "MsgReadIndex" ||
        out.type === "MsgTransferLeader";
      if (!termless) out.term = this.term;
    }
    this.msgs.push(out);
  }

  /** Sends an append (or a snapshot) to `to` if flow control allows; returns whether it did. */
  maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.trk.progress.get(to);
    if (pr === undefined || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    let prevTerm: number;
    let ents: Entry[];
    try {
      prevTerm = this.log.term(prevIndex);
      // A throttled follower (full window) gets only an empty append: if every message in
      // the window was lost, its answer (ack or reject) is what frees the window.
      ents = pr.state === "replicate" && pr.inflights.full()
        ? []
        : this.log.entriesFrom(pr.next, this.cfg.maxSizePerMsg);
    } catch (e) {
      if (e instanceof CompactedError || e instanceof UnavailableError) {
        return this.#maybeSendSnapshot(to, pr);
      }
      throw e;
    }
    if (ents.length === 0 && !sendIfEmpty) return false;
    let bytes = 0;
    for (const e of ents) bytes += entrySizeBytes(e);
    this.send(newMessage({
      type: "MsgApp",
      to,
      index: prevIndex,
      logTerm: prevTerm,
      entries: ents,
      commit: this.log.committed,
    }));
    pr.sentEntries(ents.length, bytes);
    return true;
  }

  sendAppend(to: NodeId): void {
    this.maybeSendAppend(to, true);
  }

  #maybeSendSnapshot(to: NodeId, pr: Progress): boolean {
    if (!pr.recentActive) return false;
    let snap: Snapshot;
    try {
      snap = this.log.snapshot();
    } catch (e) {
      if (e instanceof SnapshotTemporarilyUnavailableError) return false;
      throw e;
    }
    assert(snap.metadata.index > 0, () => `need a non-empty snapshot to send to ${to}`);
    const cs = snap.metadata.confState;
    if (!cs.voters.includes(to) && !cs.learners.includes(to)) {
      // The recipient would ignore it (it is not a member as of the snapshot): wait until the
      // application has taken a snapshot after the change that added it.
      return false;
    }
    pr.becomeSnapshot(snap.metadata.index);
    this.send(newMessage({ type: "MsgSnap", to, snapshot: snap }));
    return true;
  }

  sendHeartbeat(to: NodeId, ctx: Uint8Array | undefined): void {
    const pr = this.trk.progress.get(to)!;
    // Never tell a follower to commit beyond what it is known to hold.
    const commit = Math.min(pr.match, this.log.committed);
    this.send(newMessage({
      type: "MsgHeartbeat",
      to,
      commit,
      leaseTick: this.tickCount,
      ...(ctx === undefined ? {} : { context: ctx }),
    }));
  }

  #forEachPeer(f: (id: NodeId) => void): void {
    const ids = [...this.trk.progress.keys()].sort((a, b) => a - b);
    for (const id of ids) if (id !== this.id) f(id);
  }

  bcastAppend(): void {
    this.#appendsPending = false;
    this.#forEachPeer((id) => this.sendAppend(id));
  }

  /** Sends the appends deferred by proposals (called when a `Ready` is taken). */
  flushAppends(): void {
    if (!this.#appendsPending) return;
    this.#appendsPending = false;
    if (this.state === "leader") this.bcastAppend();
  }

  bcastHeartbeat(ctx?: Uint8Array): void {
    const c = ctx ?? this.#lastPendingReadCtx();
    this.#forEachPeer((id) => this.sendHeartbeat(id, c));
  }

  // ---- commit ----

  maybeCommit(): boolean {
    const mci = this.trk.committed();
    return this.log.maybeCommit(mci, this.term, this.has("commit-old-term-by-count"));
  }

  committedEntryInCurrentTerm(): boolean {
    return this.log.termOrZero(this.log.committed) === this.term;
  }

  // ---- role changes ----

  #reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.#resetRandomizedElectionTimeout();
    this.leadTransferee = NONE;
    this.trk.resetVotes();
    const last = this.log.lastIndex();
    for (const [id, old] of [...this.trk.progress]) {
      const pr = this.trk.newProgress(last + 1, old.isLearner);
      if (id === this.id) pr.match = last;
      this.trk.progress.set(id, pr);
    }
    this.pendingConfIndex = 0;
    this.uncommittedSize = 0;
    this.#appendsPending = false;
    this.#pendingReads.clear();
    this.#readQueue = [];
    this.#waitingReads = [];
    this.leaseAcks.clear();
    this.leaseRevoked = false;
  }

  #resetRandomizedElectionTimeout(): void {
    const r = this.cfg.random();
    assert(r >= 0 && r < 1, () => `random() returned ${r}, outside [0, 1)`);
    this.randomizedElectionTimeout = this.cfg.electionTick +
      Math.floor(r * this.cfg.electionTick);
  }

  becomeFollower(term: number, lead: NodeId): void {
    this.#reset(term);
    this.lead = lead;
    this.state = "follower";
  }

  becomeCandidate(): void {
    assert(this.state !== "leader", () => "invalid transition leader -> candidate");
    this.#reset(this.term + 1);
    this.vote = this.id;
    this.state = "candidate";
  }

  becomePreCandidate(): void {
    assert(this.state !== "leader", () => "invalid transition leader -> preCandidate");
    // Pre-candidacy changes neither term nor vote.
    this.trk.resetVotes();
    this.lead = NONE;
    this.state = "preCandidate";
  }

  becomeLeader(): void {
    assert(this.state !== "follower", () => "invalid transition follower -> leader");
    this.#reset(this.term);
    this.lead = this.id;
    this.state = "leader";
    const self = this.trk.progress.get(this.id);
    self?.becomeReplicate();
    // The leader always counts itself as active: without this a one-voter group's leader
    // would fail its first check-quorum and step down with nobody to replace it.
    if (self !== undefined) self.recentActive = true;
    const appended = this.#appendEntries([{
      term: 0,
      index: 0,
      type: "normal",
      data: EMPTY,
    }]);
    assert(appended, () => "empty entry was dropped");
    // Safety fix for single-server changes: no conf change until an entry of this term
    // (the empty one just appended) is committed and applied.
    this.pendingConfIndex = this.log.lastIndex();
  }

  #appendEntries(es: Entry[]): boolean {
    const li = this.log.lastIndex();
    let size = 0;
    for (const e of es) size += e.data.byteLength;
    if (!this.#increaseUncommittedSize(size)) return false;
    const stamped = es.map((e, i) => ({ ...e, term: this.term, index: li + 1 + i }));
    const last = this.log.append(stamped);
    this.trk.progress.get(this.id)?.maybeUpdate(last);
    // Our own append moves only our match: it can commit something only if we are the quorum.
    if (this.trk.isSingleton()) this.maybeCommit();
    return true;
  }

  #increaseUncommittedSize(size: number): boolean {
    const max = this.cfg.maxUncommittedEntriesSize;
    if (max > 0 && this.uncommittedSize > 0 && size > 0 && this.uncommittedSize + size > max) {
      return false;
    }
    this.uncommittedSize += size;
    return true;
  }

  reduceUncommittedSize(ents: readonly Entry[]): void {
    if (this.state !== "leader") return;
    let size = 0;
    for (const e of ents) size += e.data.byteLength;
    this.uncommittedSize = Math.max(0, this.uncommittedSize - size);
  }

  // ---- ticks ----

  tick(): void {
    this.tickCount++;
    this.ticksSinceLeaderContact++;
    if (this.state === "leader") this.#tickHeartbeat();
    else this.#tickElection();
  }

  #tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.step(newMessage({ type: "MsgHup", from: this.id }));
    }
  }

  #tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.cfg.electionTick) {
      this.electionElapsed = 0;
      if (this.cfg.checkQuorum) {
        this.step(newMessage({ type: "MsgCheckQuorum", from: this.id }));
      }
      if (this.state === "leader" && this.leadTransferee !== NONE) this.leadTransferee = NONE;
    }
    if (this.state !== "leader") return;
    if (this.heartbeatElapsed >= this.cfg.heartbeatTick) {
      this.heartbeatElapsed = 0;
      this.step(newMessage({ type: "MsgBeat", from: this.id }));
    }
  }

  // ---- elections ----

  promotable(): boolean {
    const pr = this.trk.progress.get(this.id);
    return pr !== undefined && !pr.isLearner && !this.log.hasPendingSnapshot();
  }

  hasUnappliedConfChanges(): boolean {
    if (this.log.applied >= this.log.committed) return false;
    const lo = Math.max(this.log.applied + 1, this.log.firstIndex());
    if (lo > this.log.committed) return false;
    const ents = this.log.slice(lo, this.log.committed + 1, Number.MAX_SAFE_INTEGER);
    return ents.some((e) => e.type === "confChange");
  }

  #hup(t: CampaignType): void {
    if (this.state === "leader") return;
    if (!this.promotable()) return;
    // A node must not campaign with a membership it has not applied yet.
    if (this.hasUnappliedConfChanges()) return;
    this.#campaign(t);
  }

  #campaign(t: CampaignType): void {
    let term: number;
    let voteMsg: MessageType;
    if (t === "preElection") {
      this.becomePreCandidate();
      voteMsg = "MsgPreVote";
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      voteMsg = "MsgVote";
      term = this.term;
    }
    const respType = voteMsg === "MsgVote" ? "MsgVoteResp" : "MsgPreVoteResp";
    const { result } = this.#poll(this.id, respType, true);
    if (result === "won") {
      if (t === "preElection") this.#campaign("election");
      else this.becomeLeader();
      return;
    }
    const ids = [...this.trk.voters].sort((a, b) => a - b);
    for (const id of ids) {
      if (id === this.id) continue;
      this.send(newMessage({
        type: voteMsg,
        to: id,
        term,
        index: this.log.lastIndex(),
        logTerm: this.log.lastTerm(),
        ...(t === "transfer" ? { context: CAMPAIGN_TRANSFER } : {}),
      }));
    }
  }

  #poll(id: NodeId, _t: MessageType, granted: boolean) {
    this.trk.recordVote(id, granted);
    return this.trk.tallyVotes();
  }

  // ---- step ----

  /** Processes a message; returns a reason when a proposal/read/transfer was dropped. */
  step(m: Message): string | undefined {
    if (m.term === 0) {
      // local message or term-less forwarded request
    } else if (m.term > this.term) {
      if (m.type === "MsgVote" || m.type === "MsgPreVote") {
        const force = sameBytes(m.context, CAMPAIGN_TRANSFER);
        const inLease = this.cfg.checkQuorum && (
          this.state === "leader" ||
          (this.ticksSinceLeaderContact < this.cfg.electionTick &&
            (this.lead !== NONE || this.cfg.readOnlyOption === "leaseBased"))
        );
        // Refuse to disrupt a leader we heard from within the election timeout.
        if (!force && inLease) return undefined;
      }
      if (m.type === "MsgPreVote") {
        // Never change term in response to a pre-vote.
      } else if (m.type === "MsgPreVoteResp" && !m.reject) {
        // The term in a granted pre-vote response is the one we will campaign with.
      } else if (m.type === "MsgApp" || m.type === "MsgHeartbeat" || m.type === "MsgSnap") {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NONE);
      }
    } else if (m.term < this.term) {
      if (
        (this.cfg.checkQuorum || this.cfg.preVote) &&
        (m.type === "MsgHeartbeat" || m.type === "MsgApp")
      ) {
        // Tell a stale leader about our term so it steps down (needed with check-quorum and
        // pre-vote, where a partitioned node's higher term would otherwise never be learned).
        this.send(newMessage({ type: "MsgAppResp", to: m.from }));
      } else if (m.type === "MsgPreVote") {
        this.send(newMessage({
          type: "MsgPreVoteResp",
          to: m.from,
          term: this.term,
          reject: true,
        }));
      }
      return undefined;
    }

    switch (m.type) {
      case "MsgHup":
        if (this.cfg.preVote) this.#hup("preElection");
        else this.#hup("election");
        return undefined;
      case "MsgVote":
      case "MsgPreVote": {
        const canVote = this.vote === m.from ||
          (this.vote === NONE && this.lead === NONE) ||
          (m.type === "MsgPreVote" && m.term > this.term);
        const upToDate = this.has("vote-without-log-check") ||
          this.log.isUpToDate(m.index, m.logTerm);
        const respType = m.type === "MsgVote" ? "MsgVoteResp" : "MsgPreVoteResp";
        if (canVote && upToDate) {
          this.send(newMessage({ type: respType, to: m.from, term: m.term }));
          if (m.type === "MsgVote") {
            this.electionElapsed = 0;
            this.vote = m.from;
          }
        } else {
          this.send(newMessage({ type: respType, to: m.from, term: this.term, reject: true }));
        }
        return undefined;
      }
      default:
        switch (this.state) {
          case "leader":
            return this.#stepLeader(m);
          case "candidate":
          case "preCandidate":
            return this.#stepCandidate(m);
          case "follower":
            return this.#stepFollower(m);
        }
    }
  }

  #stepLeader(m: Message): string | undefined {
    switch (m.type) {
      case "MsgBeat":
        this.bcastHeartbeat();
        return undefined;
      case "MsgCheckQuorum":
        if (!this.trk.quorumActive()) this.becomeFollower(this.term, NONE);
        for (const [id, pr] of this.trk.progress) pr.recentActive = id === this.id;
        return undefined;
      case "MsgProp":
        return this.#leaderPropose(m);
      case "MsgReadIndex":
        return this.#leaderReadIndex(m);
      default:
        break;
    }
    const pr = this.trk.progress.get(m.from);
    if (pr === undefined) return undefined;
    switch (m.type) {
      case "MsgAppResp":
        this.#handleAppResp(m, pr);
        break;
      case "MsgHeartbeatResp":
        this.#handleHeartbeatResp(m, pr);
        break;
      case "MsgSnapStatus":
        if (pr.state !== "snapshot") break;
        if (m.reject) pr.pendingSnapshot = 0;
        pr.becomeProbe();
        // Wait for a heartbeat response before probing again.
        pr.msgAppFlowPaused = true;
        break;
      case "MsgUnreachable":
        if (pr.state === "replicate") pr.becomeProbe();
        break;
      case "MsgTransferLeader":
        return this.#handleTransferLeader(m, pr);
      default:
        break;
    }
    return undefined;
  }

  #leaderPropose(m: Message): string | undefined {
    assert(m.entries.length > 0, () => "MsgProp without entries");
    if (!this.trk.progress.has(this.id)) return "this node was removed from the group";
    if (this.leadTransferee !== NONE) {
      return `leadership is being transferred to ${this.leadTransferee}`;
    }
    const ents = [...m.entries];
    let confIndex = 0;
    for (let i = 0; i < ents.length; i++) {
      const e = ents[i]!;
      if (e.type !== "confChange") continue;
      // One change per batch, and none while one is pending.
      const refusal = confIndex > 0
        ? "one conf change per proposal batch"
        : this.#confChangeRefusal(e);
      if (refusal !== undefined) {
        if (m.from === this.id) return refusal;
        ents[i] = { ...e, type: "normal", data: EMPTY };
      } else {
        confIndex = this.log.lastIndex() + i + 1;
      }
    }
    if (!this.#appendEntries(ents)) {
      return `uncommitted entries exceed maxUncommittedEntriesSize ${this.cfg.maxUncommittedEntriesSize}`;
    }
    if (confIndex > 0) this.pendingConfIndex = confIndex;
    // Messages leave only with the next Ready: send one append per follower for all the
    // proposals made until then, instead of one per proposal.
    this.#appendsPending = true;
    return undefined;
  }

  #confChangeRefusal(e: Entry): string | undefined {
    if (this.pendingConfIndex > this.log.applied) {
      return `a conf change is pending until index ${this.pendingConfIndex} is applied (applied ${this.log.applied})`;
    }
    let cc: ConfChange;
    try {
      cc = decodeConfChange(e.data);
    } catch (err) {
      return (err as Error).message;
    }
    if (
      (cc.type === "removeNode" || cc.type === "addLearner") && this.trk.voters.has(cc.nodeId) &&
      this.trk.voters.size === 1
    ) {
      return `cannot remove or demote the last voter ${cc.nodeId}`;
    }
    return undefined;
  }

  #handleAppResp(m: Message, pr: Progress): void {
    pr.recentActive = true;
    if (m.reject) {
      let nextProbeIdx = m.rejectHint;
      if (m.logTerm > 0) nextProbeIdx = this.log.findConflictByTerm(m.rejectHint, m.logTerm);
      if (pr.maybeDecrTo(m.index, nextProbeIdx)) {
        if (pr.state === "replicate") pr.becomeProbe();
        this.sendAppend(m.from);
      }
      return;
    }
    const oldPaused = pr.isPaused();
    if (!pr.maybeUpdate(m.index) && !(pr.match === m.index && pr.state === "probe")) return;
    if (pr.state === "probe") {
      pr.becomeReplicate();
    } else if (pr.state === "snapshot" && pr.match + 1 >= this.log.firstIndex()) {
      pr.becomeProbe();
      pr.becomeReplicate();
    } else if (pr.state === "replicate") {
      pr.inflights.freeLE(m.index);
    }
    if (this.maybeCommit()) {
      this.#releaseWaitingReads();
      this.bcastAppend();
    } else if (oldPaused) {
      this.sendAppend(m.from);
    }
    // Pipeline: keep sending while the window allows and there is something to send.
    while (this.maybeSendAppend(m.from, false)) { /* loop */ }
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) {
      this.#sendTimeoutNow(m.from);
    }
  }

  #handleHeartbeatResp(m: Message, pr: Progress): void {
    pr.recentActive = true;
    pr.msgAppFlowPaused = false;
    const prev = this.leaseAcks.get(m.from);
    if (prev === undefined || m.leaseTick > prev) this.leaseAcks.set(m.from, m.leaseTick);
    if (pr.match < this.log.lastIndex() || pr.state === "probe") this.sendAppend(m.from);
    if (m.context === undefined || m.context.byteLength === 0) return;
    const rs = this.#pendingReads.get(ctxKey(m.context));
    if (rs === undefined) return;
    rs.acks.add(m.from);
    if (!this.trk.hasQuorum(rs.acks)) return;
    for (const done of this.#advanceReads(m.context)) this.#respondRead(done.req, done.index);
  }

  #handleTransferLeader(m: Message, pr: Progress): string | undefined {
    if (pr.isLearner) return `cannot transfer leadership to learner ${m.from}`;
    const transferee = m.from;
    if (this.leadTransferee !== NONE) {
      if (this.leadTransferee === transferee) return undefined;
      this.leadTransferee = NONE;
    }
    if (transferee === this.id) return undefined;
    this.electionElapsed = 0;
    this.leadTransferee = transferee;
    if (pr.match === this.log.lastIndex()) this.#sendTimeoutNow(transferee);
    else this.sendAppend(transferee);
    return undefined;
  }

  #sendTimeoutNow(to: NodeId): void {
    // The transferee will campaign with the vote lease bypassed: our lease ends here.
    this.leaseRevoked = true;
    this.send(newMessage({ type: "MsgTimeoutNow", to }));
  }

  #stepCandidate(m: Message): string | undefined {
    const myResp = this.state === "preCandidate" ? "MsgPreVoteResp" : "MsgVoteResp";
    switch (m.type) {
      case "MsgProp":
        return "no leader: an election is in progress";
      case "MsgApp":
        this.becomeFollower(m.term, m.from);
        this.#heardFromLeader(m.from);
        this.#handleAppendEntries(m);
        return undefined;
      case "MsgHeartbeat":
        this.becomeFollower(m.term, m.from);
        this.#heardFromLeader(m.from);
        this.#handleHeartbeat(m);
        return undefined;
      case "MsgSnap":
        this.becomeFollower(m.term, m.from);
        this.#heardFromLeader(m.from);
        this.#handleSnapshot(m);
        return undefined;
      case "MsgTimeoutNow":
        return undefined;
      case "MsgReadIndex":
        return "no leader: an election is in progress";
      case "MsgTransferLeader":
        return "no leader: an election is in progress";
      default:
        break;
    }
    if (m.type !== myResp) return undefined;
    const { result } = this.#poll(m.from, m.type, !m.reject);
    if (result === "won") {
      if (this.state === "preCandidate") {
        this.#campaign("election");
      } else {
        this.becomeLeader();
        this.bcastAppend();
      }
    } else if (result === "lost") {
      this.becomeFollower(this.term, NONE);
    }
    return undefined;
  }

  #heardFromLeader(lead: NodeId): void {
    this.electionElapsed = 0;
    this.ticksSinceLeaderContact = 0;
    this.lead = lead;
  }

  #stepFollower(m: Message): string | undefined {
    switch (m.type) {
      case "MsgProp":
        if (this.lead === NONE) return "no leader";
        if (this.cfg.disableProposalForwarding) {
          return `not the leader and forwarding is disabled (leader ${this.lead})`;
        }
        this.send({ ...m, to: this.lead });
        return undefined;
      case "MsgApp":
        this.#heardFromLeader(m.from);
        this.#handleAppendEntries(m);
        return undefined;
      case "MsgHeartbeat":
        this.#heardFromLeader(m.from);
        this.#handleHeartbeat(m);
        return undefined;
      case "MsgSnap":
        this.#heardFromLeader(m.from);
        this.#handleSnapshot(m);
        return undefined;
      case "MsgTransferLeader":
        if (this.lead === NONE) return "no leader to transfer leadership from";
        this.send({ ...m, to: this.lead });
        return undefined;
      case "MsgTimeoutNow":
        // Leadership transfer: campaign at once, skipping pre-vote.
        this.#hup("transfer");
        return undefined;
      case "MsgReadIndex":
        if (this.lead === NONE) return "no leader";
        this.send({ ...m, to: this.lead });
        return undefined;
      case "MsgReadIndexResp":
        this.readStates.push({ index: m.index, requestCtx: m.context ?? EMPTY });
        return undefined;
      default:
        return undefined;
    }
  }

  #handleAppendEntries(m: Message): void {
    const head = m.entries[0];
    const tail = m.entries[m.entries.length - 1];
    assert(
      head === undefined ||
        (head.index === m.index + 1 && tail!.index === m.index + m.entries.length &&
          tail!.term <= m.term),
      () =>
        `MsgApp from ${m.from} carries entries ${String(head?.index)}..${
          String(tail?.index)
        } that do not follow ${m.index} (term ${m.term})`,
    );
    if (m.index < this.log.committed) {
      this.send(newMessage({ type: "MsgAppResp", to: m.from, index: this.log.committed }));
      return;
    }
    const last = this.log.maybeAppend(
      m.index,
      m.logTerm,
      m.commit,
      m.entries,
      this.has("no-conflict-truncate"),
    );
    if (last !== undefined) {
      this.send(newMessage({ type: "MsgAppResp", to: m.from, index: last }));
      return;
    }
    // Reject with a hint: the largest index <= m.index whose term is <= m.logTerm, so the
    // leader can skip a whole term of mismatching entries at once.
    let hintIndex = Math.min(m.index, this.log.lastIndex());
    hintIndex = this.log.findConflictByTerm(hintIndex, m.logTerm);
    const hintTerm = this.log.termOrZero(hintIndex);
    this.send(newMessage({
      type: "MsgAppResp",
      to: m.from,
      index: m.index,
      reject: true,
      rejectHint: hintIndex,
      logTerm: hintTerm,
    }));
  }

  #handleHeartbeat(m: Message): void {
    this.log.commitTo(m.commit);
    this.send(newMessage({
      type: "MsgHeartbeatResp",
      to: m.from,
      leaseTick: m.leaseTick,
      ...(m.context === undefined ? {} : { context: m.context }),
    }));
  }

  #handleSnapshot(m: Message): void {
    const s = m.snapshot;
    if (s !== undefined && this.#restore(s)) {
      this.send(newMessage({ type: "MsgAppResp", to: m.from, index: this.log.lastIndex() }));
    } else {
      this.send(newMessage({ type: "MsgAppResp", to: m.from, index: this.log.committed }));
    }
  }

  #restore(s: Snapshot): boolean {
    if (s.metadata.index <= this.log.committed) return false;
    if (this.state !== "follower") {
      // Defensive, as in etcd: only a follower may install a snapshot.
      this.becomeFollower(this.term + 1, NONE);
      return false;
    }
    const cs = s.metadata.confState;
    if (!cs.voters.includes(this.id) && !cs.learners.includes(this.id)) return false;
    if (this.log.matchTerm(s.metadata.index, s.metadata.term)) {
      // We already hold the snapshot's last entry: just fast-forward the commit index.
      this.log.commitTo(s.metadata.index);
      return false;
    }
    this.log.restore(s);
    this.trk.progress.clear();
    this.#applyConfState(cs);
    this.confIndex = s.metadata.index;
    return true;
  }

  // ---- membership ----

  #applyConfState(cs: ConfState): void {
    this.trk.voters = new Set(cs.voters);
    this.trk.learners = new Set(cs.learners);
    for (const id of cs.voters) {
      assert(!this.trk.learners.has(id), () => `${id} is voter and learner`);
    }
    const next = this.log.lastIndex() + 1;
    for (const id of [...cs.voters, ...cs.learners]) {
      const pr = this.trk.newProgress(next, this.trk.learners.has(id));
      if (id === this.id) pr.match = next - 1;
      this.trk.progress.set(id, pr);
    }
    this.isLearner = this.trk.learners.has(this.id);
  }

  /**
   * Applies the committed membership change at `index` (called by `RawNode.advance`). A change
   * at or below `confIndex` is already reflected (a snapshot installed meanwhile covers it).
   */
  applyConfChange(cc: ConfChange, index: number): ConfState {
    if (index <= this.confIndex) return this.trk.confState();
    this.confIndex = index;
    const id = cc.nodeId;
    const existing = this.trk.progress.get(id);
    switch (cc.type) {
      case "addNode":
        this.trk.learners.delete(id);
        this.trk.voters.add(id);
        if (existing !== undefined) existing.isLearner = false;
        break;
      case "addLearner":
        this.trk.voters.delete(id);
        this.trk.learners.add(id);
        if (existing !== undefined) existing.isLearner = true;
        break;
      case "removeNode":
        this.trk.voters.delete(id);
        this.trk.learners.delete(id);
        this.trk.progress.delete(id);
        this.leaseAcks.delete(id);
        break;
    }
    if (cc.type !== "removeNode" && existing === undefined) {
      const pr = this.trk.newProgress(this.log.lastIndex() + 1, cc.type === "addLearner");
      // Give a new member a chance before check-quorum counts it as inactive.
      pr.recentActive = true;
      if (id === this.id) pr.match = this.log.lastIndex();
      this.trk.progress.set(id, pr);
    }
    this.isLearner = this.trk.learners.has(this.id);
    if (this.state === "leader") {
      if (!this.trk.voters.has(this.id)) {
        // Removed or demoted: the change is committed, so stepping down is safe.
        this.becomeFollower(this.term, NONE);
      } else {
        if (this.leadTransferee !== NONE && !this.trk.voters.has(this.leadTransferee)) {
          this.leadTransferee = NONE;
        }
        if (this.maybeCommit()) {
          this.#releaseWaitingReads();
          this.bcastAppend();
        } else if (existing === undefined && cc.type !== "removeNode") {
          this.sendAppend(id);
        }
      }
    }
    return this.trk.confState();
  }

  // ---- reads ----

  #leaderReadIndex(m: Message): string | undefined {
    const ctx = m.context ?? EMPTY;
    if (ctx.byteLength > READ_CONTEXT_BYTES_MAX) {
      return `read context of ${ctx.byteLength} bytes exceeds ${READ_CONTEXT_BYTES_MAX}`;
    }
    if (this.trk.isSingleton()) {
      if (this.committedEntryInCurrentTerm()) this.#respondRead(m, this.log.committed);
      else return this.#queueWaitingRead(m);
      return undefined;
    }
    // Reads wait until this leader committed an entry of its term: before that its commit
    // index may lag entries committed by earlier leaders.
    if (!this.committedEntryInCurrentTerm()) return this.#queueWaitingRead(m);
    return this.#serveRead(m);
  }

  #queueWaitingRead(m: Message): string | undefined {
    if (this.#waitingReads.length + this.#pendingReads.size >= READ_INDEX_PENDING_MAX) {
      return `too many pending reads (max ${READ_INDEX_PENDING_MAX})`;
    }
    this.#waitingReads.push(m);
    return undefined;
  }

  #releaseWaitingReads(): void {
    if (this.#waitingReads.length === 0 || !this.committedEntryInCurrentTerm()) return;
    const waiting = this.#waitingReads;
    this.#waitingReads = [];
    for (const m of waiting) {
      if (this.trk.isSingleton()) this.#respondRead(m, this.log.committed);
      else this.#serveRead(m);
    }
  }

  /** Whether the lease (see `Raft.ticksSinceLeaderContact`) covers the current tick. */
  leaseValid(): boolean {
    if (this.leaseRevoked || this.state !== "leader") return false;
    const start = this.trk.quorumValue((id) =>
      id === this.id ? this.tickCount : this.leaseAcks.get(id)
    );
    return this.tickCount - start + 1 <= this.cfg.leaseTicks;
  }

  #serveRead(m: Message): string | undefined {
    if (this.cfg.readOnlyOption === "leaseBased") {
      if (this.has("lease-read-without-check-quorum") || this.leaseValid()) {
        this.#respondRead(m, this.log.committed);
        return undefined;
      }
      // Lease expired or revoked: fall back to a heartbeat round.
    }
    const ctx = m.context ?? EMPTY;
    const key = ctxKey(ctx);
    if (!this.#pendingReads.has(key)) {
      if (this.#waitingReads.length + this.#pendingReads.size >= READ_INDEX_PENDING_MAX) {
        return `too many pending reads (max ${READ_INDEX_PENDING_MAX})`;
      }
      this.#pendingReads.set(key, { index: this.log.committed, req: m, acks: new Set([this.id]) });
      this.#readQueue.push(key);
    }
    this.bcastHeartbeat(ctx);
    return undefined;
  }

  #advanceReads(ctx: Uint8Array): PendingRead[] {
    const key = ctxKey(ctx);
    const pos = this.#readQueue.indexOf(key);
    if (pos < 0) return [];
    const done = this.#readQueue.slice(0, pos + 1);
    this.#readQueue = this.#readQueue.slice(pos + 1);
    const out: PendingRead[] = [];
    for (const k of done) {
      const rs = this.#pendingReads.get(k);
      assert(rs !== undefined, () => `pending read ${k} missing`);
      this.#pendingReads.delete(k);
      out.push(rs);
    }
    return out;
  }

  #lastPendingReadCtx(): Uint8Array | undefined {
    const last = this.#readQueue[this.#readQueue.length - 1];
    if (last === undefined) return undefined;
    return this.#pendingReads.get(last)?.req.context;
  }

  #respondRead(req: Message, index: number): void {
    const ctx = req.context ?? EMPTY;
    if (req.from === NONE || req.from === this.id) {
      this.readStates.push({ index, requestCtx: ctx });
    } else {
      this.send(newMessage({ type: "MsgReadIndexResp", to: req.from, index, context: ctx }));
    }
  }

  /** Checks the invariants that tie the fields together. */
  assertInvariants(): void {
    const l = this.log;
    assert(
      l.applied <= l.committed && l.committed <= l.lastIndex(),
      () =>
        `applied ${l.applied} <= committed ${l.committed} <= lastIndex ${l.lastIndex()} violated`,
    );
    assert(
      this.state !== "leader" || this.lead === this.id,
      () => `leader ${this.id} has lead ${this.lead}`,
    );
    assert(
      this.state !== "candidate" || this.vote === this.id,
      () => `candidate ${this.id} voted for ${this.vote}`,
    );
    if (this.state === "leader") {
      const self = this.trk.progress.get(this.id);
      assert(
        self === undefined || self.match === l.lastIndex(),
        () => `leader match ${String(self?.match)} != lastIndex ${l.lastIndex()}`,
      );
    }
  }
}

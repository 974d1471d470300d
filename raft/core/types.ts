/**
 * The public data types of Spire's Raft core: messages, entries, hard and soft
 * state, snapshots, the `Ready` batch handed to the driver, the `Storage`
 * interface the core reads its stable log from, the `Config` of a node and the
 * test-only planted bugs.
 *
 * The shapes follow etcd's raft (`raftpb`), with camelCase names and
 * `Uint8Array` payloads. Node ids, terms and indexes are non-negative safe
 * integers; `NONE` (0) means "no node".
 *
 * @module
 */

/** A node id: a positive safe integer. `NONE` (0) stands for "no node". */
export type NodeId = number;

/** The "no node" id, used for an unknown leader or an absent vote. */
export const NONE: NodeId = 0;

/** Kind of a log entry: an application command or a membership change. */
export type EntryType = "normal" | "confChange";

/** One entry of the replicated log. */
export interface Entry {
  /** Term of the leader that created the entry. */
  readonly term: number;
  /** Position in the log, starting at 1. */
  readonly index: number;
  /** `"confChange"` entries carry an encoded {@link ConfChange} (see `encodeConfChange`). */
  readonly type: EntryType;
  /** Opaque command for the state machine; empty for the no-op a new leader appends. */
  readonly data: Uint8Array;
}

/** State that must be durable before any message of the same `Ready` is sent. */
export interface HardState {
  /** The node's current term. */
  readonly term: number;
  /** Candidate voted for in `term`, or `NONE`. */
  readonly vote: NodeId;
  /** Highest index known to be committed. */
  readonly commit: number;
}

/** Volatile state, reported in a `Ready` only when it changes. */
export interface SoftState {
  /** The leader this node knows of in its current term, or `NONE`. */
  readonly lead: NodeId;
  /** The node's role. */
  readonly raftState: RaftState;
}

/** Role of a node. */
export type RaftState = "follower" | "preCandidate" | "candidate" | "leader";

/** Membership of a group: voters and non-voting learners (disjoint sets). */
export interface ConfState {
  /** Voting members, sorted ascending. */
  readonly voters: readonly NodeId[];
  /** Non-voting members that receive the log, sorted ascending. */
  readonly learners: readonly NodeId[];
}

/** A single-server membership change, carried in a `"confChange"` entry. */
export interface ConfChange {
  /** `addNode` adds a voter (or promotes a learner), `addLearner` adds (or demotes to) a learner. */
  readonly type: ConfChangeType;
  /** The node being added or removed. */
  readonly nodeId: NodeId;
  /** Opaque application data (for example the new peer's address). */
  readonly context?: Uint8Array;
}

/** Kind of a membership change. */
export type ConfChangeType = "addNode" | "removeNode" | "addLearner";

/** Where a snapshot sits in the log and the membership at that point. */
export interface SnapshotMetadata {
  /** Index of the last entry the snapshot covers. */
  readonly index: number;
  /** Term of that entry. */
  readonly term: number;
  /** Membership as of `index`. */
  readonly confState: ConfState;
}

/** A point-in-time image of the state machine plus its position in the log. */
export interface Snapshot {
  /** Position and membership. */
  readonly metadata: SnapshotMetadata;
  /** State-machine image (opaque to the core; the driver streams it in chunks). */
  readonly data: Uint8Array;
}

/**
 * Message kinds. Local kinds (`MsgHup`, `MsgBeat`, `MsgUnreachable`,
 * `MsgSnapStatus`, `MsgCheckQuorum`) never travel on the network and are
 * refused by `RawNode.step`; use the matching `RawNode` methods instead.
 * `MsgProp`, `MsgReadIndex` and `MsgTransferLeader` travel when a follower
 * forwards them to its leader.
 */
export type MessageType =
  | "MsgHup"
  | "MsgBeat"
  | "MsgProp"
  | "MsgApp"
  | "MsgAppResp"
  | "MsgVote"
  | "MsgVoteResp"
  | "MsgSnap"
  | "MsgHeartbeat"
  | "MsgHeartbeatResp"
  | "MsgUnreachable"
  | "MsgSnapStatus"
  | "MsgCheckQuorum"
  | "MsgTransferLeader"
  | "MsgTimeoutNow"
  | "MsgReadIndex"
  | "MsgReadIndexResp"
  | "MsgPreVote"
  | "MsgPreVoteResp";

/** The message kinds that never leave a node. */
export const LOCAL_MESSAGE_TYPES: ReadonlySet<MessageType> = new Set<MessageType>([
  "MsgHup",
  "MsgBeat",
  "MsgUnreachable",
  "MsgSnapStatus",
  "MsgCheckQuorum",
]);

/**
 * A Raft message. As in etcd's `raftpb.Message`, one flat shape serves every
 * kind; fields a kind does not use are 0, `false` or empty.
 */
export interface Message {
  /** Kind of message. */
  readonly type: MessageType;
  /** Receiver. */
  readonly to: NodeId;
  /** Sender. */
  readonly from: NodeId;
  /** Sender's term (0 for `MsgProp`, `MsgReadIndex` and `MsgTransferLeader`, which are term-less). */
  readonly term: number;
  /** MsgApp: term of the entry at `index`. MsgVote/MsgPreVote: term of the candidate's last entry. */
  readonly logTerm: number;
  /** MsgApp: index preceding `entries`. MsgAppResp: last matched index, or the rejected index. MsgVote: candidate's last index. MsgReadIndexResp: the read index. */
  readonly index: number;
  /** Entries carried (MsgApp, MsgProp). Bounded by `Config.maxSizePerMsg`. */
  readonly entries: readonly Entry[];
  /** Leader's commit index (MsgApp, MsgHeartbeat). */
  readonly commit: number;
  /** Rejection flag (MsgAppResp, MsgVoteResp, MsgPreVoteResp, MsgSnapStatus). */
  readonly reject: boolean;
  /** MsgAppResp rejection: a hint of the follower's last index at or below the probed one, for fast backtracking. */
  readonly rejectHint: number;
  /** MsgSnap: the snapshot to install. */
  readonly snapshot?: Snapshot;
  /**
   * MsgHeartbeat(Resp), MsgReadIndex(Resp): the read request context. MsgVote/MsgPreVote:
   * `CAMPAIGN_TRANSFER` when the election is a leadership transfer.
   */
  readonly context?: Uint8Array;
  /**
   * MsgHeartbeat: the leader's tick count when it sent the heartbeat; echoed in
   * MsgHeartbeatResp so the leader can date its lease (see `ReadOnlyOption`).
   */
  readonly leaseTick: number;
}

/** Context of a MsgVote sent because of a leadership transfer (bypasses the vote lease). */
export const CAMPAIGN_TRANSFER: Uint8Array = new TextEncoder().encode("CampaignTransfer");

/** A read request that became linearizable: reads may be served once `applied >= index`. */
export interface ReadState {
  /** The commit index to wait for before reading. */
  readonly index: number;
  /** The context passed to `RawNode.readIndex`. */
  readonly requestCtx: Uint8Array;
}

/**
 * Everything the driver must do after a step, in order:
 * 1. persist `snapshot` (if any), `entries` and `hardState` (fsync if `mustSync`);
 * 2. then send `messages`;
 * 3. apply `committedEntries` (membership changes take effect in the core at `advance`);
 * 4. call `RawNode.advance(ready)`.
 */
export interface Ready {
  /** Present when role or leader changed. */
  readonly softState?: SoftState;
  /** Present when term, vote or commit changed; persist before sending. */
  readonly hardState?: HardState;
  /** Read requests that became ready, in request order. */
  readonly readStates: readonly ReadState[];
  /** Entries to append to stable storage (may overwrite a conflicting suffix). */
  readonly entries: readonly Entry[];
  /** A snapshot received from the leader, to persist and install. */
  readonly snapshot?: Snapshot;
  /** Committed entries to apply, in order. Bounded by `Config.maxCommittedSizePerReady`. */
  readonly committedEntries: readonly Entry[];
  /** Messages to send after the entries and hard state are durable. */
  readonly messages: readonly Message[];
  /**
   * Whether the write must be fsynced before the messages go out: true when entries, a
   * snapshot, or a new term or vote are to be persisted (a commit index alone need not be).
   */
  readonly mustSync: boolean;
}

/**
 * The stable log the core reads. The driver appends `Ready.entries` to it
 * before `advance`. Implementations throw {@link CompactedError} for indexes
 * below the first available one and {@link UnavailableError} above the last.
 */
export interface Storage {
  /** Hard state and membership saved at the last shutdown (or the initial ones). */
  initialState(): { hardState: HardState; confState: ConfState };
  /**
   * Entries in `[lo, hi)`, at most `maxBytes` of them by {@link entrySizeBytes}
   * but always at least one when `lo < hi`.
   * @throws {CompactedError} when `lo < firstIndex()`.
   * @throws {UnavailableError} when `hi > lastIndex() + 1`.
   */
  entries(lo: number, hi: number, maxBytes: number): Entry[];
  /**
   * Term of the entry at `index`; valid for `firstIndex() - 1 <= index <= lastIndex()`
   * (the entry just before the first one is the snapshot's).
   * @throws {CompactedError} below that range.
   * @throws {UnavailableError} above it.
   */
  term(index: number): number;
  /** Index of the first entry still available (snapshot index + 1). */
  firstIndex(): number;
  /** Index of the last entry (the snapshot index when the log is empty). */
  lastIndex(): number;
  /**
   * The most recent snapshot.
   * @throws {SnapshotTemporarilyUnavailableError} when it is being built; the core retries later.
   */
  snapshot(): Snapshot;
}

/** How a leader serves `readIndex`. */
export type ReadOnlyOption = "safe" | "leaseBased";

/**
 * Test-only planted bugs. Each one breaks a safety property on purpose, so
 * that the simulation and the transcripts can show they catch it.
 */
export const PLANTS = [
  "commit-old-term-by-count",
  "vote-without-log-check",
  "no-conflict-truncate",
  "lease-read-without-check-quorum",
] as const;

/** Name of a planted bug. */
export type PlantName = (typeof PLANTS)[number];

/** Options of a {@link RaftNode}. */
export interface Config {
  /** This node's id (> 0). */
  readonly id: NodeId;
  /**
   * Ticks a follower waits without hearing from a leader before campaigning. The actual
   * timeout is drawn from `[electionTick, 2 * electionTick)` with `random`.
   */
  readonly electionTick: number;
  /** Ticks between heartbeats of a leader; must be < `electionTick`. */
  readonly heartbeatTick: number;
  /** The stable log. */
  readonly storage: Storage;
  /** Last index applied by the state machine before a restart (0 for a new node). */
  readonly applied?: number;
  /**
   * Byte bound of the entries in one MsgApp (at least one entry is always sent), and of one
   * proposal's data. Default {@link DEFAULT_MAX_SIZE_PER_MSG}.
   */
  readonly maxSizePerMsg?: number;
  /** Bound on MsgApp in flight to one follower in replicate state (> 0). Default 256. */
  readonly maxInflightMsgs?: number;
  /** Bound on entry bytes in flight to one follower; 0 means no byte bound. Default 0. */
  readonly maxInflightBytes?: number;
  /** Byte bound of the committed entries in one `Ready`. Default `maxSizePerMsg`. */
  readonly maxCommittedSizePerReady?: number;
  /**
   * Byte bound of the leader's appended but uncommitted entries; proposals beyond it are
   * dropped with `ProposalDroppedError`. 0 means no bound. Default 64 MiB.
   */
  readonly maxUncommittedEntriesSize?: number;
  /** Leader steps down when a quorum has not been heard from for an election timeout. */
  readonly checkQuorum: boolean;
  /** Run a pre-vote round before incrementing the term (Raft thesis §9.6). */
  readonly preVote: boolean;
  /** `"leaseBased"` requires `checkQuorum`. Default `"safe"`. */
  readonly readOnlyOption?: ReadOnlyOption;
  /**
   * Lease reads: the largest relative difference between two nodes' tick rates that the
   * deployment guarantees (0.1 = one node's tick may last up to 1.1 times another's). The
   * lease lasts `floor((electionTick - 1) / (1 + clockDriftRatioMax))` ticks. Default 0.1.
   */
  readonly clockDriftRatioMax?: number;
  /** Followers drop proposals instead of forwarding them to the leader. Default false. */
  readonly disableProposalForwarding?: boolean;
  /** Uniform random number in [0, 1), from a seeded source; used only for election timeouts. */
  readonly random: () => number;
  /** Test-only planted bugs to switch on. Never set in production. */
  readonly plants?: readonly PlantName[];
}

/** Replication state of a follower as seen by the leader. */
export type ProgressState = "probe" | "replicate" | "snapshot";

/** The leader's view of one peer. */
export interface ProgressStatus {
  /** Highest index known to be replicated on the peer. */
  readonly match: number;
  /** Next index to send. */
  readonly next: number;
  /** Flow-control state. */
  readonly state: ProgressState;
  /** Snapshot index being sent (snapshot state), else 0. */
  readonly pendingSnapshot: number;
  /** Whether the peer was heard from since the last quorum check. */
  readonly recentActive: boolean;
  /** Number of MsgApp in flight. */
  readonly inflightMsgs: number;
  /** Entry bytes in flight. */
  readonly inflightBytes: number;
  /** Whether the peer is a learner. */
  readonly isLearner: boolean;
}

/** A snapshot of a node's state for diagnostics and drivers. */
export interface Status {
  /** This node. */
  readonly id: NodeId;
  /** Durable state. */
  readonly hardState: HardState;
  /** Volatile state. */
  readonly softState: SoftState;
  /** Highest index handed out for applying and acknowledged by `advance`. */
  readonly applied: number;
  /** Last index of the log (stable and unstable). */
  readonly lastIndex: number;
  /** Current membership (changes apply at `advance`). */
  readonly confState: ConfState;
  /** Target of an ongoing leadership transfer, or `NONE`. */
  readonly leadTransferee: NodeId;
  /** Leader only: progress of every member, including itself. Empty on other nodes. */
  readonly progress: ReadonlyMap<NodeId, ProgressStatus>;
}

/** Outcome of sending a snapshot, reported by the driver with `reportSnapshot`. */
export type SnapshotStatus = "finish" | "failure";

/**
 * The node API (implemented by `RawNode`). Every method is synchronous and
 * deterministic: the same config, seed and call sequence give the same output.
 */
export interface RaftNode {
  /** Advance logical time by one tick (elections, heartbeats, quorum checks, lease expiry). */
  tick(): void;
  /** Start an election now (pre-vote first when enabled). */
  campaign(): void;
  /**
   * Propose a command. On a follower it is forwarded to the leader (unless disabled).
   * @throws {ProposalDroppedError} when it cannot be accepted here (no leader, transfer, limits).
   */
  propose(data: Uint8Array): void;
  /**
   * Propose a membership change (one at a time; see docs/raft.md).
   * @throws {ProposalDroppedError} as for `propose`, and while another change is pending.
   */
  proposeConfChange(cc: ConfChange): void;
  /** Ask the leader to hand leadership to `transferee`. */
  transferLeader(transferee: NodeId): void;
  /** Request a linearizable read; its `ReadState` (with `ctx`) appears in a later `Ready`. */
  readIndex(ctx: Uint8Array): void;
  /**
   * Feed a message received from a peer.
   * @throws {RangeError} for local message kinds.
   */
  step(message: Message): void;
  /** Report that a peer could not be reached (the leader probes it again). */
  reportUnreachable(id: NodeId): void;
  /** Report the outcome of sending a snapshot to `id`. */
  reportSnapshot(id: NodeId, status: SnapshotStatus): void;
  /** Whether `ready()` has something to do. */
  hasReady(): boolean;
  /** The work accumulated since the last `advance`. Call `advance` before the next `ready`. */
  ready(): Ready;
  /** Acknowledge that a `Ready` was persisted, sent and applied. */
  advance(ready: Ready): void;
  /** The node's current state. */
  status(): Status;
}

/** Thrown by `Storage` when the requested index was compacted away. */
export class CompactedError extends Error {
  /**
   * Creates the error.
   * @param message what was requested and the first available index.
   */
  constructor(message: string) {
    super(message);
    this.name = "CompactedError";
  }
}

/** Thrown by `Storage` when the requested index is beyond the last entry. */
export class UnavailableError extends Error {
  /**
   * Creates the error.
   * @param message what was requested and the last index.
   */
  constructor(message: string) {
    super(message);
    this.name = "UnavailableError";
  }
}

/** Thrown by `Storage.snapshot` when the snapshot is not ready yet. */
export class SnapshotTemporarilyUnavailableError extends Error {
  /**
   * Creates the error.
   * @param message why the snapshot is not ready.
   */
  constructor(message: string) {
    super(message);
    this.name = "SnapshotTemporarilyUnavailableError";
  }
}

/** Thrown by `propose`, `proposeConfChange` when the proposal cannot be accepted. */
export class ProposalDroppedError extends Error {
  /** The leader this node knows of, or `NONE`: where the client should retry. */
  readonly leaderHint: NodeId;
  /**
   * Creates the error.
   * @param message why the proposal was dropped.
   * @param leaderHint the known leader or `NONE`.
   */
  constructor(message: string, leaderHint: NodeId) {
    super(message);
    this.name = "ProposalDroppedError";
    this.leaderHint = leaderHint;
  }
}

/** Thrown when an internal invariant of the core is violated (a bug, never an operating error). */
export class RaftAssertionError extends Error {
  /**
   * Creates the error.
   * @param message the violated invariant and the values involved.
   */
  constructor(message: string) {
    super(message);
    this.name = "RaftAssertionError";
  }
}

/**
 * Size of an entry for byte limits: its payload plus a fixed 24-byte header
 * (term, index, type), so that empty entries still count.
 * @param entry the entry to measure.
 * @returns its size in bytes.
 */
export function entrySizeBytes(entry: Entry): number {
  return entry.data.byteLength + 24;
}

/**
 * Encodes a membership change as the data of a `"confChange"` entry.
 * @param cc the change.
 * @returns its byte encoding (UTF-8 JSON; small and easy to read in dumps).
 */
export function encodeConfChange(cc: ConfChange): Uint8Array {
  const context = cc.context === undefined ? undefined : Array.from(cc.context);
  return new TextEncoder().encode(JSON.stringify({ type: cc.type, nodeId: cc.nodeId, context }));
}

/**
 * Decodes the data of a `"confChange"` entry.
 * @param data bytes produced by {@link encodeConfChange}.
 * @returns the change.
 * @throws {TypeError} when the bytes are not a valid encoding.
 */
export function decodeConfChange(data: Uint8Array): ConfChange {
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder().decode(data));
  } catch (error) {
    throw new TypeError(`Cannot decode conf change: ${(error as Error).message}`);
  }
  const r = raw as { type?: unknown; nodeId?: unknown; context?: unknown };
  if (r.type !== "addNode" && r.type !== "removeNode" && r.type !== "addLearner") {
    throw new TypeError(
      `Cannot decode conf change: type ${String(r.type)} is not addNode, removeNode or addLearner`,
    );
  }
  if (typeof r.nodeId !== "number" || !Number.isSafeInteger(r.nodeId) || r.nodeId <= 0) {
    throw new TypeError(
      `Cannot decode conf change: nodeId ${String(r.nodeId)} is not a positive integer`,
    );
  }
  if (Array.isArray(r.context)) {
    return { type: r.type, nodeId: r.nodeId, context: Uint8Array.from(r.context as number[]) };
  }
  return { type: r.type, nodeId: r.nodeId };
}

/** The default `Config.maxSizePerMsg`: 1 MiB, also the largest proposal a peer takes by default. */
export const DEFAULT_MAX_SIZE_PER_MSG = 1024 * 1024;

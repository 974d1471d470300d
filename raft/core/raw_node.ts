/**
 * `RawNode`: the driver-facing API of the Raft core (etcd's `RawNode`).
 *
 * @module
 */

import { RaftLog } from "./_log.ts";
import { newMessage, Raft, resolveConfig } from "./_raft.ts";
import {
  type ConfChange,
  type Config,
  decodeConfChange,
  encodeConfChange,
  type HardState,
  LOCAL_MESSAGE_TYPES,
  type Message,
  type NodeId,
  type ProgressStatus,
  ProposalDroppedError,
  type RaftNode,
  type Ready,
  type SnapshotStatus,
  type SoftState,
  type Status,
} from "./types.ts";

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

function sameSoftState(a: SoftState, b: SoftState): boolean {
  return a.lead === b.lead && a.raftState === b.raftState;
}

/**
 * A Raft node: a pure, synchronous state machine. The driver calls `tick` on a
 * timer, `step` for each received message and `propose` for client commands,
 * then, whenever `hasReady()`, takes a `Ready`, persists its entries and hard
 * state, sends its messages, applies its committed entries and calls `advance`.
 *
 * @example
 * ```ts
 * import { MemoryStorage, RawNode } from "./mod.ts";
 * const storage = new MemoryStorage();
 * storage.applySnapshot({
 *   metadata: { index: 1, term: 1, confState: { voters: [1], learners: [] } },
 *   data: new Uint8Array(),
 * });
 * const node = new RawNode({
 *   id: 1, electionTick: 10, heartbeatTick: 1, storage,
 *   checkQuorum: true, preVote: true, random: () => 0.5,
 * });
 * node.campaign();
 * const rd = node.ready();
 * storage.append(rd.entries);
 * node.advance(rd);
 * if (node.status().softState.raftState !== "leader") throw new Error("not leader");
 * ```
 */
export class RawNode implements RaftNode {
  readonly #raft: Raft;
  #prevSoft: SoftState;
  #prevHard: HardState;
  #outstanding: Ready | undefined = undefined;

  /**
   * Creates a node from its config and the state found in its storage.
   * @param config the node's options; storage must hold the group's bootstrap snapshot
   *   (index >= 1, with the founding membership) or be empty for a node that will join.
   * @throws {RangeError} on an invalid config or a bootstrap membership at index 0.
   */
  constructor(config: Config) {
    const cfg = resolveConfig(config);
    const log = new RaftLog(config.storage);
    const { hardState, confState } = config.storage.initialState();
    if (
      (confState.voters.length > 0 || confState.learners.length > 0) && log.lastIndex() === 0
    ) {
      throw new RangeError(
        "Invalid raft storage: a membership needs a bootstrap snapshot at index >= 1 so that joining nodes receive it",
      );
    }
    if (cfg.applied > log.lastIndex()) {
      throw new RangeError(
        `Invalid raft config applied: ${cfg.applied} is beyond the last index ${log.lastIndex()}`,
      );
    }
    if (cfg.applied > 0 && cfg.applied < log.firstIndex() - 1) {
      throw new RangeError(
        `Invalid raft config applied: ${cfg.applied} is below the snapshot index ${
          log.firstIndex() - 1
        }; restore the state machine from the snapshot first`,
      );
    }
    this.#raft = new Raft(cfg, log, hardState, confState);
    this.#prevSoft = this.#raft.softState();
    this.#prevHard = hardState;
    this.#raft.assertInvariants();
  }

  /** Advances logical time by one tick. */
  tick(): void {
    this.#raft.tick();
    this.#raft.assertInvariants();
  }

  /** Starts an election now (a pre-vote round first when enabled). */
  campaign(): void {
    this.#local(newMessage({ type: "MsgHup", from: this.#raft.id }));
  }

  /**
   * Proposes a command.
   * @param data the command, at most `maxSizePerMsg` bytes.
   * @throws {ProposalDroppedError} when not accepted here.
   * @throws {RangeError} when `data` is larger than `maxSizePerMsg`.
   */
  propose(data: Uint8Array): void {
    if (data.byteLength > this.#raft.cfg.maxSizePerMsg) {
      throw new RangeError(
        `Cannot propose: ${data.byteLength} bytes exceed maxSizePerMsg ${this.#raft.cfg.maxSizePerMsg}`,
      );
    }
    this.#propose(newMessage({
      type: "MsgProp",
      from: this.#raft.id,
      entries: [{ term: 0, index: 0, type: "normal", data }],
    }));
  }

  /**
   * Proposes a single-server membership change. It takes effect when `advance` acknowledges
   * the committed entry. Only one change may be pending, and only after the leader committed
   * an entry of its own term.
   * @param cc the change.
   * @throws {ProposalDroppedError} when not accepted here.
   * @throws {RangeError} on an invalid node id.
   */
  proposeConfChange(cc: ConfChange): void {
    if (!Number.isSafeInteger(cc.nodeId) || cc.nodeId <= 0) {
      throw new RangeError(`Cannot propose conf change: node id ${cc.nodeId} is not positive`);
    }
    this.#propose(newMessage({
      type: "MsgProp",
      from: this.#raft.id,
      entries: [{ term: 0, index: 0, type: "confChange", data: encodeConfChange(cc) }],
    }));
  }

  #propose(m: Message): void {
    const reason = this.#local(m);
    if (reason !== undefined) {
      throw new ProposalDroppedError(`Cannot propose: ${reason}`, this.#raft.lead);
    }
  }

  /**
   * Asks the leader to hand leadership to `transferee` (forwarded when called on a follower).
   * The leader stops accepting proposals until the transfer ends or an election timeout passes.
   * @param transferee the node to become leader.
   */
  transferLeader(transferee: NodeId): void {
    this.#local(newMessage({ type: "MsgTransferLeader", from: transferee }));
  }

  /**
   * Requests a linearizable read. Its `ReadState` (carrying `ctx`, which must be unique among
   * pending reads) appears in a later `Ready`; serve the read once `applied >= index`.
   * @param ctx request id, at most 1024 bytes.
   * @throws {ProposalDroppedError} when there is no leader or too many reads are pending.
   */
  readIndex(ctx: Uint8Array): void {
    const reason = this.#local(
      newMessage({ type: "MsgReadIndex", from: this.#raft.id, context: ctx }),
    );
    if (reason !== undefined) {
      throw new ProposalDroppedError(`Cannot read: ${reason}`, this.#raft.lead);
    }
  }

  /**
   * Feeds a message from a peer.
   * @param message the message; `to` must be this node.
   * @throws {RangeError} for a local message kind or a message addressed to another node.
   */
  step(message: Message): void {
    if (LOCAL_MESSAGE_TYPES.has(message.type)) {
      throw new RangeError(`Cannot step ${message.type}: it is a local message kind`);
    }
    if (message.to !== this.#raft.id) {
      throw new RangeError(
        `Cannot step message to ${message.to}: this node is ${this.#raft.id}`,
      );
    }
    this.#raft.step(message);
    this.#raft.assertInvariants();
  }

  /**
   * Reports that `id` could not be reached; the leader falls back to probing it.
   * @param id the peer.
   */
  reportUnreachable(id: NodeId): void {
    this.#local(newMessage({ type: "MsgUnreachable", from: id }));
  }

  /**
   * Reports the outcome of sending a snapshot (all chunks) to `id`.
   * @param id the peer.
   * @param status `"finish"` or `"failure"`.
   */
  reportSnapshot(id: NodeId, status: SnapshotStatus): void {
    this.#local(newMessage({ type: "MsgSnapStatus", from: id, reject: status === "failure" }));
  }

  #local(m: Message): string | undefined {
    const reason = this.#raft.step(m);
    this.#raft.assertInvariants();
    return reason;
  }

  /**
   * Whether there is work for the driver.
   * @returns whether `ready()` has work; false while a `Ready` awaits `advance`.
   */
  hasReady(): boolean {
    if (this.#outstanding !== undefined) return false;
    const r = this.#raft;
    return !sameSoftState(r.softState(), this.#prevSoft) ||
      !sameHardState(r.hardState(), this.#prevHard) ||
      r.log.hasPendingSnapshot() ||
      r.log.unstable.entries.length > 0 ||
      r.msgs.length > 0 ||
      r.readStates.length > 0 ||
      r.log.hasNextCommittedEnts();
  }

  /**
   * Collects the work since the last `advance`.
   * @returns the `Ready`; carry it out in the documented order, then `advance` it.
   * @throws {Error} when the previous `Ready` was not advanced.
   */
  ready(): Ready {
    if (this.#outstanding !== undefined) {
      throw new Error("Cannot take a Ready: the previous one was not advanced");
    }
    const r = this.#raft;
    r.flushAppends();
    const soft = r.softState();
    const hard = r.hardState();
    const entries = r.log.unstableEntries();
    const snapshot = r.log.unstable.snapshot;
    // A snapshot is acknowledged to the leader (which counts it toward commit): durable first.
    const mustSync = entries.length > 0 || snapshot !== undefined ||
      hard.term !== this.#prevHard.term || hard.vote !== this.#prevHard.vote;
    const rd: Ready = {
      ...(sameSoftState(soft, this.#prevSoft) ? {} : { softState: soft }),
      ...(sameHardState(hard, this.#prevHard) ? {} : { hardState: hard }),
      readStates: r.readStates,
      entries,
      ...(snapshot === undefined ? {} : { snapshot }),
      committedEntries: r.log.nextCommittedEnts(r.cfg.maxCommittedSizePerReady),
      messages: r.msgs,
      mustSync,
    };
    r.msgs = [];
    r.readStates = [];
    this.#prevSoft = soft;
    this.#prevHard = hard;
    this.#outstanding = rd;
    return rd;
  }

  /**
   * Acknowledges a `Ready`: its entries and snapshot are persisted, its committed entries
   * applied. Membership changes among them take effect now.
   * @param ready the `Ready` returned by the last `ready()`.
   * @throws {Error} when `ready` is not the outstanding one.
   */
  advance(ready: Ready): void {
    if (ready !== this.#outstanding) {
      throw new Error("Cannot advance: not the Ready returned by the last ready()");
    }
    const r = this.#raft;
    if (ready.snapshot !== undefined) {
      const idx = ready.snapshot.metadata.index;
      r.log.stableSnapTo(idx);
      if (idx > r.log.applied) r.log.applied = idx;
    }
    for (const e of ready.committedEntries) {
      if (e.type === "confChange") r.applyConfChange(decodeConfChange(e.data), e.index);
    }
    const lastCommitted = ready.committedEntries[ready.committedEntries.length - 1];
    if (lastCommitted !== undefined) {
      r.log.appliedTo(lastCommitted.index);
      r.reduceUncommittedSize(ready.committedEntries);
    }
    const lastEntry = ready.entries[ready.entries.length - 1];
    if (lastEntry !== undefined) r.log.stableTo(lastEntry.index, lastEntry.term);
    this.#outstanding = undefined;
    r.assertInvariants();
  }

  /**
   * A copy of the node's state.
   * @returns the node's current state (progress only on a leader).
   */
  status(): Status {
    const r = this.#raft;
    const progress = new Map<NodeId, ProgressStatus>();
    if (r.state === "leader") {
      const ids = [...r.trk.progress.keys()].sort((a, b) => a - b);
      for (const id of ids) {
        const pr = r.trk.progress.get(id)!;
        progress.set(id, {
          match: pr.match,
          next: pr.next,
          state: pr.state,
          pendingSnapshot: pr.pendingSnapshot,
          recentActive: pr.recentActive,
          inflightMsgs: pr.inflights.count,
          inflightBytes: pr.inflights.bytes,
          isLearner: pr.isLearner,
        });
      }
    }
    return {
      id: r.id,
      hardState: r.hardState(),
      softState: r.softState(),
      applied: r.log.applied,
      lastIndex: r.log.lastIndex(),
      confState: r.trk.confState(),
      leadTransferee: r.leadTransferee,
      progress,
    };
  }

  /**
   * Whether the leader lease currently holds.
   * @returns whether a lease read would be served locally right now (leader, lease valid).
   */
  leaseValid(): boolean {
    return this.#raft.leaseValid();
  }

  /**
   * The leader this node knows of.
   * @returns the known leader, or `NONE`.
   */
  get leader(): NodeId {
    return this.#raft.lead;
  }
}

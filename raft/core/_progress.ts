/**
 * The leader's flow control per follower (probe / replicate / snapshot, a
 * bounded window of in-flight appends) and the membership with its quorum
 * arithmetic and vote tallies.
 *
 * @module
 */

import type { ConfState, NodeId, ProgressState } from "./types.ts";
import { assert } from "./_log.ts";

/** A bounded window of MsgApp in flight: each slot is (last index sent, bytes). */
export class Inflights {
  readonly #sizeMax: number;
  readonly #bytesMax: number;
  // Ring buffer of capacity #sizeMax: slots [#start, #start + #count) modulo capacity.
  readonly #indexes: number[];
  readonly #sizes: number[];
  #start = 0;
  #count = 0;
  #bytes = 0;

  constructor(sizeMax: number, bytesMax: number) {
    this.#sizeMax = sizeMax;
    this.#bytesMax = bytesMax;
    this.#indexes = [];
    this.#sizes = [];
  }

  get count(): number {
    return this.#count;
  }

  get bytes(): number {
    return this.#bytes;
  }

  add(index: number, bytes: number): void {
    assert(!this.full(), () => `cannot add inflight ${index}: window is full`);
    if (this.#count > 0) {
      const last = this.#indexes[(this.#start + this.#count - 1) % this.#sizeMax]!;
      assert(index > last, () => `inflight index ${index} must exceed last ${last}`);
    }
    const slot = (this.#start + this.#count) % this.#sizeMax;
    this.#indexes[slot] = index;
    this.#sizes[slot] = bytes;
    this.#count++;
    this.#bytes += bytes;
  }

  /** Frees every slot with index <= `to`. */
  freeLE(to: number): void {
    while (this.#count > 0 && this.#indexes[this.#start]! <= to) {
      this.#bytes -= this.#sizes[this.#start]!;
      this.#start = (this.#start + 1) % this.#sizeMax;
      this.#count--;
    }
    if (this.#count === 0) this.#start = 0;
  }

  full(): boolean {
    return this.#count >= this.#sizeMax ||
      (this.#bytesMax > 0 && this.#bytes >= this.#bytesMax);
  }

  reset(): void {
    this.#start = 0;
    this.#count = 0;
    this.#bytes = 0;
  }
}

/** The leader's view of one member. Invariant: match < next. */
export class Progress {
  match = 0;
  next: number;
  state: ProgressState = "probe";
  /** Index of the snapshot being sent, in snapshot state. */
  pendingSnapshot = 0;
  /** Heard from since the last quorum check. */
  recentActive = false;
  /** In probe state: a probe is outstanding, send nothing more until a response. */
  msgAppFlowPaused = false;
  readonly inflights: Inflights;
  isLearner: boolean;

  constructor(next: number, inflights: Inflights, isLearner: boolean) {
    this.next = next;
    this.inflights = inflights;
    this.isLearner = isLearner;
  }

  #resetState(state: ProgressState): void {
    this.msgAppFlowPaused = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === "snapshot") {
      const pending = this.pendingSnapshot;
      this.#resetState("probe");
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.#resetState("probe");
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.#resetState("replicate");
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.#resetState("snapshot");
    this.pendingSnapshot = snapshotIndex;
  }

  /** Records that a MsgApp with `entries` entries of `bytes` bytes was sent. */
  sentEntries(entries: number, bytes: number): void {
    if (this.state === "replicate") {
      if (entries > 0) {
        this.next += entries;
        this.inflights.add(this.next - 1, bytes);
      }
      this.msgAppFlowPaused = this.inflights.full();
    } else {
      assert(this.state === "probe", () => `sending entries in state ${this.state}`);
      this.msgAppFlowPaused = true;
    }
  }

  /** Acknowledgement up to `n`; returns whether match advanced. */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.msgAppFlowPaused = false;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  /** Rejection of the append at `rejected`; returns whether `next` moved back. */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === "replicate") {
      // A stale rejection, or one of an append we no longer track.
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    // In probe state only the response to the latest probe counts.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.msgAppFlowPaused = false;
    return true;
  }

  isPaused(): boolean {
    switch (this.state) {
      case "probe":
        return this.msgAppFlowPaused;
      case "replicate":
        return this.msgAppFlowPaused;
      case "snapshot":
        return true;
    }
  }
}

/** Outcome of an election tally. */
export type VoteResult = "pending" | "won" | "lost";

/** Membership, progress per member and vote tallies. */
export class ProgressTracker {
  voters = new Set<NodeId>();
  learners = new Set<NodeId>();
  readonly progress = new Map<NodeId, Progress>();
  readonly votes = new Map<NodeId, boolean>();
  readonly #maxInflight: number;
  readonly #maxInflightBytes: number;

  constructor(maxInflight: number, maxInflightBytes: number) {
    this.#maxInflight = maxInflight;
    this.#maxInflightBytes = maxInflightBytes;
  }

  newProgress(next: number, isLearner: boolean): Progress {
    return new Progress(next, new Inflights(this.#maxInflight, this.#maxInflightBytes), isLearner);
  }

  confState(): ConfState {
    return {
      voters: [...this.voters].sort((a, b) => a - b),
      learners: [...this.learners].sort((a, b) => a - b),
    };
  }

  quorum(): number {
    return Math.floor(this.voters.size / 2) + 1;
  }

  isSingleton(): boolean {
    return this.voters.size === 1;
  }

  /** The largest index replicated on a quorum of voters. */
  committed(): number {
    if (this.voters.size === 0) return 0; // no voters: nothing can be committed by counting
    const matches: number[] = [];
    for (const id of this.voters) matches.push(this.progress.get(id)?.match ?? 0);
    matches.sort((a, b) => b - a);
    return matches[this.quorum() - 1]!;
  }

  /** The `quorum()`-th largest of a value per voter (missing voters count as -Infinity). */
  quorumValue(valueOf: (id: NodeId) => number | undefined): number {
    const values = [...this.voters].map((id) => valueOf(id) ?? -Infinity);
    values.sort((a, b) => b - a);
    return values[this.quorum() - 1] ?? -Infinity;
  }

  /** Whether a quorum of voters was recently active. */
  quorumActive(): boolean {
    let active = 0;
    for (const id of this.voters) {
      if (this.progress.get(id)?.recentActive === true) active++;
    }
    return active >= this.quorum();
  }

  /** Whether the ids in `acks` form a quorum of voters. */
  hasQuorum(acks: ReadonlySet<NodeId>): boolean {
    let n = 0;
    for (const id of this.voters) if (acks.has(id)) n++;
    return n >= this.quorum();
  }

  resetVotes(): void {
    this.votes.clear();
  }

  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  tallyVotes(): { granted: number; rejected: number; result: VoteResult } {
    let granted = 0;
    let rejected = 0;
    for (const id of this.voters) {
      const v = this.votes.get(id);
      if (v === true) granted++;
      else if (v === false) rejected++;
    }
    const q = this.quorum();
    let result: VoteResult = "pending";
    if (granted >= q) result = "won";
    else if (rejected > this.voters.size - q) result = "lost";
    return { granted, rejected, result };
  }
}

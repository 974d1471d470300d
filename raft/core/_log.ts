/**
 * The Raft log of one node: the stable part read from `Storage` and the
 * unstable tail (entries and snapshot not yet persisted) kept in memory.
 *
 * @module
 */

import {
  CompactedError,
  type Entry,
  entrySizeBytes,
  RaftAssertionError,
  type Snapshot,
  type Storage,
  UnavailableError,
} from "./types.ts";

/** Throws a `RaftAssertionError` when `cond` is false. */
export function assert(cond: boolean, message: () => string): asserts cond {
  if (!cond) throw new RaftAssertionError(message());
}

/** Entries and snapshot received but not yet persisted. */
class Unstable {
  snapshot: Snapshot | undefined = undefined;
  entries: Entry[] = [];
  // Invariant: entries[i].index === offset + i.
  offset: number;

  constructor(offset: number) {
    this.offset = offset;
  }

  maybeFirstIndex(): number | undefined {
    return this.snapshot === undefined ? undefined : this.snapshot.metadata.index + 1;
  }

  maybeLastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot === undefined ? undefined : this.snapshot.metadata.index;
  }

  maybeTerm(i: number): number | undefined {
    if (i < this.offset) {
      if (this.snapshot !== undefined && this.snapshot.metadata.index === i) {
        return this.snapshot.metadata.term;
      }
      return undefined;
    }
    const last = this.maybeLastIndex();
    if (last === undefined || i > last) return undefined;
    return this.entries[i - this.offset]?.term;
  }

  stableTo(i: number, t: number): void {
    const gt = this.maybeTerm(i);
    // Only drop entries if the persisted one is still the one we hold (it may have been
    // overwritten by a newer append between ready and advance).
    if (gt === t && i >= this.offset) {
      this.entries = this.entries.slice(i + 1 - this.offset);
      this.offset = i + 1;
    }
  }

  stableSnapTo(i: number): void {
    if (this.snapshot !== undefined && this.snapshot.metadata.index === i) {
      this.snapshot = undefined;
    }
  }

  restore(s: Snapshot): void {
    this.offset = s.metadata.index + 1;
    this.entries = [];
    this.snapshot = s;
  }

  truncateAndAppend(ents: readonly Entry[]): void {
    const after = ents[0]!.index;
    if (after === this.offset + this.entries.length) {
      // In place: nobody else holds this array (readers get copies or slices).
      for (const e of ents) this.entries.push(e);
    } else if (after <= this.offset) {
      this.offset = after;
      this.entries = [...ents];
    } else {
      this.entries = this.entries.slice(0, after - this.offset).concat(ents);
    }
  }

  slice(lo: number, hi: number): Entry[] {
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}

/** The combined log. Invariant: `applied <= committed <= lastIndex()`. */
export class RaftLog {
  readonly storage: Storage;
  readonly unstable: Unstable;
  /** Highest index known committed. Invariant: committed <= lastIndex(). */
  committed: number;
  /** Highest index acknowledged applied. Invariant: applied <= committed. */
  applied: number;

  constructor(storage: Storage) {
    this.storage = storage;
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstable = new Unstable(last + 1);
    this.committed = first - 1;
    this.applied = first - 1;
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  /** Term at `i`; throws CompactedError/UnavailableError outside `[firstIndex-1, lastIndex]`. */
  term(i: number): number {
    const dummy = this.firstIndex() - 1;
    if (i < dummy) {
      throw new CompactedError(`Cannot read term of ${i}: compacted, first available is ${dummy}`);
    }
    if (i > this.lastIndex()) {
      throw new UnavailableError(`Cannot read term of ${i}: last index is ${this.lastIndex()}`);
    }
    return this.unstable.maybeTerm(i) ?? this.storage.term(i);
  }

  /** Term at `i`, or undefined when it is not available (no exception: this is a hot path). */
  maybeTerm(i: number): number | undefined {
    if (i < this.firstIndex() - 1 || i > this.lastIndex()) return undefined;
    const t = this.unstable.maybeTerm(i);
    if (t !== undefined) return t;
    try {
      return this.storage.term(i);
    } catch (e) {
      if (e instanceof CompactedError || e instanceof UnavailableError) return undefined;
      throw e;
    }
  }

  /** Term at `i`, or 0 when it is not available. */
  termOrZero(i: number): number {
    return this.maybeTerm(i) ?? 0;
  }

  lastTerm(): number {
    return this.term(this.lastIndex());
  }

  matchTerm(i: number, t: number): boolean {
    return this.maybeTerm(i) === t;
  }

  /**
   * Appends `ents` after the entry (index, logTerm) if that entry matches, truncating a
   * conflicting suffix. Returns the last index of the new entries, or undefined on mismatch.
   * With `keepConflicts` (planted bug), conflicting entries are kept and only new indexes added.
   */
  maybeAppend(
    index: number,
    logTerm: number,
    committed: number,
    ents: readonly Entry[],
    keepConflicts: boolean,
  ): number | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNewIndex = index + ents.length;
    const ci = this.findConflict(ents);
    if (ci !== 0) {
      assert(
        ci > this.committed,
        () => `entry ${ci} conflicts with committed entry (committed ${this.committed})`,
      );
      let toAppend = ents.slice(ci - index - 1);
      if (keepConflicts) {
        const last = this.lastIndex();
        toAppend = toAppend.filter((e) => e.index > last);
      }
      if (toAppend.length > 0) this.append(toAppend);
    }
    this.commitTo(Math.min(committed, lastNewIndex));
    return lastNewIndex;
  }

  append(ents: readonly Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    const after = ents[0]!.index - 1;
    assert(
      after >= this.committed,
      () => `cannot append after ${after}: below committed ${this.committed}`,
    );
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  /** First index of `ents` whose term differs from ours (or that we lack); 0 if none. */
  findConflict(ents: readonly Entry[]): number {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * The largest index <= `index` whose term is <= `term` (fast backtracking); returns
   * `index` itself when terms are unavailable.
   */
  findConflictByTerm(index: number, term: number): number {
    let i = index;
    for (; i > 0; i--) {
      let t: number;
      try {
        t = this.term(i);
      } catch (e) {
        if (e instanceof CompactedError || e instanceof UnavailableError) return i;
        throw e;
      }
      if (t <= term) break;
    }
    return i;
  }

  unstableEntries(): Entry[] {
    return [...this.unstable.entries];
  }

  hasPendingSnapshot(): boolean {
    return this.unstable.snapshot !== undefined;
  }

  /** Committed entries not yet applied, bounded by `maxBytes` (at least one). */
  nextCommittedEnts(maxBytes: number): Entry[] {
    if (this.hasPendingSnapshot()) return [];
    const off = Math.max(this.applied + 1, this.firstIndex());
    if (this.committed + 1 > off) return this.slice(off, this.committed + 1, maxBytes);
    return [];
  }

  hasNextCommittedEnts(): boolean {
    if (this.hasPendingSnapshot()) return false;
    const off = Math.max(this.applied + 1, this.firstIndex());
    return this.committed + 1 > off;
  }

  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  commitTo(toCommit: number): void {
    if (this.committed < toCommit) {
      assert(
        this.lastIndex() >= toCommit,
        () => `commit ${toCommit} is out of range: last index ${this.lastIndex()}`,
      );
      this.committed = toCommit;
    }
  }

  appliedTo(i: number): void {
    if (i === 0) return;
    assert(
      this.committed >= i && i >= this.applied,
      () =>
        `applied ${i} is out of range [prevApplied ${this.applied}, committed ${this.committed}]`,
    );
    this.applied = i;
  }

  stableTo(i: number, t: number): void {
    this.unstable.stableTo(i, t);
  }

  stableSnapTo(i: number): void {
    this.unstable.stableSnapTo(i);
  }

  restore(s: Snapshot): void {
    this.committed = s.metadata.index;
    this.unstable.restore(s);
  }

  /** Raft §5.4.1: a candidate's log (lastIndex, term) is at least as up-to-date as ours. */
  isUpToDate(lastIndex: number, term: number): boolean {
    const ourTerm = this.lastTerm();
    return term > ourTerm || (term === ourTerm && lastIndex >= this.lastIndex());
  }

  /** Commits `maxIndex` if it is beyond `committed` and (unless `anyTerm`) of `term`. */
  maybeCommit(maxIndex: number, term: number, anyTerm: boolean): boolean {
    if (maxIndex > this.committed && (anyTerm || this.termOrZero(maxIndex) === term)) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  /** Entries from `i` on, bounded by `maxBytes`; throws CompactedError below firstIndex. */
  entriesFrom(i: number, maxBytes: number): Entry[] {
    if (i > this.lastIndex()) return [];
    return this.slice(i, this.lastIndex() + 1, maxBytes);
  }

  /** Entries `[lo, hi)` bounded by `maxBytes` (at least one). */
  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    assert(lo <= hi, () => `invalid slice ${lo} > ${hi}`);
    const first = this.firstIndex();
    if (lo < first) {
      throw new CompactedError(`Cannot read entries from ${lo}: first available is ${first}`);
    }
    assert(
      hi <= this.lastIndex() + 1,
      () => `slice [${lo}, ${hi}) out of bound [${first}, ${this.lastIndex()}]`,
    );
    if (lo === hi) return [];
    let out: Entry[] = [];
    const uOff = this.unstable.offset;
    if (lo < uOff) {
      out = this.storage.entries(lo, Math.min(hi, uOff), maxBytes);
      // Storage returned fewer entries (size limit): stop here.
      if (out.length < Math.min(hi, uOff) - lo) return out;
    }
    if (hi > uOff) {
      const u = this.unstable.slice(Math.max(lo, uOff), hi);
      out = out.length > 0 ? out.concat(u) : u;
    }
    return limitSize(out, maxBytes);
  }
}

function limitSize(ents: Entry[], maxBytes: number): Entry[] {
  if (ents.length === 0) return ents;
  let size = entrySizeBytes(ents[0]!);
  let limit = 1;
  for (; limit < ents.length; limit++) {
    size += entrySizeBytes(ents[limit]!);
    if (size > maxBytes) break;
  }
  return ents.slice(0, limit);
}

/**
 * An in-memory {@link Storage}: the reference implementation used by tests,
 * the transcripts and the simulation's in-memory log.
 *
 * @module
 */

import {
  CompactedError,
  type ConfState,
  type Entry,
  entrySizeBytes,
  type HardState,
  RaftAssertionError,
  type Snapshot,
  type Storage,
  UnavailableError,
} from "./types.ts";

const EMPTY_DATA = new Uint8Array(0);

/**
 * A `Storage` holding the log in memory. Like etcd's `MemoryStorage`, slot 0
 * of the entry array is a dummy entry carrying the snapshot's index and term.
 *
 * @example
 * ```ts
 * import { MemoryStorage } from "./memory_storage.ts";
 * const s = new MemoryStorage({ voters: [1, 2, 3], learners: [] });
 * s.append([{ term: 1, index: 1, type: "normal", data: new Uint8Array() }]);
 * if (s.lastIndex() !== 1) throw new Error("append failed");
 * ```
 */
export class MemoryStorage implements Storage {
  #hardState: HardState = { term: 0, vote: 0, commit: 0 };
  #snapshot: Snapshot;
  // #ents[0] is a dummy holding the snapshot index/term; real entries follow contiguously.
  #ents: Entry[];

  /**
   * Creates an empty log.
   * @param confState initial membership (used until a snapshot replaces it).
   */
  constructor(confState: ConfState = { voters: [], learners: [] }) {
    this.#snapshot = {
      metadata: { index: 0, term: 0, confState: copyConfState(confState) },
      data: EMPTY_DATA,
    };
    this.#ents = [{ term: 0, index: 0, type: "normal", data: EMPTY_DATA }];
  }

  /**
   * The state to start from.
   * @returns the saved hard state and the membership of the last snapshot.
   */
  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: this.#hardState, confState: this.#snapshot.metadata.confState };
  }

  /**
   * Saves the hard state.
   * @param hs the new hard state.
   */
  setHardState(hs: HardState): void {
    this.#hardState = { term: hs.term, vote: hs.vote, commit: hs.commit };
  }

  /**
   * Reads a range of entries.
   * @returns entries in `[lo, hi)` limited by `maxBytes` (at least one).
   */
  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    const offset = this.#offset();
    if (lo <= offset) {
      throw new CompactedError(
        `Cannot read entries from ${lo}: compacted, first available is ${offset + 1}`,
      );
    }
    if (hi > this.lastIndex() + 1) {
      throw new UnavailableError(
        `Cannot read entries up to ${hi}: last index is ${this.lastIndex()}`,
      );
    }
    const out: Entry[] = [];
    let size = 0;
    for (let i = lo; i < hi; i++) {
      const e = this.#ents[i - offset]!;
      size += entrySizeBytes(e);
      if (out.length > 0 && size > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  /**
   * Reads the term of one entry.
   * @returns the term of the entry at `index` (`firstIndex() - 1 <= index <= lastIndex()`).
   */
  term(index: number): number {
    const offset = this.#offset();
    if (index < offset) {
      throw new CompactedError(
        `Cannot read term of ${index}: compacted, first available is ${offset}`,
      );
    }
    if (index > this.lastIndex()) {
      throw new UnavailableError(
        `Cannot read term of ${index}: last index is ${this.lastIndex()}`,
      );
    }
    return this.#ents[index - offset]!.term;
  }

  /**
   * The first entry still held.
   * @returns the first available index.
   */
  firstIndex(): number {
    return this.#offset() + 1;
  }

  /**
   * The last entry held.
   * @returns the last index.
   */
  lastIndex(): number {
    return this.#offset() + this.#ents.length - 1;
  }

  /**
   * The latest snapshot.
   * @returns the current snapshot.
   */
  snapshot(): Snapshot {
    return this.#snapshot;
  }

  /**
   * Replaces the whole log by a snapshot (a follower installing one from its leader).
   * A snapshot older than the current one is ignored.
   * @param snap the snapshot.
   */
  applySnapshot(snap: Snapshot): void {
    if (snap.metadata.index <= this.#snapshot.metadata.index) return;
    // Keep our own copy of the membership: the caller's arrays may change later.
    const md = snap.metadata;
    this.#snapshot = {
      metadata: { index: md.index, term: md.term, confState: copyConfState(md.confState) },
      data: snap.data,
    };
    this.#ents = [{
      term: snap.metadata.term,
      index: snap.metadata.index,
      type: "normal",
      data: EMPTY_DATA,
    }];
  }

  /**
   * Records a snapshot of the state machine at `index` (which must be available and
   * newer than the current snapshot). Does not compact; call `compact` for that.
   * @param index the applied index the image reflects.
   * @param confState membership at `index`.
   * @param data the image.
   * @returns the new snapshot.
   * @throws {RangeError} when `index` is not newer than the snapshot or beyond the last index.
   */
  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Snapshot {
    if (index <= this.#snapshot.metadata.index) {
      throw new RangeError(
        `Cannot create snapshot at ${index}: not newer than the current one at ${this.#snapshot.metadata.index}`,
      );
    }
    if (index > this.lastIndex()) {
      throw new RangeError(`Cannot create snapshot at ${index}: last index is ${this.lastIndex()}`);
    }
    this.#snapshot = {
      metadata: { index, term: this.term(index), confState: copyConfState(confState) },
      data,
    };
    return this.#snapshot;
  }

  /**
   * Discards entries up to and including `compactIndex`; it becomes the dummy.
   * Compacting at or below the current offset does nothing.
   * @param compactIndex index to compact through (<= last index).
   * @throws {RangeError} when `compactIndex` is beyond the last index.
   */
  compact(compactIndex: number): void {
    const offset = this.#offset();
    if (compactIndex <= offset) return;
    if (compactIndex > this.lastIndex()) {
      throw new RangeError(
        `Cannot compact to ${compactIndex}: beyond the last index ${this.lastIndex()}`,
      );
    }
    const i = compactIndex - offset;
    const dummy = this.#ents[i]!;
    this.#ents = [
      { term: dummy.term, index: dummy.index, type: "normal", data: EMPTY_DATA },
      ...this.#ents.slice(i + 1),
    ];
  }

  /**
   * Appends entries, truncating any existing suffix from the first new index on.
   * Entries below the first available index are skipped.
   * @param entries contiguous entries; the first must be <= last index + 1.
   * @throws {RaftAssertionError} on a gap.
   */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[entries.length - 1]!.index;
    if (last < first) return;
    let ents = entries;
    if (first > ents[0]!.index) ents = ents.slice(first - ents[0]!.index);
    const offset = ents[0]!.index - this.#offset();
    if (offset > this.#ents.length) {
      throw new RaftAssertionError(
        `Cannot append at ${ents[0]!.index}: gap after last index ${this.lastIndex()}`,
      );
    }
    // In place: appending at the end is the common case and must not copy the log.
    if (offset < this.#ents.length) this.#ents.length = offset;
    for (const e of ents) this.#ents.push(e);
  }

  #offset(): number {
    return this.#ents[0]!.index;
  }
}

function copyConfState(cs: ConfState): ConfState {
  return { voters: [...cs.voters], learners: [...cs.learners] };
}

/**
 * The log a region peer writes: the core's read-only `Storage` plus the
 * writes the driver makes (save a `Ready`, snapshot, compact). Implemented by
 * the durable `RegionLogStore` and by {@link MemoryLogStorage}.
 *
 * @module
 */

import {
  type ConfState,
  type Entry,
  type HardState,
  MemoryStorage,
  type Snapshot,
  type Storage,
} from "../core/mod.ts";
import type { LogUpdate } from "../log_store/mod.ts";

/** A region log the driver can write. */
export interface LogStorage extends Storage {
  /** Persists a `Ready`'s snapshot, entries and hard state; fsyncs when `sync` is set. */
  save(update: LogUpdate, sync: boolean): Promise<void>;
  /** Records a local snapshot at `index` so the log before it can be compacted. */
  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Promise<Snapshot>;
  /** Drops entries up to `index` (at most the snapshot index). */
  compact(index: number): Promise<void>;
  /** Releases files; safe to call twice. */
  close(): void;
}

/**
 * A {@link LogStorage} in memory (no durability), over the core's `MemoryStorage`.
 *
 * @example
 * ```ts
 * import { MemoryLogStorage } from "./log_storage.ts";
 * const s = new MemoryLogStorage({ voters: [1], learners: [] });
 * await s.save({ entries: [{ term: 1, index: 1, type: "normal", data: new Uint8Array() }] }, true);
 * if (s.lastIndex() !== 1) throw new Error("not appended");
 * ```
 */
export class MemoryLogStorage implements LogStorage {
  readonly #m: MemoryStorage;
  #saves = 0;

  /**
   * Creates a MemoryLogStorage.
   * @param confState membership until a snapshot replaces it
   */
  constructor(confState: ConfState = { voters: [], learners: [] }) {
    this.#m = new MemoryStorage(confState);
  }

  /** Number of `save` calls that asked for a sync (what a disk would fsync). */
  get syncs(): number {
    return this.#saves;
  }

  /** Returns hard state and membership. */
  initialState(): { hardState: HardState; confState: ConfState } {
    return this.#m.initialState();
  }
  /** Returns entries in `[lo, hi)`. */
  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    return this.#m.entries(lo, hi, maxBytes);
  }
  /** Returns the term at `index`. */
  term(index: number): number {
    return this.#m.term(index);
  }
  /** Returns the first index. */
  firstIndex(): number {
    return this.#m.firstIndex();
  }
  /** Returns the last index. */
  lastIndex(): number {
    return this.#m.lastIndex();
  }
  /** Returns the latest snapshot. */
  snapshot(): Snapshot {
    return this.#m.snapshot();
  }

  /** Applies the update in memory. */
  save(update: LogUpdate, sync: boolean): Promise<void> {
    if (update.snapshot !== undefined) this.#m.applySnapshot(update.snapshot);
    this.#m.append(update.entries);
    if (update.hardState !== undefined) this.#m.setHardState(update.hardState);
    if (sync) this.#saves++;
    return Promise.resolve();
  }

  /** Records a snapshot in memory. */
  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Promise<Snapshot> {
    return Promise.resolve(this.#m.createSnapshot(index, confState, data));
  }

  /** Compacts in memory. */
  compact(index: number): Promise<void> {
    this.#m.compact(Math.min(index, this.#m.snapshot().metadata.index));
    return Promise.resolve();
  }

  /** Nothing to release. */
  close(): void {}
}

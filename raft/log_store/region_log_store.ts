/**
 * The durable log of one region: segment files of checksummed records (entries,
 * hard states, snapshot markers) and one snapshot file, under
 * `<data-dir>/raft/region_<id>/`. Implements the core's `Storage` for reads,
 * from memory (the entries after the compaction point are kept in memory).
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
  type SnapshotMetadata,
  type Storage,
  UnavailableError,
} from "../core/mod.ts";
import { Crc32c } from "./crc32c.ts";
import type { AppendFile, FileSystem } from "./file_system.ts";
import {
  decodeSnapshotFile,
  encodeSnapshotFile,
  REC_ENTRY,
  REC_HARD_STATE,
  REC_SNAPSHOT,
  RecordWriter,
  scanRecords,
} from "./_records.ts";

/** Thrown when a region log cannot be recovered because a file is damaged. */
export class CorruptLogError extends Error {
  /** The damaged file. */
  readonly path: string;
  /** Byte offset of the damaged record in that file. */
  readonly offset: number;
  /**
   * Creates a CorruptLogError.
   * @param path the file
   * @param offset the offset of the bad record
   * @param reason what is wrong
   */
  constructor(path: string, offset: number, reason: string) {
    super(`Cannot recover region log: ${path} at offset ${offset}: ${reason}`);
    this.name = "CorruptLogError";
    this.path = path;
    this.offset = offset;
  }
}

/**
 * The directory of a region's log.
 *
 * @param dataDir the node's data directory
 * @param regionId the region
 * @returns `<dataDir>/raft/region_<regionId>`
 */
export function regionLogDir(dataDir: string, regionId: number): string {
  if (!Number.isSafeInteger(regionId) || regionId < 0) {
    throw new RangeError(`Cannot name region log directory: region id ${regionId} must be >= 0`);
  }
  return `${dataDir.replace(/\/+$/, "")}/raft/region_${regionId}`;
}

/** Options of {@link RegionLogStore.open}. */
export interface RegionLogStoreOptions {
  /** The disk. */
  readonly fs: FileSystem;
  /** The region's directory (see {@link regionLogDir}); created when missing. */
  readonly dir: string;
  /** Membership of a brand-new region (ignored when a log exists). */
  readonly confState?: ConfState;
  /** A segment is closed and a new one started past this size. Default 64 MiB. */
  readonly segmentBytesMax?: number;
}

/** What one `save` persists: the parts of a `Ready` that must be durable. */
export interface LogUpdate {
  /** A snapshot from the leader; replaces the whole log. */
  readonly snapshot?: Snapshot;
  /** Entries to append; they overwrite any existing suffix from their first index. */
  readonly entries: readonly Entry[];
  /** The new hard state. */
  readonly hardState?: HardState;
}

/** Counters of a {@link RegionLogStore}. */
export interface LogStoreStats {
  /** fsyncs of segment data. */
  fsyncs: number;
  /** Entries written (including overwrites). */
  entriesWritten: number;
  /** Record bytes written to segments. */
  bytesWritten: number;
  /** Live segment files. */
  segments: number;
}

interface Segment {
  readonly seq: number;
  readonly name: string;
  /** Highest entry index recorded in the segment (0 when none). */
  maxEntryIndex: number;
}

const SEGMENT_RE = /^seg_(\d{10})\.wal$/;
const SNAP_RE = /^snap_(\d{20})\.snap$/;
const segName = (seq: number) => `seg_${String(seq).padStart(10, "0")}.wal`;
const snapName = (index: number) => `snap_${String(index).padStart(20, "0")}.snap`;
const EMPTY = new Uint8Array(0);

/**
 * A region's durable Raft log.
 *
 * Layout: `seg_<seq>.wal` files are appended in sequence; each starts with the
 * current hard state and snapshot marker. An entry record at index i replaces
 * the entries from i on; a snapshot record marks the snapshot (`install`
 * also discards the log). `snap_<index>.snap` holds the latest snapshot.
 *
 * @example
 * ```ts
 * import { RegionLogStore } from "./region_log_store.ts";
 * import { SimDisk } from "./sim_disk.ts";
 * const fs = new SimDisk();
 * const store = await RegionLogStore.open({ fs, dir: "/r1", confState: { voters: [1], learners: [] } });
 * await store.save({ entries: [{ term: 1, index: 1, type: "normal", data: new Uint8Array([7]) }] }, true);
 * store.close();
 * const again = await RegionLogStore.open({ fs, dir: "/r1" });
 * if (again.lastIndex() !== 1) throw new Error("entry lost");
 * again.close();
 * ```
 */
export class RegionLogStore implements Storage {
  readonly #fs: FileSystem;
  readonly #dir: string;
  readonly #segmentBytesMax: number;
  readonly #crc = new Crc32c();
  readonly #writer: RecordWriter;
  // Invariant: #ents[k].index === #offset + 1 + k; #offset >= #snapshot index is never required
  // (compaction may keep entries at or below the snapshot index).
  #ents: Entry[] = [];
  #offset = 0;
  #offsetTerm = 0;
  #hardState: HardState = { term: 0, vote: 0, commit: 0 };
  #snapshot: Snapshot;
  #segments: Segment[] = [];
  #active: AppendFile | null = null;
  readonly #stats: LogStoreStats = { fsyncs: 0, entriesWritten: 0, bytesWritten: 0, segments: 0 };

  private constructor(opts: RegionLogStoreOptions, confState: ConfState) {
    this.#fs = opts.fs;
    this.#dir = opts.dir.replace(/\/+$/, "");
    this.#segmentBytesMax = opts.segmentBytesMax ?? 64 * 1024 * 1024;
    if (!Number.isSafeInteger(this.#segmentBytesMax) || this.#segmentBytesMax < 1024) {
      throw new RangeError(
        `Cannot open region log: segmentBytesMax ${this.#segmentBytesMax} must be an integer >= 1024`,
      );
    }
    this.#writer = new RecordWriter(this.#crc);
    this.#snapshot = { metadata: { index: 0, term: 0, confState }, data: EMPTY };
  }

  /**
   * Opens (recovering) or creates a region log.
   *
   * @param opts disk, directory, limits
   * @returns the open store
   * @throws {CorruptLogError} when a record before the end of the log is damaged, entries have
   *   a gap, or the snapshot file is missing or damaged. A torn final record is cut off instead.
   */
  static async open(opts: RegionLogStoreOptions): Promise<RegionLogStore> {
    const store = new RegionLogStore(opts, opts.confState ?? { voters: [], learners: [] });
    await store.#recover();
    return store;
  }

  // ---- Storage (reads, from memory) ----

  /** Returns the recovered hard state and the snapshot's membership. */
  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: this.#hardState, confState: this.#snapshot.metadata.confState };
  }

  /** Returns entries in `[lo, hi)`, at most `maxBytes` (at least one). */
  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    if (lo <= this.#offset) {
      throw new CompactedError(
        `Cannot read entries from ${lo}: compacted, first available is ${this.#offset + 1}`,
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
      const e = this.#ents[i - this.#offset - 1]!;
      size += entrySizeBytes(e);
      if (out.length > 0 && size > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  /** Returns the term at `index` (`firstIndex() - 1 <= index <= lastIndex()`). */
  term(index: number): number {
    if (index < this.#offset) {
      throw new CompactedError(
        `Cannot read term of ${index}: compacted, first available is ${this.#offset}`,
      );
    }
    if (index > this.lastIndex()) {
      throw new UnavailableError(`Cannot read term of ${index}: last index is ${this.lastIndex()}`);
    }
    return index === this.#offset ? this.#offsetTerm : this.#ents[index - this.#offset - 1]!.term;
  }

  /** Returns the first index held. */
  firstIndex(): number {
    return this.#offset + 1;
  }

  /** Returns the last index (the compaction point when empty). */
  lastIndex(): number {
    return this.#offset + this.#ents.length;
  }

  /** Returns the latest snapshot. */
  snapshot(): Snapshot {
    return this.#snapshot;
  }

  // ---- Writes ----

  /** Counters (fsyncs, entries and bytes written, live segments). */
  get stats(): Readonly<LogStoreStats> {
    return { ...this.#stats, segments: this.#segments.length };
  }

  /** The last hard state saved. */
  get hardState(): HardState {
    return this.#hardState;
  }

  /**
   * Persists one `Ready`'s snapshot, entries and hard state with one write
   * and, when `sync` is set (or a snapshot is installed), one fsync.
   *
   * @param update what to persist
   * @param sync whether to fsync before returning
   * @throws {RaftAssertionError} when the entries leave a gap after the last index
   */
  async save(update: LogUpdate, sync: boolean): Promise<void> {
    const w = this.#writer;
    w.reset();
    let installed = false;
    if (
      update.snapshot !== undefined &&
      update.snapshot.metadata.index > this.#snapshot.metadata.index
    ) {
      await this.#writeSnapshotFile(update.snapshot);
      w.snapshot("install", update.snapshot.metadata);
      this.#snapshot = update.snapshot;
      this.#ents = [];
      this.#offset = update.snapshot.metadata.index;
      this.#offsetTerm = update.snapshot.metadata.term;
      installed = true;
    }
    const ents = this.#appendInMemory(update.entries);
    for (const e of ents) w.entry(e);
    if (update.hardState !== undefined) {
      const hs = update.hardState;
      this.#hardState = { term: hs.term, vote: hs.vote, commit: hs.commit };
      w.hardState(this.#hardState);
    }
    if (w.length === 0) return;
    const seg = this.#segments[this.#segments.length - 1]!;
    for (const e of ents) seg.maxEntryIndex = Math.max(seg.maxEntryIndex, e.index);
    this.#stats.entriesWritten += ents.length;
    await this.#write(w.bytes(), sync || installed);
    if (installed) await this.#afterSnapshot();
    await this.#maybeRoll();
  }

  /**
   * Records a snapshot of the local state machine at `index` (applied), so the
   * log up to it can be compacted. Written and synced before returning.
   *
   * @param index the applied index the image reflects (held in the log, newer than the snapshot)
   * @param confState membership at `index`
   * @param data the image
   * @returns the new snapshot
   * @throws {RangeError} when `index` is not newer than the snapshot or not in the log
   */
  async createSnapshot(index: number, confState: ConfState, data: Uint8Array): Promise<Snapshot> {
    if (
      index <= this.#snapshot.metadata.index || index > this.lastIndex() || index < this.#offset
    ) {
      throw new RangeError(
        `Cannot create snapshot at ${index}: it must be newer than ${this.#snapshot.metadata.index} ` +
          `and within [${this.#offset}, ${this.lastIndex()}]`,
      );
    }
    const snap: Snapshot = {
      metadata: { index, term: this.term(index), confState: copyConf(confState) },
      data,
    };
    await this.#writeSnapshotFile(snap);
    this.#writer.reset();
    this.#writer.snapshot("compact", snap.metadata);
    this.#snapshot = snap;
    await this.#write(this.#writer.bytes(), true);
    await this.#afterSnapshot();
    return snap;
  }

  /**
   * Drops entries up to `index` from memory and deletes the segments that hold
   * only entries at or below the snapshot. `index` may not pass the snapshot.
   *
   * @param index compact through this index
   * @throws {RangeError} when `index` is beyond the snapshot index
   */
  async compact(index: number): Promise<void> {
    if (index > this.#snapshot.metadata.index) {
      throw new RangeError(
        `Cannot compact to ${index}: beyond the snapshot index ${this.#snapshot.metadata.index}`,
      );
    }
    if (index <= this.#offset) return;
    this.#offsetTerm = this.term(index);
    this.#ents = this.#ents.slice(index - this.#offset);
    this.#offset = index;
    await this.#deleteOldSegments();
  }

  /** Closes the active segment; safe to call twice. Unsynced writes may be lost. */
  close(): void {
    this.#active?.close();
    this.#active = null;
  }

  /** Closes the store. */
  [Symbol.dispose](): void {
    this.close();
  }

  // ---- internals ----

  #appendInMemory(entries: readonly Entry[]): readonly Entry[] {
    if (entries.length === 0) return entries;
    let ents = entries;
    const first = this.#offset + 1;
    if (ents[ents.length - 1]!.index < first) return [];
    if (ents[0]!.index < first) ents = ents.slice(first - ents[0]!.index);
    const at = ents[0]!.index - first;
    if (at > this.#ents.length) {
      throw new RaftAssertionError(
        `Cannot append at ${ents[0]!.index}: gap after last index ${this.lastIndex()}`,
      );
    }
    if (at < this.#ents.length) this.#ents.length = at;
    for (const e of ents) this.#ents.push(e);
    return ents;
  }

  async #write(bytes: Uint8Array, sync: boolean): Promise<void> {
    const f = this.#activeFile();
    // An append has landed when it returns (see AppendFile), so the fsync is issued at once:
    // the caller's work after `save` returned its promise overlaps the fsync.
    await Promise.all([f.append(bytes), sync ? f.sync() : undefined]);
    this.#stats.bytesWritten += bytes.length;
    if (sync) this.#stats.fsyncs++;
  }

  #activeFile(): AppendFile {
    if (this.#active === null) throw new Error("Cannot write region log: the store is closed");
    return this.#active;
  }

  async #writeSnapshotFile(snap: Snapshot): Promise<void> {
    const name = snapName(snap.metadata.index);
    const tmp = `${this.#dir}/${name}.tmp`;
    await this.#fs.remove(tmp);
    const f = await this.#fs.openAppend(tmp, true);
    try {
      await f.append(encodeSnapshotFile(snap.metadata, snap.data, this.#crc));
      await f.sync();
    } finally {
      f.close();
    }
    await this.#fs.rename(tmp, `${this.#dir}/${name}`);
  }

  /** Deletes older snapshot files and obsolete segments once a snapshot record is durable. */
  async #afterSnapshot(): Promise<void> {
    const keep = snapName(this.#snapshot.metadata.index);
    for (const name of await this.#fs.list(this.#dir)) {
      if ((SNAP_RE.test(name) && name !== keep) || name.endsWith(".snap.tmp")) {
        await this.#fs.remove(`${this.#dir}/${name}`);
      }
    }
    await this.#deleteOldSegments();
  }

  async #deleteOldSegments(): Promise<void> {
    const snapIndex = this.#snapshot.metadata.index;
    let removed = false;
    while (this.#segments.length > 1 && this.#segments[0]!.maxEntryIndex <= snapIndex) {
      await this.#fs.remove(`${this.#dir}/${this.#segments.shift()!.name}`);
      removed = true;
    }
    if (removed) await this.#fs.syncDir(this.#dir);
  }

  async #maybeRoll(): Promise<void> {
    if (this.#activeFile().size < this.#segmentBytesMax) return;
    // The closed segment must be durable: only the last segment may end torn.
    await this.#activeFile().sync();
    this.#stats.fsyncs++;
    this.close();
    const seq = this.#segments[this.#segments.length - 1]!.seq + 1;
    await this.#startSegment(seq);
  }

  async #startSegment(seq: number): Promise<void> {
    const name = segName(seq);
    this.#active = await this.#fs.openAppend(`${this.#dir}/${name}`, true);
    this.#segments.push({ seq, name, maxEntryIndex: 0 });
    await this.#fs.syncDir(this.#dir);
    this.#writer.reset();
    this.#writer.hardState(this.#hardState);
    this.#writer.snapshot("compact", this.#snapshot.metadata);
    await this.#write(this.#writer.bytes(), true);
  }

  async #recover(): Promise<void> {
    await this.#fs.mkdirAll(this.#dir);
    const names = await this.#fs.list(this.#dir);
    const segs = names.filter((n) => SEGMENT_RE.test(n)).sort();
    if (segs.length === 0) {
      await this.#startSegment(1);
      return;
    }
    const scanned = [];
    for (const [i, name] of segs.entries()) {
      const path = `${this.#dir}/${name}`;
      const scan = scanRecords(await this.#fs.readFile(path), this.#crc);
      const last = i === segs.length - 1;
      if (scan.corrupt !== null) {
        throw new CorruptLogError(path, scan.corrupt.offset, scan.corrupt.reason);
      }
      if (scan.tornAt !== null) {
        if (!last) {
          throw new CorruptLogError(path, scan.tornAt, "incomplete record in a closed segment");
        }
        await this.#fs.truncate(path, scan.tornAt);
      }
      scanned.push({ name, path, records: scan.records });
    }
    // Pass 1: the newest snapshot marker decides where the log starts.
    let snapMeta: SnapshotMetadata = this.#snapshot.metadata;
    for (const s of scanned) {
      for (const { record } of s.records) {
        if (record.type === REC_SNAPSHOT && record.metadata.index >= snapMeta.index) {
          snapMeta = record.metadata;
        }
      }
    }
    const S = snapMeta.index;
    // Pass 2: replay entries above S; an entry at or below S truncates everything after it.
    const ents: Entry[] = [];
    for (const s of scanned) {
      let maxEntryIndex = 0;
      for (const { record, offset } of s.records) {
        if (record.type === REC_HARD_STATE) this.#hardState = record.hardState;
        else if (record.type === REC_SNAPSHOT) {
          if (record.kind === "install" && record.metadata.index <= S) ents.length = 0;
        } else if (record.type === REC_ENTRY) {
          const i = record.entry.index;
          maxEntryIndex = Math.max(maxEntryIndex, i);
          if (i <= S) ents.length = 0;
          else if (i > S + ents.length + 1) {
            throw new CorruptLogError(
              s.path,
              offset,
              `entry ${i} leaves a gap after index ${S + ents.length}`,
            );
          } else {
            ents.length = i - S - 1;
            ents.push(record.entry);
          }
        }
      }
      const seq = Number(SEGMENT_RE.exec(s.name)![1]);
      this.#segments.push({ seq, name: s.name, maxEntryIndex });
    }
    if (S > 0) {
      const path = `${this.#dir}/${snapName(S)}`;
      let bytes: Uint8Array;
      try {
        bytes = await this.#fs.readFile(path);
      } catch {
        throw new CorruptLogError(path, 0, `snapshot file for index ${S} is missing`);
      }
      const decoded = decodeSnapshotFile(bytes, this.#crc);
      if (typeof decoded === "string") throw new CorruptLogError(path, 0, decoded);
      this.#snapshot = { metadata: snapMeta, data: decoded.data };
    } else {
      this.#snapshot = { metadata: snapMeta, data: EMPTY };
    }
    this.#ents = ents;
    this.#offset = S;
    this.#offsetTerm = snapMeta.term;
    const last = this.#segments[this.#segments.length - 1]!;
    this.#active = await this.#fs.openAppend(`${this.#dir}/${last.name}`, false);
    // Leftovers of an interrupted snapshot write or cleanup.
    await this.#afterSnapshot();
  }
}

function copyConf(cs: ConfState): ConfState {
  return { voters: [...cs.voters], learners: [...cs.learners] };
}

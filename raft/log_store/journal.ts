/**
 * One fsync for the appends of many region logs.
 *
 * Every region keeps its own log under `raft/region_<id>/`, and a `Ready` of a
 * region must be durable before its messages go out and its proposals are
 * answered. Synced file by file, a round of writes that touches forty regions
 * costs forty fdatasyncs, each 45-100 µs of CPU and 120-200 µs of waiting on
 * this project's machine (bench/RESULTS.md, "Eighteenth session"), so a node's
 * write rate fell with its region count. {@link JournalFileSystem} wraps the
 * disk the region logs use: an append still lands in the region's file (not
 * synced), and is also recorded, with its file and offset, in one node-wide
 * journal; `sync` makes the journal durable, with one fdatasync for every append
 * made by any region since the last one (group commit: while one fsync runs,
 * the appends of all regions gather for the next).
 *
 * The region files are fsynced later, by a checkpoint: when the journal passes
 * `checkpointBytes`, before a file with journaled appends is removed, renamed or
 * truncated, and at `close`. A checkpoint starts a new journal file, fsyncs
 * every file appended to in the old one (and the directories files were created
 * in), then deletes the old journal. After a crash, `open` replays the journals
 * before any region log is read: each recorded append is written back where its
 * file lost it, the files are fsynced and the journals deleted. So a region log
 * reads after a crash exactly as if each `sync` had fsynced it.
 *
 * Journal files are `journal_<seq>.wal` in their own directory, made of the
 * region log's checksummed records (`_records.ts`), one per append.
 *
 * @module
 */

import { Crc32c } from "./crc32c.ts";
import type { AppendFile, FileSystem } from "./file_system.ts";
import { REC_JOURNAL, RecordWriter, scanRecords } from "./_records.ts";
import { CorruptLogError } from "./region_log_store.ts";

/** Options of {@link JournalFileSystem.open}. */
export interface JournalOptions {
  /** The disk the region logs and the journal are on. */
  readonly fs: FileSystem;
  /** The journal's directory (created when missing), e.g. `<data-dir>/raft/journal`. */
  readonly dir: string;
  /** A checkpoint starts once the current journal file holds this many bytes. Default 64 MiB. */
  readonly checkpointBytes?: number;
  /**
   * Called once when a journal write, fsync or checkpoint fails. Every later `sync` fails
   * too (an fsync that failed cannot be retried safely); the owner should close this file
   * system and open it again, which replays the journal.
   */
  readonly onFailure?: (error: Error) => void;
  /**
   * Called after each journal fsync with the milliseconds from issuing the journal's write and
   * fsync until their completion was seen (so it includes any wait for the caller's event loop).
   */
  readonly onSynced?: (ms: number) => void;
  /** The clock of `onSynced`, in milliseconds (default `performance.now`). */
  readonly clock?: () => number;
  /** Test-only planted bugs. */
  readonly plants?: readonly JournalPlant[];
}

/**
 * Test-only planted bugs, to show the journal's tests catch them. Never set in production.
 * - `skip-replay`: open deletes the journal files without writing their appends back;
 * - `delete-before-sync`: a checkpoint deletes the old journal before the files are fsynced;
 * - `skip-fsync`: a sync writes the journal but never fsyncs it (only a power cut shows it).
 */
export type JournalPlant = "skip-replay" | "delete-before-sync" | "skip-fsync";

/** What one {@link JournalFileSystem.open} replayed. */
export interface JournalReplay {
  /** Journal files read. */
  readonly journals: number;
  /** Appends recorded in them. */
  readonly records: number;
  /** Files the journal had appends for. */
  readonly files: number;
  /** Files that had lost journaled bytes and were rewritten from the journal. */
  readonly filesRepaired: number;
  /** Bytes written back into those files. */
  readonly bytesRepaired: number;
}

/** Counters of a {@link JournalFileSystem}. */
export interface JournalStats {
  /** fdatasyncs of the journal (each covers every append made before it started). */
  syncs: number;
  /** `sync` calls of the files on this file system (what each would have cost in fsyncs). */
  syncRequests: number;
  /** Appends recorded. */
  records: number;
  /** Bytes written to journal files. */
  bytes: number;
  /** Checkpoints completed. */
  checkpoints: number;
  /** Region files fsynced by checkpoints. */
  checkpointFileSyncs: number;
}

/**
 * The journal directory of a node's region logs.
 *
 * @param dataDir the node's data directory
 * @returns `<dataDir>/raft/journal`
 */
export function raftJournalDir(dataDir: string): string {
  return `${dataDir.replace(/\/+$/, "")}/raft/journal`;
}

const JOURNAL_RE = /^journal_(\d{10})\.wal$/;
const journalName = (seq: number) => `journal_${String(seq).padStart(10, "0")}.wal`;
const parentOf = (path: string) => path.slice(0, path.lastIndexOf("/")) || "/";

/**
 * A {@link FileSystem} whose appends are made durable by one shared journal.
 *
 * @example
 * ```ts
 * import { JournalFileSystem } from "./journal.ts";
 * import { SimDisk } from "./sim_disk.ts";
 * const disk = new SimDisk();
 * await disk.mkdirAll("/r");
 * const fs = await JournalFileSystem.open({ fs: disk, dir: "/journal" });
 * const a = await fs.openAppend("/r/a", true);
 * const b = await fs.openAppend("/r/b", true);
 * await a.append(new Uint8Array([1, 2]));
 * await b.append(new Uint8Array([3]));
 * await Promise.all([a.sync(), b.sync()]); // one fsync, of the journal
 * disk.crash(() => 0); // the region files lose what was not fsynced: all of it
 * const again = await JournalFileSystem.open({ fs: disk, dir: "/journal" });
 * if ((await again.readFile("/r/a")).length !== 2) throw new Error("append lost");
 * await again.close();
 * ```
 */
export class JournalFileSystem implements FileSystem {
  readonly #fs: FileSystem;
  readonly #dir: string;
  readonly #checkpointBytes: number;
  readonly #onFailure: (error: Error) => void;
  readonly #onSynced: ((ms: number) => void) | undefined;
  readonly #clock: () => number;
  readonly #plantEarlyDelete: boolean;
  readonly #plantSkipFsync: boolean;
  /** Records appended and not yet handed to a journal write. */
  readonly #pending = new RecordWriter(new Crc32c());
  /** Paths of the records in #pending. Invariant: a subset of #dirty. */
  #pendingPaths = new Set<string>();
  /**
   * Paths with records in the current journal file or in #pending: a checkpoint must fsync
   * them before that journal may go.
   */
  #dirty = new Set<string>();
  /** Directories a file was created in since the last checkpoint. */
  #createdDirs = new Set<string>();
  /** Paths a running checkpoint is fsyncing (their records are in an older journal file). */
  #checkpointing: ReadonlySet<string> = new Set();
  #journal: AppendFile;
  #journalSeq: number;
  /** Invariant: #durable <= #appended (both count records). */
  #appended = 0;
  #durable = 0;
  #flushing: Promise<void> | null = null;
  #checkpoint: Promise<void> | null = null;
  #failure: Error | null = null;
  #closed = false;
  #abandoned = false;
  readonly #stats: JournalStats = {
    syncs: 0,
    syncRequests: 0,
    records: 0,
    bytes: 0,
    checkpoints: 0,
    checkpointFileSyncs: 0,
  };
  /** What the open replayed. */
  readonly replayed: JournalReplay;

  private constructor(
    opts: JournalOptions,
    journal: AppendFile,
    seq: number,
    replayed: JournalReplay,
  ) {
    this.#fs = opts.fs;
    this.#dir = opts.dir.replace(/\/+$/, "");
    this.#checkpointBytes = opts.checkpointBytes ?? 64 * 1024 * 1024;
    this.#onFailure = opts.onFailure ?? (() => {});
    this.#onSynced = opts.onSynced;
    this.#clock = opts.clock ?? (() => performance.now());
    this.#plantEarlyDelete = opts.plants?.includes("delete-before-sync") ?? false;
    this.#plantSkipFsync = opts.plants?.includes("skip-fsync") ?? false;
    this.#journal = journal;
    this.#journalSeq = seq;
    this.replayed = replayed;
  }

  /**
   * Replays the journal files in `dir` into the files they name, deletes them, and starts a
   * new journal. Call it before anything reads the files.
   *
   * @param opts disk, journal directory, checkpoint size, failure callback
   * @returns the file system
   * @throws {CorruptLogError} when a journal record before the end is damaged, or records an
   *   append past the end of what its file holds (bytes before it were lost)
   * @throws {RangeError} when `checkpointBytes` is not an integer of at least 4 KiB
   */
  static async open(opts: JournalOptions): Promise<JournalFileSystem> {
    const checkpointBytes = opts.checkpointBytes ?? 64 * 1024 * 1024;
    if (!Number.isSafeInteger(checkpointBytes) || checkpointBytes < 4096) {
      throw new RangeError(
        `Cannot open journal: checkpointBytes ${checkpointBytes} must be an integer >= 4096`,
      );
    }
    const dir = opts.dir.replace(/\/+$/, "");
    await opts.fs.mkdirAll(dir);
    const names = (await opts.fs.list(dir)).filter((n) => JOURNAL_RE.test(n)).sort();
    const replayed = await replay(opts.fs, dir, names, opts.plants?.includes("skip-replay"));
    const last = names.length === 0 ? 0 : Number(JOURNAL_RE.exec(names[names.length - 1]!)![1]);
    const journal = await opts.fs.openAppend(`${dir}/${journalName(last + 1)}`, true);
    await opts.fs.syncDir(dir);
    return new JournalFileSystem(opts, journal, last + 1, replayed);
  }

  /** Counters since the open. */
  get stats(): Readonly<JournalStats> {
    return { ...this.#stats };
  }

  /**
   * Drops the journal at once, as a crash would: no checkpoint, and every later call (a
   * checkpoint or flush still running included) fails. For simulations, whose crashed
   * incarnations keep running JavaScript.
   */
  abandon(): void {
    this.#abandoned = true;
    this.#closed = true;
  }

  /** Whether `close` or `abandon` ran. */
  get closed(): boolean {
    return this.#closed;
  }

  /** The error that stopped the journal, if one did. */
  get failure(): Error | null {
    return this.#failure;
  }

  // ---- FileSystem ----

  /** Creates a directory and its parents. */
  mkdirAll(path: string): Promise<void> {
    return this.#fs.mkdirAll(path);
  }

  /** Lists the regular files of `dir`. */
  list(dir: string): Promise<string[]> {
    return this.#fs.list(dir);
  }

  /** Reads a whole file (what was appended, synced or not). */
  readFile(path: string): Promise<Uint8Array> {
    return this.#fs.readFile(path);
  }

  /** Opens `path` for appending; its appends are journaled and its `sync` syncs the journal. */
  async openAppend(path: string, create: boolean): Promise<AppendFile> {
    this.#checkOpen(`open ${path}`);
    const inner = await this.#fs.openAppend(path, create);
    if (create) this.#createdDirs.add(parentOf(path));
    return new JournaledFile(this, path, inner);
  }

  /** Cuts a file, after a checkpoint when it has journaled appends. */
  async truncate(path: string, size: number): Promise<void> {
    await this.#settle([path]);
    await this.#fs.truncate(path, size);
  }

  /** Renames a file, after a checkpoint when either name has journaled appends. */
  async rename(from: string, to: string): Promise<void> {
    await this.#settle([from, to]);
    await this.#fs.rename(from, to);
  }

  /** Removes a file, after a checkpoint when it has journaled appends. */
  async remove(path: string): Promise<void> {
    await this.#settle([path]);
    await this.#fs.remove(path);
  }

  /** Fsyncs a directory. */
  syncDir(dir: string): Promise<void> {
    return this.#fs.syncDir(dir);
  }

  /**
   * Waits for the appends in flight, checkpoints (the files become durable by themselves and
   * the journal empty, so the next open replays nothing) and closes the journal. Safe to
   * call twice; after a failure it only closes.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      if (this.#failure === null) {
        await this.#flushing?.catch(() => {});
        await this.#checkpoint?.catch(() => {});
        if (this.#failure === null) await this.#runCheckpoint().catch(() => {});
      }
    } finally {
      this.#closed = true;
      this.#journal.close();
    }
  }

  // ---- the journal (used by JournaledFile) ----

  /**
   * @internal Records an append that just landed in `path` (`pathBytes` its UTF-8) at `offset`.
   */
  record(path: string, pathBytes: Uint8Array, offset: number, data: Uint8Array): void {
    this.#pending.journal(pathBytes, offset, data);
    this.#pendingPaths.add(path);
    this.#dirty.add(path);
    this.#appended++;
    this.#stats.records++;
  }

  /** @internal Makes every append recorded so far durable. */
  async syncAll(): Promise<void> {
    this.#stats.syncRequests++;
    const target = this.#appended;
    while (this.#durable < target) {
      this.#checkOpen("sync");
      this.#flushing ??= this.#flush();
      await this.#flushing;
    }
  }

  #checkOpen(what: string): void {
    if (this.#failure !== null) {
      throw new Error(`Cannot ${what}: the Raft log journal failed: ${this.#failure.message}`);
    }
    if (this.#closed) throw new Error(`Cannot ${what}: the Raft log journal is closed`);
  }

  /** Writes the pending records to the journal and fsyncs it. */
  async #flush(): Promise<void> {
    let started = 0;
    try {
      const upTo = this.#appended;
      const bytes = this.#pending.bytes();
      const journal = this.#journal;
      started = this.#onSynced === undefined ? 0 : this.#clock();
      // The write copies the bytes before it returns (AppendFile), so the buffer is reused.
      const written = journal.append(bytes);
      this.#stats.bytes += bytes.length;
      this.#pending.reset();
      this.#pendingPaths = new Set();
      await Promise.all([written, this.#plantSkipFsync ? undefined : journal.sync()]);
      if (this.#abandoned) throw new Error("Cannot sync: the journal was abandoned");
      this.#stats.syncs++;
      this.#durable = upTo;
    } catch (error) {
      throw this.#fail(error);
    } finally {
      this.#flushing = null;
    }
    // After the sync counts as done: an observer's error must not fail the journal.
    try {
      this.#onSynced?.(this.#clock() - started);
    } catch { /* a metric, nothing more */ }
    if (this.#journal.size >= this.#checkpointBytes && this.#checkpoint === null) {
      this.#runCheckpoint().catch(() => {}); // a failure is reported through #fail
    }
  }

  #fail(error: unknown): Error {
    const e = error instanceof Error ? error : new Error(String(error));
    if (this.#failure === null) {
      this.#failure = e;
      this.#onFailure(e);
    }
    return e;
  }

  /** Checkpoints until no path of `paths` has appends in a journal. */
  async #settle(paths: readonly string[]): Promise<void> {
    while (paths.some((p) => this.#dirty.has(p) || this.#checkpointing.has(p))) {
      this.#checkOpen(`change ${paths.join(", ")}`);
      await this.#runCheckpoint();
    }
  }

  /** Starts a checkpoint, or joins the running one. */
  #runCheckpoint(): Promise<void> {
    this.#checkpoint ??= this.#checkpointOnce().catch((error) => {
      throw this.#fail(error);
    }).finally(() => {
      this.#checkpoint = null;
    });
    return this.#checkpoint;
  }

  async #checkpointOnce(): Promise<void> {
    const seq = this.#journalSeq + 1;
    const next = await this.#fs.openAppend(`${this.#dir}/${journalName(seq)}`, true);
    await this.#fs.syncDir(this.#dir);
    if (this.#abandoned) {
      next.close();
      throw new Error("Cannot checkpoint: the journal was abandoned");
    }
    // The switch is synchronous: a record flushed from now on goes to the new file, and its
    // path is in the new dirty set (the records still pending included).
    const old = this.#journal;
    const oldSeq = this.#journalSeq;
    const files = this.#dirty;
    const dirs = this.#createdDirs;
    this.#journal = next;
    this.#journalSeq = seq;
    this.#dirty = new Set(this.#pendingPaths);
    this.#createdDirs = new Set();
    this.#checkpointing = files;
    try {
      if (this.#plantEarlyDelete) await this.#fs.remove(`${this.#dir}/${journalName(oldSeq)}`);
      // A flush already writing to the old file appends bytes the file syncs below cover.
      await Promise.all([...files].map((path) => this.#syncFile(path)));
      await Promise.all([...dirs].map((dir) => this.#fs.syncDir(dir)));
      await this.#flushing?.catch(() => {});
      old.close();
      await this.#fs.remove(`${this.#dir}/${journalName(oldSeq)}`);
      await this.#fs.syncDir(this.#dir);
      this.#stats.checkpoints++;
      this.#stats.checkpointFileSyncs += files.size;
    } finally {
      this.#checkpointing = new Set();
    }
  }

  async #syncFile(path: string): Promise<void> {
    const f = await this.#fs.openAppend(path, false);
    try {
      await f.sync();
    } finally {
      f.close();
    }
  }
}

/** A region file opened through a {@link JournalFileSystem}. */
class JournaledFile implements AppendFile {
  readonly #owner: JournalFileSystem;
  readonly #path: string;
  /** The path as every journal record of this file names it. */
  readonly #pathBytes: Uint8Array;
  readonly #inner: AppendFile;

  constructor(owner: JournalFileSystem, path: string, inner: AppendFile) {
    this.#owner = owner;
    this.#path = path;
    this.#pathBytes = new TextEncoder().encode(path);
    this.#inner = inner;
  }

  get size(): number {
    return this.#inner.size;
  }

  append(data: Uint8Array): Promise<void> {
    if (this.#owner.closed) {
      return Promise.reject(new Error(`Cannot append to ${this.#path}: the journal is closed`));
    }
    const offset = this.#inner.size;
    const written = this.#inner.append(data);
    this.#owner.record(this.#path, this.#pathBytes, offset, data);
    return written;
  }

  sync(): Promise<void> {
    return this.#owner.syncAll();
  }

  close(): void {
    this.#inner.close();
  }
}

/** Writes every journaled append back into its file where the file lost it. */
async function replay(
  fs: FileSystem,
  dir: string,
  names: string[],
  plantSkip = false,
): Promise<JournalReplay> {
  const crc = new Crc32c();
  const appends = new Map<string, { offset: number; data: Uint8Array }[]>();
  let records = 0;
  for (const name of names) {
    const path = `${dir}/${name}`;
    const scan = scanRecords(await fs.readFile(path), crc);
    // A torn tail is an append whose sync never finished: nobody was told it was durable.
    if (scan.corrupt !== null) {
      throw new CorruptLogError(path, scan.corrupt.offset, scan.corrupt.reason);
    }
    for (const { record, offset } of scan.records) {
      if (record.type !== REC_JOURNAL) {
        throw new CorruptLogError(path, offset, `record of type ${record.type} in a journal`);
      }
      let list = appends.get(record.path);
      if (list === undefined) appends.set(record.path, list = []);
      list.push({ offset: record.offset, data: record.data });
      records++;
    }
  }
  let filesRepaired = 0;
  let bytesRepaired = 0;
  const dirs = new Set<string>();
  for (const [path, list] of plantSkip ? [] : appends) {
    const repaired = await repairFile(fs, path, list);
    if (repaired > 0) {
      filesRepaired++;
      bytesRepaired += repaired;
    }
    dirs.add(parentOf(path));
  }
  for (const d of dirs) await fs.syncDir(d);
  // The removals become durable with the new journal's creation (JournalFileSystem.open).
  for (const name of names) await fs.remove(`${dir}/${name}`);
  return { journals: names.length, records, files: appends.size, filesRepaired, bytesRepaired };
}

/**
 * Makes `path` hold every journaled append, durably; returns the bytes written back.
 * @throws {CorruptLogError} when an append starts past what the file and the journal hold
 */
async function repairFile(
  fs: FileSystem,
  path: string,
  list: readonly { offset: number; data: Uint8Array }[],
): Promise<number> {
  let current: Uint8Array;
  try {
    current = await fs.readFile(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    current = new Uint8Array(0);
    await fs.mkdirAll(parentOf(path));
  }
  let known = current.length;
  for (const { offset, data } of list) {
    if (offset > known) {
      throw new CorruptLogError(
        path,
        known,
        `the journal holds an append at offset ${offset}, but the bytes before it are lost`,
      );
    }
    known = Math.max(known, offset + data.length);
  }
  const wanted = new Uint8Array(known);
  wanted.set(current);
  for (const { offset, data } of list) wanted.set(data, offset);
  let same = 0;
  while (same < current.length && wanted[same] === current[same]) same++;
  // A file killed with the process (not the machine) may hold everything, not yet durable.
  if (same < current.length) await fs.truncate(path, same);
  const f = await fs.openAppend(path, true);
  try {
    if (same < wanted.length) await f.append(wanted.subarray(same));
    await f.sync();
  } finally {
    f.close();
  }
  return wanted.length - same;
}

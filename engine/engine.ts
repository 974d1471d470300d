/**
 * The storage engine: one RocksDB database through the C API.
 *
 * Threading: fast in-memory calls run on the JavaScript thread; slow ones
 * (synced writes, open, close, flush, compaction, checkpoints) run on a worker
 * thread through `nonblocking` FFI calls. A point read is first tried from
 * memtables and block cache only (read tier kBlockCacheTier); when RocksDB
 * answers Incomplete, a {@link MissReadPolicy} decides whether the read runs
 * again here (while such reads are measured to be served quickly, by the OS
 * page cache) or on a worker thread. Synced writes go through a
 * {@link GroupCommitter}, so writes that arrive while one fsync is in flight
 * share the next one.
 *
 * @module
 */

import { DEFAULT_TUNING, type RocksDbTuning } from "../tuning/types.ts";
import { openLibrary, type RocksDbLibrary } from "./_ffi/library.ts";
import {
  addressWords,
  GET_FOUND,
  GET_TOO_LONG,
  type HelperLibrary,
  openHelpers,
} from "./_ffi/helpers.ts";
import {
  addressOf,
  copyOut,
  cString,
  ErrSlot,
  SizeSlot,
  stableCopy,
  takeCString,
} from "./_ffi/native.ts";
import type { RocksDbSymbols } from "./_ffi/symbols.ts";
import {
  buildOptions,
  checkTuning,
  destroyOptions,
  LEVELED_COMPACTION,
  type NativeOptions,
} from "./_options.ts";
import { EngineClosedError, EngineError } from "./errors.ts";
import { type MissReadOptions, missReadOptions, MissReadPolicy } from "./miss_reads.ts";
import { type GroupCommitLimits, groupCommitLimits, GroupCommitter } from "./group_commit.ts";
import { concatWriteBatches, WriteBatch, type WriteOp } from "./write_batch.ts";
import {
  checkDeadlines,
  type DeadlineLayout,
  deadlinePassed,
  measureRow,
  type RangeMeasure,
} from "./deadline.ts";
import {
  checkCount,
  checkKey,
  checkValue,
  GET_BATCH_KEYS_MAX,
  KEY_SIZE_MAX_BYTES,
  SCAN_BATCH_SIZE_MAX,
  WRITE_BATCH_OPS_MAX,
} from "./limits.ts";
import {
  type CacheInfo,
  type EffectiveOptions,
  type EngineStats,
  type LevelStats,
  parseStatistics,
} from "./stats.ts";

type Ptr = NonNullable<Deno.PointerValue>;

/** One operation of {@link Engine.writeBatch}. */
/** Options of {@link Engine.open}. */
export interface EngineOpenOptions {
  /** The RocksDB directory itself (a node passes `<data-dir>/data`); created if missing. */
  dataDir: string;
  /** Knobs merged over {@link DEFAULT_TUNING}. */
  tuning?: Partial<RocksDbTuning>;
  /** Path of librocksdb; default: SPIRE_ROCKSDB_LIB, then the usual system names. */
  libraryPath?: string;
  /** Limits of the group commit of synced writes. */
  groupCommit?: Partial<GroupCommitLimits>;
  /** Where reads that miss the block cache run (see {@link MissReadOptions}). */
  missReads?: Partial<MissReadOptions>;
  /** Monotonic clock in milliseconds that times synchronous miss reads; default performance.now. */
  clock?: () => number;
  /**
   * Use Spire's native helpers (engine/_native, built by `./spire`) for point
   * reads and scans when they are built: default true. `false` makes every
   * call from TypeScript (same results, slower); {@link Engine.nativeHelpers}
   * tells which is in use.
   */
  helpers?: boolean;
  /** Path of the native helpers' library; default `.build/libspire_rocksdb.so` in the repository. */
  helpersPath?: string;
  /**
   * Test-only: knobs that are NOT applied to RocksDB, so that the knob proofs
   * can show they fail when a knob is left out. Never set this in production.
   */
  unappliedKnobsForTest?: readonly (keyof RocksDbTuning)[];
}

/** Options of reads. */
export interface ReadOptions {
  /** Read as of this snapshot instead of the latest state. */
  snapshot?: Snapshot;
}

/** Options of {@link Engine.scanRange}. */
export interface ScanOptions extends ReadOptions {
  /** Rows per batch (default 1000). */
  batchSize?: number;
  /** Most rows in total (default: no limit). */
  limit?: number;
  /** Descending key order (default false). */
  reverse?: boolean;
  /** Return keys without values (default false). */
  keysOnly?: boolean;
}

/** Options of {@link Engine.measureRange}. */
export interface MeasureOptions extends ReadOptions {
  /** Rows between yields to the event loop (default 8,192: a few milliseconds). */
  readonly sliceRows?: number;
  /** Count deadlines too: where values keep them, and the time to compare with. */
  readonly deadlines?: { readonly layout: DeadlineLayout; readonly now: number };
}

const EMPTY = new Uint8Array(0);

/** Options of {@link Engine.scanExpired}. */
export interface ScanExpiredOptions extends ReadOptions {
  /** Where values keep their deadline. */
  readonly layout: DeadlineLayout;
  /** Rows whose deadline is below this are expired (the unit of the deadlines). */
  readonly now: number;
  /** Rows to examine at most (1 to {@link SCAN_BATCH_SIZE_MAX}). */
  readonly rowsMax: number;
}

/** What {@link Engine.scanExpired} found. */
export interface ExpiredPage {
  /** The keys of the expired rows examined, in key order (copies). */
  readonly keys: Uint8Array[];
  /** Rows examined. */
  readonly rowsExamined: number;
  /** The first key not examined; undefined when the range is done. */
  readonly next: Uint8Array | undefined;
}

/** A key and its value. */
export interface Entry {
  /** The key. */
  key: Uint8Array;
  /** The value. */
  value: Uint8Array;
}

/** One batch of a scan. */
export interface ScanBatch {
  /** Keys and values, in scan order (empty when `keysOnly`). */
  entries: Entry[];
  /** Keys, in scan order (always filled). */
  keys: Uint8Array[];
  /** Rows in this batch. */
  rowsReturned: number;
  /** Key and value bytes read for this batch. */
  bytesRead: number;
  /** Time spent reading this batch from RocksDB, in milliseconds. */
  scanTimeMs: number;
}

/**
 * What native code of this process needs to read the engine itself, on the
 * JavaScript thread, between two of its awaits (the client port's GET path,
 * node/_native/spire_resp.c). Valid until the engine closes: take it afresh
 * for every use and never keep it across an await.
 */
export interface NativeReadAccess {
  /** RocksDB's `rocksdb_t*`. */
  readonly db: Deno.PointerObject;
  /**
   * Read options that read the memtables and the block cache only: a key that
   * would need a file read answers RocksDB's Incomplete status ("Result
   * incomplete"), to be read by the engine's own `get` (which reads files off
   * the event loop).
   */
  readonly memoryReadOptions: Deno.PointerObject;
  /**
   * The addresses of `rocksdb_get_pinned`, `rocksdb_pinnableslice_value`,
   * `rocksdb_pinnableslice_destroy` and `rocksdb_free` in the librocksdb the
   * engine loaded, in this order, as 64-bit words.
   */
  readonly functions: Uint8Array;
}

const NATIVE = Symbol("native");

interface NativeSnapshot {
  handle: Ptr;
  readOptions: Ptr;
  cacheTierReadOptions: Ptr;
  pending: number;
  released: boolean;
  freed: boolean;
}

/**
 * A consistent point-in-time view of the engine. Pass it as `{ snapshot }` to
 * `get`, `getBatch`, `scanRange` and `countRange`; `release()` it when done
 * (closing the engine releases every snapshot).
 */
export class Snapshot {
  /** @internal */
  readonly [NATIVE]: NativeSnapshot;
  readonly #release: (snapshot: Snapshot) => void;

  /** @internal Created by {@link Engine.snapshot}. */
  constructor(native: NativeSnapshot, release: (snapshot: Snapshot) => void) {
    this[NATIVE] = native;
    this.#release = release;
  }

  /** Whether the snapshot was released (or its engine closed). */
  get released(): boolean {
    return this[NATIVE].released;
  }

  /** Releases the snapshot; safe to call twice. Reads in flight on it finish first. */
  release(): void {
    if (this[NATIVE].released) return;
    this[NATIVE].released = true;
    this.#release(this);
  }

  /** Same as {@link Snapshot.release}. */
  [Symbol.dispose](): void {
    this.release();
  }
}

interface Cursor {
  iterator: Ptr | null;
  readOptions: Ptr;
  bounds: Uint8Array[];
  snapshot: NativeSnapshot | undefined;
  /** Set when close() ended the scan, so next() reports it instead of ending quietly. */
  killed: boolean;
}

/** RocksDB's Status::Incomplete text ("Result incomplete: ...") when a read needs disk I/O. */
const INCOMPLETE = "Result incomplete";
const READ_TIER_BLOCK_CACHE = 1;
/**
 * rocksdb_disable: no perf context counting. Not RocksDB's default: a thread
 * starts at kEnableCount (monitoring/perf_level.cc), which costs every read and
 * scan step a few thread-local counter updates; db_bench turns it off too.
 */
const PERF_LEVEL_DISABLE = 1;
/** rocksdb_enable_count: perf context counters on, timers off. */
const PERF_LEVEL_ENABLE_COUNT = 2;
/** rocksdb_block_read_count: blocks read from files (not from the block cache). */
const PERF_BLOCK_READ_COUNT = 2;
const LEVELS = 7;

/**
 * Scans copy rows into shared buffers of SCAN_SLAB_BYTES (longer rows get one
 * their size), cut into views and never reused: allocating an ArrayBuffer costs
 * about 0.4-0.9 µs plus the zeroing (2 µs for 4 KiB, 8-10 µs for 64 KiB, Deno
 * 2.9 here), which was a third of a short scan when each batch had its own.
 * A batch starts in the current buffer while SCAN_SLAB_ROOM_MIN bytes are free.
 */
const SCAN_SLAB_BYTES = 64 * 1024;
const SCAN_SLAB_ROOM_MIN = 4 * 1024;
/** The scan bounds that RocksDB reads while an iterator lives are cut from shared buffers too. */
const BOUNDS_SLAB_BYTES = 4 * 1024;
/** Most rows one native scan call copies (the size of the engine's lengths array). */
const SCAN_HELPER_ROWS_MAX = 4096;
/**
 * Point reads copy values of at most POINT_SLAB_VALUE_BYTES_MAX into shared
 * buffers of POINT_SLAB_BYTES (as Node's Buffer pool does): allocating an
 * ArrayBuffer per value costs more than the copy. A value kept alive keeps its
 * 8 KiB buffer alive; larger values get their own.
 */
const POINT_SLAB_BYTES = 8 * 1024;
const POINT_SLAB_VALUE_BYTES_MAX = 1024;

/** A synchronous MultiGet of at most this many keys and key bytes reuses the engine's buffers. */
const MULTI_GET_SCRATCH_KEYS = 256;
const MULTI_GET_SCRATCH_KEY_BYTES = 16 * 1024;

/** Most cache-missing point reads sent to a worker thread as one MultiGet. */
const MISS_GROUP_KEYS_MAX = 256;

interface PendingMiss {
  key: Uint8Array;
  snap: NativeSnapshot | undefined;
  resolve: (value: Uint8Array | undefined) => void;
  reject: (error: unknown) => void;
}

/**
 * Rows per slice of countRange and measureRange (DBSIZE, INFO keyspace): 3-5 ms of walking, so
 * that other clients are served between slices (65,536 held the event loop up to ~100 ms). The
 * yield is a timer turn (about 2 ms in Deno; `setImmediate` is cheaper but does not let socket
 * reads in), so smaller slices make the walk itself slower: `./spire bench keyspace`.
 */
const COUNT_CHUNK_ROWS = 8_192;

interface Native {
  lib: RocksDbLibrary;
  /** Spire's native helpers, when built and asked for. */
  helpers: HelperLibrary | undefined;
  ownsLibrary: boolean;
  db: Ptr;
  opts: NativeOptions;
  writeOptions: Ptr;
  /** Unsynced writes on the JS thread: `no_slowdown`, so a stall is refused, not waited out. */
  noStallWriteOptions: Ptr;
  readOptions: Ptr;
  cacheTierReadOptions: Ptr;
  flushOptions: Ptr;
  /** compactRange's: the bottommost level is rewritten too, so deletes there are dropped. */
  compactOptions: Ptr;
  /** The JavaScript thread's perf context: counts block reads from files (cache misses). */
  perfContext: Ptr;
  closed: boolean;
}

function freeNative(n: Native): void {
  if (n.closed) return;
  n.closed = true;
  n.lib.symbols.rocksdb_close(n.db);
  freeHandles(n);
}

/** Frees what outlives the database handle (options, perf context, the library); after close. */
function freeHandles(n: Native): void {
  const s = n.lib.symbols;
  s.rocksdb_writeoptions_destroy(n.writeOptions);
  s.rocksdb_writeoptions_destroy(n.noStallWriteOptions);
  s.rocksdb_readoptions_destroy(n.readOptions);
  s.rocksdb_readoptions_destroy(n.cacheTierReadOptions);
  s.rocksdb_flushoptions_destroy(n.flushOptions);
  s.rocksdb_compactoptions_destroy(n.compactOptions);
  s.rocksdb_perfcontext_destroy(n.perfContext);
  destroyOptions(s, n.opts);
  n.helpers?.close();
  if (n.ownsLibrary) n.lib.close();
}

/**
 * The RocksDB engine.
 *
 * @example
 * ```ts
 * import { Engine } from "./engine.ts";
 * const dataDir = await Deno.makeTempDir();
 * const engine = await Engine.open({ dataDir, tuning: { syncWrites: false } });
 * const enc = new TextEncoder();
 * await engine.put(enc.encode("a"), enc.encode("1"));
 * const value = await engine.get(enc.encode("a"));
 * if (new TextDecoder().decode(value) !== "1") throw new Error("lost a write");
 * await engine.close();
 * await Deno.remove(dataDir, { recursive: true });
 * ```
 */
export class Engine {
  /** Backstop only: closes a database whose Engine was dropped without close(). */
  static readonly #finalizer = new FinalizationRegistry<Native>(freeNative);

  readonly #native: Native;
  readonly #sym: RocksDbSymbols;
  readonly #db: Ptr;
  readonly #tuning: RocksDbTuning;
  readonly #dataDir: string;
  readonly #err = new ErrSlot();
  readonly #size = new SizeSlot();
  readonly #size2 = new SizeSlot();
  /**
   * Writes that wait for a worker thread (synced writes; unsynced ones during a write stall),
   * each a copy of its batch's representation.
   */
  readonly #committer: GroupCommitter<Uint8Array>;
  /** The batch of one synchronous write at a time (cleared before each use). */
  readonly #scratch = new WriteBatch();
  readonly #inFlight = new Set<Promise<unknown>>();
  readonly #cursors = new Set<Cursor>();
  readonly #snapshots = new Set<Snapshot>();
  /** Decides whether a block-cache miss is read here or on a worker thread. */
  readonly #missPolicy: MissReadPolicy;
  /** Buffers of synchronous MultiGets, made on first use. */
  #multiGetScratch: MultiGetBuffers | undefined;
  /** Blocks the last counted point read took from files (see #readHere). */
  readonly #blocksRead = new Uint32Array(1);
  /** Key and value lengths of the rows a native scan call copied; made on first use. */
  #scanLengths: Uint32Array<ArrayBuffer> | undefined;
  /** scanExpired's key buffer, made on first use. */
  #expiredKeys: Uint8Array<ArrayBuffer> | undefined;
  /** Shared buffers for small values of point reads (see POINT_SLAB_BYTES). */
  readonly #valueSlab: Slab;
  /** Shared buffers for scanned rows (see SCAN_SLAB_BYTES). */
  readonly #scanSlab: Slab;
  /** Shared buffers for the bounds of open iterators (see BOUNDS_SLAB_BYTES). */
  readonly #boundsSlab: Slab;
  /** Whether this engine turned on the JavaScript thread's perf counting for direct reads. */
  #perfCounting = false;
  #readAccess: NativeReadAccess | undefined;
  /** Point reads that missed the block cache, waiting for a worker thread. */
  #misses: PendingMiss[] = [];
  #missRunner: Promise<void> | undefined;
  /** Unsynced writes refused by a write stall and moved to a worker thread. */
  #stallRetries = 0;
  /**
   * Keys whose memory-only first read answered Incomplete and were read again
   * from disk. RocksDB counts each such key twice (a key read and a block cache
   * miss in the attempt, again in the retry); getStats subtracts the attempt.
   */
  #memoryOnlyMisses = 0;
  #state: "open" | "closing" | "closed" = "open";
  #closing: Promise<void> | undefined;
  /** The background flush after range deletes, while it runs (see #flushAfterRangeDeletes). */
  #rangeFlush: Promise<void> | undefined;
  /** Range deletes were written while that flush ran: flush once more after it. */
  #rangeFlushAgain = false;

  private constructor(
    native: Native,
    tuning: RocksDbTuning,
    dataDir: string,
    limits: Partial<GroupCommitLimits>,
    missPolicy: MissReadPolicy,
  ) {
    this.#native = native;
    this.#missPolicy = missPolicy;
    this.#valueSlab = new Slab(native.lib.symbols, POINT_SLAB_BYTES);
    this.#scanSlab = new Slab(native.lib.symbols, SCAN_SLAB_BYTES);
    this.#boundsSlab = new Slab(native.lib.symbols, BOUNDS_SLAB_BYTES);
    this.#sym = native.lib.symbols;
    this.#db = native.db;
    this.#tuning = tuning;
    this.#dataDir = dataDir;
    this.#committer = new GroupCommitter<Uint8Array>(
      (requests) => this.#commitGroup(requests),
      limits,
    );
    Engine.#finalizer.register(this, native, this);
    // The JavaScript thread counts only around direct reads (#getDirect), which turn it on.
    this.#sym.rocksdb_set_perf_level(PERF_LEVEL_DISABLE);
  }

  /**
   * Opens (creating if missing) the RocksDB database in `dataDir`.
   *
   * @param options data directory, tuning and library path
   * @returns the open engine
   * @throws {EngineError} when RocksDB cannot open it (locked by another process, unwritable, corrupt)
   * @throws {LibraryLoadError} when librocksdb cannot be loaded
   * @throws {TypeError} when `dataDir` is not a non-empty string
   * @throws {RangeError} when a tuning value is out of range
   * @throws {TypeError} when `tuning` names a field that is not a knob (e.g. a typo)
   * @throws {TypeError|RangeError} for an unknown or bad `groupCommit` limit
   */
  static async open(options: EngineOpenOptions): Promise<Engine> {
    if (typeof options?.dataDir !== "string" || options.dataDir === "") {
      throw new TypeError("Cannot open engine: dataDir must be a non-empty string");
    }
    const tuning: RocksDbTuning = { ...DEFAULT_TUNING, ...options.tuning };
    checkTuning(tuning);
    const limits = groupCommitLimits(options.groupCommit); // checked before RocksDB opens
    const missReads = missReadOptions(options.missReads);
    const clock = options.clock ?? (() => performance.now());
    if (typeof clock !== "function") {
      throw new TypeError("Cannot open engine: clock must be a function returning milliseconds");
    }
    try {
      // RocksDB creates only the last path component; a node passes <data-dir>/data.
      Deno.mkdirSync(options.dataDir, { recursive: true });
    } catch {
      // not creatable: RocksDB's own open below reports it as an EngineError
    }
    const lib = options.libraryPath === undefined
      ? openLibrary()
      : openLibrary(options.libraryPath);
    const sym = lib.symbols;
    let opts: NativeOptions | undefined;
    try {
      const skip = new Set(options.unappliedKnobsForTest ?? []);
      opts = buildOptions(sym, tuning, skip);
      const err = new ErrSlot();
      const db = await sym.rocksdb_open_nb(opts.options, cString(options.dataDir), err.bytes);
      err.check(sym, `Cannot open engine at "${options.dataDir}"`);
      if (db === null) {
        throw new EngineError(`Cannot open engine at "${options.dataDir}"`, "NULL handle");
      }
      const writeOptions = sym.rocksdb_writeoptions_create()!;
      if (!skip.has("syncWrites")) {
        sym.rocksdb_writeoptions_set_sync(writeOptions, tuning.syncWrites ? 1 : 0);
      }
      const noStallWriteOptions = sym.rocksdb_writeoptions_create()!;
      sym.rocksdb_writeoptions_set_no_slowdown(noStallWriteOptions, 1);
      const readOptions = sym.rocksdb_readoptions_create()!;
      const cacheTierReadOptions = sym.rocksdb_readoptions_create()!;
      sym.rocksdb_readoptions_set_read_tier(cacheTierReadOptions, READ_TIER_BLOCK_CACHE);
      const flushOptions = sym.rocksdb_flushoptions_create()!;
      sym.rocksdb_flushoptions_set_wait(flushOptions, 1);
      const compactOptions = sym.rocksdb_compactoptions_create()!;
      // RocksDB's default (1: only with a compaction filter) moves files into the bottommost
      // level without rewriting them, deletes and all: 100,000 deletes of one range then cost
      // every walk of it as much after compactRange as before. 3 (kForceOptimized) rewrites
      // the bottommost level too, but not the files this compaction just wrote there.
      sym.rocksdb_compactoptions_set_bottommost_level_compaction(compactOptions, 3);
      const perfContext = sym.rocksdb_perfcontext_create()!;
      const native: Native = {
        lib,
        helpers: options.helpers === false ? undefined : openHelpers(lib, options.helpersPath),
        ownsLibrary: true,
        db,
        opts,
        writeOptions,
        noStallWriteOptions,
        readOptions,
        cacheTierReadOptions,
        flushOptions,
        compactOptions,
        perfContext,
        closed: false,
      };
      return new Engine(
        native,
        tuning,
        options.dataDir,
        limits,
        new MissReadPolicy(missReads, clock),
      );
    } catch (error) {
      if (opts !== undefined) destroyOptions(sym, opts);
      lib.close();
      throw error;
    }
  }

  /** The directory this engine was opened on. */
  get dataDir(): string {
    return this.#dataDir;
  }

  /**
   * Whether point reads and scans go through Spire's native helpers
   * (engine/_native, built by `./spire`); false: every call is made from
   * TypeScript, with the same results, more slowly.
   */
  get nativeHelpers(): boolean {
    return this.#native.helpers !== undefined;
  }

  /**
   * The handles for native code that reads the engine itself (see
   * {@link NativeReadAccess}), or undefined once the engine is closed.
   * @returns the handles, for synchronous use only
   */
  nativeReadAccess(): NativeReadAccess | undefined {
    if (this.#state !== "open") return undefined;
    return this.#readAccess ??= this.#makeReadAccess();
  }

  #makeReadAccess(): NativeReadAccess {
    const s = this.#sym;
    const fns = [
      s.rocksdb_get_pinned_fn,
      s.rocksdb_pinnableslice_value_fn,
      s.rocksdb_pinnableslice_destroy_fn,
      s.rocksdb_free_fn,
    ];
    return Object.freeze({
      db: this.#db as Deno.PointerObject,
      memoryReadOptions: this.#native.cacheTierReadOptions as Deno.PointerObject,
      functions: addressWords(fns),
    });
  }

  /** The complete tuning the engine applied. */
  get tuning(): Readonly<RocksDbTuning> {
    return { ...this.#tuning };
  }

  /** Whether close() was called. */
  get closed(): boolean {
    return this.#state !== "open";
  }

  // --- reads -------------------------------------------------------------------

  /**
   * Reads one key.
   * @param key the key
   * @param options `snapshot` to read from
   * @returns the value (up to 1 KiB: a view into a shared 8 KiB buffer, see docs/engine.md), or undefined when the key is missing
   * @throws {TypeError|RangeError} for a bad key; {@link EngineClosedError}; {@link EngineError}
   */
  async get(key: Uint8Array, options?: ReadOptions): Promise<Uint8Array | undefined> {
    this.#checkOpen("get");
    checkKey(key);
    const snap = this.#snapshotOf(options, "get");
    const sym = this.#sym;
    const policy = this.#missPolicy;
    if (policy.readDirect()) return this.#getDirect(key, snap);
    if (this.#perfCounting) {
      sym.rocksdb_set_perf_level(PERF_LEVEL_DISABLE); // cache hits do not pay for counting
      this.#perfCounting = false;
    }
    const value = this.#readHere(
      key,
      snap?.cacheTierReadOptions ?? this.#native.cacheTierReadOptions,
    );
    if (this.#err.isSet()) {
      const status = this.#err.take(sym) ?? "";
      if (!status.startsWith(INCOMPLETE)) throw new EngineError("Cannot get", status);
      this.#memoryOnlyMisses++;
      policy.recordLookup(true);
      if (policy.syncAllowed()) return this.#getSync(key, snap);
      return await this.#getFromDisk(key, snap);
    }
    policy.recordLookup(false);
    return value;
  }

  /**
   * A point read on this thread: the value, or undefined when the key is
   * missing or RocksDB answered a status, which is left in #err for the caller.
   * Values of up to POINT_SLAB_VALUE_BYTES_MAX land in the shared value slab,
   * longer ones in an array of their own.
   */
  #readHere(key: Uint8Array, readOptions: Ptr, countBlocks = false): Uint8Array | undefined {
    const helpers = this.#native.helpers;
    if (helpers !== undefined) {
      const slab = this.#valueSlab;
      const buffer = slab.reserve(POINT_SLAB_VALUE_BYTES_MAX);
      const found = helpers.symbols.spire_get_counted(
        this.#db,
        readOptions,
        key,
        key.length,
        buffer,
        slab.offset,
        POINT_SLAB_VALUE_BYTES_MAX,
        this.#size.bytes,
        this.#err.bytes,
        countBlocks ? this.#native.perfContext : null,
        this.#blocksRead,
      );
      if (found === GET_FOUND) return slab.commit(this.#size.value);
      if (found !== GET_TOO_LONG) return undefined; // missing, or a status in #err
      // Longer than the slab takes: read it again the plain way, into its own array (the
      // counted read above already counted its blocks).
      countBlocks = false;
    }
    return this.#readPlain(key, readOptions, countBlocks);
  }

  /** #readHere with plain FFI calls (no helpers, or a value too long for the slab). */
  #readPlain(key: Uint8Array, readOptions: Ptr, countBlocks: boolean): Uint8Array | undefined {
    const sym = this.#sym;
    const perf = this.#native.perfContext;
    let blocksBefore: number | bigint = 0;
    if (countBlocks) {
      sym.rocksdb_set_perf_level(PERF_LEVEL_ENABLE_COUNT);
      blocksBefore = sym.rocksdb_perfcontext_metric(perf, PERF_BLOCK_READ_COUNT);
    }
    const value = this.#getPlain(key, readOptions);
    if (countBlocks) {
      const after = sym.rocksdb_perfcontext_metric(perf, PERF_BLOCK_READ_COUNT);
      this.#blocksRead[0] = after === blocksBefore ? 0 : 1;
    }
    return value;
  }

  /** rocksdb_get and a copy of its value; a status is left in #err. */
  #getPlain(key: Uint8Array, readOptions: Ptr): Uint8Array | undefined {
    const sym = this.#sym;
    const ptr = sym.rocksdb_get(
      this.#db,
      readOptions,
      key,
      BigInt(key.length),
      this.#size.bytes,
      this.#err.bytes,
    );
    if (ptr === null) return undefined;
    const length = this.#size.value;
    const value = length <= POINT_SLAB_VALUE_BYTES_MAX
      ? this.#valueSlab.copy(ptr, length)
      : copyOut(sym, ptr, length);
    sym.rocksdb_free(ptr);
    return value;
  }

  /**
   * A point read from every tier at once, when most reads miss the cache and
   * misses may be read on this thread: it saves the memory-only attempt. The
   * perf context's block-read count tells whether it missed; only a miss is
   * timed for the policy.
   */
  #getDirect(key: Uint8Array, snap: NativeSnapshot | undefined): Uint8Array | undefined {
    const sym = this.#sym;
    const policy = this.#missPolicy;
    // Counting only, no timers, on this thread; set per read, as another engine may turn it off.
    this.#perfCounting = true;
    const began = policy.now();
    const value = this.#readHere(key, snap?.readOptions ?? this.#native.readOptions, true);
    const elapsed = policy.now() - began;
    if (this.#blocksRead[0] !== 0) {
      policy.recordLookup(true);
      policy.recordSync(1, elapsed);
    } else {
      policy.recordLookup(false);
    }
    this.#err.check(sym, "Cannot get");
    return value;
  }

  /** A point read that missed the block cache, on this thread, timed for the miss policy. */
  #getSync(key: Uint8Array, snap: NativeSnapshot | undefined): Uint8Array | undefined {
    const began = this.#missPolicy.now();
    const value = this.#readHere(key, snap?.readOptions ?? this.#native.readOptions);
    this.#missPolicy.recordSync(1, this.#missPolicy.now() - began);
    this.#err.check(this.#sym, "Cannot get");
    return value;
  }

  /**
   * A point read that missed the block cache. The first miss goes to a worker
   * thread at once; misses that arrive while one is in flight queue up and go
   * together as one MultiGet, so concurrent readers share thread hops (each hop
   * costs far more than a read from the OS page cache).
   */
  #getFromDisk(key: Uint8Array, snap: NativeSnapshot | undefined): Promise<Uint8Array | undefined> {
    if (snap !== undefined) snap.pending++; // held until its read is done
    const promise = new Promise<Uint8Array | undefined>((resolve, reject) => {
      this.#misses.push({ key: key.slice(), snap, resolve, reject });
    });
    this.#missRunner ??= this.#runMisses();
    return promise;
  }

  async #runMisses(): Promise<void> {
    try {
      while (this.#misses.length > 0) {
        const snap = this.#misses[0]!.snap;
        const group: PendingMiss[] = [];
        const rest: PendingMiss[] = [];
        for (const miss of this.#misses) {
          (miss.snap === snap && group.length < MISS_GROUP_KEYS_MAX ? group : rest).push(miss);
        }
        this.#misses = rest;
        try {
          const values = await this.#readMisses(group, snap);
          group.forEach((miss, i) => miss.resolve(values[i]));
        } catch (error) {
          for (const miss of group) miss.reject(error);
        } finally {
          if (snap !== undefined) {
            snap.pending -= group.length;
            this.#settleSnapshot(snap);
          }
        }
      }
    } finally {
      this.#missRunner = undefined;
    }
  }

  async #readMisses(
    group: PendingMiss[],
    snap: NativeSnapshot | undefined,
  ): Promise<(Uint8Array | undefined)[]> {
    const readOptions = snap?.readOptions ?? this.#native.readOptions;
    const sym = this.#sym;
    this.#missPolicy.recordWorker(group.length);
    if (group.length > 1) {
      const values: (Uint8Array | undefined)[] = new Array(group.length).fill(undefined);
      const keys = group.map((m) => m.key);
      await this.#track(
        this.#multiGet(keys, keys.map((_, i) => i), values, readOptions, true) as Promise<number[]>,
        undefined,
      );
      return values;
    }
    const err = new ErrSlot();
    const size = new SizeSlot();
    const key = stableCopy(group[0]!.key);
    const ptr = await this.#track(
      sym.rocksdb_get_nb(this.#db, readOptions, key, BigInt(key.length), size.bytes, err.bytes),
      undefined,
    );
    err.check(sym, "Cannot get");
    if (ptr === null) return [undefined];
    const value = copyOut(sym, ptr, size.value);
    sym.rocksdb_free(ptr);
    return [value];
  }

  /**
   * Reads many keys at once (RocksDB MultiGet).
   * @param keys the keys (at most {@link GET_BATCH_KEYS_MAX})
   * @param options `snapshot` to read from
   * @returns the values in the order of `keys` (small ones are views into shared buffers, as for `get`), undefined for missing keys
   * @throws {TypeError|RangeError} for bad keys; {@link EngineClosedError}; {@link EngineError}
   */
  async getBatch(
    keys: readonly Uint8Array[],
    options?: ReadOptions,
  ): Promise<(Uint8Array | undefined)[]> {
    this.#checkOpen("getBatch");
    if (!Array.isArray(keys)) {
      throw new TypeError("Invalid keys: an array of Uint8Array is required");
    }
    if (keys.length > GET_BATCH_KEYS_MAX) {
      throw new RangeError(
        `Invalid keys: ${keys.length} keys is above the maximum of ${GET_BATCH_KEYS_MAX}`,
      );
    }
    for (const key of keys) checkKey(key);
    const snap = this.#snapshotOf(options, "getBatch");
    // One key: a point read is cheaper than RocksDB's MultiGet machinery (about 1 µs here).
    if (keys.length === 1) return [await this.get(keys[0]!, options)];
    const results: (Uint8Array | undefined)[] = new Array(keys.length).fill(undefined);
    if (keys.length === 0) return results;
    const all = keys.map((_, i) => i);
    const misses = this.#multiGet(
      keys,
      all,
      results,
      snap?.cacheTierReadOptions ?? this.#native.cacheTierReadOptions,
      false,
    ) as number[];
    if (misses.length > 0) {
      this.#memoryOnlyMisses += misses.length;
      const readOptions = snap?.readOptions ?? this.#native.readOptions;
      if (this.#missPolicy.syncAllowed(misses.length)) {
        const began = this.#missPolicy.now();
        try {
          this.#multiGet(keys, misses, results, readOptions, false);
        } finally {
          this.#missPolicy.recordSync(misses.length, this.#missPolicy.now() - began);
        }
        return results;
      }
      this.#missPolicy.recordWorker(misses.length);
      await this.#track(
        this.#multiGet(keys, misses, results, readOptions, true) as Promise<number[]>,
        snap,
      );
    }
    return results;
  }

  /** One MultiGet of `keys[indexes]`; returns the indexes that answered Incomplete. */
  #multiGet(
    keys: readonly Uint8Array[],
    indexes: number[],
    results: (Uint8Array | undefined)[],
    readOptions: Ptr,
    nonblocking: boolean,
  ): number[] | Promise<number[]> {
    const n = indexes.length;
    let total = 0;
    for (const i of indexes) total += keys[i]!.length;
    // A synchronous call reuses the engine's buffers; a call on a worker thread
    // gets its own, which stay alive (and unmoved) until it is done.
    const buf = !nonblocking && n <= MULTI_GET_SCRATCH_KEYS && total <= MULTI_GET_SCRATCH_KEY_BYTES
      ? (this.#multiGetScratch ??= new MultiGetBuffers(
        MULTI_GET_SCRATCH_KEYS,
        MULTI_GET_SCRATCH_KEY_BYTES,
      ))
      : new MultiGetBuffers(n, total);
    const { packed, ptrs32, sizes32, values, values32, valueSizes32, errs, errs32 } = buf;
    let offset = 0;
    for (let j = 0; j < n; j++) {
      const key = keys[indexes[j]!]!;
      packed.set(key, offset);
      // Addresses and sizes are written as 32-bit halves: no BigInt per key.
      const lo = buf.baseLo + offset;
      ptrs32[2 * j] = lo >>> 0;
      ptrs32[2 * j + 1] = buf.baseHi + Math.floor(lo / 0x1_0000_0000);
      sizes32[2 * j] = key.length;
      sizes32[2 * j + 1] = 0;
      offset += key.length;
    }
    const finish = (): number[] => {
      void buf; // kept alive until RocksDB is done with the key addresses
      const sym = this.#sym;
      const incomplete: number[] = [];
      let failure: string | undefined;
      for (let j = 0; j < n; j++) {
        if (errs32[2 * j] !== 0 || errs32[2 * j + 1] !== 0) {
          const status = takeCString(sym, Deno.UnsafePointer.create(errs[j]!)) ?? "";
          if (status.startsWith(INCOMPLETE)) incomplete.push(indexes[j]!);
          else failure ??= status;
        }
        if (values32[2 * j] !== 0 || values32[2 * j + 1] !== 0) {
          const address = values[j]!;
          const length = valueSizes32[2 * j]! + valueSizes32[2 * j + 1]! * 0x1_0000_0000;
          let out: Uint8Array;
          if (length <= POINT_SLAB_VALUE_BYTES_MAX) {
            out = this.#valueSlab.copyAddress(address, length);
          } else {
            out = new Uint8Array(length);
            if (length > 0) sym.memcpy_from_address(out, address, BigInt(length));
          }
          sym.rocksdb_free_address(address);
          results[indexes[j]!] = out;
        }
      }
      if (failure !== undefined) throw new EngineError("Cannot getBatch", failure);
      return incomplete;
    };
    const args = [
      this.#db,
      readOptions,
      BigInt(n),
      buf.ptrsBytes,
      buf.sizesBytes,
      buf.valuesBytes,
      buf.valueSizesBytes,
      buf.errsBytes,
    ] as const;
    if (nonblocking) return this.#sym.rocksdb_multi_get_nb(...args).then(finish);
    this.#sym.rocksdb_multi_get(...args);
    return finish();
  }

  /**
   * Scans keys in `[start, end)` in batches. An empty `end` means no upper
   * bound; an empty `start` means from the first key. The scan reads a
   * consistent view (the state when `scanRange` was called, or the snapshot).
   * Stop early with `break` (or `return()`); the native iterator is freed then.
   *
   * @param start first key (inclusive)
   * @param end bound (exclusive); empty for unbounded
   * @param options batchSize, limit, reverse, keysOnly, snapshot
   * @returns an async iterator of batches
   * @throws {TypeError|RangeError} for bad bounds or options; {@link EngineClosedError}
   */
  scanRange(
    start: Uint8Array,
    end: Uint8Array,
    options: ScanOptions = {},
  ): AsyncIterableIterator<ScanBatch> {
    this.#checkOpen("scanRange");
    checkKey(start, "start");
    checkKey(end, "end");
    const batchSize = options.batchSize ?? 1000;
    checkCount(batchSize, "batchSize", SCAN_BATCH_SIZE_MAX);
    const limit = options.limit ?? Number.MAX_SAFE_INTEGER;
    if (!Number.isSafeInteger(limit) || limit < 0) {
      throw new RangeError(`Invalid limit: ${limit}; a non-negative integer is allowed`);
    }
    const reverse = options.reverse === true;
    const keysOnly = options.keysOnly === true;
    const cursor = this.#openCursor(start, end, this.#snapshotOf(options, "scanRange"), reverse);
    let remaining = limit;
    const done = (): IteratorResult<ScanBatch> => {
      this.#closeCursor(cursor);
      return { done: true, value: undefined };
    };
    const iterator: AsyncIterableIterator<ScanBatch> = {
      next: () => {
        if (cursor.iterator === null) {
          if (cursor.killed) {
            return Promise.reject(new EngineClosedError("continue scanRange"));
          }
          return Promise.resolve(done());
        }
        if (remaining === 0) return Promise.resolve(done());
        try {
          const batch = this.#readBatch(cursor, Math.min(batchSize, remaining), reverse, keysOnly);
          remaining -= batch.rowsReturned;
          if (batch.rowsReturned === 0) return Promise.resolve(done());
          return Promise.resolve({ done: false, value: batch });
        } catch (error) {
          this.#closeCursor(cursor);
          return Promise.reject(error);
        }
      },
      return: () => Promise.resolve(done()),
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return iterator;
  }

  #openCursor(
    start: Uint8Array,
    end: Uint8Array,
    snap: NativeSnapshot | undefined,
    reverse: boolean,
  ): Cursor {
    const sym = this.#sym;
    const readOptions = sym.rocksdb_readoptions_create()!;
    const bounds: Uint8Array[] = [];
    if (snap !== undefined) sym.rocksdb_readoptions_set_snapshot(readOptions, snap.handle);
    // The bounds' memory must outlive the iterator: stable copies kept on the cursor.
    const lower = this.#boundsSlab.hold(start);
    bounds.push(lower);
    if (start.length > 0) {
      sym.rocksdb_readoptions_set_iterate_lower_bound(
        readOptions,
        Deno.UnsafePointer.of(lower),
        BigInt(lower.length),
      );
    }
    if (end.length > 0) {
      const upper = this.#boundsSlab.hold(end);
      bounds.push(upper);
      sym.rocksdb_readoptions_set_iterate_upper_bound(
        readOptions,
        Deno.UnsafePointer.of(upper),
        BigInt(upper.length),
      );
    }
    const iterator = sym.rocksdb_create_iterator(this.#db, readOptions)!;
    if (reverse) sym.rocksdb_iter_seek_to_last(iterator);
    else if (start.length > 0) sym.rocksdb_iter_seek(iterator, lower, BigInt(lower.length));
    else sym.rocksdb_iter_seek_to_first(iterator);
    const cursor: Cursor = { iterator, readOptions, bounds, snapshot: snap, killed: false };
    if (snap !== undefined) snap.pending++;
    this.#cursors.add(cursor);
    return cursor;
  }

  #closeCursor(cursor: Cursor): void {
    if (cursor.iterator === null) return;
    const sym = this.#sym;
    sym.rocksdb_iter_destroy(cursor.iterator);
    sym.rocksdb_readoptions_destroy(cursor.readOptions);
    cursor.iterator = null;
    cursor.bounds = [];
    this.#cursors.delete(cursor);
    if (cursor.snapshot !== undefined) {
      cursor.snapshot.pending--;
      this.#settleSnapshot(cursor.snapshot);
    }
  }

  #readBatch(cursor: Cursor, rows: number, reverse: boolean, keysOnly: boolean): ScanBatch {
    const helpers = this.#native.helpers;
    if (helpers !== undefined) {
      return this.#readBatchNative(helpers, cursor, rows, reverse, keysOnly);
    }
    const sym = this.#sym;
    const it = cursor.iterator!;
    const began = performance.now();
    const keys: Uint8Array[] = [];
    const entries: Entry[] = [];
    const keySize = this.#size;
    const valueSize = this.#size2;
    // Rows are copied into shared slabs and handed out as views: allocating one
    // small Uint8Array per key and value costs several times the copy itself.
    const slab = this.#scanSlab;
    let bytesRead = 0;
    let count = 0;
    while (count < rows && sym.rocksdb_iter_valid(it) !== 0) {
      const key = slab.copy(sym.rocksdb_iter_key(it, keySize.bytes)!, keySize.value);
      keys.push(key);
      bytesRead += key.length;
      if (!keysOnly) {
        const value = slab.copy(sym.rocksdb_iter_value(it, valueSize.bytes)!, valueSize.value);
        entries.push({ key, value });
        bytesRead += value.length;
      }
      if (reverse) sym.rocksdb_iter_prev(it);
      else sym.rocksdb_iter_next(it);
      count++;
    }
    if (sym.rocksdb_iter_valid(it) === 0) {
      sym.rocksdb_iter_get_error(it, this.#err.bytes);
      this.#err.check(sym, "Cannot scanRange");
    }
    return { entries, keys, rowsReturned: count, bytesRead, scanTimeMs: performance.now() - began };
  }

  /**
   * #readBatch through the native helpers: each call copies as many rows as
   * fit into the rest of the scan slab, and the rows are handed out as views of
   * it (see SCAN_SLAB_BYTES).
   */
  #readBatchNative(
    helpers: HelperLibrary,
    cursor: Cursor,
    rows: number,
    reverse: boolean,
    keysOnly: boolean,
  ): ScanBatch {
    const sym = this.#sym;
    const it = cursor.iterator!;
    const began = performance.now();
    const keys: Uint8Array[] = [];
    const entries: Entry[] = [];
    const lengths = this.#scanLengths ??= new Uint32Array(2 * SCAN_HELPER_ROWS_MAX);
    const slab = this.#scanSlab;
    let bytesRead = 0;
    let count = 0;
    let room = SCAN_SLAB_ROOM_MIN;
    while (count < rows) {
      const buffer = slab.reserve(room);
      const asked = Math.min(rows - count, SCAN_HELPER_ROWS_MAX);
      const n = helpers.symbols.spire_iter_read(
        it,
        asked,
        keysOnly ? 1 : 0,
        reverse ? 1 : 0,
        buffer,
        slab.offset,
        buffer.length - slab.offset,
        lengths,
      );
      if (n < 0) {
        room = lengths[0]! + lengths[1]!; // the next row does not fit in the rest: room for it
        continue;
      }
      for (let i = 0; i < n; i++) {
        const keyLength = lengths[2 * i]!;
        const key = slab.commit(keyLength);
        keys.push(key);
        bytesRead += keyLength;
        if (keysOnly) continue;
        const valueLength = lengths[2 * i + 1]!;
        entries.push({ key, value: slab.commit(valueLength) });
        bytesRead += valueLength;
      }
      count += n;
      if (sym.rocksdb_iter_valid(it) === 0) break;
      // Fewer rows than asked: the rest of the buffer was too short for the next one.
      room = n < asked ? buffer.length - slab.offset + 1 : SCAN_SLAB_ROOM_MIN;
    }
    if (sym.rocksdb_iter_valid(it) === 0) {
      sym.rocksdb_iter_get_error(it, this.#err.bytes);
      this.#err.check(sym, "Cannot scanRange");
    }
    return { entries, keys, rowsReturned: count, bytesRead, scanTimeMs: performance.now() - began };
  }

  /**
   * Examines up to `rowsMax` rows of `[start, end)` (empty `end`: unbounded)
   * and returns the keys of those whose value holds a deadline below `now`
   * (see {@link DeadlineLayout}); values without one, or too short to hold it,
   * never match. With the native helpers only the matching keys cross into
   * JavaScript, so examining a row costs a fraction of reading it with
   * {@link Engine.scanRange}. Runs on the calling thread: keep `rowsMax` to a
   * few thousand on a busy event loop.
   * @param start first key (inclusive)
   * @param end bound (exclusive)
   * @param options layout, now, rowsMax and snapshot
   * @returns the expired keys, the rows examined and where to go on
   * @throws {TypeError|RangeError} for bad bounds or options; {@link EngineClosedError}; {@link EngineError}
   */
  // deno-lint-ignore require-await -- async so that a bad argument rejects, as other reads do
  async scanExpired(
    start: Uint8Array,
    end: Uint8Array,
    options: ScanExpiredOptions,
  ): Promise<ExpiredPage> {
    this.#checkOpen("scanExpired");
    checkKey(start, "start");
    checkKey(end, "end");
    const { layout, now, rowsMax } = options;
    checkCount(rowsMax, "rowsMax", SCAN_BATCH_SIZE_MAX);
    checkDeadlines(layout, now, "now");
    const cursor = this.#openCursor(start, end, this.#snapshotOf(options, "scanExpired"), false);
    try {
      const it = cursor.iterator!;
      const helpers = this.#native.helpers;
      const found = helpers === undefined
        ? this.#expiredPlain(it, layout, now, rowsMax)
        : this.#expiredNative(helpers, it, layout, now, rowsMax);
      const sym = this.#sym;
      if (sym.rocksdb_iter_valid(it) === 0) {
        sym.rocksdb_iter_get_error(it, this.#err.bytes);
        this.#err.check(sym, "Cannot scanExpired");
        return { ...found, next: undefined };
      }
      const next = copyOut(sym, sym.rocksdb_iter_key(it, this.#size.bytes)!, this.#size.value);
      return { ...found, next };
    } finally {
      this.#closeCursor(cursor);
    }
  }

  #expiredNative(
    helpers: HelperLibrary,
    it: Ptr,
    layout: DeadlineLayout,
    now: number,
    rowsMax: number,
  ): { keys: Uint8Array[]; rowsExamined: number } {
    const sym = this.#sym;
    // Room for the longest key, so that every call makes progress.
    const out = this.#expiredKeys ??= new Uint8Array(4 * KEY_SIZE_MAX_BYTES);
    const lengths = this.#scanLengths ??= new Uint32Array(2 * SCAN_HELPER_ROWS_MAX);
    const walked = new Uint32Array(1);
    const keys: Uint8Array[] = [];
    let rowsExamined = 0;
    while (rowsExamined < rowsMax && sym.rocksdb_iter_valid(it) !== 0) {
      const n = helpers.symbols.spire_iter_expired(
        it,
        Math.min(rowsMax - rowsExamined, SCAN_HELPER_ROWS_MAX),
        layout.flagOffset,
        layout.flagMask,
        layout.deadlineOffset,
        now,
        out,
        out.length,
        lengths,
        lengths.length,
        walked,
      );
      let at = 0;
      for (let i = 0; i < n; i++) {
        keys.push(out.slice(at, at + lengths[i]!));
        at += lengths[i]!;
      }
      // Every key the engine wrote fits in `out`: a call that walks nothing is a bug.
      if (walked[0] === 0 && sym.rocksdb_iter_valid(it) !== 0) {
        throw new Error("Cannot scanExpired: a key longer than the scan buffer (256 KiB)");
      }
      rowsExamined += walked[0]!;
    }
    return { keys, rowsExamined };
  }

  /** {@link Engine.scanExpired} without the helpers: the same rows, read one call at a time. */
  #expiredPlain(
    it: Ptr,
    layout: DeadlineLayout,
    now: number,
    rowsMax: number,
  ): { keys: Uint8Array[]; rowsExamined: number } {
    const sym = this.#sym;
    const keys: Uint8Array[] = [];
    let rowsExamined = 0;
    while (rowsExamined < rowsMax && sym.rocksdb_iter_valid(it) !== 0) {
      const ptr = sym.rocksdb_iter_value(it, this.#size.bytes)!;
      const length = this.#size.value;
      const head = copyOut(sym, ptr, Math.min(length, layout.deadlineOffset + 8));
      if (deadlinePassed(head, layout, now, length)) {
        keys.push(copyOut(sym, sym.rocksdb_iter_key(it, this.#size.bytes)!, this.#size.value));
      }
      rowsExamined++;
      sym.rocksdb_iter_next(it);
    }
    return { keys, rowsExamined };
  }

  /**
   * Counts the keys in `[start, end)` (empty `end`: unbounded) and their key
   * and value bytes, as of the call (one iterator throughout), yielding to the
   * event loop every `sliceRows` rows. Given `deadlines`, also counts the keys
   * whose value holds a deadline (see {@link DeadlineLayout}) and, of those not
   * yet below `now`, how many and their summed time left. With the native
   * helpers nothing is copied out: a row costs a fraction of reading it with
   * {@link Engine.scanRange}.
   * @param start first key (inclusive)
   * @param end bound (exclusive)
   * @param options `sliceRows` (default 8,192, at most {@link SCAN_BATCH_SIZE_MAX}), `deadlines` and `snapshot`
   * @returns the counts
   * @throws {TypeError|RangeError} for bad bounds or options; {@link EngineClosedError}; {@link EngineError}
   */
  measureRange(
    start: Uint8Array,
    end: Uint8Array,
    options: MeasureOptions = {},
  ): Promise<RangeMeasure> {
    return this.#measure("measureRange", start, end, options, false);
  }

  /**
   * The walk of measureRange and countRange (`op` names the caller in errors). `keysOnly`:
   * only the key count is wanted, so the plain path skips reading rows.
   */
  async #measure(
    op: string,
    start: Uint8Array,
    end: Uint8Array,
    options: MeasureOptions,
    keysOnly: boolean,
  ): Promise<RangeMeasure> {
    this.#checkOpen(op);
    checkKey(start, "start");
    checkKey(end, "end");
    const sliceRows = options.sliceRows ?? COUNT_CHUNK_ROWS;
    checkCount(sliceRows, "sliceRows", SCAN_BATCH_SIZE_MAX);
    const deadlines = options.deadlines;
    if (deadlines !== undefined) checkDeadlines(deadlines.layout, deadlines.now, "deadlines.now");
    const cursor = this.#openCursor(start, end, this.#snapshotOf(options, op), false);
    const sym = this.#sym;
    const helpers = this.#native.helpers;
    const m: RangeMeasure = { keys: 0, bytes: 0, deadlines: 0, pending: 0, pendingSum: 0 };
    const sums = new Float64Array(4); // bytes, deadlines, pending, pendingSum
    try {
      for (;;) {
        const it = cursor.iterator;
        if (it === null) throw new EngineClosedError(`continue ${op}`);
        let walked = 0;
        if (helpers !== undefined) {
          // In calls of at most SCAN_HELPER_ROWS_MAX rows: the 32-bit count stays small.
          while (walked < sliceRows && sym.rocksdb_iter_valid(it) !== 0) {
            walked += helpers.symbols.spire_iter_measure(
              it,
              Math.min(sliceRows - walked, SCAN_HELPER_ROWS_MAX),
              deadlines?.layout.flagOffset ?? 0,
              deadlines?.layout.flagMask ?? 0,
              deadlines?.layout.deadlineOffset ?? 0,
              deadlines?.now ?? 0,
              sums,
            );
          }
          m.keys += walked;
        } else if (keysOnly) {
          for (; walked < sliceRows && sym.rocksdb_iter_valid(it) !== 0; walked++) {
            sym.rocksdb_iter_next(it);
          }
          m.keys += walked;
        } else {
          for (; walked < sliceRows && sym.rocksdb_iter_valid(it) !== 0; walked++) {
            sym.rocksdb_iter_key(it, this.#size.bytes);
            const keyLength = this.#size.value;
            const ptr = sym.rocksdb_iter_value(it, this.#size.bytes)!;
            const length = this.#size.value;
            const head = deadlines === undefined
              ? EMPTY
              : copyOut(sym, ptr, Math.min(length, deadlines.layout.deadlineOffset + 8));
            measureRow(m, head, keyLength + length, length, deadlines);
            sym.rocksdb_iter_next(it);
          }
        }
        if (sym.rocksdb_iter_valid(it) === 0) {
          sym.rocksdb_iter_get_error(it, this.#err.bytes);
          this.#err.check(sym, `Cannot ${op}`);
          m.bytes += sums[0]!;
          m.deadlines += sums[1]!;
          m.pending += sums[2]!;
          m.pendingSum += sums[3]!;
          return m;
        }
        await new Promise((resolve) => setTimeout(resolve, 0)); // let other work run
      }
    } finally {
      this.#closeCursor(cursor);
    }
  }

  /**
   * Counts keys in `[start, end)` (empty `end`: unbounded).
   * @param start first key (inclusive)
   * @param end bound (exclusive)
   * @param options `snapshot` to count in
   * @returns the number of keys
   */
  async countRange(start: Uint8Array, end: Uint8Array, options?: ReadOptions): Promise<number> {
    return (await this.#measure("countRange", start, end, options ?? {}, true)).keys;
  }

  // --- writes ------------------------------------------------------------------

  /**
   * Writes one key. Durable when it resolves if `syncWrites` (the default).
   * @throws {TypeError|RangeError} for a bad key or value; {@link EngineClosedError}; {@link EngineError}
   */
  async put(key: Uint8Array, value: Uint8Array): Promise<void> {
    this.#checkOpen("put");
    checkKey(key);
    checkValue(value);
    if (this.#mustQueueWrites()) return await this.#queue({ op: "put", key, value });
    this.#sym.rocksdb_put(
      this.#db,
      this.#native.noStallWriteOptions,
      key,
      BigInt(key.length),
      value,
      BigInt(value.length),
      this.#err.bytes,
    );
    if (this.#stalled("Cannot put")) return await this.#queue({ op: "put", key, value });
  }

  /**
   * Deletes one key (no error when it is missing).
   * @throws {TypeError|RangeError} for a bad key; {@link EngineClosedError}; {@link EngineError}
   */
  async delete(key: Uint8Array): Promise<void> {
    this.#checkOpen("delete");
    checkKey(key);
    if (this.#mustQueueWrites()) return await this.#queue({ op: "delete", key });
    this.#sym.rocksdb_delete(
      this.#db,
      this.#native.noStallWriteOptions,
      key,
      BigInt(key.length),
      this.#err.bytes,
    );
    if (this.#stalled("Cannot delete")) return await this.#queue({ op: "delete", key });
  }

  /**
   * Applies the operations atomically: all of them or none. `deleteRange`
   * deletes `[start, end)`; `end` must not sort before `start` (RangeError).
   * @param ops at most {@link WRITE_BATCH_OPS_MAX} operations and `WRITE_BATCH_BYTES_MAX` bytes
   * @throws {TypeError|RangeError} for bad operations; {@link EngineClosedError}; {@link EngineError}
   */
  async writeBatch(ops: readonly WriteOp[]): Promise<void> {
    this.#checkOpen("writeBatch");
    if (!Array.isArray(ops)) throw new TypeError("Invalid ops: an array of operations is required");
    if (ops.length > WRITE_BATCH_OPS_MAX) {
      throw new RangeError(
        `Invalid ops: ${ops.length} operations is above the maximum of ${WRITE_BATCH_OPS_MAX}`,
      );
    }
    const batch = this.#scratch;
    batch.clear();
    for (const op of ops) batch.add(op); // checks every op before anything is written
    return await this.#write(batch);
  }

  /**
   * Applies a {@link WriteBatch} atomically: all of its operations or none. The batch was
   * checked as it was built; it may be cleared and reused as soon as this returns its promise.
   * @throws {TypeError} when `batch` is not a WriteBatch; {@link EngineClosedError}; {@link EngineError}
   */
  async write(batch: WriteBatch): Promise<void> {
    this.#checkBatch(batch);
    return await this.#write(batch);
  }

  /**
   * Applies a {@link WriteBatch} right now, on this thread, if it can: not when writes are
   * synced or queued behind a write stall (they go to a worker thread). So a caller knows that
   * nothing else ran between its call and the batch being in the engine.
   * @returns true when the batch is written; false when nothing was written (use `write`)
   * @throws {TypeError} when `batch` is not a WriteBatch; {@link EngineClosedError}; {@link EngineError}
   */
  writeNow(batch: WriteBatch): boolean {
    this.#checkBatch(batch);
    const ranges = batch.rangeDeletes > 0;
    if (!this.#writeHere(batch)) return false;
    if (ranges) this.#flushAfterRangeDeletes();
    return true;
  }

  /** The checks of `write` and `writeNow`. */
  #checkBatch(batch: unknown): asserts batch is WriteBatch {
    this.#checkOpen("write");
    if (!(batch instanceof WriteBatch)) {
      throw new TypeError("Invalid batch: a WriteBatch is required");
    }
  }

  async #write(batch: WriteBatch): Promise<void> {
    const ranges = batch.rangeDeletes > 0; // read now: the caller may reuse the batch
    if (!this.#writeHere(batch)) await this.#queueBatch(batch);
    if (ranges) this.#flushAfterRangeDeletes();
  }

  /**
   * After a write with range deletes (a FLUSHDB): flushes the memtables in the background.
   * RocksDB 7.8 fragments the active memtable's range tombstones again for every read and every
   * iterator it makes, so each range delete left there slows every later read: 7,000 FLUSHDBs
   * (a test suite clearing the database before each case) took a pipeline of FLUSHDB, SET, GET,
   * DBSIZE and SCAN on a node from 1.7 to 8.5 ms, and it kept growing; in an SST file the
   * tombstones are fragmented once. One flush at a time, and one more if range deletes came
   * while it ran. A failed flush is not reported here: RocksDB keeps the background error and
   * every later write fails with it.
   */
  #flushAfterRangeDeletes(): void {
    if (this.#state !== "open") return;
    if (this.#rangeFlush !== undefined) {
      this.#rangeFlushAgain = true;
      return;
    }
    this.#rangeFlush = this.flush().catch(() => {}).finally(() => {
      this.#rangeFlush = undefined;
      if (!this.#rangeFlushAgain) return;
      this.#rangeFlushAgain = false;
      this.#flushAfterRangeDeletes();
    });
  }

  /** Writes the batch on this thread unless it must queue (or a stall refused it): false then. */
  #writeHere(batch: WriteBatch): boolean {
    if (batch.count === 0) return true;
    if (this.#mustQueueWrites()) return false;
    const rep = batch.rep();
    const native = this.#sym.rocksdb_writebatch_create_from(rep, BigInt(rep.length))!;
    try {
      this.#sym.rocksdb_write(this.#db, this.#native.noStallWriteOptions, native, this.#err.bytes);
      return !this.#stalled("Cannot write");
    } finally {
      this.#sym.rocksdb_writebatch_destroy(native);
    }
  }

  /** Queues one operation for a worker thread (see #queueBatch). */
  #queue(op: WriteOp): Promise<void> {
    const batch = this.#scratch;
    batch.clear();
    batch.add(op);
    return this.#queueBatch(batch);
  }

  /**
   * Queues a batch for a worker thread, as a copy of its representation: the caller may
   * reuse the batch (and the buffers it was built from) as soon as this returns its promise.
   */
  #queueBatch(batch: WriteBatch): Promise<void> {
    return this.#committer.submit([batch.copy()], batch.bytes, batch.count);
  }

  /**
   * Whether a write must go through the queue: always when writes are synced
   * (group commit), and for unsynced writes while earlier ones wait there (a
   * write stall), so that writes apply in call order.
   */
  #mustQueueWrites(): boolean {
    return this.#tuning.syncWrites || this.#committer.busy;
  }

  /**
   * After an unsynced write with `no_slowdown`: false when it was applied;
   * true when RocksDB refused it because writes are stalled (nothing was
   * written; the caller queues it for a worker thread, where waiting out the
   * stall does not block the event loop).
   * @throws {EngineError} for any other failure
   */
  #stalled(operation: string): boolean {
    if (!this.#err.isSet()) return false;
    const status = this.#err.take(this.#sym) ?? "";
    if (!status.startsWith(INCOMPLETE)) throw new EngineError(operation, status);
    this.#stallRetries++;
    return true;
  }

  /** Writes a group of queued batches as one RocksDB batch, on a worker thread. */
  async #commitGroup(requests: readonly (readonly Uint8Array[])[]): Promise<void> {
    const sym = this.#sym;
    const rep = concatWriteBatches(requests.flat());
    const native = sym.rocksdb_writebatch_create_from(rep, BigInt(rep.length))!;
    const err = new ErrSlot();
    try {
      await this.#track(
        sym.rocksdb_write_nb(this.#db, this.#native.writeOptions, native, err.bytes),
        undefined,
      );
      err.check(sym, "Cannot write");
    } finally {
      sym.rocksdb_writebatch_destroy(native);
    }
  }

  // --- snapshots, checkpoints, maintenance ----------------------------------------

  /**
   * Takes a snapshot: reads through it see the state of this moment.
   * @returns the snapshot; release it when done
   */
  snapshot(): Snapshot {
    this.#checkOpen("snapshot");
    const sym = this.#sym;
    const handle = sym.rocksdb_create_snapshot(this.#db)!;
    const readOptions = sym.rocksdb_readoptions_create()!;
    sym.rocksdb_readoptions_set_snapshot(readOptions, handle);
    const cacheTierReadOptions = sym.rocksdb_readoptions_create()!;
    sym.rocksdb_readoptions_set_snapshot(cacheTierReadOptions, handle);
    sym.rocksdb_readoptions_set_read_tier(cacheTierReadOptions, READ_TIER_BLOCK_CACHE);
    const native: NativeSnapshot = {
      handle,
      readOptions,
      cacheTierReadOptions,
      pending: 0,
      released: false,
      freed: false,
    };
    const snapshot = new Snapshot(native, (s) => this.#settleSnapshot(s[NATIVE]));
    this.#snapshots.add(snapshot);
    return snapshot;
  }

  /** Frees a released snapshot once nothing reads from it. */
  #settleSnapshot(native: NativeSnapshot): void {
    if (!native.released || native.pending > 0 || native.freed) return;
    native.freed = true;
    const sym = this.#sym;
    sym.rocksdb_release_snapshot(this.#db, native.handle);
    sym.rocksdb_readoptions_destroy(native.readOptions);
    sym.rocksdb_readoptions_destroy(native.cacheTierReadOptions);
    for (const s of this.#snapshots) if (s[NATIVE] === native) this.#snapshots.delete(s);
  }

  /**
   * Writes a consistent, openable copy of the database to `dir` (hard links
   * where possible). `dir` must not exist. Open it with `Engine.open({ dataDir: dir })`.
   * @throws {EngineError} when RocksDB cannot create it (e.g. `dir` exists)
   */
  async checkpoint(dir: string): Promise<void> {
    this.#checkOpen("checkpoint");
    if (typeof dir !== "string" || dir === "") {
      throw new TypeError("Invalid dir: a non-empty string is required");
    }
    const sym = this.#sym;
    const err = new ErrSlot();
    const cp = sym.rocksdb_checkpoint_object_create(this.#db, err.bytes);
    err.check(sym, "Cannot checkpoint");
    try {
      await this.#track(
        sym.rocksdb_checkpoint_create_nb(cp!, cString(dir), 0n, err.bytes),
        undefined,
      );
      err.check(sym, `Cannot checkpoint to "${dir}"`);
    } finally {
      sym.rocksdb_checkpoint_object_destroy(cp!);
    }
  }

  /** Flushes the memtables to SST files and waits for it. */
  async flush(): Promise<void> {
    this.#checkOpen("flush");
    const err = new ErrSlot();
    await this.#track(
      this.#sym.rocksdb_flush_nb(this.#db, this.#native.flushOptions, err.bytes),
      undefined,
    );
    err.check(this.#sym, "Cannot flush");
  }

  /**
   * Compacts `[start, end]` (the whole key space by default) and waits for it.
   * @param start first key, or undefined for the beginning
   * @param end last key, or undefined for the end
   */
  async compactRange(start?: Uint8Array, end?: Uint8Array): Promise<void> {
    this.#checkOpen("compactRange");
    if (start !== undefined) checkKey(start, "start");
    if (end !== undefined) checkKey(end, "end");
    const s = start === undefined ? null : stableCopy(start);
    const e = end === undefined ? null : stableCopy(end);
    await this.#track(
      this.#sym.rocksdb_compact_range_opt_nb(
        this.#db,
        this.#native.compactOptions,
        s,
        BigInt(s?.length ?? 0),
        e,
        BigInt(e?.length ?? 0),
      ),
      undefined,
    );
  }

  // --- statistics --------------------------------------------------------------------

  /** Block cache capacity, usage, pinned usage, hits, misses and hit rate. */
  getCacheInfo(): CacheInfo {
    this.#checkOpen("getCacheInfo");
    return this.#cacheInfo(this.#tickers());
  }

  #tickers(): Record<string, number> {
    const text = takeCString(
      this.#sym,
      this.#sym.rocksdb_options_statistics_get_string(this.#native.opts.options),
    );
    return parseStatistics(text ?? "").tickers;
  }

  #cacheInfo(tickers: Record<string, number>): CacheInfo {
    const sym = this.#sym;
    const cache = this.#native.opts.cache;
    const hits = tickers["rocksdb.block.cache.hit"] ?? 0;
    // Each memory-only attempt that answered Incomplete stopped at exactly one
    // block cache miss, which its disk retry counts again.
    const misses = Math.max(0, (tickers["rocksdb.block.cache.miss"] ?? 0) - this.#memoryOnlyMisses);
    return {
      capacityBytes: Number(sym.rocksdb_cache_get_capacity(cache)),
      usageBytes: Number(sym.rocksdb_cache_get_usage(cache)),
      pinnedUsageBytes: Number(sym.rocksdb_cache_get_pinned_usage(cache)),
      hits,
      misses,
      hitRate: hits + misses === 0 ? 0 : hits / (hits + misses),
    };
  }

  #property(name: string): number {
    const out = new BigUint64Array(1);
    const rc = this.#sym.rocksdb_property_int(this.#db, cString(name), new Uint8Array(out.buffer));
    return rc === 0 ? Number(out[0]) : 0;
  }

  #levels(): LevelStats[] {
    const sym = this.#sym;
    const levels: LevelStats[] = Array.from(
      { length: LEVELS },
      (_, level) => ({ level, files: 0, bytes: 0 }),
    );
    const files = sym.rocksdb_livefiles(this.#db);
    if (files === null) return levels;
    try {
      const count = sym.rocksdb_livefiles_count(files);
      for (let i = 0; i < count; i++) {
        const level = sym.rocksdb_livefiles_level(files, i);
        const entry = levels[level] ?? (levels[level] = { level, files: 0, bytes: 0 });
        entry.files++;
        entry.bytes += Number(sym.rocksdb_livefiles_size(files, i));
      }
    } finally {
      sym.rocksdb_livefiles_destroy(files);
    }
    return levels;
  }

  /** The effective options RocksDB was opened with. */
  effectiveOptions(): EffectiveOptions {
    return {
      ...this.#tuning,
      compactionStyle: "leveled",
      level0FileNumCompactionTrigger: LEVELED_COMPACTION.level0FileNumCompactionTrigger,
      maxBytesForLevelBaseBytes: LEVELED_COMPACTION.maxBytesForLevelBaseBytes,
      maxBytesForLevelMultiplier: LEVELED_COMPACTION.maxBytesForLevelMultiplier,
    };
  }

  /** Engine statistics as numbers (see {@link EngineStats}). */
  getStats(): EngineStats {
    this.#checkOpen("getStats");
    const t = this.#tickers();
    const n = (name: string) => t[name] ?? 0;
    const useful = n("rocksdb.bloom.filter.useful");
    const levels = this.#levels();
    return {
      blockCache: this.#cacheInfo(t),
      bloom: { useful, checked: useful + n("rocksdb.bloom.filter.full.positive") },
      memtable: {
        bytes: this.#property("rocksdb.cur-size-all-mem-tables"),
        immutableCount: this.#property("rocksdb.num-immutable-mem-table"),
      },
      l0Files: levels[0]?.files ?? 0,
      levels,
      pendingCompactionBytes: this.#property("rocksdb.estimate-pending-compaction-bytes"),
      compaction: {
        readBytes: n("rocksdb.compact.read.bytes"),
        writeBytes: n("rocksdb.compact.write.bytes"),
      },
      stallMicros: n("rocksdb.stall.micros"),
      keysRead: Math.max(
        0,
        n("rocksdb.number.keys.read") + n("rocksdb.number.multiget.keys.read") -
          this.#memoryOnlyMisses,
      ),
      keysWritten: n("rocksdb.number.keys.written"),
      bytesRead: n("rocksdb.bytes.read") + n("rocksdb.number.multiget.bytes.read"),
      bytesWritten: n("rocksdb.bytes.written"),
      walSyncs: n("rocksdb.wal.synced"),
      walBytes: n("rocksdb.wal.bytes"),
      estimatedKeys: this.#property("rocksdb.estimate-num-keys"),
      sstBytes: this.#property("rocksdb.live-sst-files-size"),
      groupCommit: this.#committer.counters,
      writeStallRetries: this.#stallRetries,
      memoryOnlyMisses: this.#memoryOnlyMisses,
      missReads: this.#missPolicy.stats(),
      nativeHelpers: this.nativeHelpers,
      tickers: t,
      options: this.effectiveOptions(),
    };
  }

  // --- lifecycle ------------------------------------------------------------------------

  /**
   * Closes the engine: waits for queued and in-flight writes and reads, ends
   * open scans (their next `next()` rejects with EngineClosedError), releases
   * snapshots, then closes RocksDB. Safe to call twice.
   */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    this.#state = "closing";
    this.#closing = this.#doClose();
    return this.#closing;
  }

  async #doClose(): Promise<void> {
    await this.#committer.idle();
    while (this.#missRunner !== undefined) await this.#missRunner;
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
    for (const cursor of [...this.#cursors]) {
      cursor.killed = true;
      this.#closeCursor(cursor);
    }
    for (const snapshot of [...this.#snapshots]) snapshot.release();
    Engine.#finalizer.unregister(this);
    const native = this.#native;
    native.closed = true;
    const sym = this.#sym;
    await sym.rocksdb_close_nb(native.db);
    freeHandles(native);
    this.#state = "closed";
  }

  /** Same as {@link Engine.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #checkOpen(operation: string): void {
    if (this.#state !== "open") throw new EngineClosedError(operation);
  }

  #snapshotOf(options: ReadOptions | undefined, operation: string): NativeSnapshot | undefined {
    const snapshot = options?.snapshot;
    if (snapshot === undefined) return undefined;
    if (!(snapshot instanceof Snapshot)) {
      throw new TypeError(`Invalid snapshot for ${operation}: use one from engine.snapshot()`);
    }
    if (snapshot.released) {
      throw new RangeError(`Invalid snapshot for ${operation}: it was released`);
    }
    if (!this.#snapshots.has(snapshot)) {
      throw new TypeError(`Invalid snapshot for ${operation}: it belongs to another engine`);
    }
    return snapshot[NATIVE];
  }

  /** Tracks a native call in flight, so close() and snapshot release wait for it. */
  async #track<T>(promise: Promise<T>, snap: NativeSnapshot | undefined): Promise<T> {
    this.#inFlight.add(promise);
    if (snap !== undefined) snap.pending++;
    try {
      return await promise;
    } finally {
      this.#inFlight.delete(promise);
      if (snap !== undefined) {
        snap.pending--;
        this.#settleSnapshot(snap);
      }
    }
  }
}

/**
 * The arrays of one RocksDB MultiGet: packed key bytes and, per key, its
 * address, size, value address, value size and error, as 64-bit words with
 * 32-bit views (no BigInt per key). The packed keys' address is taken once: V8
 * never moves an ArrayBuffer's memory.
 */
class MultiGetBuffers {
  readonly packed: Uint8Array<ArrayBuffer>;
  readonly baseLo: number;
  readonly baseHi: number;
  readonly ptrs32: Uint32Array;
  readonly sizes32: Uint32Array;
  readonly values: BigUint64Array;
  readonly values32: Uint32Array;
  readonly valueSizes32: Uint32Array;
  readonly errs: BigUint64Array;
  readonly errs32: Uint32Array;
  readonly ptrsBytes: Uint8Array<ArrayBuffer>;
  readonly sizesBytes: Uint8Array<ArrayBuffer>;
  readonly valuesBytes: Uint8Array<ArrayBuffer>;
  readonly valueSizesBytes: Uint8Array<ArrayBuffer>;
  readonly errsBytes: Uint8Array<ArrayBuffer>;

  /**
   * @param keys how many keys it holds
   * @param keyBytes how many key bytes it holds
   */
  constructor(keys: number, keyBytes: number) {
    this.packed = new Uint8Array(new ArrayBuffer(Math.max(keyBytes, 1)));
    const base = addressOf(this.packed);
    this.baseLo = Number(base & 0xffff_ffffn);
    this.baseHi = Number(base >> 32n);
    const n = Math.max(keys, 1);
    const all = new ArrayBuffer(5 * 8 * n);
    const part = (i: number) => new Uint8Array(all, i * 8 * n, 8 * n);
    [this.ptrsBytes, this.sizesBytes, this.valuesBytes, this.valueSizesBytes, this.errsBytes] = [
      part(0),
      part(1),
      part(2),
      part(3),
      part(4),
    ];
    const w32 = (b: Uint8Array<ArrayBuffer>) => new Uint32Array(all, b.byteOffset, 2 * n);
    this.ptrs32 = w32(this.ptrsBytes);
    this.sizes32 = w32(this.sizesBytes);
    this.values32 = w32(this.valuesBytes);
    this.valueSizes32 = w32(this.valueSizesBytes);
    this.errs32 = w32(this.errsBytes);
    this.values = new BigUint64Array(all, this.valuesBytes.byteOffset, n);
    this.errs = new BigUint64Array(all, this.errsBytes.byteOffset, n);
  }
}

/**
 * Bump allocator: hands out views into shared buffers of one size, never
 * reused (a view never changes under its holder). Point reads share one of
 * 8 KiB buffers for small values, scans one of 64 KiB for rows, iterators one
 * of 4 KiB for their bounds.
 */
class Slab {
  readonly #sym: RocksDbSymbols;
  readonly #bufferBytes: number;
  #buffer = new Uint8Array(0);
  #offset = 0;

  /**
   * @param sym the library (for its memcpy)
   * @param bufferBytes size of each buffer (a longer view gets one of its own length)
   */
  constructor(sym: RocksDbSymbols, bufferBytes: number) {
    this.#sym = sym;
    this.#bufferBytes = bufferBytes;
  }

  /** Where the next view starts in the buffer that {@link reserve} returned. */
  get offset(): number {
    return this.#offset;
  }

  /**
   * The buffer the next view will be cut from, with at least `length` bytes
   * free from {@link offset}: for native code that copies into it before
   * {@link commit} cuts the view.
   */
  reserve(length: number): Uint8Array {
    if (this.#offset + length > this.#buffer.length) this.#grow(length);
    return this.#buffer;
  }

  /** Copies `bytes` into the slab and returns the view (memory that V8 never moves). */
  hold(bytes: Uint8Array): Uint8Array {
    const view = this.#take(bytes.length);
    view.set(bytes);
    return view;
  }

  /** The view of the `length` bytes written at {@link offset}, which moves past them. */
  commit(length: number): Uint8Array {
    return this.#take(length);
  }

  /** Copies `length` bytes at `ptr` into the slab and returns the view. */
  copy(ptr: Ptr, length: number): Uint8Array {
    const view = this.#take(length);
    if (length > 0) this.#sym.memcpy(view, ptr, BigInt(length));
    return view;
  }

  /** The same, with the source as a plain address (MultiGet's value arrays). */
  copyAddress(address: bigint, length: number): Uint8Array {
    const view = this.#take(length);
    if (length > 0) this.#sym.memcpy_from_address(view, address, BigInt(length));
    return view;
  }

  #take(length: number): Uint8Array {
    if (this.#offset + length > this.#buffer.length) this.#grow(length);
    const view = this.#buffer.subarray(this.#offset, this.#offset + length);
    this.#offset += length;
    return view;
  }

  /** A fresh buffer (the old one stays with its views, never reused) of at least `length`. */
  #grow(length: number): void {
    // An ArrayBuffer's memory is off V8's heap and never moves: native code may hold it.
    this.#buffer = new Uint8Array(new ArrayBuffer(Math.max(this.#bufferBytes, length)));
    this.#offset = 0;
  }
}

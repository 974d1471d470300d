/**
 * The storage interface the client server talks to, and {@link LocalBackend},
 * its implementation directly over one engine: writes go through one queue and
 * are evaluated at apply time by {@link applyWrite}, several queued writes
 * sharing one engine batch (group commit). A Raft-backed implementation replaces
 * it by proposing each {@link WriteCommand} to the region that owns its keys.
 *
 * @module
 */

import { error, type Reply } from "../resp/reply.ts";
import {
  decodeValue,
  engineKeyOf,
  type StoredValue,
  USER_KEY_RANGE,
  userKeyOf,
  VALUE_DEADLINE_LAYOUT,
} from "./kv_model.ts";
import type { EngineLike, ScanBatch } from "./memory_engine.ts";
import type { RangeMeasure } from "../../engine/deadline.ts";
import type { NativeReadAccess } from "../../engine/engine.ts";
import { type EngineOp, engineOpsBytes, type WriteCommand } from "./write_ops.ts";
import { applyCommand } from "./transaction.ts";
import { BatchReader } from "./batch_reader.ts";
import { SetBatch } from "./set_batch.ts";

/** SETs and bytes of SETs in one SET batch of a {@link LocalBackend}, at most. */
const LOCAL_SET_BATCH_COUNT_MAX = 256;
const LOCAL_SET_BATCH_BYTES_MAX = 1024 * 1024;

/** A user key with its stored value (expired values included). */
export interface StoredEntry {
  /** The Redis key. */
  readonly key: Uint8Array;
  /** The decoded value. */
  readonly value: StoredValue;
}

/** A page of the keyspace in key order. */
export interface KeyPage {
  /** Entries after the requested key, in key order. */
  readonly entries: readonly StoredEntry[];
  /** True when the keyspace has no keys after the last entry. */
  readonly done: boolean;
}

/** A step of the background expiry: expired user keys found, and where to go on. */
export interface ExpiredKeys {
  /** User keys whose expiry time has passed, in key order. */
  readonly keys: readonly Uint8Array[];
  /** The first user key not examined (inclusive); undefined when the keyspace is done. */
  readonly next: Uint8Array | undefined;
}

/** INFO keyspace's figures. */
export interface Keyspace {
  /** Stored keys (expired ones not yet removed included, as Redis counts them). */
  readonly keys: number;
  /** Of those, keys with an expiry time. */
  readonly expires: number;
  /** The mean time left of the keys with an expiry time still ahead, in whole ms (0 if none). */
  readonly avgTtlMs: number;
}

/** Sums region measures into INFO keyspace's figures. */
export function keyspaceOf(measures: readonly RangeMeasure[]): Keyspace {
  let keys = 0, expires = 0, pending = 0, pendingSum = 0;
  for (const m of measures) {
    keys += m.keys;
    expires += m.deadlines;
    pending += m.pending;
    pendingSum += m.pendingSum;
  }
  return { keys, expires, avgTtlMs: pending === 0 ? 0 : Math.round(pendingSum / pending) };
}

/** The result of SPIRE.SCANRANGE. */
export interface RangeScanResult {
  /** Live user keys and their values, in key order. */
  readonly rows: readonly (readonly [Uint8Array, Uint8Array])[];
  /** Engine rows read (live and expired). */
  readonly rowsReturned: number;
  /** Engine bytes read. */
  readonly bytesRead: number;
  /** Engine scan time, in ms. */
  readonly scanTimeMs: number;
  /** Engine batches read. */
  readonly batches: number;
}

/** What native readers get from {@link KvBackend.directReads}. */
export interface DirectReads {
  /** The engine's handles. */
  readonly engine: NativeReadAccess;
  /** A native value cache bound to that engine, which the reader consults and fills; or null. */
  readonly cache: Deno.PointerObject | null;
}

/** What the client server needs from storage. */
export interface KvBackend {
  /** Proposes a write; resolves with its reply once applied. Never rejects for user errors. */
  execute(cmd: WriteCommand): Promise<Reply>;
  /** Reads stored values (expired ones included; the caller filters with its clock). */
  read(keys: readonly Uint8Array[]): Promise<(StoredValue | undefined)[]>;
  /**
   * What native code that answers reads itself (the client port's native GET path) needs,
   * when a read of any user key may go to the engine right now with the same result as
   * {@link KvBackend.read}: no Raft round is needed and the engine is open. Undefined
   * otherwise, or when the storage has no native engine. For synchronous use: ask again
   * after every await.
   */
  directReads?(): DirectReads | undefined;
  /**
   * The SET lane (node/commands/set_batch.ts): the open batch of plain SETs of the region that
   * holds `key`, with room for one more SET of `bytes` bytes in the batch layout (a batch
   * without that room goes out as it is, and a new one opens). Undefined when the SET must go
   * through {@link KvBackend.execute}: the backend has no lane, storage is restarting, or the
   * SET is larger than a batch holds. For synchronous use: ask again after every await.
   */
  setBatch?(key: Uint8Array, bytes: number): SetBatch | undefined;
  /**
   * The region a write of `key` goes to now, for a backend whose regions apply writes
   * independently: writes to one region apply in the order they were proposed, writes to
   * different regions in either order, so the client port does not start a connection's write
   * to another region until its earlier writes are answered. NaN when the region is not known
   * (so it matches none). A backend without this method applies every write in one order.
   */
  regionOf?(key: Uint8Array): number;
  /** Reads up to `limit` entries with keys strictly after `after` (from the start if undefined). */
  scanKeys(after: Uint8Array | undefined, limit: number): Promise<KeyPage>;
  /**
   * Examines up to `rowsMax` stored keys from `from` (inclusive; the start if undefined) and
   * returns those whose expiry time is before `nowMs` (the engine reads only their keys).
   */
  scanExpired(from: Uint8Array | undefined, rowsMax: number, nowMs: number): Promise<ExpiredKeys>;
  /** Counts stored keys (expired ones not yet removed included, as Redis does). */
  dbsize(): Promise<number>;
  /** Counts stored keys, keys with an expiry, and their mean time left after `nowMs`. */
  keyspace(nowMs: number): Promise<Keyspace>;
  /** Scans user keys in [start, end) (end empty = unbounded) in engine batches. */
  scanRange(
    start: Uint8Array,
    end: Uint8Array,
    options: { readonly batchSize: number; readonly limit: number; readonly nowMs: number },
  ): Promise<RangeScanResult>;
}

/** Thrown by {@link LocalBackend} methods once it is closed. */
export class BackendClosedError extends Error {
  constructor() {
    super("Cannot use backend: it is closed");
    this.name = "BackendClosedError";
  }
}

/** Options of {@link LocalBackend}. */
export interface LocalBackendOptions {
  /** The engine holding the data. */
  readonly engine: EngineLike;
  /** The clock (ms since the epoch) stamped on each write. */
  readonly now: () => number;
  /** Writes waiting to be applied before new ones are refused (default 10000). */
  readonly writeQueueMax?: number;
  /** Writes applied in one engine batch at most (default 256). */
  readonly groupCommitMax?: number;
  /** Engine operations in one batch at most (default 100000, the engine's limit). */
  readonly batchOpsMax?: number;
  /** Key and value bytes in one batch at most (default 64 MiB; the engine allows 128). */
  readonly batchBytesMax?: number;
  /** Keys per engine multi-get (default 10000). */
  readonly readKeysMax?: number;
}

interface Pending {
  readonly cmd: WriteCommand;
  readonly resolve: (r: Reply) => void;
  readonly reject: (e: unknown) => void;
}

/**
 * Gathers a range scan's live rows (expired keys skipped) and the engine's cost
 * figures across one or more engine scans, up to a row limit.
 */
export class RangeScan {
  readonly #rows: [Uint8Array, Uint8Array][] = [];
  readonly #limit: number;
  readonly #nowMs: number;
  #rowsReturned = 0;
  #bytesRead = 0;
  #scanTimeMs = 0;
  #batches = 0;

  /**
   * @param limit rows to return at most
   * @param nowMs the clock reading that decides expiry
   */
  constructor(limit: number, nowMs: number) {
    this.#limit = limit;
    this.#nowMs = nowMs;
  }

  /** Whether the row limit is reached (further scans add nothing). */
  get full(): boolean {
    return this.#rows.length >= this.#limit;
  }

  /** Reads one engine scan of user keys until it ends or the limit is reached. */
  async add(batches: AsyncIterable<ScanBatch>): Promise<void> {
    if (this.full) return;
    for await (const batch of batches) {
      this.#batches++;
      this.#rowsReturned += batch.rowsReturned;
      this.#bytesRead += batch.bytesRead;
      this.#scanTimeMs += batch.scanTimeMs;
      for (const { key, value } of batch.entries) {
        const v = decodeValue(value);
        if (v.expireAtMs !== undefined && this.#nowMs > v.expireAtMs) continue;
        this.#rows.push([userKeyOf(key).slice(), v.value.slice()]);
        if (this.full) return;
      }
    }
  }

  /** The rows and figures gathered so far. */
  result(): RangeScanResult {
    return {
      rows: this.#rows,
      rowsReturned: this.#rowsReturned,
      bytesRead: this.#bytesRead,
      scanTimeMs: this.#scanTimeMs,
      batches: this.#batches,
    };
  }
}

/**
 * A backend over one engine, for a single node without Raft (and for tests).
 * @example
 * ```ts
 * import { LocalBackend } from "./backend.ts";
 * import { MemoryEngine } from "./memory_engine.ts";
 * const b = new LocalBackend({ engine: new MemoryEngine(), now: () => 0 });
 * const key = new TextEncoder().encode("k");
 * await b.execute({ op: "set", key, value: key });
 * console.assert((await b.read([key]))[0]?.value.length === 1);
 * await b.close();
 * ```
 */
export class LocalBackend implements KvBackend {
  readonly #engine: EngineLike;
  /** The SET lane's open batch, and the batches whose SETs are already on their way. */
  #setBatch: SetBatch | undefined;
  readonly #setsScheduled = new WeakSet<SetBatch>();
  readonly #now: () => number;
  readonly #writeQueueMax: number;
  readonly #groupCommitMax: number;
  readonly #batchOpsMax: number;
  readonly #batchBytesMax: number;
  readonly #readKeysMax: number;
  #queue: Pending[] = [];
  #draining: Promise<void> | undefined;
  #closed = false;
  /** Engine batches written so far. */
  batchesWritten = 0;

  /**
   * Creates a backend over an open engine.
   * @param options the engine, clock and queue limits
   * @throws {RangeError} for limits that are not positive integers
   */
  constructor(options: LocalBackendOptions) {
    this.#engine = options.engine;
    this.#now = options.now;
    this.#writeQueueMax = options.writeQueueMax ?? 10_000;
    this.#groupCommitMax = options.groupCommitMax ?? 256;
    this.#batchOpsMax = options.batchOpsMax ?? 100_000;
    this.#batchBytesMax = options.batchBytesMax ?? 64 * 1024 * 1024;
    this.#readKeysMax = options.readKeysMax ?? 10_000;
    const limits = {
      writeQueueMax: this.#writeQueueMax,
      groupCommitMax: this.#groupCommitMax,
      batchOpsMax: this.#batchOpsMax,
      batchBytesMax: this.#batchBytesMax,
      readKeysMax: this.#readKeysMax,
    };
    for (const [name, v] of Object.entries(limits)) {
      if (!Number.isSafeInteger(v) || v <= 0) {
        throw new RangeError(`Invalid LocalBackend option ${name}: ${v} is not a positive integer`);
      }
    }
  }

  /** Queues a write; resolves with its reply once applied, or BUSY when the queue is full. */
  execute(cmd: WriteCommand): Promise<Reply> {
    if (this.#closed) return Promise.reject(new BackendClosedError());
    if (this.#queue.length >= this.#writeQueueMax) {
      return Promise.resolve(
        error(`BUSY write queue is full: ${this.#queue.length} writes waiting (writeQueueMax)`),
      );
    }
    return new Promise<Reply>((resolve, reject) => {
      this.#queue.push({ cmd, resolve, reject });
      this.#draining ??= this.#drain();
    });
  }

  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0) await this.#commitGroup();
    } finally {
      this.#draining = undefined;
    }
  }

  /**
   * Applies queued writes in order into one engine batch, until the group, op
   * or byte limit; a write that would overflow the batch waits for the next one.
   */
  async #commitGroup(): Promise<void> {
    const reader = new BatchReader(this.#engine);
    const ops: EngineOp[] = [];
    let bytes = 0;
    const done: [Pending, Reply][] = [];
    try {
      while (this.#queue.length > 0 && done.length < this.#groupCommitMax) {
        const p = this.#queue[0]!;
        const r = await applyCommand(p.cmd, this.#now(), reader);
        const size = engineOpsBytes(r.ops);
        const fitsAlone = r.ops.length <= this.#batchOpsMax && size <= this.#batchBytesMax;
        if (
          fitsAlone && done.length > 0 &&
          (ops.length + r.ops.length > this.#batchOpsMax || bytes + size > this.#batchBytesMax)
        ) break; // Re-applied first in the next group, against the then-current state.
        this.#queue.shift();
        if (!fitsAlone) {
          done.push([
            p,
            error(
              `ERR write too large: ${r.ops.length} operations and ${size} bytes; at most ${this.#batchOpsMax} operations and ${this.#batchBytesMax} bytes`,
            ),
          ]);
          continue;
        }
        reader.record(r.ops);
        ops.push(...r.ops);
        bytes += size;
        done.push([p, r.reply]);
      }
      if (ops.length > 0) {
        await this.#engine.writeBatch(ops);
        this.batchesWritten++;
      }
    } catch (e) {
      for (const [p] of done) p.reject(e);
      // The write whose evaluation failed is still at the head: fail it too.
      if (this.#queue.length > 0 && !done.some(([p]) => p === this.#queue[0])) {
        this.#queue.shift()!.reject(e);
      }
      return;
    }
    for (const [p, reply] of done) p.resolve(reply);
  }

  /** The engine's native handles: a LocalBackend's writes are in the engine when answered. */
  directReads(): DirectReads | undefined {
    const engine = this.#closed ? undefined : this.#engine.nativeReadAccess?.();
    return engine === undefined ? undefined : { engine, cache: null };
  }

  /**
   * The SET lane: one open batch (there are no regions), whose SETs join the write queue one by
   * one, in order, on the next microtask after SETs were added.
   */
  setBatch(_key: Uint8Array, bytes: number): SetBatch | undefined {
    if (this.#closed) return undefined;
    const open = this.#setBatch;
    if (open !== undefined && open.countLeft > 0 && open.makeRoom(bytes)) return open;
    const batch = new SetBatch({
      startKey: new Uint8Array(),
      endKey: new Uint8Array(),
      headerBytes: 0,
      countMax: LOCAL_SET_BATCH_COUNT_MAX,
      bytesMax: LOCAL_SET_BATCH_BYTES_MAX,
      onAdded: (b) => this.#sendSets(b),
    });
    if (!batch.makeRoom(bytes)) return undefined;
    this.#setBatch = batch;
    return batch;
  }

  #sendSets(batch: SetBatch): void {
    if (this.#setsScheduled.has(batch)) return;
    this.#setsScheduled.add(batch);
    queueMicrotask(() => {
      if (this.#setBatch === batch) this.#setBatch = undefined;
      batch.seal();
      const replies = batch.sets().map(({ key, value }) =>
        this.execute({ op: "set", key, value }).catch((e: Error) => error(`ERR ${e.message}`))
      );
      void Promise.all(replies).then((r) => batch.settle(r));
    });
  }

  /** Reads stored values (expired ones included), by chunks of readKeysMax. */
  async read(keys: readonly Uint8Array[]): Promise<(StoredValue | undefined)[]> {
    if (this.#closed) throw new BackendClosedError();
    if (keys.length === 1) {
      // A point read takes the engine's fast path (memory first, no multi-get setup).
      const b = await this.#engine.get(engineKeyOf(keys[0]!));
      return [b === undefined ? undefined : decodeValue(b)];
    }
    const out: (StoredValue | undefined)[] = [];
    for (let i = 0; i < keys.length; i += this.#readKeysMax) {
      const chunk = keys.slice(i, i + this.#readKeysMax).map((k) => engineKeyOf(k));
      const raw = await this.#engine.getBatch(chunk);
      for (const b of raw) out.push(b === undefined ? undefined : decodeValue(b));
    }
    return out;
  }

  /** Reads up to `limit` entries with keys after `after`, in key order. */
  async scanKeys(after: Uint8Array | undefined, limit: number): Promise<KeyPage> {
    if (this.#closed) throw new BackendClosedError();
    const start = after === undefined ? USER_KEY_RANGE.start : successor(engineKeyOf(after));
    const entries: StoredEntry[] = [];
    for await (
      const batch of this.#engine.scanRange(start, USER_KEY_RANGE.end, {
        batchSize: Math.min(limit + 1, 1000),
        limit: limit + 1,
      })
    ) {
      for (const { key, value } of batch.entries) {
        entries.push({ key: userKeyOf(key).slice(), value: decodeValue(value) });
      }
    }
    const done = entries.length <= limit;
    return { entries: done ? entries : entries.slice(0, limit), done };
  }

  /** Up to `rowsMax` keys from `from` examined for expiry; the expired ones returned. */
  async scanExpired(
    from: Uint8Array | undefined,
    rowsMax: number,
    nowMs: number,
  ): Promise<ExpiredKeys> {
    if (this.#closed) throw new BackendClosedError();
    const start = from === undefined ? USER_KEY_RANGE.start : engineKeyOf(from);
    const page = await this.#engine.scanExpired(start, USER_KEY_RANGE.end, {
      layout: VALUE_DEADLINE_LAYOUT,
      now: nowMs,
      rowsMax,
    });
    return {
      keys: page.keys.map(userKeyOf),
      next: page.next === undefined ? undefined : userKeyOf(page.next),
    };
  }

  /** Counts keys, keys with an expiry and their mean time left, in one walk (O(keys)). */
  async keyspace(nowMs: number): Promise<Keyspace> {
    if (this.#closed) throw new BackendClosedError();
    const { start, end } = USER_KEY_RANGE;
    return keyspaceOf([
      await this.#engine.measureRange(start, end, {
        deadlines: { layout: VALUE_DEADLINE_LAYOUT, now: nowMs },
      }),
    ]);
  }

  /** Counts stored keys with a keys-only scan (O(keys)). */
  async dbsize(): Promise<number> {
    if (this.#closed) throw new BackendClosedError();
    let n = 0;
    for await (
      const batch of this.#engine.scanRange(USER_KEY_RANGE.start, USER_KEY_RANGE.end, {
        keysOnly: true,
        batchSize: 4096,
      })
    ) n += batch.rowsReturned;
    return n;
  }

  /** Scans live user keys in [start, end) with the engine's cost figures. */
  async scanRange(
    start: Uint8Array,
    end: Uint8Array,
    options: { readonly batchSize: number; readonly limit: number; readonly nowMs: number },
  ): Promise<RangeScanResult> {
    if (this.#closed) throw new BackendClosedError();
    const engineEnd = end.length === 0 ? USER_KEY_RANGE.end : engineKeyOf(end);
    const scan = new RangeScan(options.limit, options.nowMs);
    await scan.add(
      this.#engine.scanRange(engineKeyOf(start), engineEnd, { batchSize: options.batchSize }),
    );
    return scan.result();
  }

  /** Waits for queued writes, then refuses new calls. Safe to call twice. */
  async close(): Promise<void> {
    this.#closed = true;
    while (this.#draining !== undefined) await this.#draining;
  }
}

/** The smallest key greater than `key`. */
function successor(key: Uint8Array): Uint8Array {
  const out = new Uint8Array(key.length + 1);
  out.set(key);
  return out;
}

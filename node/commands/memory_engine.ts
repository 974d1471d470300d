/**
 * An in-memory, sorted key-value store with the subset of the engine API that
 * the command layer uses. Tests run on it; it is also the reference that the
 * RocksDB engine's behaviour is compared with.
 *
 * @module
 */

import { compareBytes } from "../../engine/codec/mod.ts";
import { deadlinePassed, measureRow, type RangeMeasure } from "../../engine/deadline.ts";
import type {
  ExpiredPage,
  MeasureOptions,
  NativeReadAccess,
  ScanExpiredOptions,
} from "../../engine/engine.ts";
import type { EngineOp } from "./write_ops.ts";
import { decodeWriteBatch, type WriteBatch } from "../../engine/write_batch.ts";

/** One key-value pair from a range scan. */
export interface KeyValue {
  /** The engine key. */
  readonly key: Uint8Array;
  /** The stored bytes (empty when scanning keys only). */
  readonly value: Uint8Array;
}

/** One batch of a range scan, with its cost (the shape of the engine's batches). */
export interface ScanBatch {
  /** The pairs, in key order (empty when scanning keys only). */
  readonly entries: readonly KeyValue[];
  /** The keys, in key order (always filled). */
  readonly keys: readonly Uint8Array[];
  /** Pairs in this batch. */
  readonly rowsReturned: number;
  /** Key and value bytes read for this batch. */
  readonly bytesRead: number;
  /** Time spent producing this batch, in ms. */
  readonly scanTimeMs: number;
}

/** Options of a range scan. */
export interface ScanOptions {
  /** Pairs per batch (default 1000). */
  readonly batchSize?: number;
  /** Stop after this many pairs in total. */
  readonly limit?: number;
  /** Return keys only: `entries` is empty, `keys` filled. */
  readonly keysOnly?: boolean;
}

/** The engine operations the command layer needs. */
export interface EngineLike {
  /** Reads one key. */
  get(key: Uint8Array): Promise<Uint8Array | undefined>;
  /** Reads several keys at once. */
  getBatch(keys: readonly Uint8Array[]): Promise<(Uint8Array | undefined)[]>;
  /** Handles for native code that reads the engine itself (a real Engine only). */
  nativeReadAccess?(): NativeReadAccess | undefined;
  /** Applies operations atomically. */
  writeBatch(ops: readonly EngineOp[]): Promise<void>;
  /** Applies a write batch atomically (the caller may reuse it once this returned). */
  write(batch: WriteBatch): Promise<void>;
  /**
   * Applies a write batch at once, synchronously, if the engine can (see `Engine.writeNow`);
   * false when nothing was written.
   */
  writeNow?(batch: WriteBatch): boolean;
  /** Scans [start, end) in key order, in batches; an empty end means unbounded. */
  scanRange(start: Uint8Array, end: Uint8Array, options?: ScanOptions): AsyncIterable<ScanBatch>;
  /** Counts the keys, bytes and (given `deadlines`) deadlines of [start, end) (see Engine). */
  measureRange(start: Uint8Array, end: Uint8Array, options?: MeasureOptions): Promise<RangeMeasure>;
  /** Examines up to `rowsMax` rows of [start, end) for deadlines below `now` (see Engine). */
  scanExpired(
    start: Uint8Array,
    end: Uint8Array,
    options: ScanExpiredOptions,
  ): Promise<ExpiredPage>;
}

/**
 * The in-memory engine.
 * @example
 * ```ts
 * import { MemoryEngine } from "./memory_engine.ts";
 * const e = new MemoryEngine();
 * await e.writeBatch([{ op: "put", key: new Uint8Array([1]), value: new Uint8Array([2]) }]);
 * console.assert((await e.get(new Uint8Array([1])))?.[0] === 2);
 * ```
 */
export class MemoryEngine implements EngineLike {
  #keys: Uint8Array[] = [];
  #values: Uint8Array[] = [];
  /** Number of writeBatch calls so far (tests use it to observe group commit). */
  writeBatches = 0;

  /** The number of keys held. */
  get size(): number {
    return this.#keys.length;
  }

  #find(key: Uint8Array): number {
    let lo = 0;
    let hi = this.#keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareBytes(this.#keys[mid]!, key) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Reads one key. */
  get(key: Uint8Array): Promise<Uint8Array | undefined> {
    const i = this.#find(key);
    const k = this.#keys[i];
    return Promise.resolve(
      k !== undefined && compareBytes(k, key) === 0 ? this.#values[i] : undefined,
    );
  }

  /** Reads several keys. */
  async getBatch(keys: readonly Uint8Array[]): Promise<(Uint8Array | undefined)[]> {
    const out: (Uint8Array | undefined)[] = [];
    for (const k of keys) out.push(await this.get(k));
    return out;
  }

  /** Applies a write batch atomically (its keys and values are copied). */
  write(batch: WriteBatch): Promise<void> {
    return this.writeBatch(decodeWriteBatch(batch.rep()));
  }

  /** Applies operations in order, atomically (nothing can interleave); keys and values are copied. */
  writeBatch(ops: readonly EngineOp[]): Promise<void> {
    this.writeBatches++;
    for (const op of ops) {
      if (op.op === "put") {
        const i = this.#find(op.key);
        const k = this.#keys[i];
        if (k !== undefined && compareBytes(k, op.key) === 0) this.#values[i] = op.value.slice();
        else {
          this.#keys.splice(i, 0, op.key.slice());
          this.#values.splice(i, 0, op.value.slice());
        }
      } else if (op.op === "delete") {
        const i = this.#find(op.key);
        const k = this.#keys[i];
        if (k !== undefined && compareBytes(k, op.key) === 0) {
          this.#keys.splice(i, 1);
          this.#values.splice(i, 1);
        }
      } else {
        const i = this.#find(op.start);
        const j = this.#find(op.end);
        if (j > i) {
          this.#keys.splice(i, j - i);
          this.#values.splice(i, j - i);
        }
      }
    }
    return Promise.resolve();
  }

  /** Counts the keys, bytes and deadlines of [start, end), as Engine does. */
  measureRange(
    start: Uint8Array,
    end: Uint8Array,
    options: MeasureOptions = {},
  ): Promise<RangeMeasure> {
    const m: RangeMeasure = { keys: 0, bytes: 0, deadlines: 0, pending: 0, pendingSum: 0 };
    for (let i = this.#find(start); i < this.#keys.length; i++) {
      const key = this.#keys[i]!;
      if (end.length > 0 && compareBytes(key, end) >= 0) break;
      const value = this.#values[i]!;
      measureRow(m, value, key.length + value.length, value.length, options.deadlines);
    }
    return Promise.resolve(m);
  }

  /** Examines up to `rowsMax` rows of [start, end) for deadlines below `now`, as Engine does. */
  scanExpired(
    start: Uint8Array,
    end: Uint8Array,
    options: ScanExpiredOptions,
  ): Promise<ExpiredPage> {
    const keys: Uint8Array[] = [];
    let i = this.#find(start);
    let rowsExamined = 0;
    const inRange = (at: number) =>
      at < this.#keys.length && (end.length === 0 || compareBytes(this.#keys[at]!, end) < 0);
    for (; rowsExamined < options.rowsMax && inRange(i); i++, rowsExamined++) {
      if (deadlinePassed(this.#values[i]!, options.layout, options.now)) {
        keys.push(this.#keys[i]!.slice());
      }
    }
    const next = inRange(i) ? this.#keys[i]!.slice() : undefined;
    return Promise.resolve({ keys, rowsExamined, next });
  }

  /** Scans [start, end) in key order, in batches; an empty end means unbounded. */
  async *scanRange(
    start: Uint8Array,
    end: Uint8Array,
    options: ScanOptions = {},
  ): AsyncGenerator<ScanBatch> {
    const batchSize = options.batchSize ?? 1000;
    let left = options.limit ?? Infinity;
    let cursor = start;
    let inclusive = true;
    while (left > 0) {
      let i = this.#find(cursor);
      if (!inclusive && i < this.#keys.length && compareBytes(this.#keys[i]!, cursor) === 0) i++;
      const entries: KeyValue[] = [];
      const keys: Uint8Array[] = [];
      let bytesRead = 0;
      const keysOnly = options.keysOnly === true;
      while (keys.length < Math.min(batchSize, left) && i < this.#keys.length) {
        const key = this.#keys[i]!;
        if (end.length > 0 && compareBytes(key, end) >= 0) break;
        keys.push(key);
        bytesRead += key.length;
        if (!keysOnly) {
          entries.push({ key, value: this.#values[i]! });
          bytesRead += this.#values[i]!.length;
        }
        i++;
      }
      if (keys.length === 0) return;
      left -= keys.length;
      cursor = keys[keys.length - 1]!;
      inclusive = false;
      yield { entries, keys, rowsReturned: keys.length, bytesRead, scanTimeMs: 0 };
      await Promise.resolve();
    }
  }
}

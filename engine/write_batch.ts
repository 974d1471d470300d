/**
 * A write batch built in JavaScript memory, in RocksDB's own WriteBatch
 * representation, and handed to RocksDB whole (`rocksdb_writebatch_create_from`):
 * one FFI call for the batch instead of one per operation, and no object per
 * operation on the way.
 *
 * The representation (RocksDB's `WriteBatch::rep_`, the bytes its WAL stores):
 *
 * ```
 * rep    := sequence: fixed64 (0 here; RocksDB sets it) | count: fixed32 | record*
 * record := 0x01 varstring varstring    put key value
 *         | 0x00 varstring              delete key
 *         | 0x0F varstring varstring    delete range [start, end)
 * varstring := length: varint32 | bytes
 * ```
 *
 * fixed-width numbers are little-endian. The tests compare every encoding with
 * the bytes RocksDB's own `rocksdb_writebatch_put/delete/delete_range` produce.
 *
 * Limits are checked as operations are added, with the engine's messages: a key
 * over {@link KEY_SIZE_MAX_BYTES}, a value over {@link VALUE_SIZE_MAX_BYTES},
 * more than {@link WRITE_BATCH_OPS_MAX} operations or {@link WRITE_BATCH_BYTES_MAX}
 * key and value bytes, or a range whose end sorts before its start is refused
 * with a RangeError, and the batch stays as it was.
 *
 * @module
 */

import { compareBytes, grownBytes } from "./codec/tuple.ts";
import {
  checkKey,
  checkKeySize,
  checkValue,
  checkValueSize,
  WRITE_BATCH_BYTES_MAX,
  WRITE_BATCH_OPS_MAX,
} from "./limits.ts";

/** One operation of a batch, as `Engine.writeBatch` takes them. */
export type WriteOp =
  | { op: "put"; key: Uint8Array; value: Uint8Array }
  | { op: "delete"; key: Uint8Array }
  | { op: "deleteRange"; start: Uint8Array; end: Uint8Array };

/** RocksDB's record tags (ValueType in db/dbformat.h). */
const TAG_DELETE = 0x00;
const TAG_PUT = 0x01;
const TAG_DELETE_RANGE = 0x0f;

/** The sequence number (8 bytes) and the count (4 bytes). */
export const WRITE_BATCH_HEADER_BYTES = 12;

const FIRST_CAPACITY_BYTES = 4096;
const EMPTY = new Uint8Array(0);

/**
 * A batch of puts, deletes and range deletes in RocksDB's representation; see the module doc.
 * Reusable: {@link WriteBatch.clear} keeps its buffer.
 * @example
 * ```ts
 * import { WriteBatch } from "./write_batch.ts";
 * const b = new WriteBatch();
 * b.put(new Uint8Array([1]), new Uint8Array([2]));
 * b.delete(new Uint8Array([3]));
 * console.assert(b.count === 2 && b.bytes === 3);
 * ```
 */
export class WriteBatch {
  #buf: Uint8Array<ArrayBuffer> = new Uint8Array(FIRST_CAPACITY_BYTES);
  #used = WRITE_BATCH_HEADER_BYTES;
  #count = 0;
  #bytes = 0;
  #rangeDeletes = 0;

  /** Operations in the batch. */
  get count(): number {
    return this.#count;
  }

  /** Key and value bytes of its operations (what the engine's byte limit counts). */
  get bytes(): number {
    return this.#bytes;
  }

  /** Range deletes in the batch. */
  get rangeDeletes(): number {
    return this.#rangeDeletes;
  }

  /** Removes every operation; the buffer is kept for the next use. */
  clear(): void {
    this.#used = WRITE_BATCH_HEADER_BYTES;
    this.#count = 0;
    this.#bytes = 0;
    this.#rangeDeletes = 0;
  }

  /**
   * Adds a put.
   * @throws {TypeError|RangeError} for a bad key or value, or a batch at its limits
   */
  put(key: Uint8Array, value: Uint8Array): void {
    checkKey(key);
    checkValue(value);
    this.#reserve(key.length + value.length, 1 + 10 + key.length + value.length);
    const buf = this.#buf;
    buf[this.#used++] = TAG_PUT;
    this.#string(key, 0, key.length);
    this.#string(value, 0, value.length);
  }

  /**
   * Adds a put whose key is `keyHead` followed by `keySrc[keyAt, keyAt + keyLen)` and whose
   * value is `valueHead` followed by `valueSrc[valueAt, valueAt + valueLen)`, copied straight
   * into the batch (no views made: what an apply loop over a packed buffer wants).
   * @throws {RangeError} for a slice outside its source, a key or value over the limits, or a
   *   batch at its limits
   */
  putParts(
    keyHead: Uint8Array,
    keySrc: Uint8Array,
    keyAt: number,
    keyLen: number,
    valueHead: Uint8Array,
    valueSrc: Uint8Array,
    valueAt: number,
    valueLen: number,
  ): void {
    checkSlice("key", keySrc, keyAt, keyLen);
    checkSlice("value", valueSrc, valueAt, valueLen);
    const k = keyHead.length + keyLen;
    const v = valueHead.length + valueLen;
    checkKeySize(k);
    checkValueSize(v);
    this.#reserve(k + v, 1 + 10 + k + v);
    const buf = this.#buf;
    buf[this.#used++] = TAG_PUT;
    this.#varint(k);
    this.#raw(keyHead, 0, keyHead.length);
    this.#raw(keySrc, keyAt, keyLen);
    this.#varint(v);
    this.#raw(valueHead, 0, valueHead.length);
    this.#raw(valueSrc, valueAt, valueLen);
  }

  /**
   * Adds a delete.
   * @throws {TypeError|RangeError} for a bad key, or a batch at its limits
   */
  delete(key: Uint8Array): void {
    checkKey(key);
    this.#reserve(key.length, 1 + 5 + key.length);
    this.#buf[this.#used++] = TAG_DELETE;
    this.#string(key, 0, key.length);
  }

  /**
   * Adds a delete of every key in [start, end).
   * @throws {TypeError|RangeError} for bad keys, an end sorting before the start, or a batch
   *   at its limits
   */
  deleteRange(start: Uint8Array, end: Uint8Array): void {
    checkKey(start, "start");
    checkKey(end, "end");
    // RocksDB refuses a reversed range only after the batch is in the WAL: the ops
    // before it stay applied and every later write fails until reopen. Refuse it here.
    if (compareBytes(end, start) < 0) {
      throw new RangeError(
        "Invalid deleteRange: end sorts before start; allowed: end >= start " +
          "(an empty end is not unbounded here)",
      );
    }
    this.#reserve(start.length + end.length, 1 + 10 + start.length + end.length);
    this.#rangeDeletes++;
    this.#buf[this.#used++] = TAG_DELETE_RANGE;
    this.#string(start, 0, start.length);
    this.#string(end, 0, end.length);
  }

  /**
   * Adds one operation in `Engine.writeBatch`'s form.
   * @throws {TypeError|RangeError} for a bad operation, or a batch at its limits
   */
  add(op: WriteOp): void {
    if (op === null || typeof op !== "object") {
      throw new TypeError("Invalid op: an object is required");
    }
    if (op.op === "put") this.put(op.key, op.value);
    else if (op.op === "delete") this.delete(op.key);
    else if (op.op === "deleteRange") this.deleteRange(op.start, op.end);
    else {
      throw new TypeError(
        `Invalid op: "${
          String((op as { op: unknown }).op)
        }"; one of put, delete, deleteRange is allowed`,
      );
    }
  }

  /**
   * The representation, with the count filled in: a view of the batch's buffer, valid until
   * the batch changes.
   */
  rep(): Uint8Array<ArrayBuffer> {
    const buf = this.#buf;
    buf.fill(0, 0, 8);
    const n = this.#count;
    buf[8] = n & 0xff;
    buf[9] = (n >>> 8) & 0xff;
    buf[10] = (n >>> 16) & 0xff;
    buf[11] = n >>> 24;
    return buf.subarray(0, this.#used);
  }

  /** A copy of the representation that later changes to the batch do not touch. */
  copy(): Uint8Array {
    return this.rep().slice();
  }

  /** Checks the limits for one more operation and makes room for `room` bytes. */
  #reserve(bytes: number, room: number): void {
    if (this.#count + 1 > WRITE_BATCH_OPS_MAX) throw opsError(this.#count + 1);
    if (this.#bytes + bytes > WRITE_BATCH_BYTES_MAX) throw bytesError(this.#bytes + bytes);
    this.#grow(room);
    this.#count++;
    this.#bytes += bytes;
  }

  #grow(room: number): void {
    this.#buf = grownBytes(this.#buf, this.#used, this.#used + room);
  }

  #string(src: Uint8Array, at: number, len: number): void {
    this.#varint(len);
    this.#raw(src, at, len);
  }

  #varint(n: number): void {
    const buf = this.#buf;
    let at = this.#used;
    while (n >= 0x80) {
      buf[at++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    buf[at++] = n;
    this.#used = at;
  }

  #raw(src: Uint8Array, at: number, len: number): void {
    const buf = this.#buf;
    let to = this.#used;
    if (len <= 32) {
      // Short copies: a loop is cheaper than a view and a set.
      for (let i = 0; i < len; i++) buf[to++] = src[at + i]!;
    } else {
      buf.set(at === 0 && len === src.length ? src : src.subarray(at, at + len), to);
      to += len;
    }
    this.#used = to;
  }
}

function checkSlice(what: string, src: Uint8Array, at: number, len: number): void {
  if (!(src instanceof Uint8Array)) {
    throw new TypeError(`Invalid ${what} source: a Uint8Array is required`);
  }
  if (
    !Number.isInteger(at) || !Number.isInteger(len) || at < 0 || len < 0 || at + len > src.length
  ) {
    throw new RangeError(
      `Invalid ${what} slice: [${at}, ${at + len}) is not within its source of ${src.length} bytes`,
    );
  }
}

function opsError(n: number): RangeError {
  return new RangeError(
    `Invalid ops: ${n} operations is above the maximum of ${WRITE_BATCH_OPS_MAX}`,
  );
}

function bytesError(n: number): RangeError {
  return new RangeError(`Invalid ops: ${n} bytes is above the maximum of ${WRITE_BATCH_BYTES_MAX}`);
}

/** The count field of a representation. */
function repCount(rep: Uint8Array): number {
  if (rep.length < WRITE_BATCH_HEADER_BYTES) {
    throw new RangeError(`Invalid write batch: ${rep.length} bytes is shorter than its header`);
  }
  return (rep[8]! | (rep[9]! << 8) | (rep[10]! << 16) | (rep[11]! << 24)) >>> 0;
}

/**
 * Reads the operations of a representation back, in order (the memory engine
 * applies batches so, and the TypeScript value cache learns from them). Keys
 * and values are views into `rep`.
 * @param rep a representation made by {@link WriteBatch}
 * @returns the operations
 * @throws {RangeError} for bytes that are not such a representation
 * @example
 * ```ts
 * import { decodeWriteBatch, WriteBatch } from "./write_batch.ts";
 * const b = new WriteBatch();
 * b.delete(new Uint8Array([7]));
 * const [op] = decodeWriteBatch(b.rep());
 * console.assert(op?.op === "delete");
 * ```
 */
export function decodeWriteBatch(rep: Uint8Array): WriteOp[] {
  const count = repCount(rep);
  const ops: WriteOp[] = [];
  let at = WRITE_BATCH_HEADER_BYTES;
  const bad = (why: string) => new RangeError(`Invalid write batch: ${why} at byte ${at}`);
  const string = (): Uint8Array => {
    let n = 0;
    for (let shift = 0;; shift += 7) {
      if (at >= rep.length || shift > 28) throw bad("a cut or overlong length");
      const b = rep[at++]!;
      n += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) break;
    }
    if (at + n > rep.length) throw bad(`a length of ${n} past the end`);
    const s = n === 0 ? EMPTY : rep.subarray(at, at + n);
    at += n;
    return s;
  };
  while (at < rep.length) {
    const tag = rep[at++];
    if (tag === TAG_PUT) ops.push({ op: "put", key: string(), value: string() });
    else if (tag === TAG_DELETE) ops.push({ op: "delete", key: string() });
    else if (tag === TAG_DELETE_RANGE) {
      ops.push({ op: "deleteRange", start: string(), end: string() });
    } else throw bad(`tag ${tag}`);
  }
  if (ops.length !== count) throw bad(`${ops.length} records where the header counts ${count}`);
  return ops;
}

/**
 * One representation holding the records of several, in order (group commit writes the
 * batches queued together so).
 * @param reps representations made by {@link WriteBatch}
 * @returns the merged representation (`reps[0]` itself when there is one)
 */
export function concatWriteBatches(reps: readonly Uint8Array[]): Uint8Array {
  if (reps.length === 1) return reps[0]!;
  let length = WRITE_BATCH_HEADER_BYTES;
  let count = 0;
  for (const rep of reps) {
    length += rep.length - WRITE_BATCH_HEADER_BYTES;
    count += repCount(rep);
  }
  const out = new Uint8Array(length);
  let at = WRITE_BATCH_HEADER_BYTES;
  for (const rep of reps) {
    out.set(rep.subarray(WRITE_BATCH_HEADER_BYTES), at);
    at += rep.length - WRITE_BATCH_HEADER_BYTES;
  }
  new DataView(out.buffer).setUint32(8, count, true);
  return out;
}

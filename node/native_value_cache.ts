/**
 * The node's value cache in native memory (node/_native/value_cache.c), with
 * the rules of {@link ValueCache} (node/value_cache.ts documents them): the
 * same capacity accounting (slabs of 1/16 of the capacity, at most 1 MiB, plus
 * 96 bytes per entry), FIFO by slab, the generation check on fills, emptied
 * for a new engine instance.
 *
 * Why native: the native GET path (node/native_gets.ts) reads it and fills it
 * in the same FFI call that answers a pipeline's GETs, so that a GET of a
 * recently written key skips RocksDB's memtable (a skiplist walk of several
 * cache misses). A write costs one FFI call per applied batch to forget and
 * one to cache its keys, instead of a JavaScript string and map update per key.
 *
 * One difference: a slab holds each entry's key as well as its value, so a
 * slab holds a little less, and the largest entry cached is a key and value of
 * `slabBytes` together.
 *
 * @module
 */

import type { EngineOp } from "./commands/write_ops.ts";
import type { NativeGets, NativeSymbols } from "./native_gets.ts";
import {
  CACHED_KEY_BYTES_MAX,
  type CacheWrite,
  checkCacheCapacity,
  type ValueCacheLike,
  type ValueCacheStats,
} from "./value_cache.ts";

const FORGET = 0;
const PUT = 1;
const OP_HEADER_BYTES = 9;

/** See the module documentation. */
export class NativeValueCache implements ValueCacheLike {
  readonly #sym: NativeSymbols;
  readonly #capacity: number;
  #handle: Deno.PointerObject | null;
  readonly #slabBytes: number;
  #generation = 0;
  #owner: object | undefined;
  /** Values are copied out through it (a value is at most a slab). */
  readonly #scratch: Uint8Array;
  readonly #length = new Uint32Array(1);
  readonly #stats = new Float64Array(5);
  #ops = new Uint8Array(64 * 1024);

  /**
   * Creates an empty cache.
   * @param native the loaded native library
   * @param capacityBytes bytes it may hold, overhead included; under 16 turns it off
   * @throws {RangeError} for a capacity that is not a non-negative integer
   * @throws {Error} when the native memory cannot be had
   */
  constructor(native: NativeGets, capacityBytes: number) {
    this.#sym = native.symbols;
    this.#capacity = checkCacheCapacity(capacityBytes);
    this.#handle = capacityBytes >= 16 ? this.#sym.spire_cache_create(capacityBytes) : null;
    if (capacityBytes >= 16 && this.#handle === null) {
      throw new Error(`Cannot create the value cache: no native memory for ${capacityBytes} bytes`);
    }
    this.#slabBytes = this.#handle === null ? 0 : this.#sym.spire_cache_slab_bytes(this.#handle);
    this.#scratch = new Uint8Array(this.#slabBytes);
  }

  /** Whether the cache can hold anything at all. */
  get enabled(): boolean {
    return this.#handle !== null && this.#slabBytes > 0;
  }

  /** The size of one slab: the largest key and value cached together. */
  get slabBytes(): number {
    return this.#slabBytes;
  }

  /** The cache's native handle (null when off or closed), for the native GET path. */
  get nativeHandle(): Deno.PointerObject | null {
    return this.#handle;
  }

  /** Counters and size. */
  get stats(): ValueCacheStats {
    const s = this.#stats;
    if (this.#handle === null) s.fill(0);
    else this.#sym.spire_cache_stats(this.#handle, s);
    return {
      capacityBytes: this.#capacity,
      bytes: s[0]!,
      entries: s[1]!,
      hits: s[2]!,
      misses: s[3]!,
      evictions: s[4]!,
    };
  }

  /** The generation to hand to {@link NativeValueCache.fill} for a read starting now. */
  get generation(): number {
    return this.#generation;
  }

  /**
   * Binds the cache to the engine instance in use; another one empties it first.
   * @param engine the engine about to be read or written
   */
  use(engine: object): void {
    if (this.#owner === engine) return;
    this.clear();
    this.#owner = engine;
  }

  /**
   * The cached stored bytes of an engine key (a copy), or undefined on a miss.
   * @param key the engine key
   */
  get(key: Uint8Array): Uint8Array | undefined {
    if (this.#handle === null || key.length > CACHED_KEY_BYTES_MAX) return undefined;
    const scratch = this.#scratch;
    const found = this.#sym.spire_cache_get(
      this.#handle,
      key,
      key.length,
      scratch,
      scratch.length,
      this.#length,
    );
    return found === 1 ? scratch.slice(0, this.#length[0]!) : undefined;
  }

  /**
   * Caches what a read found, unless a write started or ended since the read began.
   * @param generation {@link NativeValueCache.generation} when the read began
   * @param key the engine key
   * @param stored its stored bytes (copied), or undefined when missing (nothing is cached)
   */
  fill(generation: number, key: Uint8Array, stored: Uint8Array | undefined): void {
    if (generation !== this.#generation || stored === undefined || this.#handle === null) return;
    this.#sym.spire_cache_put(this.#handle, key, key.length, stored, stored.length);
  }

  /**
   * Before an engine write: forgets the keys it changes (everything, for a range delete).
   * @param ops the write's engine operations
   * @returns the write, for {@link NativeValueCache.endWrite}
   */
  beginWrite(ops: readonly EngineOp[]): CacheWrite {
    this.#generation++;
    this.#apply(ops, false);
    return { ops };
  }

  /**
   * After the engine write succeeded: caches the values it put, and forgets
   * again what it deleted (a read during the write may have filled it).
   * @param write what {@link NativeValueCache.beginWrite} returned (values are copied)
   */
  endWrite(write: CacheWrite): void {
    this.#generation++;
    this.#apply(write.ops, true);
  }

  /** Forgets everything. */
  clear(): void {
    this.#generation++;
    if (this.#handle !== null) this.#sym.spire_cache_clear(this.#handle);
  }

  /** Frees the native memory; the cache is off afterwards. Safe to call twice. */
  close(): void {
    if (this.#handle !== null) this.#sym.spire_cache_destroy(this.#handle);
    this.#handle = null;
  }

  /**
   * Hands the ops to the cache, in order, in one call per run between range deletes: puts
   * (when `puts`) and forgets.
   */
  #apply(ops: readonly EngineOp[], puts: boolean): void {
    const handle = this.#handle;
    if (handle === null) return;
    let from = 0;
    for (let i = 0; i <= ops.length; i++) {
      if (i < ops.length && ops[i]!.op !== "deleteRange") continue;
      if (i > from) this.#applyRun(handle, ops, from, i, puts);
      if (i < ops.length) this.#sym.spire_cache_clear(handle);
      from = i + 1;
    }
  }

  #applyRun(
    handle: Deno.PointerObject,
    ops: readonly EngineOp[],
    from: number,
    to: number,
    puts: boolean,
  ): void {
    let bytes = 0;
    for (let i = from; i < to; i++) {
      const op = ops[i] as Exclude<EngineOp, { op: "deleteRange" }>;
      if (op.key.length > CACHED_KEY_BYTES_MAX) continue;
      bytes += OP_HEADER_BYTES + op.key.length + (puts && op.op === "put" ? op.value.length : 0);
    }
    if (bytes === 0) return;
    if (bytes > this.#ops.length) this.#ops = new Uint8Array(Math.max(bytes, this.#ops.length * 2));
    const buf = this.#ops;
    let at = 0;
    for (let i = from; i < to; i++) {
      const op = ops[i] as Exclude<EngineOp, { op: "deleteRange" }>;
      if (op.key.length > CACHED_KEY_BYTES_MAX) continue;
      const value = puts && op.op === "put" ? op.value : undefined;
      buf[at] = value === undefined ? FORGET : PUT;
      writeU32(buf, at + 1, op.key.length);
      writeU32(buf, at + 5, value?.length ?? 0);
      buf.set(op.key, at + OP_HEADER_BYTES);
      if (value !== undefined) buf.set(value, at + OP_HEADER_BYTES + op.key.length);
      at += OP_HEADER_BYTES + op.key.length + (value?.length ?? 0);
    }
    this.#sym.spire_cache_apply(handle, buf, at);
  }
}

function writeU32(buf: Uint8Array, at: number, n: number): void {
  buf[at] = n & 0xff;
  buf[at + 1] = (n >>> 8) & 0xff;
  buf[at + 2] = (n >>> 16) & 0xff;
  buf[at + 3] = n >>> 24;
}

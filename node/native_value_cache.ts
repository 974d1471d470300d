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

import type { WriteBatch } from "../engine/mod.ts";
import type { NativeGets, NativeSymbols } from "./native_gets.ts";
import {
  CACHED_KEY_BYTES_MAX,
  type CacheWrite,
  type CacheWriteScope,
  checkCacheCapacity,
  type ValueCacheLike,
  type ValueCacheStats,
} from "./value_cache.ts";

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
   * @param batch the engine write (unchanged until endWrite)
   * @param scope which of its keys the cache learns from
   * @returns the write, for {@link NativeValueCache.endWrite}
   */
  beginWrite(batch: WriteBatch, scope: CacheWriteScope = {}): CacheWrite {
    this.#generation++;
    const write = { rep: batch.rep(), scope };
    this.#apply(write, false);
    return write;
  }

  /**
   * After the engine write succeeded: caches the values it put, and forgets
   * again what it deleted (a read during the write may have filled it).
   * @param write what {@link NativeValueCache.beginWrite} returned (values are copied)
   */
  endWrite(write: CacheWrite): void {
    this.#generation++;
    this.#apply(write, true);
  }

  /**
   * An engine write made synchronously (nothing read the cache since it began): caches the
   * values it put and forgets what it deleted, in one native call.
   * @param batch the engine write
   * @param scope which of its keys the cache learns from
   */
  written(batch: WriteBatch, scope: CacheWriteScope = {}): void {
    this.#generation++;
    this.#apply({ rep: batch.rep(), scope }, true);
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

  /** Hands the write to the cache: puts cached (when `puts`) or forgotten, deletes forgotten. */
  #apply(write: CacheWrite, puts: boolean): void {
    if (this.#handle === null) return;
    const { rep, scope } = write;
    const n = this.#sym.spire_cache_apply_batch(
      this.#handle,
      rep,
      rep.length,
      scope.keyPrefix ?? -1,
      puts ? 1 : 0,
      scope.keepDeleted === true ? 0 : 1,
    );
    // WriteBatch made it: anything else is a programmer's error, and the cache may be wrong now.
    if (n < 0) {
      this.clear();
      throw new Error("Cannot update the value cache: the write is not a RocksDB write batch");
    }
  }
}

/**
 * The node's value cache: the stored bytes of recently written and read user
 * keys, in memory, bounded in bytes, oldest written first out. A GET
 * that hits it skips RocksDB, whose memtable lookup here costs more than the
 * rest of a GET's own work (a skiplist walk of several cache misses, ~5-10 µs
 * per key on this machine, against well under 1 µs for a hit).
 *
 * It caches only what the engine holds: the region state machines write
 * through it after each applied batch, and local reads fill it. So that it
 * never serves a value the engine no longer holds (keys are engine keys):
 *
 * - an applied batch removes its keys before the engine write starts and puts
 *   the new values only after it succeeded (a failed write leaves them out);
 *   a range delete (FLUSHDB) empties the cache;
 * - every write moves the cache's generation on, and a read fills the cache
 *   only if no write started or ended since the read began (a read that went
 *   to a worker thread may hold an older value);
 * - the cache belongs to one engine instance: when the engine process
 *   restarts, the first use with the new engine empties it.
 *
 * Layout, for speed: values are copied into slabs (shared buffers of 1/16 of
 * the capacity, at most 1 MiB) that are only ever appended to, and an entry
 * is a view into one. When the slabs and the entries' overhead pass the
 * capacity, the oldest slab is dropped with every entry still in it (FIFO by
 * slab, as log-structured caches do). A first version with one buffer per
 * value and LRU order cost a durable SET 7 µs more of the event loop (a fresh
 * off-heap buffer per write, and two map moves per hit); this one costs about
 * 1.5 µs per write. A view handed out stays valid: slabs are never reused.
 *
 * Keys longer than {@link CACHED_KEY_BYTES_MAX} and values larger than a slab
 * are not cached. Capacity 0 turns it off.
 *
 * @module
 */

import { decodeWriteBatch, type WriteBatch, type WriteOp } from "../engine/mod.ts";

/** Keys longer than this are not cached (turning a key into a map key costs per byte). */
export const CACHED_KEY_BYTES_MAX = 256;

/** Bytes counted per entry on top of its value (map slot, key string, entry object). */
export const ENTRY_OVERHEAD_BYTES = 96;

/** The largest slab. */
const SLAB_BYTES_MAX = 1024 * 1024;

/** Counters of a {@link ValueCache}. */
export interface ValueCacheStats {
  /** The capacity in bytes (0: off). */
  readonly capacityBytes: number;
  /** Bytes held: the slabs' sizes plus each entry's overhead. */
  readonly bytes: number;
  /** Keys held. */
  readonly entries: number;
  /** Lookups answered from the cache. */
  readonly hits: number;
  /** Lookups that went to the engine. */
  readonly misses: number;
  /** Entries dropped with the oldest slab to stay within the capacity. */
  readonly evictions: number;
}

/**
 * Checks a value cache's capacity (both caches take the same).
 * @param capacityBytes the capacity asked for
 * @returns it
 * @throws {RangeError} for a capacity that is not a non-negative integer
 */
export function checkCacheCapacity(capacityBytes: number): number {
  if (!Number.isSafeInteger(capacityBytes) || capacityBytes < 0) {
    throw new RangeError(
      `Invalid value cache capacity: ${capacityBytes}; a non-negative integer of bytes is allowed`,
    );
  }
  return capacityBytes;
}

/** The map key of an engine key: one UTF-16 unit per byte, so distinct keys never collide. */
function mapKey(key: Uint8Array): string {
  // Keys are at most CACHED_KEY_BYTES_MAX bytes: well within the arguments apply may pass.
  return String.fromCharCode.apply(null, key as unknown as number[]);
}

/** Whether a write's `key` is one the cache learns from. */
function learns(scope: CacheWriteScope, key: Uint8Array): boolean {
  return key.length <= CACHED_KEY_BYTES_MAX &&
    (scope.keyPrefix === undefined || key[0] === scope.keyPrefix);
}

interface Slab {
  readonly bytes: Uint8Array;
  used: number;
  /** Map keys of the entries put into this slab (some may have moved on since). */
  readonly keys: string[];
}

interface CacheEntry {
  readonly slab: Slab;
  readonly value: Uint8Array;
}

/** Which keys of an engine write a cache learns from. */
export interface CacheWriteScope {
  /** Only keys whose first byte is this one (default: every key). */
  readonly keyPrefix?: number;
  /** A planted bug, for tests only: deletes are not forgotten (the cache serves deleted keys). */
  readonly keepDeleted?: boolean;
}

/** An engine write between {@link ValueCacheLike.beginWrite} and {@link ValueCacheLike.endWrite}. */
export interface CacheWrite {
  /** The write's representation (unchanged until endWrite). */
  readonly rep: Uint8Array;
  /** The keys it learns from. */
  readonly scope: CacheWriteScope;
}

/** A write of the TypeScript cache: its ops, and the map key of each (undefined: not cached). */
interface MapCacheWrite extends CacheWrite {
  readonly ops: readonly WriteOp[];
  readonly keys: readonly (string | undefined)[];
}

/**
 * What the node needs of a value cache: {@link ValueCache} (TypeScript) and `NativeValueCache`
 * (node/native_value_cache.ts, in native memory, which the native GET path also reads) keep
 * the same rules, documented above.
 */
export interface ValueCacheLike {
  /** Whether the cache can hold anything at all. */
  readonly enabled: boolean;
  /** The largest value cached, in bytes. */
  readonly slabBytes: number;
  /** Counters and size. */
  readonly stats: ValueCacheStats;
  /** The generation to hand to `fill` for a read starting now. */
  readonly generation: number;
  /** The native cache's handle, for native readers that fill it themselves; null for others. */
  readonly nativeHandle: Deno.PointerObject | null;
  /** Binds the cache to the engine instance in use; another one empties it first. */
  use(engine: object): void;
  /** The cached stored bytes of an engine key (they stay valid), or undefined on a miss. */
  get(key: Uint8Array): Uint8Array | undefined;
  /** Caches what a read found, unless a write started or ended since the read began. */
  fill(generation: number, key: Uint8Array, stored: Uint8Array | undefined): void;
  /**
   * Before an engine write: forgets the keys it changes (everything, for a range delete). The
   * batch must not change until {@link ValueCacheLike.endWrite}.
   */
  beginWrite(batch: WriteBatch, scope?: CacheWriteScope): CacheWrite;
  /** After the engine write succeeded: caches the values it put, forgets what it deleted. */
  endWrite(write: CacheWrite): void;
  /**
   * An engine write that was made synchronously, with nothing run between its start and this
   * call (no read can have seen the cache in between): caches the values it put, forgets what
   * it deleted, in one pass.
   */
  written(batch: WriteBatch, scope?: CacheWriteScope): void;
  /** Forgets everything. */
  clear(): void;
  /** Frees what the cache holds outside the JavaScript heap, if anything. */
  close?(): void;
}

/** See the module documentation. */
export class ValueCache implements ValueCacheLike {
  readonly #capacity: number;
  readonly #slabBytes: number;
  readonly #map = new Map<string, CacheEntry>();
  /** Oldest first; the last one takes new values. */
  #slabs: Slab[] = [];
  #generation = 0;
  #owner: object | undefined;
  #hits = 0;
  #misses = 0;
  #evictions = 0;

  /**
   * Creates an empty cache.
   * @param capacityBytes bytes it may hold, overhead included; 0 turns it off
   * @throws {RangeError} for a capacity that is not a non-negative integer
   */
  constructor(capacityBytes: number) {
    this.#capacity = checkCacheCapacity(capacityBytes);
    this.#slabBytes = Math.min(SLAB_BYTES_MAX, Math.floor(capacityBytes / 16));
  }

  /** A cache in the JavaScript heap: no native handle. */
  readonly nativeHandle = null;

  /** Whether the cache can hold anything at all (a capacity of at least 16 bytes). */
  get enabled(): boolean {
    return this.#slabBytes > 0;
  }

  /** The size of one slab: the largest value cached. */
  get slabBytes(): number {
    return this.#slabBytes;
  }

  /** Counters and size. */
  get stats(): ValueCacheStats {
    return {
      capacityBytes: this.#capacity,
      bytes: this.#bytes(),
      entries: this.#map.size,
      hits: this.#hits,
      misses: this.#misses,
      evictions: this.#evictions,
    };
  }

  #bytes(): number {
    return this.#slabs.length * this.#slabBytes + this.#map.size * ENTRY_OVERHEAD_BYTES;
  }

  /**
   * Binds the cache to the engine instance in use; a different one (the engine
   * process restarted) empties it first.
   * @param engine the engine about to be read or written
   */
  use(engine: object): void {
    if (this.#owner === engine) return;
    this.clear();
    this.#owner = engine;
  }

  /**
   * The cached stored bytes of an engine key (a view that stays valid), or undefined on a miss.
   * @param key the engine key
   */
  get(key: Uint8Array): Uint8Array | undefined {
    if (this.#slabBytes === 0 || key.length > CACHED_KEY_BYTES_MAX) return undefined;
    const e = this.#map.get(mapKey(key));
    if (e === undefined) {
      this.#misses++;
      return undefined;
    }
    this.#hits++;
    return e.value;
  }

  /** The generation to hand to {@link ValueCache.fill} for a read starting now. */
  get generation(): number {
    return this.#generation;
  }

  /**
   * Caches what a read found, unless a write started or ended since the read
   * began (`generation`), which may have made it stale.
   * @param generation {@link ValueCache.generation} when the read began
   * @param key the engine key
   * @param stored its stored bytes (copied), or undefined when missing (nothing is cached)
   */
  fill(generation: number, key: Uint8Array, stored: Uint8Array | undefined): void {
    if (generation !== this.#generation || stored === undefined) return;
    if (this.#slabBytes === 0 || key.length > CACHED_KEY_BYTES_MAX) return;
    this.#insert(mapKey(key), stored);
  }

  /**
   * Before an engine write: forgets the keys it changes (everything, for a range delete).
   * @param batch the engine write (unchanged until endWrite)
   * @param scope which of its keys the cache learns from
   * @returns the write, for {@link ValueCache.endWrite}
   */
  beginWrite(batch: WriteBatch, scope: CacheWriteScope = {}): MapCacheWrite {
    this.#generation++;
    const rep = batch.rep();
    const ops = this.#slabBytes === 0 ? [] : decodeWriteBatch(rep);
    const keys = new Array<string | undefined>(ops.length);
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      if (op.op === "deleteRange") {
        this.clear();
        continue;
      }
      if (!learns(scope, op.key) || (op.op === "delete" && scope.keepDeleted === true)) continue;
      const k = mapKey(op.key);
      keys[i] = k;
      this.#map.delete(k);
    }
    return { rep, scope, ops, keys };
  }

  /**
   * After the engine write succeeded: caches the values it put, and forgets
   * again what it deleted (a read during the write may have filled it).
   * @param write what {@link ValueCache.beginWrite} returned (values are copied)
   */
  endWrite(write: CacheWrite): void {
    this.#generation++;
    const { ops, keys } = write as MapCacheWrite;
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      if (op.op === "deleteRange") {
        this.clear();
        continue;
      }
      const k = keys[i];
      if (k === undefined) continue;
      if (op.op === "put") this.#insert(k, op.value);
      else this.#map.delete(k);
    }
  }

  /**
   * An engine write made synchronously: what {@link ValueCache.beginWrite} and
   * {@link ValueCache.endWrite} do together (nothing read the cache in between).
   * @param batch the engine write
   * @param scope which of its keys the cache learns from
   */
  written(batch: WriteBatch, scope: CacheWriteScope = {}): void {
    this.endWrite(this.beginWrite(batch, scope));
  }

  /** An engine write whose keys are not known one by one (a range delete): forget everything. */
  clear(): void {
    this.#generation++;
    this.#map.clear();
    this.#slabs = [];
  }

  #insert(k: string, stored: Uint8Array): void {
    if (stored.length > this.#slabBytes) {
      this.#map.delete(k);
      return;
    }
    let slab = this.#slabs[this.#slabs.length - 1];
    if (slab === undefined || slab.used + stored.length > this.#slabBytes) {
      slab = { bytes: new Uint8Array(this.#slabBytes), used: 0, keys: [] };
      this.#slabs.push(slab);
    }
    slab.bytes.set(stored, slab.used);
    const value = slab.bytes.subarray(slab.used, slab.used + stored.length);
    slab.used += stored.length;
    slab.keys.push(k);
    this.#map.set(k, { slab, value });
    while (this.#bytes() > this.#capacity && this.#slabs.length > 1) this.#dropOldest();
    if (this.#bytes() > this.#capacity) this.clear(); // one slab and its entries do not fit
  }

  #dropOldest(): void {
    const old = this.#slabs.shift()!;
    for (const k of old.keys) {
      if (this.#map.get(k)?.slab === old) {
        this.#map.delete(k);
        this.#evictions++;
      }
    }
  }
}

/**
 * The node's value cache: the stored bytes of recently written and read user
 * keys, in memory, bounded in bytes, least recently used first out. A GET
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
 * Values are copied in, so callers may reuse their buffers. Keys longer than
 * {@link CACHED_KEY_BYTES_MAX} and values larger than 1/16 of the capacity
 * are not cached. Capacity 0 turns it off.
 *
 * @module
 */

import type { EngineOp } from "./commands/write_ops.ts";

/** Keys longer than this are not cached (turning a key into a map key costs per byte). */
export const CACHED_KEY_BYTES_MAX = 256;

/** Bytes counted per entry on top of its key and value (map slot, entry object). */
const ENTRY_OVERHEAD_BYTES = 96;

/** Counters of a {@link ValueCache}. */
export interface ValueCacheStats {
  /** The capacity in bytes (0: off). */
  readonly capacityBytes: number;
  /** Bytes held, overhead included. */
  readonly bytes: number;
  /** Keys held. */
  readonly entries: number;
  /** Lookups answered from the cache. */
  readonly hits: number;
  /** Lookups that went to the engine. */
  readonly misses: number;
  /** Entries dropped to stay within the capacity. */
  readonly evictions: number;
}

/** The map key of an engine key: one UTF-16 unit per byte, so distinct keys never collide. */
function mapKey(key: Uint8Array): string {
  let s = "";
  for (let i = 0; i < key.length; i++) s += String.fromCharCode(key[i]!);
  return s;
}

/** See the module documentation. */
export class ValueCache {
  readonly #capacity: number;
  readonly #valueBytesMax: number;
  /** Insertion order is recency order: the first entry is the least recently used. */
  readonly #map = new Map<string, Uint8Array>();
  #bytes = 0;
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
    if (!Number.isSafeInteger(capacityBytes) || capacityBytes < 0) {
      throw new RangeError(
        `Invalid value cache capacity: ${capacityBytes}; a non-negative integer of bytes is allowed`,
      );
    }
    this.#capacity = capacityBytes;
    this.#valueBytesMax = Math.floor(capacityBytes / 16);
  }

  /** Whether the cache holds anything at all (capacity above 0). */
  get enabled(): boolean {
    return this.#capacity > 0;
  }

  /** Counters and size. */
  get stats(): ValueCacheStats {
    return {
      capacityBytes: this.#capacity,
      bytes: this.#bytes,
      entries: this.#map.size,
      hits: this.#hits,
      misses: this.#misses,
      evictions: this.#evictions,
    };
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
   * The cached stored bytes of an engine key, or undefined on a miss.
   * @param key the engine key
   */
  get(key: Uint8Array): Uint8Array | undefined {
    if (this.#capacity === 0 || key.length > CACHED_KEY_BYTES_MAX) return undefined;
    const k = mapKey(key);
    const v = this.#map.get(k);
    if (v === undefined) {
      this.#misses++;
      return undefined;
    }
    this.#hits++;
    this.#map.delete(k); // most recently used now
    this.#map.set(k, v);
    return v;
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
    this.#insert(key, stored);
  }

  /**
   * Before an engine write: forgets the keys it changes (everything, for a range delete).
   * @param ops the write's engine operations
   */
  beginWrite(ops: readonly EngineOp[]): void {
    this.#generation++;
    if (this.#map.size === 0) return;
    for (const op of ops) {
      if (op.op === "deleteRange") return this.clear();
      this.#remove(op.key);
    }
  }

  /**
   * After an engine write succeeded: caches the values it put, and forgets
   * again what it deleted (a read during the write may have filled it).
   * @param ops the write's engine operations (values are copied)
   */
  endWrite(ops: readonly EngineOp[]): void {
    this.#generation++;
    for (const op of ops) {
      if (op.op === "put") this.#insert(op.key, op.value);
      else if (op.op === "delete") this.#remove(op.key);
      else this.clear();
    }
  }

  /** An engine write whose keys are not known one by one (a range delete): forget everything. */
  clear(): void {
    this.#generation++;
    this.#map.clear();
    this.#bytes = 0;
  }

  #cost(keyLength: number, valueLength: number): number {
    return keyLength * 2 + valueLength + ENTRY_OVERHEAD_BYTES;
  }

  #remove(key: Uint8Array): void {
    if (key.length > CACHED_KEY_BYTES_MAX) return;
    const k = mapKey(key);
    const v = this.#map.get(k);
    if (v === undefined) return;
    this.#map.delete(k);
    this.#bytes -= this.#cost(key.length, v.length);
  }

  #insert(key: Uint8Array, stored: Uint8Array): void {
    if (
      this.#capacity === 0 || key.length > CACHED_KEY_BYTES_MAX ||
      stored.length > this.#valueBytesMax
    ) {
      this.#remove(key);
      return;
    }
    const k = mapKey(key);
    const old = this.#map.get(k);
    if (old !== undefined) {
      this.#map.delete(k);
      this.#bytes -= this.#cost(key.length, old.length);
    }
    this.#map.set(k, stored.slice());
    this.#bytes += this.#cost(key.length, stored.length);
    while (this.#bytes > this.#capacity) {
      const oldest = this.#map.entries().next();
      if (oldest.done) break;
      const [ok, ov] = oldest.value;
      this.#map.delete(ok);
      this.#bytes -= this.#cost(ok.length, ov.length);
      this.#evictions++;
    }
  }
}

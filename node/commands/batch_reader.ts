/**
 * The state a write sees while a batch of writes is applied: the engine's
 * state plus the batch's own earlier writes, which are not in the engine yet
 * (the whole batch goes to the engine as one write batch at the end).
 *
 * @module
 */

import { compareBytes } from "../../engine/codec/mod.ts";
import type { EngineLike } from "./memory_engine.ts";
import { type EngineOp, keyId, type StateReader } from "./write_ops.ts";

/**
 * Recent stored values that are exactly what the engine holds for their keys (the node's value
 * cache, node/value_cache.ts): a read it answers skips the engine.
 */
export interface StoredValueSource {
  /** The engine key's stored bytes, or undefined when not held here (then ask the engine). */
  get(key: Uint8Array): Uint8Array | undefined;
}

/** Reads through the changes a batch has made so far to the engine below it. */
export class BatchReader implements StateReader {
  readonly #engine: EngineLike;
  readonly #cache: StoredValueSource | undefined;
  /** Engine key (as a binary string) → value put, or null when deleted. */
  readonly #changes = new Map<string, Uint8Array | null>();
  readonly #cleared: { start: Uint8Array; end: Uint8Array }[] = [];
  /**
   * Ops recorded but not yet in #changes: indexed on the next read only, so a
   * batch of blind writes (plain SETs) never computes a key id.
   */
  #unindexed: (readonly EngineOp[] | (() => readonly EngineOp[]))[] = [];

  /**
   * @param engine what the batch is applied to
   * @param cache values the engine holds, read before the engine (a read-modify-write such as
   *   INCR of a recently written key then costs a map lookup instead of a memtable walk)
   */
  constructor(engine: EngineLike, cache?: StoredValueSource) {
    this.#engine = engine;
    this.#cache = cache;
  }

  /** The value of `key` as the batch's next write must see it. */
  get(key: Uint8Array): Uint8Array | undefined | Promise<Uint8Array | undefined> {
    if (this.#unindexed.length > 0) this.#index();
    const c = this.#changes.get(keyId(key));
    if (c !== undefined) return c ?? undefined;
    for (const r of this.#cleared) {
      if (compareBytes(key, r.start) >= 0 && compareBytes(key, r.end) < 0) return undefined;
    }
    return this.#cache?.get(key) ?? this.#engine.get(key);
  }

  /**
   * Records the engine ops of one applied write so later writes of the batch see them; a
   * function making them is called only if a later write reads.
   */
  record(ops: readonly EngineOp[] | (() => readonly EngineOp[])): void {
    if (typeof ops === "function" || ops.length > 0) this.#unindexed.push(ops);
  }

  /** Indexes the recorded ops, in the order they were recorded. */
  #index(): void {
    const recorded = this.#unindexed;
    this.#unindexed = [];
    for (const recordedOps of recorded) {
      const ops = typeof recordedOps === "function" ? recordedOps() : recordedOps;
      for (const op of ops) {
        if (op.op === "put") this.#changes.set(keyId(op.key), op.value);
        else if (op.op === "delete") this.#changes.set(keyId(op.key), null);
        else {
          for (const id of [...this.#changes.keys()]) {
            const k = Uint8Array.from(id, (c) => c.charCodeAt(0));
            if (compareBytes(k, op.start) >= 0 && compareBytes(k, op.end) < 0) {
              this.#changes.set(id, null);
            }
          }
          this.#cleared.push({ start: op.start, end: op.end });
        }
      }
    }
  }
}

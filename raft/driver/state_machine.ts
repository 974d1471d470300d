/**
 * The state machine a region peer applies committed commands to, and an
 * in-memory key-value implementation (put, get, compare-and-set) for tests
 * and the simulation.
 *
 * @module
 */

import type { Entry, Snapshot } from "../core/mod.ts";

/**
 * What a region peer drives. Commands are opaque bytes; `R` is the result of
 * a command or a query.
 */
export interface StateMachine<R> {
  /**
   * Applies committed commands in log order and returns one result per command.
   * @param commands committed normal entries with their command bytes (no-ops and
   *   membership changes are left out)
   * @param appliedIndex the index of the last committed entry of this batch (it may be
   *   past the last command); the machine is at this index afterwards
   */
  apply(commands: readonly Entry[], appliedIndex: number): R[] | Promise<R[]>;
  /** Answers a read against the current state (called once the read is linearizable). */
  query(request: Uint8Array): R | Promise<R>;
  /** An image of the state at the applied index. */
  snapshot(): Uint8Array | Promise<Uint8Array>;
  /** Replaces the state by a snapshot's image; the applied index becomes the snapshot's. */
  restore(snapshot: Snapshot): void | Promise<void>;
  /** The index of the last applied entry (0 when empty). */
  appliedIndex(): number;
}

/** A command or query of {@link KvStateMachine}. */
export type KvRequest =
  | { readonly f: "put"; readonly key: string; readonly value: string }
  | { readonly f: "get"; readonly key: string }
  | {
    readonly f: "cas";
    readonly key: string;
    readonly expected: string | null;
    readonly value: string;
  };

/** Result of a {@link KvRequest}: the value for `get`, whether it wrote for `put`/`cas`. */
export type KvResult = string | null | boolean;

const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * Encodes a key-value request as command or query bytes.
 *
 * @param r the request
 * @returns its bytes
 */
export function encodeKvRequest(r: KvRequest): Uint8Array {
  return enc.encode(JSON.stringify(r));
}

/**
 * Decodes bytes made by {@link encodeKvRequest}.
 *
 * @param bytes the bytes
 * @returns the request
 * @throws {TypeError} when the bytes are not a request
 */
export function decodeKvRequest(bytes: Uint8Array): KvRequest {
  const r = JSON.parse(dec.decode(bytes)) as Partial<Record<string, unknown>>;
  if (typeof r.key !== "string") {
    throw new TypeError("Cannot decode kv request: key is not a string");
  }
  if (r.f === "get") return { f: "get", key: r.key };
  if (r.f === "put" && typeof r.value === "string") return { f: "put", key: r.key, value: r.value };
  if (
    r.f === "cas" && typeof r.value === "string" &&
    (typeof r.expected === "string" || r.expected === null)
  ) {
    return { f: "cas", key: r.key, expected: r.expected, value: r.value };
  }
  throw new TypeError(`Cannot decode kv request: f ${String(r.f)} is not put, get or cas`);
}

/**
 * A map of string registers in memory. Not durable: after a restart it is
 * rebuilt from the log's snapshot and the committed entries after it.
 *
 * @example
 * ```ts
 * import { encodeKvRequest, KvStateMachine } from "./state_machine.ts";
 * const sm = new KvStateMachine();
 * const cmd = encodeKvRequest({ f: "put", key: "k", value: "v" });
 * sm.apply([{ term: 1, index: 1, type: "normal", data: cmd }], 1);
 * if (sm.query(encodeKvRequest({ f: "get", key: "k" })) !== "v") throw new Error("lost");
 * ```
 */
export class KvStateMachine implements StateMachine<KvResult> {
  #data = new Map<string, string>();
  #applied = 0;

  /** Applies commands; `get` commands in the log read the state at their position. */
  apply(commands: readonly Entry[], appliedIndex: number): KvResult[] {
    const out: KvResult[] = [];
    for (const e of commands) out.push(this.#exec(decodeKvRequest(e.data)));
    this.#applied = appliedIndex;
    return out;
  }

  #exec(r: KvRequest): KvResult {
    const cur = this.#data.get(r.key) ?? null;
    switch (r.f) {
      case "get":
        return cur;
      case "put":
        this.#data.set(r.key, r.value);
        return true;
      case "cas":
        if (cur !== r.expected) return false;
        this.#data.set(r.key, r.value);
        return true;
    }
  }

  /** Reads a key (`get` only). */
  query(request: Uint8Array): KvResult {
    const r = decodeKvRequest(request);
    if (r.f !== "get") throw new TypeError(`Cannot query: ${r.f} is a write; propose it instead`);
    return this.#data.get(r.key) ?? null;
  }

  /** The map as sorted JSON pairs. */
  snapshot(): Uint8Array {
    return enc.encode(JSON.stringify([...this.#data].sort((a, b) => (a[0] < b[0] ? -1 : 1))));
  }

  /** Loads a snapshot image (empty bytes mean an empty map). */
  restore(snapshot: Snapshot): void {
    const pairs = snapshot.data.length === 0
      ? []
      : JSON.parse(dec.decode(snapshot.data)) as [string, string][];
    this.#data = new Map(pairs);
    this.#applied = snapshot.metadata.index;
  }

  /** Returns the last applied index. */
  appliedIndex(): number {
    return this.#applied;
  }

  /** Number of keys held. */
  get size(): number {
    return this.#data.size;
  }
}

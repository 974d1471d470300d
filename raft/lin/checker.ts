/**
 * A linearizability checker for a map of registers (put, get, compare-and-set
 * with unique written values): the Wing–Gong search with Lowe's memoization of
 * (linearized set, state), run separately on each key, which is sound because
 * the operations on different keys commute.
 *
 * @module
 */

import {
  formatOperation,
  type HistoryEvent,
  type Operation,
  pairOperations,
  type RegisterValue,
} from "./history.ts";

/** Options for {@link checkLinearizable}. */
export interface CheckOptions {
  /** Memoized search states per key before the verdict is "unknown". Default 2,000,000. */
  readonly statesMax?: number;
  /** Searches spent on shrinking a violation to a minimal explanation. Default 400. */
  readonly shrinkChecksMax?: number;
}

/** The verdict of {@link checkLinearizable}. */
export type CheckResult =
  | { readonly valid: true; readonly keys: number; readonly operations: number }
  | {
    readonly valid: false;
    /** The key whose operations cannot be linearized. */
    readonly key: string;
    /**
     * A minimal set of operations that cannot be linearized: none can be dropped (with the
     * reads of the value it wrote) and leave a violation, unless `shrinkChecksMax` ran out.
     */
    readonly minimal: readonly Operation[];
    /** A human explanation of the violation, one operation per line. */
    readonly explanation: string;
  }
  | { readonly valid: "unknown"; readonly key: string; readonly reason: string };

const ILLEGAL = Symbol("illegal");

/** Applies one operation to the register, or says it cannot happen in this state. */
function step(state: RegisterValue, o: Operation): RegisterValue | typeof ILLEGAL {
  const op = o.op;
  switch (op.f) {
    case "put":
      return op.value;
    case "get":
      return state === o.result ? state : ILLEGAL;
    case "cas":
      if (o.outcome === "ok" && o.result === false) return state !== op.expected ? state : ILLEGAL;
      return state === op.expected ? op.value : ILLEGAL;
  }
}

function setBit(bits: Uint32Array, i: number): void {
  bits[i >>> 5] = (bits[i >>> 5] ?? 0) | (1 << (i & 31));
}

function clearBit(bits: Uint32Array, i: number): void {
  bits[i >>> 5] = (bits[i >>> 5] ?? 0) & ~(1 << (i & 31));
}

type SearchVerdict = "ok" | "violation" | "unknown";

/**
 * Wing–Gong search over the operations of one key. Entries (call and return
 * of every operation) sit in a doubly linked list in real-time order; an
 * operation is linearized by lifting both its entries out of the list.
 * Unknown-outcome operations return at infinity, after every known return,
 * so reaching one of their returns means every known operation is placed.
 */
function search(ops: readonly Operation[], statesMax: number): SearchVerdict {
  const n = ops.length;
  if (n === 0) return "ok";
  // Entry e < n is the call of ops[e]; e >= n is the return of ops[e - n].
  const order: number[] = [];
  for (let i = 0; i < 2 * n; i++) order.push(i);
  const seqOf = (e: number): number => {
    const o = ops[e % n]!;
    if (e < n) return o.invokeSeq;
    return o.completeSeq === Infinity ? Number.MAX_SAFE_INTEGER - n + (e - n) : o.completeSeq;
  };
  order.sort((a, b) => seqOf(a) - seqOf(b));
  const head = 2 * n;
  const next = new Int32Array(2 * n + 1).fill(-1);
  const prev = new Int32Array(2 * n + 1).fill(-1);
  let last = head;
  for (const e of order) {
    next[last] = e;
    prev[e] = last;
    last = e;
  }
  const remove = (x: number) => {
    const p = prev[x]!, q = next[x]!;
    next[p] = q;
    if (q >= 0) prev[q] = p;
  };
  const restore = (x: number) => {
    const p = prev[x]!, q = next[x]!;
    next[p] = x;
    if (q >= 0) prev[q] = x;
  };

  const words = Math.ceil(n / 32);
  const linearized = new Uint32Array(words);
  const seen = new Set<string>();
  const stack: { call: number; state: RegisterValue }[] = [];
  let state: RegisterValue = null;
  let entry = next[head]!;
  while (entry >= 0) {
    if (entry < n) {
      const after = step(state, ops[entry]!);
      if (after !== ILLEGAL) {
        setBit(linearized, entry);
        const key = `${linearized.join(",")}|${after === null ? "\u0000" : after}`;
        if (!seen.has(key)) {
          if (seen.size >= statesMax) return "unknown";
          seen.add(key);
          stack.push({ call: entry, state });
          state = after;
          remove(entry);
          remove(entry + n);
          entry = next[head]!;
          continue;
        }
        clearBit(linearized, entry);
      }
      entry = next[entry]!;
      continue;
    }
    if (ops[entry - n]!.outcome === "info") return "ok";
    const top = stack.pop();
    if (top === undefined) return "violation";
    restore(top.call + n);
    restore(top.call);
    clearBit(linearized, top.call);
    state = top.state;
    entry = next[top.call]!;
  }
  return "ok";
}

/** Values an operation needs some other operation to have written. */
function needs(o: Operation): RegisterValue[] {
  if (o.op.f === "get" && typeof o.result === "string") return [o.result];
  if (o.op.f === "cas" && o.op.expected !== null && !(o.outcome === "ok" && o.result === false)) {
    return [o.op.expected];
  }
  return [];
}

/** The value an operation may have written (a cas that returned false wrote nothing). */
function written(o: Operation): string | null {
  if (o.op.f === "get" || (o.op.f === "cas" && o.outcome === "ok" && o.result === false)) {
    return null;
  }
  return o.op.value;
}

/**
 * Removes from `ops` every operation that observes a value no remaining
 * operation writes, and every failed cas from nil that no remaining write
 * precedes (dropping a write takes the reads of it along: otherwise the rest
 * would only show "read of a value nobody wrote").
 */
function dropOrphans(ops: Operation[]): Operation[] {
  let current = ops;
  for (;;) {
    const values = new Set<string>();
    for (const o of current) {
      const v = written(o);
      if (v !== null) values.add(v);
    }
    let firstWrite = Infinity;
    for (const o of current) {
      if (written(o) !== null) firstWrite = Math.min(firstWrite, o.invokeSeq);
    }
    const kept = current.filter((o) =>
      needs(o).every((v) => v === null || values.has(v)) &&
      // A cas that found some value other than nil saw a write, whichever it was.
      !(o.op.f === "cas" && o.op.expected === null && o.outcome === "ok" && o.result === false &&
        firstWrite > o.completeSeq)
    );
    if (kept.length === current.length) return current;
    current = kept;
  }
}

/**
 * Shrinks a non-linearizable set of operations by delta debugging: tries to
 * drop chunks of operations (halves first, then smaller, down to single
 * operations), each together with the reads of the values it wrote, keeping
 * a removal whenever the rest stays non-linearizable. With chunks of one left
 * and the budget not spent, no single operation can be dropped: the result
 * is 1-minimal. Large histories shrink in a few dozen searches.
 */
function shrink(ops: readonly Operation[], statesMax: number, checksMax: number): Operation[] {
  let current = [...ops];
  let checks = 0;
  let chunk = Math.max(1, Math.floor(current.length / 2));
  for (;;) {
    let removed = false;
    for (let end = current.length; end > 0 && checks < checksMax;) {
      const start = Math.max(0, end - chunk);
      const rest = dropOrphans([...current.slice(0, start), ...current.slice(end)]);
      checks++;
      if (rest.length < current.length && search(rest, statesMax) === "violation") {
        current = rest;
        removed = true;
        end = Math.min(start, current.length);
      } else {
        end = start;
      }
    }
    if (checks >= checksMax) return current;
    if (chunk === 1 && !removed) return current;
    if (!removed) chunk = Math.max(1, Math.floor(chunk / 2));
  }
}

/**
 * Checks that a history of register operations is linearizable.
 *
 * @param events the history, in real-time order
 * @param options search limits
 * @returns valid, a violation with a minimal explanation, or unknown when the
 *   search exceeded `statesMax`
 * @throws {RangeError} when the history is malformed (see {@link pairOperations})
 * @example
 * ```ts
 * import { checkLinearizable } from "./checker.ts";
 * const stale = checkLinearizable([
 *   { type: "invoke", process: 0, op: { f: "put", key: "x", value: "a" }, time: 0 },
 *   { type: "ok", process: 0, time: 1 },
 *   { type: "invoke", process: 1, op: { f: "get", key: "x" }, time: 2 },
 *   { type: "ok", process: 1, time: 3, result: null },
 * ]);
 * if (stale.valid !== false) throw new Error("a stale read must be caught");
 * ```
 */
export function checkLinearizable(
  events: readonly HistoryEvent[],
  options: CheckOptions = {},
): CheckResult {
  const statesMax = options.statesMax ?? 2_000_000;
  const shrinkChecksMax = options.shrinkChecksMax ?? 400;
  if (!Number.isInteger(statesMax) || statesMax < 1) {
    throw new RangeError(`Cannot check history: statesMax ${statesMax} must be an integer >= 1`);
  }
  const all = pairOperations(events);
  const byKey = new Map<string, Operation[]>();
  for (const o of all) {
    // A read of unknown outcome constrains nothing.
    if (o.op.f === "get" && o.outcome === "info") continue;
    let list = byKey.get(o.op.key);
    if (list === undefined) byKey.set(o.op.key, list = []);
    list.push(o);
  }
  for (const [key, ops] of byKey) {
    const verdict = search(ops, statesMax);
    if (verdict === "unknown") {
      return {
        valid: "unknown",
        key,
        reason: `search of key ${key} (${ops.length} operations) exceeded ${statesMax} states`,
      };
    }
    if (verdict === "violation") {
      const minimal = shrink(ops, statesMax, shrinkChecksMax);
      const lines = [
        `Not linearizable: these ${minimal.length} operations on key ${key} cannot be ordered ` +
        `to agree with real time and a single register (initial value nil):`,
        ...minimal.map((o) => `  ${formatOperation(o)}`),
      ];
      return { valid: false, key, minimal, explanation: lines.join("\n") };
    }
  }
  return { valid: true, keys: byKey.size, operations: all.length };
}

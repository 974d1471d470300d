/**
 * A durability checker for crash and fault-injection tests: clients record
 * every write they send and whether it was acknowledged; after the node is
 * killed and restarted the checker compares the recorded history with what the
 * node serves.
 *
 * Two kinds of writes make the check sharp:
 * - `SET` of a key that no other operation touches, with a unique value: an
 *   acknowledged one must be present with exactly its value; an unacknowledged
 *   one (its fate unknown at the kill) may be present with its value or absent.
 * - `APPEND` of unique tokens to shared keys by one sequential writer per
 *   key: the final value must be the tokens sent, in order, each at most once,
 *   containing every acknowledged token (unacknowledged ones may be missing,
 *   wherever they are). A write
 *   applied twice after a restart (for example when the applied index is not
 *   persisted with the data) shows up as a duplicated token; a lost write as a
 *   missing one.
 *
 * Any key that no client wrote is reported too ("nothing else changed").
 *
 * @module
 */

/** One write a client sent. `acked` is true only when the node answered OK. */
export type WriteRecord =
  | { kind: "set"; key: string; value: string; acked: boolean }
  | { kind: "append"; key: string; token: string; acked: boolean };

/** One problem the checker found. */
export interface DurabilityViolation {
  /** The key concerned. */
  key: string;
  /** What is wrong, in words. */
  problem: string;
}

/** A write about to be sent; APPEND tokens end with ";" and contain no other ";". */
export type WriteIntent =
  | { kind: "set"; key: string; value: string }
  | { kind: "append"; key: string; token: string };

/**
 * Records writes of concurrent clients. Tokens of one APPEND key must come
 * from one sequential writer (the checker relies on their order).
 */
export class WriteHistory {
  #records: WriteRecord[] = [];
  readonly #recordsMax: number;

  /**
   * Creates an empty history.
   * @param recordsMax bound on recorded writes (RangeError beyond it)
   */
  constructor(recordsMax = 10_000_000) {
    this.#recordsMax = recordsMax;
  }

  /**
   * Records a write before it is sent; returns a function to call with the
   * outcome (true = acknowledged).
   *
   * @param intent the write
   * @returns a function marking the write acknowledged
   * @throws {RangeError} when more than `recordsMax` writes are recorded, or on a bad token
   */
  begin(intent: WriteIntent): (acked: boolean) => void {
    if (intent.kind === "append" && !/^[^;]+;$/.test(intent.token)) {
      throw new RangeError(
        `Cannot record APPEND: token "${intent.token}" must end with ";" and contain no other`,
      );
    }
    if (this.#records.length >= this.#recordsMax) {
      throw new RangeError(
        `Cannot record write: history holds ${this.#recordsMax} writes, the most allowed`,
      );
    }
    const r: WriteRecord = { ...intent, acked: false };
    this.#records.push(r);
    return (acked) => {
      r.acked = acked;
    };
  }

  /** Every recorded write, in the order they were begun. */
  get records(): readonly WriteRecord[] {
    return this.#records;
  }

  /** Number of acknowledged writes. */
  get ackedCount(): number {
    return this.#records.filter((r) => r.acked).length;
  }

  /**
   * Once a restart has been checked, the fate of every write is settled by
   * what the node served: unacknowledged writes that were found become
   * "acked" (they are now durable facts that must persist), the others are
   * dropped. This keeps later checks exact across repeated crashes.
   *
   * @param state what the node served at the last check
   */
  settle(state: ReadonlyMap<string, string>): void {
    const keep: WriteRecord[] = [];
    for (const r of this.#records) {
      const v = state.get(r.key);
      if (r.kind === "set") {
        if (v === r.value) keep.push({ ...r, acked: true });
      } else if (v !== undefined && v.split(";").includes(r.token.slice(0, -1))) {
        keep.push({ ...r, acked: true });
      }
    }
    this.#records = keep;
  }
}

/**
 * Compares a history with the final state.
 *
 * @param records every write the clients sent
 * @param state every key the node serves, with its value
 * @returns the violations found; empty when the history is consistent
 */
export function checkDurability(
  records: readonly WriteRecord[],
  state: ReadonlyMap<string, string>,
): DurabilityViolation[] {
  const violations: DurabilityViolation[] = [];
  const sets = new Map<string, WriteRecord & { kind: "set" }>();
  const appends = new Map<string, Array<WriteRecord & { kind: "append" }>>();
  for (const r of records) {
    if (r.kind === "set") {
      if (sets.has(r.key) || appends.has(r.key)) {
        throw new RangeError(`Cannot check history: key "${r.key}" written twice by SET`);
      }
      sets.set(r.key, r);
    } else {
      const list = appends.get(r.key) ?? [];
      list.push(r);
      appends.set(r.key, list);
    }
  }
  for (const [key, r] of sets) {
    const v = state.get(key);
    if (v === undefined) {
      if (r.acked) violations.push({ key, problem: `acknowledged SET of "${r.value}" is lost` });
    } else if (v !== r.value) {
      violations.push({ key, problem: `holds "${v}", but the only SET wrote "${r.value}"` });
    }
  }
  for (const [key, list] of appends) {
    const v = state.get(key);
    const found = v === undefined || v === "" ? [] : v.split(";").slice(0, -1);
    const sent = list.map((r) => r.token.slice(0, -1));
    if (v !== undefined && v !== "" && !v.endsWith(";")) {
      violations.push({ key, problem: `holds "${v}", which is not a sequence of tokens` });
      continue;
    }
    // One sequential writer: the value is the sent tokens in order, each at most once,
    // leaving out only writes that were not acknowledged (they failed or their fate was unknown).
    let at = 0;
    let problem: string | undefined;
    for (const token of found) {
      const next = sent.indexOf(token, at);
      if (next < 0) {
        problem = sent.indexOf(token) >= 0
          ? `token "${token}" applied twice or out of order (value has ${found.length} tokens)`
          : `token "${token}" was never sent`;
        break;
      }
      const skipped = list.slice(at, next).find((r) => r.acked);
      if (skipped !== undefined) {
        problem = `acknowledged APPEND of "${
          skipped.token.slice(0, -1)
        }" is lost (before "${token}")`;
        break;
      }
      at = next + 1;
    }
    if (problem === undefined) {
      const lost = list.slice(at).find((r) => r.acked);
      if (lost !== undefined) {
        problem = `acknowledged APPEND of "${lost.token.slice(0, -1)}" is lost (value has ` +
          `${found.length} tokens)`;
      }
    }
    if (problem !== undefined) violations.push({ key, problem });
  }
  for (const key of state.keys()) {
    if (!sets.has(key) && !appends.has(key)) {
      violations.push({ key, problem: "present, but no client wrote it" });
    }
  }
  return violations;
}

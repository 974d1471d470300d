/**
 * Client histories for the linearizability checker: the events a client
 * records (invoke, then ok, fail or info) and their pairing into operations.
 *
 * @module
 */

/** The value of a register: a string, or `null` before the first write. */
export type RegisterValue = string | null;

/**
 * An operation on one key of a register map. Written values must be unique per key; a put of
 * `null` deletes the key (any number of them).
 */
export type RegisterOp =
  | { readonly f: "put"; readonly key: string; readonly value: RegisterValue }
  | { readonly f: "get"; readonly key: string }
  | {
    readonly f: "cas";
    readonly key: string;
    readonly expected: RegisterValue;
    readonly value: string;
  };

/**
 * The result of a completed operation: the value read by `get`, whether `cas`
 * matched and wrote, nothing for `put`.
 */
export type RegisterResult = RegisterValue | boolean | undefined;

/**
 * One event of a history, in real-time order. `time` is only shown in
 * explanations; the order of events in the array is the real-time order.
 * `ok` means the operation took effect with `result`; `fail` means it
 * certainly did not take effect; `info` means the outcome is unknown (it may
 * take effect at any time after its invocation, or never).
 */
export type HistoryEvent =
  | {
    readonly type: "invoke";
    readonly process: number;
    readonly op: RegisterOp;
    readonly time: number;
  }
  | {
    readonly type: "ok";
    readonly process: number;
    readonly result?: RegisterResult;
    readonly time: number;
  }
  | { readonly type: "fail" | "info"; readonly process: number; readonly time: number };

/** An invocation paired with its completion. */
export interface Operation {
  /** Position of the operation among the paired operations of the history. */
  readonly id: number;
  /** The client process that issued it. */
  readonly process: number;
  /** What was asked. */
  readonly op: RegisterOp;
  /** Shown time of the invocation. */
  readonly invokeTime: number;
  /** Position of the invocation in the event array (real-time order). */
  readonly invokeSeq: number;
  /** Shown time of the completion, `null` when the outcome is unknown. */
  readonly completeTime: number | null;
  /** Position of the completion in the event array, `Infinity` when unknown. */
  readonly completeSeq: number;
  /** `ok` when the outcome is known, `info` when it is not. */
  readonly outcome: "ok" | "info";
  /** The result of an `ok` operation. */
  readonly result: RegisterResult;
}

const EVENT_TYPES: readonly string[] = ["invoke", "ok", "fail", "info"];

function checkEvent(event: HistoryEvent, seq: number): void {
  const bad = (what: string): never => {
    throw new TypeError(`Cannot pair history event ${seq}: ${what}`);
  };
  if (!EVENT_TYPES.includes(event.type)) {
    bad(`type "${String(event.type)}" is not one of ${EVENT_TYPES.join(", ")}`);
  }
  if (event.type !== "invoke") return;
  const op = event.op as Partial<Record<string, unknown>> | undefined;
  if (op === undefined || op === null || typeof op.key !== "string") {
    bad("the operation has no string key");
  }
  const f = op!.f;
  if (f !== "put" && f !== "get" && f !== "cas") {
    bad(`operation "${String(f)}" is not one of put, get, cas`);
  }
  if (f === "cas" && typeof op!.value !== "string") bad("cas needs a string value");
  if (f === "put" && op!.value !== null && typeof op!.value !== "string") {
    bad("put needs a string value, or null to delete");
  }
  if (f === "cas" && op!.expected !== null && typeof op!.expected !== "string") {
    bad("cas needs an expected value that is a string or null");
  }
}

function checkResult(op: RegisterOp, result: RegisterResult, seq: number): void {
  if (op.f === "get" && result !== null && typeof result !== "string") {
    throw new TypeError(
      `Cannot pair history event ${seq}: get returned ${
        String(result)
      }; a string or null is allowed`,
    );
  }
  if (op.f === "cas" && typeof result !== "boolean") {
    throw new TypeError(
      `Cannot pair history event ${seq}: cas returned ${String(result)}; true or false is allowed`,
    );
  }
}

/**
 * Pairs each invocation with its completion. Operations that `fail` are left
 * out (they did not happen); invocations without a completion count as `info`.
 *
 * @param events the history in real-time order
 * @returns the operations that may have taken effect, ordered by invocation
 * @throws {RangeError} when a process invokes while it has an operation open,
 *   or completes an operation it never invoked
 * @throws {TypeError} when an event is not one of invoke, ok, fail and info, an
 *   operation is not a well-formed put, get or cas, or an `ok` result does not
 *   fit its operation (`get`: a string or null; `cas`: a boolean)
 * @example
 * ```ts
 * import { pairOperations } from "./history.ts";
 * const ops = pairOperations([
 *   { type: "invoke", process: 0, op: { f: "put", key: "k", value: "a" }, time: 0 },
 *   { type: "ok", process: 0, time: 1 },
 * ]);
 * if (ops.length !== 1) throw new Error("expected one operation");
 * ```
 */
export function pairOperations(events: readonly HistoryEvent[]): Operation[] {
  const open = new Map<number, { op: RegisterOp; time: number; seq: number }>();
  const paired: Omit<Operation, "id">[] = [];
  events.forEach((event, seq) => {
    checkEvent(event, seq);
    if (event.type === "invoke") {
      if (open.has(event.process)) {
        throw new RangeError(
          `Cannot pair history event ${seq}: process ${event.process} invoked while its ` +
            `previous operation is still open; a process runs one operation at a time`,
        );
      }
      open.set(event.process, { op: event.op, time: event.time, seq });
      return;
    }
    const started = open.get(event.process);
    if (started === undefined) {
      throw new RangeError(
        `Cannot pair history event ${seq}: process ${event.process} completed ` +
          `("${event.type}") without an open invocation`,
      );
    }
    open.delete(event.process);
    if (event.type === "fail") return;
    const known = event.type === "ok";
    if (known) checkResult(started.op, event.result, seq);
    paired.push({
      process: event.process,
      op: started.op,
      invokeTime: started.time,
      invokeSeq: started.seq,
      completeTime: known ? event.time : null,
      completeSeq: known ? seq : Infinity,
      outcome: known ? "ok" : "info",
      result: known ? event.result : undefined,
    });
  });
  for (const [process, started] of open) {
    paired.push({
      process,
      op: started.op,
      invokeTime: started.time,
      invokeSeq: started.seq,
      completeTime: null,
      completeSeq: Infinity,
      outcome: "info",
      result: undefined,
    });
  }
  paired.sort((a, b) => a.invokeSeq - b.invokeSeq);
  return paired.map((op, id) => ({ ...op, id }));
}

/**
 * Formats one operation for an explanation, e.g.
 * `p2 cas(k, "a" -> "b") = true  [t 10 .. 14]`.
 *
 * @param o the operation
 * @returns one line of text
 */
export function formatOperation(o: Operation): string {
  const show = (v: RegisterValue) => (v === null ? "nil" : JSON.stringify(v));
  let call: string;
  switch (o.op.f) {
    case "put":
      call = `put(${o.op.key}, ${show(o.op.value)})`;
      break;
    case "get":
      call = `get(${o.op.key})`;
      break;
    case "cas":
      call = `cas(${o.op.key}, ${show(o.op.expected)} -> ${show(o.op.value)})`;
      break;
  }
  let result = "";
  if (o.outcome === "info") result = " = ? (outcome unknown)";
  else if (o.op.f === "get") result = ` = ${show(o.result as RegisterValue)}`;
  else if (o.op.f === "cas") result = ` = ${String(o.result)}`;
  else result = " = ok";
  const end = o.completeTime === null ? "never" : String(o.completeTime);
  return `p${o.process} ${call}${result}  [t ${o.invokeTime} .. ${end}]`;
}

/**
 * Records a history as a client runs. Times come from the caller's clock,
 * which keeps the recorder deterministic under simulation.
 *
 * @example
 * ```ts
 * import { HistoryRecorder } from "./history.ts";
 * const h = new HistoryRecorder(10_000);
 * h.invoke(1, { f: "get", key: "x" }, 5);
 * h.ok(1, 6, null);
 * if (h.events.length !== 2) throw new Error("two events expected");
 * ```
 */
export class HistoryRecorder {
  readonly #events: HistoryEvent[] = [];
  readonly #eventsMax: number;

  /**
   * Creates a HistoryRecorder.
   * @param eventsMax the most events kept; recording more throws RangeError
   */
  constructor(eventsMax: number) {
    if (!Number.isInteger(eventsMax) || eventsMax < 1) {
      throw new RangeError(`Cannot create HistoryRecorder: eventsMax ${eventsMax} must be >= 1`);
    }
    this.#eventsMax = eventsMax;
  }

  /** The recorded events, in order. */
  get events(): readonly HistoryEvent[] {
    return this.#events;
  }

  #push(e: HistoryEvent): void {
    if (this.#events.length >= this.#eventsMax) {
      throw new RangeError(
        `Cannot record history event: the limit of ${this.#eventsMax} is reached`,
      );
    }
    this.#events.push(e);
  }

  /** Records the start of `op` by `process` at `time`. */
  invoke(process: number, op: RegisterOp, time: number): void {
    this.#push({ type: "invoke", process, op, time });
  }

  /** Records that the open operation of `process` took effect with `result`. */
  ok(process: number, time: number, result?: RegisterResult): void {
    this.#push(
      result === undefined ? { type: "ok", process, time } : { type: "ok", process, time, result },
    );
  }

  /** Records that the open operation of `process` certainly did not take effect. */
  fail(process: number, time: number): void {
    this.#push({ type: "fail", process, time });
  }

  /** Records that the outcome of the open operation of `process` is unknown. */
  info(process: number, time: number): void {
    this.#push({ type: "info", process, time });
  }
}

// Pieces shared by Supervisor and DynamicSupervisor: child specs, the
// shutdown procedure and restart intensity.

import { StartError, SupervisorError } from "./errors.ts";
import type { ExitReason } from "./exit_reason.ts";
import { isCleanExit } from "./exit_reason.ts";
import { Pid } from "./pid.ts";
import type { ChildInfo, Context, Runtime, Target } from "./runtime.ts";
import type { ChildCounts } from "./supervisor.ts";

/** When a child is restarted: always, only after a crash, never. */
export type RestartType = "permanent" | "transient" | "temporary";

/** How a child is stopped: wait this many ms then kill, kill at once, or wait forever. */
export type ShutdownSpec = number | "brutal_kill" | "infinity";

/** A child specification, after OTP's child_spec map. */
export interface ChildSpec {
  /** Unique within its supervisor. */
  readonly id: string;
  /**
   * Starts the child and returns its pid. It runs inside the supervisor:
   * use `ctx.startLink(...)` so the child is linked to it (the supervisor
   * also links to the returned pid). Throw `StartError` with `ignored`
   * (init returned ignore) to be kept without a process.
   */
  readonly start: (ctx: Context) => Promise<Pid>;
  /** Default `permanent`. */
  readonly restart?: RestartType;
  /** Default 5000 ms for workers, `infinity` for supervisors. */
  readonly shutdown?: ShutdownSpec;
  /** Default `worker`. */
  readonly type?: "worker" | "supervisor";
  /** With auto_shutdown: its own exit may stop the supervisor. Only for transient/temporary. */
  readonly significant?: boolean;
}

/** A spec with its defaults filled in. */
export interface NormalSpec {
  readonly id: string;
  readonly start: (ctx: Context) => Promise<Pid>;
  readonly restart: RestartType;
  readonly shutdown: ShutdownSpec;
  readonly type: "worker" | "supervisor";
  readonly significant: boolean;
}

/** Either a runtime (outside any process) or a process's context. */
export type Caller = Runtime | Context;

const RESTARTS: readonly string[] = ["permanent", "transient", "temporary"];

/** Fills defaults and validates; throws TypeError/RangeError on a malformed spec. */
export function normalizeSpec(spec: ChildSpec, what: string): NormalSpec {
  if (typeof spec !== "object" || spec === null) {
    throw new TypeError(`Invalid child spec in ${what}: ${String(spec)}; allowed: an object`);
  }
  if (typeof spec.id !== "string" || spec.id === "") {
    throw new TypeError(`Invalid child spec in ${what}: id ${String(spec.id)}; allowed: a string`);
  }
  if (typeof spec.start !== "function") {
    throw new TypeError(`Invalid child spec ${spec.id}: start is not a function`);
  }
  const restart = spec.restart ?? "permanent";
  if (!RESTARTS.includes(restart)) {
    throw new TypeError(
      `Invalid child spec ${spec.id}: restart "${restart}"; allowed: ${RESTARTS.join(", ")}`,
    );
  }
  const type = spec.type ?? "worker";
  if (type !== "worker" && type !== "supervisor") {
    throw new TypeError(
      `Invalid child spec ${spec.id}: type "${type}"; allowed: worker, supervisor`,
    );
  }
  const shutdown = spec.shutdown ?? (type === "supervisor" ? "infinity" : 5000);
  if (
    shutdown !== "brutal_kill" && shutdown !== "infinity" &&
    !(Number.isInteger(shutdown) && shutdown >= 0)
  ) {
    throw new RangeError(
      `Invalid child spec ${spec.id}: shutdown ${String(shutdown)}; ` +
        `allowed: an integer of ms >= 0, "brutal_kill", "infinity"`,
    );
  }
  const significant = spec.significant ?? false;
  if (significant && restart === "permanent") {
    throw new TypeError(
      `Invalid child spec ${spec.id}: significant with restart permanent; ` +
        `allowed: significant only for transient or temporary children`,
    );
  }
  return { id: spec.id, start: spec.start, restart, shutdown, type, significant };
}

/** OTP's restart rule for a child that exited with `reason`. */
export function shouldRestart(restart: RestartType, reason: ExitReason): boolean {
  if (restart === "permanent") return true;
  if (restart === "temporary") return false;
  return !isCleanExit(reason);
}

/** Restart intensity: at most maxRestarts restarts within any maxSeconds window. */
export class Intensity {
  #stamps: number[] = [];
  constructor(readonly maxRestarts: number, readonly maxSeconds: number) {
    if (!Number.isInteger(maxRestarts) || maxRestarts < 0) {
      throw new RangeError(`Invalid maxRestarts ${maxRestarts}; allowed: an integer >= 0`);
    }
    if (!(maxSeconds > 0) || !Number.isFinite(maxSeconds)) {
      throw new RangeError(`Invalid maxSeconds ${maxSeconds}; allowed: a finite number > 0`);
    }
  }

  /** Records a restart at `nowMs`; false when the intensity is exceeded (OTP's add_restart). */
  add(nowMs: number): boolean {
    const threshold = nowMs - this.maxSeconds * 1000;
    this.#stamps = this.#stamps.filter((t) => t >= threshold);
    this.#stamps.push(nowMs);
    return this.#stamps.length <= this.maxRestarts;
  }
}

/**
 * OTP's shutdown procedure: unlink, send exit `shutdown`, wait up to the
 * shutdown time, then `kill`. `brutal_kill` kills at once.
 *
 * @returns The child's exit reason.
 */
export async function shutdownChild(
  ctx: Context,
  pid: Pid,
  shutdown: ShutdownSpec,
): Promise<ExitReason> {
  ctx.unlink(pid);
  // Wait before signalling: a non-trapping child dies synchronously.
  if (shutdown !== "brutal_kill") {
    const exited = ctx.waitForExit(pid, shutdown === "infinity" ? Infinity : shutdown);
    ctx.exit(pid, "shutdown");
    const reason = await exited;
    if (reason !== undefined) return reason;
  }
  const killed = ctx.waitForExit(pid);
  ctx.exit(pid, "kill");
  return (await killed) ?? "killed";
}

/** A request result carried back to the client of a supervisor call. */
export type Answer<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly code: SupervisorError["code"]; readonly message: string }
  | { readonly ok: false; readonly startFailed: ExitReason };

/** Sends a request to a supervisor of either kind and waits (no timeout, as OTP's infinity). */
export function callSupervisor<R>(caller: Caller, sup: Target, req: R): Promise<Answer<unknown>> {
  return caller.call<R, Answer<unknown>>(sup as Target<R, Answer<unknown>>, req, {
    timeoutMs: Infinity,
  });
}

/** The children of a supervisor of either kind. */
export async function whichChildren(caller: Caller, sup: Target): Promise<ChildInfo[]> {
  return unwrap(
    await callSupervisor(caller, sup, { op: "which_children" }),
    "list children",
  ) as ChildInfo[];
}

/** Counts of specs, active children, supervisors and workers of either kind of supervisor. */
export async function countChildren(caller: Caller, sup: Target): Promise<ChildCounts> {
  return unwrap(
    await callSupervisor(caller, sup, { op: "count_children" }),
    "count children",
  ) as ChildCounts;
}

/** Unwraps an answer on the client side. */
export function unwrap<T>(answer: Answer<T>, what: string): T {
  if (answer.ok) return answer.value;
  if ("startFailed" in answer) {
    throw new StartError(what, answer.startFailed);
  }
  throw new SupervisorError(answer.code, answer.message);
}

/** Checks that `value` is a pid. */
export function checkPid(value: unknown, id: string): Pid {
  if (!(value instanceof Pid)) {
    throw new TypeError(`Child ${id}: start returned ${String(value)}; allowed: a Pid`);
  }
  return value;
}

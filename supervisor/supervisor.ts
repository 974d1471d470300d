/**
 * Supervisor: starts children in order, restarts them by strategy and
 * restart type within a restart intensity, stops them in reverse order,
 * and escalates (exits `shutdown`) when the intensity is exceeded. After
 * OTP's `supervisor` / Elixir's `Supervisor`.
 *
 * @module
 */

import {
  type Answer,
  type Caller,
  callSupervisor,
  checkPid,
  type ChildSpec,
  countChildren,
  Intensity,
  normalizeSpec,
  type NormalSpec,
  shouldRestart,
  shutdownChild,
  unwrap,
  whichChildren,
} from "./_child.ts";
import { StartError, SupervisorError } from "./errors.ts";
import { type ExitReason, shutdownWith, toExitReason } from "./exit_reason.ts";
import type { ExitMessage, GenServer, NoReplyResult } from "./gen_server.ts";
import type { Pid } from "./pid.ts";
import type { ChildInfo, Context, Target } from "./runtime.ts";

export type { Caller, ChildSpec, RestartType, ShutdownSpec } from "./_child.ts";

/** Which children restart when one must: itself, all, or itself and those started after it. */
export type Strategy = "one_for_one" | "one_for_all" | "rest_for_one";

/** When significant children's own exits stop the supervisor. */
export type AutoShutdown = "never" | "any_significant" | "all_significant";

/** Options of a supervisor. */
export interface SupervisorOptions {
  /** Default `one_for_one`. */
  strategy?: Strategy;
  /** Restarts allowed within maxSeconds (default 3, as Elixir). */
  maxRestarts?: number;
  /** The window of the intensity, in seconds (default 5, as Elixir). */
  maxSeconds?: number;
  /** Default `never`. */
  autoShutdown?: AutoShutdown;
  /** Register the supervisor under this name. */
  name?: string | { registry: import("./registry.ts").Registry; key: unknown };
  /** Most children (a limit, default 100,000). */
  childrenMax?: number;
  /** Label in the tree and logs (default "supervisor"). */
  label?: string;
}

/** Counts of `countChildren`, as Elixir's. */
export interface ChildCounts {
  /** All child specs. */
  readonly specs: number;
  /** Children with a live process. */
  readonly active: number;
  /** Children of type supervisor. */
  readonly supervisors: number;
  /** Children of type worker. */
  readonly workers: number;
}

interface Child {
  readonly spec: NormalSpec;
  pid: Pid | null;
  status: ChildInfo["status"];
  restartCount: number;
}

interface State {
  readonly strategy: Strategy;
  readonly autoShutdown: AutoShutdown;
  readonly intensity: Intensity;
  readonly childrenMax: number;
  children: Child[];
}

interface Args {
  readonly specs: NormalSpec[];
  readonly options: Required<Omit<SupervisorOptions, "name" | "label">>;
}

type Request =
  | { readonly op: "start_child"; readonly spec: NormalSpec }
  | { readonly op: "terminate_child"; readonly id: string }
  | { readonly op: "restart_child"; readonly id: string }
  | { readonly op: "delete_child"; readonly id: string }
  | { readonly op: "which_children" }
  | { readonly op: "count_children" };

interface TryAgain {
  readonly type: "$supervisor_try_again";
  readonly id: string;
}

type Result = NoReplyResult<State>;

function info(child: Child): ChildInfo {
  return {
    id: child.spec.id,
    pid: child.pid,
    type: child.spec.type,
    status: child.status,
    restartCount: child.restartCount,
  };
}

/** Starts one child; on failure returns the reason. */
async function startOne(ctx: Context, child: Child): Promise<ExitReason | null> {
  try {
    const pid = checkPid(await child.spec.start(ctx), child.spec.id);
    ctx.link(pid);
    child.pid = pid;
    child.status = "running";
    return null;
  } catch (error) {
    if (error instanceof StartError && error.ignored) {
      child.pid = null;
      child.status = "ignored";
      return null;
    }
    const reason = error instanceof StartError ? error.reason : toExitReason(error);
    ctx.emit({ type: "child_start_failed", supervisor: ctx.self, id: child.spec.id, reason });
    return reason;
  }
}

async function terminateOne(ctx: Context, child: Child): Promise<void> {
  const pid = child.pid;
  child.pid = null;
  child.status = "terminated";
  if (pid === null) return;
  const reason = await shutdownChild(ctx, pid, child.spec.shutdown);
  ctx.emit({ type: "child_terminated", supervisor: ctx.self, id: child.spec.id, pid, reason });
}

async function terminateAll(ctx: Context, children: Child[]): Promise<void> {
  for (let i = children.length - 1; i >= 0; i--) await terminateOne(ctx, children[i]!);
}

function stopFor(state: State, ctx: Context, cause: "max_intensity" | "auto_shutdown"): Result {
  ctx.emit({ type: "supervisor_shutdown", supervisor: ctx.self, cause });
  return { stop: "shutdown", state };
}

/** Restarts `child` (and its group, by strategy); counts against the intensity. */
async function restart(state: State, ctx: Context, child: Child): Promise<Result> {
  if (!state.intensity.add(ctx.now())) return stopFor(state, ctx, "max_intensity");
  const index = state.children.indexOf(child);
  let group: Child[];
  if (state.strategy === "one_for_one") group = [child];
  else if (state.strategy === "one_for_all") group = [...state.children];
  else group = state.children.slice(index);
  const others = group.filter((c) => c !== child);
  await terminateAll(ctx, others);
  // Temporary children stopped by the strategy are not restarted: they go away.
  const gone = new Set(others.filter((c) => c.spec.restart === "temporary"));
  if (gone.size > 0) state.children = state.children.filter((c) => !gone.has(c));
  for (const member of group) {
    if (gone.has(member)) continue;
    const failed = await startOne(ctx, member);
    if (failed !== null) {
      member.status = "restarting";
      const again: TryAgain = { type: "$supervisor_try_again", id: member.spec.id };
      ctx.send(ctx.self, again);
      break;
    }
    member.restartCount++;
    if (member.pid !== null) {
      ctx.emit({
        type: "child_restarted",
        supervisor: ctx.self,
        id: member.spec.id,
        pid: member.pid,
        restartCount: member.restartCount,
      });
    }
  }
  return { state };
}

async function onExit(state: State, ctx: Context, msg: ExitMessage): Promise<Result> {
  const child = state.children.find((c) => c.pid === msg.from);
  if (child === undefined) return { state }; // stale: a child already stopped or replaced
  ctx.emit({
    type: "child_exited",
    supervisor: ctx.self,
    id: child.spec.id,
    pid: msg.from,
    reason: msg.reason,
  });
  child.pid = null;
  if (shouldRestart(child.spec.restart, msg.reason)) return await restart(state, ctx, child);
  child.status = "terminated";
  if (child.spec.restart === "temporary") {
    state.children = state.children.filter((c) => c !== child);
  }
  if (child.spec.significant) {
    if (state.autoShutdown === "any_significant") return stopFor(state, ctx, "auto_shutdown");
    if (
      state.autoShutdown === "all_significant" &&
      !state.children.some((c) => c.spec.significant && c.pid !== null)
    ) {
      return stopFor(state, ctx, "auto_shutdown");
    }
  }
  return { state };
}

function refuse<T>(code: SupervisorError["code"], message: string): Answer<T> {
  return { ok: false, code, message };
}

async function handle(state: State, ctx: Context, req: Request): Promise<Answer<unknown>> {
  if (req.op === "which_children") return { ok: true, value: state.children.map(info) };
  if (req.op === "count_children") {
    const counts: ChildCounts = {
      specs: state.children.length,
      active: state.children.filter((c) => c.pid !== null).length,
      supervisors: state.children.filter((c) => c.spec.type === "supervisor").length,
      workers: state.children.filter((c) => c.spec.type === "worker").length,
    };
    return { ok: true, value: counts };
  }
  if (req.op === "start_child") {
    const spec = req.spec;
    const existing = state.children.find((c) => c.spec.id === spec.id);
    if (existing !== undefined) {
      return existing.pid !== null
        ? refuse(
          "already_started",
          `Cannot start child ${spec.id}: already started as ${existing.pid}`,
        )
        : refuse(
          "already_present",
          `Cannot start child ${spec.id}: a spec with this id exists; restart or delete it`,
        );
    }
    if (spec.significant && state.autoShutdown === "never") {
      return refuse(
        "invalid_child_spec",
        `Cannot start child ${spec.id}: significant children need auto_shutdown any_significant or all_significant`,
      );
    }
    if (state.children.length >= state.childrenMax) {
      return refuse(
        "max_children",
        `Cannot start child ${spec.id}: childrenMax ${state.childrenMax} reached`,
      );
    }
    const child: Child = { spec, pid: null, status: "terminated", restartCount: 0 };
    const failed = await startOne(ctx, child);
    if (failed !== null) return { ok: false, startFailed: failed };
    if (child.status === "ignored" && spec.restart === "temporary") {
      return { ok: true, value: null };
    }
    state.children.push(child);
    if (child.pid !== null) {
      ctx.emit({ type: "child_started", supervisor: ctx.self, id: spec.id, pid: child.pid });
    }
    return { ok: true, value: child.pid };
  }
  const child = state.children.find((c) => c.spec.id === req.id);
  if (child === undefined) {
    return refuse("not_found", `Cannot ${req.op.replace("_", " ")} ${req.id}: no such child`);
  }
  if (req.op === "terminate_child") {
    await terminateOne(ctx, child);
    if (child.spec.restart === "temporary") {
      state.children = state.children.filter((c) => c !== child);
    }
    return { ok: true, value: undefined };
  }
  if (child.pid !== null) {
    return refuse("running", `Cannot ${req.op.replace("_", " ")} ${req.id}: it is running`);
  }
  if (child.status === "restarting") {
    return refuse(
      "restarting",
      `Cannot ${req.op.replace("_", " ")} ${req.id}: a restart is pending`,
    );
  }
  if (req.op === "delete_child") {
    state.children = state.children.filter((c) => c !== child);
    return { ok: true, value: undefined };
  }
  const failed = await startOne(ctx, child);
  if (failed !== null) return { ok: false, startFailed: failed };
  if (child.pid !== null) {
    ctx.emit({ type: "child_started", supervisor: ctx.self, id: child.spec.id, pid: child.pid });
  }
  return { ok: true, value: child.pid };
}

const SupervisorServer: GenServer<Args, State, Request, Answer<unknown>, never, TryAgain> = {
  label: "supervisor",
  async init(args, ctx) {
    ctx.trapExit(true);
    const o = args.options;
    const state: State = {
      strategy: o.strategy,
      autoShutdown: o.autoShutdown,
      intensity: new Intensity(o.maxRestarts, o.maxSeconds),
      childrenMax: o.childrenMax,
      children: [],
    };
    ctx.setInspector(() => state.children.map(info));
    for (const spec of args.specs) {
      const child: Child = { spec, pid: null, status: "terminated", restartCount: 0 };
      const failed = await startOne(ctx, child);
      if (failed !== null) {
        await terminateAll(ctx, state.children);
        return { stop: shutdownWith({ failedToStartChild: spec.id, reason: failed }) };
      }
      if (child.status === "ignored" && spec.restart === "temporary") continue;
      state.children.push(child);
      if (child.pid !== null) {
        ctx.emit({ type: "child_started", supervisor: ctx.self, id: spec.id, pid: child.pid });
      }
    }
    return { state };
  },
  async handleCall(req, _from, state, ctx) {
    return { reply: await handle(state, ctx, req), state };
  },
  async handleInfo(msg, state, ctx) {
    if (msg.type === "EXIT") return await onExit(state, ctx, msg);
    if (msg.type === "$supervisor_try_again") {
      const child = state.children.find((c) => c.spec.id === msg.id);
      if (child === undefined || child.status !== "restarting") return { state };
      return await restart(state, ctx, child);
    }
    return { state };
  },
  async terminate(_reason, state, ctx) {
    await terminateAll(ctx, state.children);
  },
};

function prepare(specs: readonly ChildSpec[], options: SupervisorOptions): Args {
  const strategy = options.strategy ?? "one_for_one";
  if (!["one_for_one", "one_for_all", "rest_for_one"].includes(strategy)) {
    throw new TypeError(
      `Cannot start supervisor: strategy "${strategy}"; allowed: one_for_one, one_for_all, rest_for_one`,
    );
  }
  const autoShutdown = options.autoShutdown ?? "never";
  if (!["never", "any_significant", "all_significant"].includes(autoShutdown)) {
    throw new TypeError(
      `Cannot start supervisor: autoShutdown "${autoShutdown}"; allowed: never, any_significant, all_significant`,
    );
  }
  const childrenMax = options.childrenMax ?? 100_000;
  if (!Number.isInteger(childrenMax) || childrenMax < 1) {
    throw new RangeError(
      `Cannot start supervisor: childrenMax ${childrenMax}; allowed: an integer >= 1`,
    );
  }
  if (specs.length > childrenMax) {
    throw new RangeError(
      `Cannot start supervisor: ${specs.length} children > childrenMax ${childrenMax}`,
    );
  }
  const maxRestarts = options.maxRestarts ?? 3;
  const maxSeconds = options.maxSeconds ?? 5;
  new Intensity(maxRestarts, maxSeconds); // validates
  const seen = new Set<string>();
  const normal = specs.map((s) => {
    const spec = normalizeSpec(s, "supervisor");
    if (seen.has(spec.id)) {
      throw new TypeError(`Cannot start supervisor: duplicate child id ${spec.id}`);
    }
    seen.add(spec.id);
    if (spec.significant && autoShutdown === "never") {
      throw new TypeError(
        `Invalid child spec ${spec.id}: significant with autoShutdown never; ` +
          `allowed: significant only with any_significant or all_significant`,
      );
    }
    return spec;
  });
  return {
    specs: normal,
    options: { strategy, autoShutdown, childrenMax, maxRestarts, maxSeconds },
  };
}

function labelled(label: string | undefined): typeof SupervisorServer {
  return label === undefined ? SupervisorServer : { ...SupervisorServer, label };
}

function spawnOptions(options: SupervisorOptions) {
  return options.name === undefined ? { trapExit: true } : { trapExit: true, name: options.name };
}

/**
 * Supervisor functions, as Elixir's `Supervisor` module. `caller` is the
 * runtime (outside any process) or a process's context.
 *
 * @example
 * ```ts
 * import { Runtime, Supervisor, workerSpec, type GenServer } from "./mod.ts";
 * const Worker: GenServer<string, string, "who", string> = {
 *   init: (name) => ({ state: name }),
 *   handleCall: (_m, _f, s) => ({ reply: s, state: s }),
 * };
 * const rt = new Runtime();
 * const sup = await Supervisor.start(rt, [
 *   workerSpec("a", Worker, "a", { name: "a" }),
 *   workerSpec("b", Worker, "b"),
 * ], { strategy: "one_for_one" });
 * console.assert((await rt.call("a", "who")) === "a");
 * console.assert((await Supervisor.countChildren(rt, sup)).active === 2);
 * await rt.stop(sup, "shutdown");
 * rt.close();
 * ```
 */
export class Supervisor {
  /**
   * Starts a supervisor (not linked to the caller) and its children, in order.
   *
   * @returns Its pid, once every child started.
   * @throws {TypeError | RangeError} On malformed specs or options.
   * @throws {StartError} (rejection) If a child failed to start; reason `{ shutdown: { failedToStartChild, reason } }`.
   */
  static start(
    caller: Caller,
    children: readonly ChildSpec[],
    options: SupervisorOptions = {},
  ): Promise<Pid> {
    return caller.start(labelled(options.label), prepare(children, options), spawnOptions(options));
  }

  /** Starts a supervisor linked to the calling process (use in a child spec's `start`). */
  static startLink(
    ctx: Context,
    children: readonly ChildSpec[],
    options: SupervisorOptions = {},
  ): Promise<Pid> {
    return ctx.startLink(
      labelled(options.label),
      prepare(children, options),
      spawnOptions(options),
    );
  }

  /**
   * Adds and starts a child (appended: started last, stopped first).
   *
   * @returns Its pid, or null if its init returned ignore.
   * @throws {SupervisorError} already_started, already_present, max_children, invalid_child_spec.
   * @throws {StartError} If it failed to start (the spec is not kept).
   */
  static async startChild(caller: Caller, sup: Target, spec: ChildSpec): Promise<Pid | null> {
    const req: Request = { op: "start_child", spec: normalizeSpec(spec, "startChild") };
    return unwrap(await callSupervisor<Request>(caller, sup, req), `start child ${spec.id}`) as
      | Pid
      | null;
  }

  /** Stops a child with its shutdown procedure; its spec stays (unless temporary). @throws {SupervisorError} not_found */
  static async terminateChild(caller: Caller, sup: Target, id: string): Promise<void> {
    unwrap(
      await callSupervisor<Request>(caller, sup, { op: "terminate_child", id }),
      `terminate child ${id}`,
    );
  }

  /** Starts a stopped child again. @throws {SupervisorError} not_found, running, restarting. @throws {StartError} */
  static async restartChild(caller: Caller, sup: Target, id: string): Promise<Pid | null> {
    return unwrap(
      await callSupervisor<Request>(caller, sup, { op: "restart_child", id }),
      `restart child ${id}`,
    ) as
      | Pid
      | null;
  }

  /** Removes a stopped child's spec. @throws {SupervisorError} not_found, running, restarting */
  static async deleteChild(caller: Caller, sup: Target, id: string): Promise<void> {
    unwrap(
      await callSupervisor<Request>(caller, sup, { op: "delete_child", id }),
      `delete child ${id}`,
    );
  }

  /** The children, in start order. */
  static whichChildren(caller: Caller, sup: Target): Promise<ChildInfo[]> {
    return whichChildren(caller, sup);
  }

  /** Counts of specs, active children, supervisors and workers. */
  static countChildren(caller: Caller, sup: Target): Promise<ChildCounts> {
    return countChildren(caller, sup);
  }
}

/**
 * A child spec for a GenServer, started linked to the supervisor.
 *
 * @param id The child id.
 * @param def The GenServer.
 * @param args Its init argument.
 * @param options Spawn options (name, trapExit, mailboxMax) and spec fields.
 * @returns The spec.
 * @example
 * ```ts
 * import { workerSpec, type GenServer } from "./mod.ts";
 * const W: GenServer<void, null> = { init: () => ({ state: null }) };
 * const spec = workerSpec("w", W, undefined, { restart: "transient", shutdown: 1000 });
 * console.assert(spec.id === "w" && spec.restart === "transient");
 * ```
 */
export function workerSpec<A, S, C, R, K, I>(
  id: string,
  def: GenServer<A, S, C, R, K, I>,
  args: A,
  options: Omit<ChildSpec, "id" | "start" | "type"> & import("./runtime.ts").SpawnOptions = {},
): ChildSpec {
  const { restart, shutdown, significant, ...spawn } = options;
  return {
    id,
    start: (ctx) => ctx.startLink(def, args, spawn),
    type: "worker",
    ...(restart === undefined ? {} : { restart }),
    ...(shutdown === undefined ? {} : { shutdown }),
    ...(significant === undefined ? {} : { significant }),
  };
}

/**
 * A child spec for a nested supervisor.
 *
 * @param id The child id.
 * @param children Its children.
 * @param options Its options and spec fields (restart, shutdown, significant).
 * @returns The spec.
 * @example
 * ```ts
 * import { supervisorSpec } from "./mod.ts";
 * const spec = supervisorSpec("regions", [], { strategy: "one_for_all" });
 * console.assert(spec.type === "supervisor");
 * ```
 */
export function supervisorSpec(
  id: string,
  children: readonly ChildSpec[],
  options: SupervisorOptions & Omit<ChildSpec, "id" | "start" | "type"> = {},
): ChildSpec {
  const { restart, shutdown, significant, ...sup } = options;
  return {
    id,
    start: (ctx) => Supervisor.startLink(ctx, children, sup),
    type: "supervisor",
    ...(restart === undefined ? {} : { restart }),
    ...(shutdown === undefined ? {} : { shutdown }),
    ...(significant === undefined ? {} : { significant }),
  };
}

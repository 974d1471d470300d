/**
 * DynamicSupervisor: children started on demand (e.g. one per region peer
 * or client connection), restarted one_for_one within a restart
 * intensity, bounded by `maxChildren`. After Elixir's `DynamicSupervisor`.
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
import { StartError } from "./errors.ts";
import { type ExitReason, toExitReason } from "./exit_reason.ts";
import type { ExitMessage, GenServer, NoReplyResult } from "./gen_server.ts";
import type { Pid } from "./pid.ts";
import type { Registry } from "./registry.ts";
import type { ChildInfo, Context, Target } from "./runtime.ts";
import type { ChildCounts } from "./supervisor.ts";

/** Options of a DynamicSupervisor. */
export interface DynamicSupervisorOptions {
  /** Most children at once (default Infinity, as Elixir's :infinity). */
  maxChildren?: number;
  /** Restarts allowed within maxSeconds (default 3). */
  maxRestarts?: number;
  /** The intensity window in seconds (default 5). */
  maxSeconds?: number;
  /** Register under this name. */
  name?: string | { registry: Registry; key: unknown };
  /** Label in the tree and logs (default "dynamic_supervisor"). */
  label?: string;
}

/**
 * A dynamic child's spec. The id is optional: without one, the child is
 * listed and reported by its current pid's text (give one to follow it across restarts).
 * There is no `significant`: a DynamicSupervisor has no auto_shutdown.
 */
export type DynamicChildSpec = Omit<ChildSpec, "id" | "significant"> & { readonly id?: string };

/** The id given to children started without one. */
const ANONYMOUS = "\u0000anonymous";

interface Child {
  readonly serial: number;
  readonly spec: NormalSpec;
  pid: Pid | null;
  restarting: boolean;
  restartCount: number;
}

interface State {
  readonly maxChildren: number;
  readonly intensity: Intensity;
  readonly children: Map<number, Child>;
  nextSerial: number;
}

type Request =
  | { readonly op: "start_child"; readonly spec: NormalSpec }
  | { readonly op: "terminate_child"; readonly pid: Pid }
  | { readonly op: "which_children" }
  | { readonly op: "count_children" };

interface TryAgain {
  readonly type: "$dynamic_try_again";
  readonly serial: number;
}

type Result = NoReplyResult<State>;

/** The spec's id if one was given, else the current pid's text (or `#serial` while it has none). */
function idOf(child: Child): string {
  if (child.spec.id !== ANONYMOUS) return child.spec.id;
  return child.pid === null ? `#${child.serial}` : String(child.pid);
}

function info(child: Child): ChildInfo {
  return {
    id: idOf(child),
    pid: child.pid,
    type: child.spec.type,
    status: child.restarting ? "restarting" : "running",
    restartCount: child.restartCount,
  };
}

async function startOne(ctx: Context, child: Child): Promise<ExitReason | "ignore" | null> {
  try {
    const pid = checkPid(await child.spec.start(ctx), idOf(child));
    ctx.link(pid);
    child.pid = pid;
    child.restarting = false;
    return null;
  } catch (error) {
    if (error instanceof StartError && error.ignored) return "ignore";
    const reason = error instanceof StartError ? error.reason : toExitReason(error);
    ctx.emit({ type: "child_start_failed", supervisor: ctx.self, id: idOf(child), reason });
    return reason;
  }
}

function find(state: State, pid: Pid): Child | undefined {
  for (const child of state.children.values()) if (child.pid === pid) return child;
  return undefined;
}

async function restart(state: State, ctx: Context, child: Child): Promise<Result> {
  if (!state.intensity.add(ctx.now())) {
    ctx.emit({ type: "supervisor_shutdown", supervisor: ctx.self, cause: "max_intensity" });
    return { stop: "shutdown", state };
  }
  const failed = await startOne(ctx, child);
  if (failed === "ignore") {
    state.children.delete(child.serial);
  } else if (failed !== null) {
    child.restarting = true;
    const again: TryAgain = { type: "$dynamic_try_again", serial: child.serial };
    ctx.send(ctx.self, again);
  } else {
    child.restartCount++;
    ctx.emit({
      type: "child_restarted",
      supervisor: ctx.self,
      id: idOf(child),
      pid: child.pid!,
      restartCount: child.restartCount,
    });
  }
  return { state };
}

async function onExit(state: State, ctx: Context, msg: ExitMessage): Promise<Result> {
  const child = find(state, msg.from);
  if (child === undefined) return { state };
  ctx.emit({
    type: "child_exited",
    supervisor: ctx.self,
    id: idOf(child),
    pid: msg.from,
    reason: msg.reason,
  });
  child.pid = null;
  if (!shouldRestart(child.spec.restart, msg.reason)) {
    state.children.delete(child.serial);
    return { state };
  }
  return await restart(state, ctx, child);
}

async function terminateOne(ctx: Context, child: Child): Promise<void> {
  const pid = child.pid;
  child.pid = null;
  if (pid === null) return;
  const reason = await shutdownChild(ctx, pid, child.spec.shutdown);
  ctx.emit({ type: "child_terminated", supervisor: ctx.self, id: idOf(child), pid, reason });
}

async function handle(state: State, ctx: Context, req: Request): Promise<Answer<unknown>> {
  switch (req.op) {
    case "which_children":
      return { ok: true, value: [...state.children.values()].map(info) };
    case "count_children": {
      const all = [...state.children.values()];
      const counts: ChildCounts = {
        specs: all.length,
        active: all.filter((c) => c.pid !== null).length,
        supervisors: all.filter((c) => c.spec.type === "supervisor").length,
        workers: all.filter((c) => c.spec.type === "worker").length,
      };
      return { ok: true, value: counts };
    }
    case "terminate_child": {
      const child = find(state, req.pid);
      if (child === undefined) {
        return {
          ok: false,
          code: "not_found",
          message: `Cannot terminate ${req.pid}: not a child`,
        };
      }
      state.children.delete(child.serial);
      await terminateOne(ctx, child);
      return { ok: true, value: undefined };
    }
    case "start_child": {
      if (state.children.size >= state.maxChildren) {
        return {
          ok: false,
          code: "max_children",
          message: `Cannot start child: maxChildren ${state.maxChildren} reached`,
        };
      }
      const child: Child = {
        serial: state.nextSerial++,
        spec: req.spec,
        pid: null,
        restarting: false,
        restartCount: 0,
      };
      const failed = await startOne(ctx, child);
      if (failed === "ignore") return { ok: true, value: null };
      if (failed !== null) return { ok: false, startFailed: failed };
      state.children.set(child.serial, child);
      ctx.emit({ type: "child_started", supervisor: ctx.self, id: idOf(child), pid: child.pid! });
      return { ok: true, value: child.pid };
    }
  }
}

interface Args {
  readonly maxChildren: number;
  readonly maxRestarts: number;
  readonly maxSeconds: number;
}

const DynamicServer: GenServer<Args, State, Request, Answer<unknown>, never, TryAgain> = {
  label: "dynamic_supervisor",
  init(args, ctx) {
    ctx.trapExit(true);
    const state: State = {
      maxChildren: args.maxChildren,
      intensity: new Intensity(args.maxRestarts, args.maxSeconds),
      children: new Map(),
      nextSerial: 1,
    };
    ctx.setInspector(() => [...state.children.values()].map(info));
    return { state };
  },
  async handleCall(req, _from, state, ctx) {
    return { reply: await handle(state, ctx, req), state };
  },
  async handleInfo(msg, state, ctx) {
    if (msg.type === "EXIT") return await onExit(state, ctx, msg);
    if (msg.type === "$dynamic_try_again") {
      const child = state.children.get(msg.serial);
      if (child === undefined || !child.restarting) return { state };
      return await restart(state, ctx, child);
    }
    return { state };
  },
  async terminate(_reason, state, ctx) {
    // As Elixir's DynamicSupervisor: all children are asked to stop at once.
    const children = [...state.children.values()];
    state.children.clear();
    await Promise.all(children.map((child) => terminateOne(ctx, child)));
  },
};

function prepare(options: DynamicSupervisorOptions): Args {
  const maxChildren = options.maxChildren ?? Infinity;
  if (!(maxChildren >= 1) || (maxChildren !== Infinity && !Number.isInteger(maxChildren))) {
    throw new RangeError(
      `Cannot start dynamic supervisor: maxChildren ${maxChildren}; allowed: an integer >= 1 or Infinity`,
    );
  }
  const maxRestarts = options.maxRestarts ?? 3;
  const maxSeconds = options.maxSeconds ?? 5;
  new Intensity(maxRestarts, maxSeconds); // validates
  return { maxChildren, maxRestarts, maxSeconds };
}

function spawnOptions(options: DynamicSupervisorOptions) {
  return options.name === undefined ? { trapExit: true } : { trapExit: true, name: options.name };
}

function labelled(label: string | undefined): typeof DynamicServer {
  return label === undefined ? DynamicServer : { ...DynamicServer, label };
}

/**
 * DynamicSupervisor functions, as Elixir's `DynamicSupervisor` module.
 *
 * @example
 * ```ts
 * import { DynamicSupervisor, Runtime, type GenServer } from "./mod.ts";
 * const Peer: GenServer<number, number> = { init: (id) => ({ state: id }) };
 * const rt = new Runtime();
 * const sup = await DynamicSupervisor.start(rt, { maxChildren: 2 });
 * await DynamicSupervisor.startChild(rt, sup, { start: (ctx) => ctx.startLink(Peer, 1) });
 * console.assert((await DynamicSupervisor.countChildren(rt, sup)).active === 1);
 * await rt.stop(sup, "shutdown");
 * rt.close();
 * ```
 */
export class DynamicSupervisor {
  /** Starts an empty dynamic supervisor (not linked to the caller). @throws {RangeError} */
  static start(caller: Caller, options: DynamicSupervisorOptions = {}): Promise<Pid> {
    return caller.start(labelled(options.label), prepare(options), spawnOptions(options));
  }

  /** Starts one linked to the calling process (use in a child spec's `start`). */
  static startLink(ctx: Context, options: DynamicSupervisorOptions = {}): Promise<Pid> {
    return ctx.startLink(labelled(options.label), prepare(options), spawnOptions(options));
  }

  /**
   * A child spec that runs a DynamicSupervisor under a Supervisor.
   *
   * @param id The child id.
   * @param options Its options.
   * @returns The spec (type supervisor, shutdown infinity).
   */
  static childSpec(id: string, options: DynamicSupervisorOptions = {}): ChildSpec {
    return { id, type: "supervisor", start: (ctx) => DynamicSupervisor.startLink(ctx, options) };
  }

  /**
   * Starts a child.
   *
   * @returns Its pid, or null if its init returned ignore.
   * @throws {TypeError | RangeError} On a malformed spec (or one marked significant).
   * @throws {SupervisorError} max_children.
   * @throws {StartError} If it failed to start.
   */
  static async startChild(
    caller: Caller,
    sup: Target,
    spec: DynamicChildSpec,
  ): Promise<Pid | null> {
    if ((spec as ChildSpec).significant === true) {
      throw new TypeError(
        "Invalid child spec in DynamicSupervisor.startChild: significant; " +
          "a DynamicSupervisor has no auto_shutdown, so allowed: false or absent",
      );
    }
    const normal = normalizeSpec(
      { ...spec, id: spec.id ?? ANONYMOUS },
      "DynamicSupervisor.startChild",
    );
    return unwrap(
      await callSupervisor<Request>(caller, sup, { op: "start_child", spec: normal }),
      "start child",
    ) as
      | Pid
      | null;
  }

  /** Stops a child and forgets it. @throws {SupervisorError} not_found */
  static async terminateChild(caller: Caller, sup: Target, pid: Pid): Promise<void> {
    unwrap(
      await callSupervisor<Request>(caller, sup, { op: "terminate_child", pid }),
      `terminate child ${pid}`,
    );
  }

  /** The children, oldest first. */
  static whichChildren(caller: Caller, sup: Target): Promise<ChildInfo[]> {
    return whichChildren(caller, sup);
  }

  /** Counts of specs, active children, supervisors and workers. */
  static countChildren(caller: Caller, sup: Target): Promise<ChildCounts> {
    return countChildren(caller, sup);
  }
}

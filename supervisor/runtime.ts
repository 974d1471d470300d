/**
 * The actor runtime: processes with bounded mailboxes running GenServer
 * callbacks one message at a time; call/cast/send, timers, links, exit
 * trapping, monitors, exit signals and names, with OTP's rules.
 *
 * @module
 */

import { type Clock, systemTime, type TimerHost } from "./clock.ts";
import { Deque } from "./_deque.ts";
import {
  CallExitError,
  CallTimeoutError,
  MailboxFullError,
  NoProcessError,
  StartError,
  SystemLimitError,
} from "./errors.ts";
import type { EventListener, RuntimeEvent } from "./events.ts";
import { type ExitReason, formatReason, isCleanExit, toExitReason } from "./exit_reason.ts";
import type { DownMessage, ExitMessage, From, GenServer } from "./gen_server.ts";
import { Pid, Ref } from "./pid.ts";
import { Registry, type RegistryHost } from "./registry.ts";
import { type TimerEntry, TimerQueue } from "./_timer_queue.ts";

/** An address: a pid, a name in the runtime's registry, or `{ registry, key }` (OTP's via). */
export type Target<Call = unknown, Reply = unknown, Cast = unknown> =
  | Pid<Call, Reply, Cast>
  | string
  | Via;

/** A name in a specific {@linkcode Registry} (OTP's `{via, Module, Name}`). */
export interface Via {
  /** The registry. */
  readonly registry: Registry;
  /** The name in it. */
  readonly key: unknown;
}

/** Options of {@linkcode Runtime}. */
export interface RuntimeOptions {
  /** Monotonic clock (default: `performance.now`). */
  clock?: Clock;
  /** Host timer (default: `setTimeout`). Pass a `ManualClock` as both to control time. */
  timers?: TimerHost;
  /** Default mailbox limit per process (default 100,000 messages). */
  mailboxMax?: number;
  /** Most live processes (default 1,048,576, as OTP's default). */
  processesMax?: number;
  /** Most pending `sendAfter` timers per process (default 100,000). */
  timersPerProcessMax?: number;
  /** Messages one process handles before others get a turn (default 64). */
  turnMessagesMax?: number;
  /**
   * Where crash reports go: called when a process ends itself abnormally (a
   * callback threw or rejected, init failed, or it stopped with an error;
   * not when an exit signal killed it, as OTP), when a child fails to start,
   * and when a supervisor shuts itself down. Default: `console.error`.
   * Pass `() => {}` to mute.
   */
  report?: (event: RuntimeEvent) => void;
}

/** Options of `spawn`/`start`. */
export interface SpawnOptions {
  /** Register the process under this name before `init` runs. */
  name?: string | Via;
  /** Trap exits from the start (as `Process.flag(:trap_exit, true)` in init). */
  trapExit?: boolean;
  /** This process's mailbox limit (default: the runtime's). */
  mailboxMax?: number;
}

/** Options of `call`. */
export interface CallOptions {
  /** How long to wait for the reply (default 5000; `Infinity` waits forever). */
  timeoutMs?: number;
}

/** A running `sendAfter` timer, for `cancelTimer`. Opaque. */
export interface TimerRef {
  /** Phantom brand. */
  readonly __timer?: true;
}

/** A snapshot of one process, for observability. */
export interface ProcessInfo {
  /** The process. */
  readonly pid: Pid;
  /** Its GenServer's label. */
  readonly label: string;
  /** `idle` (waiting for messages), `busy` (queued or running a callback), `exiting` (in terminate). */
  readonly status: "idle" | "busy" | "exiting";
  /** Messages waiting. */
  readonly mailboxLength: number;
  /** Its mailbox limit. */
  readonly mailboxMax: number;
  /** Whether it traps exits. */
  readonly trapExit: boolean;
  /** The process that started it, if any. */
  readonly parent: Pid | null;
  /** Linked processes. */
  readonly links: Pid[];
  /** How many monitors watch it. */
  readonly monitoredBy: number;
  /** Pending `sendAfter` timers that belong to it. */
  readonly timers: number;
  /** Calls it holds for a deferred reply. */
  readonly deferredCalls: number;
}

/** What a supervisor-like process reports about its children (see `Context.setInspector`). */
export interface ChildInfo {
  /** The child's id. */
  readonly id: string;
  /** Its process, or null when not running. */
  readonly pid: Pid | null;
  /** worker or supervisor. */
  readonly type: "worker" | "supervisor";
  /** running, restarting (a restart failed and is retried), terminated, or ignored (start returned ignore). */
  readonly status: "running" | "restarting" | "terminated" | "ignored";
  /** How often the supervisor restarted it. */
  readonly restartCount: number;
}

// deno-lint-ignore no-explicit-any
type AnyServer = GenServer<any, any, any, any, any, any>;

const IDLE = 0;
const QUEUED = 1;
const DEAD = 2;

const INIT = 0;
const CALL = 1;
const CAST = 2;
const INFO = 3;
const EXIT = 4;
const STOP = 5;

type Kind = typeof INIT | typeof CALL | typeof CAST | typeof INFO | typeof EXIT | typeof STOP;

class Envelope {
  constructor(readonly kind: Kind, readonly msg: unknown) {}
}

class CallRecord implements TimerEntry, From {
  readonly kind = CALL;
  at = 0;
  seq = 0;
  cancelled = true;
  settled = false;
  owner: Proc | null = null;
  declare readonly __reply?: unknown;

  constructor(
    readonly msg: unknown,
    readonly resolve: (value: unknown) => void,
    readonly reject: (error: Error) => void,
    readonly target: Proc,
    readonly caller: Pid | null,
    readonly timeoutMs: number,
    readonly kernel: Kernel,
  ) {}

  fire(): void {
    this.kernel.timeoutCall(this);
  }
}

class SendTimer implements TimerEntry, TimerRef {
  declare readonly __timer?: true;
  at = 0;
  seq = 0;
  cancelled = true;

  constructor(
    readonly kernel: Kernel,
    readonly dest: Target,
    readonly msg: unknown,
    readonly owner: Proc | null,
  ) {}

  fire(): void {
    this.kernel.fireSendTimer(this);
  }
}

class WaitTimer implements TimerEntry {
  at = 0;
  seq = 0;
  cancelled = true;
  constructor(readonly onFire: () => void) {}
  fire(): void {
    this.onFire();
  }
}

type Waiter = (reason: ExitReason) => void;

class Proc {
  state: unknown = undefined;
  status: number = IDLE;
  exiting = false;
  initialized = false;
  readonly mailbox = new Deque<Envelope | CallRecord>(2);
  links: Set<Proc> | null = null;
  monitoredBy: Map<Ref, Proc> | null = null;
  monitoring: Map<Ref, Proc> | null = null;
  timers: Set<SendTimer> | null = null;
  deferred: Set<CallRecord> | null = null;
  current: CallRecord | null = null;
  names: Array<[Registry, unknown]> | null = null;
  exitWaiters: Waiter[] | null = null;
  starter: { resolve: (pid: Pid) => void; reject: (error: Error) => void } | null = null;
  inspector: (() => ChildInfo[]) | null = null;
  readonly ctx: Context;

  constructor(
    readonly pid: Pid,
    readonly def: AnyServer,
    readonly parent: Proc | null,
    public trapExit: boolean,
    readonly mailboxMax: number,
    kernel: Kernel,
  ) {
    this.ctx = new Context(kernel, this);
  }

  get label(): string {
    return this.def.label ?? "gen_server";
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === "object" && value !== null &&
    typeof (value as { then?: unknown }).then === "function";
}

function checkLimit(what: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`Cannot create runtime: ${what} ${value}; allowed: an integer >= 1`);
  }
  return value;
}

/** The engine behind Runtime and Context. Not exported from the folder. */
class Kernel implements RegistryHost {
  readonly procs = new Map<number, Proc>();
  readonly registry: Registry;
  readonly clock: Clock;
  readonly timers: TimerQueue;
  readonly mailboxMax: number;
  readonly processesMax: number;
  readonly timersPerProcessMax: number;
  readonly turnMessagesMax: number;
  readonly listeners = new Set<EventListener>();
  readonly report: (event: RuntimeEvent) => void;
  readonly runtimePid = new Pid(0);
  #nextPid = 1;
  #nextRef = 1;
  #ready = new Deque<Proc>(16);
  #flushQueued = false;
  #flushTimer: ReturnType<typeof setTimeout> | undefined = undefined;
  #busy = 0;
  #idleWaiters: Array<() => void> = [];
  closed = false;

  constructor(runtime: Runtime, options: RuntimeOptions) {
    const time = systemTime();
    this.clock = options.clock ?? time;
    this.timers = new TimerQueue(this.clock, options.timers ?? time);
    this.mailboxMax = checkLimit("mailboxMax", options.mailboxMax ?? 100_000);
    this.processesMax = checkLimit("processesMax", options.processesMax ?? 1_048_576);
    this.timersPerProcessMax = checkLimit(
      "timersPerProcessMax",
      options.timersPerProcessMax ?? 100_000,
    );
    this.turnMessagesMax = checkLimit("turnMessagesMax", options.turnMessagesMax ?? 64);
    this.report = options.report ?? defaultReport;
    this.registry = new Registry(runtime);
  }

  // ---- events ----------------------------------------------------------------

  emit(event: RuntimeEvent): void {
    if (
      (event.type === "supervisor_shutdown" || event.type === "child_start_failed") &&
      !this.closed
    ) {
      this.report(event);
    }
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (error) {
        this.listeners.delete(listener);
        console.error("Event listener removed: it threw", error);
      }
    }
  }

  // ---- addressing ------------------------------------------------------------

  resolve(target: Target): Proc | undefined {
    let pid: Pid | undefined;
    if (target instanceof Pid) pid = target;
    else if (typeof target === "string") pid = this.registry.lookup(target);
    else if (typeof target === "object" && target !== null && target.registry instanceof Registry) {
      pid = target.registry.lookup(target.key);
    } else {
      throw new TypeError(
        `Cannot address ${String(target)}: allowed: a Pid, a registered name, or { registry, key }`,
      );
    }
    return pid === undefined ? undefined : this.lookup(pid);
  }

  /** The live process of `pid`; a pid of another runtime (same number, other object) is none. */
  lookup(pid: Pid): Proc | undefined {
    const proc = this.procs.get(pid.id);
    return proc?.pid === pid ? proc : undefined;
  }

  describe(target: Target): string {
    if (target instanceof Pid || typeof target === "string") return String(target);
    return `{via, ${String(target.key)}}`;
  }

  // ---- names -----------------------------------------------------------------

  bindName(pid: Pid, registry: Registry, key: unknown): boolean {
    const proc = this.procs.get(pid.id);
    if (proc === undefined || proc.pid !== pid) return false;
    (proc.names ??= []).push([registry, key]);
    return true;
  }

  unbindName(pid: Pid, registry: Registry, key: unknown): void {
    const proc = this.lookup(pid);
    if (proc?.names == null) return;
    proc.names = proc.names.filter(([r, k]) => r !== registry || k !== key);
  }

  // ---- spawning --------------------------------------------------------------

  spawn(
    def: AnyServer,
    args: unknown,
    options: SpawnOptions,
    parent: Proc | null,
    link: boolean,
  ): Proc {
    if (this.closed) throw new Error("Cannot spawn: the runtime is closed");
    if (typeof def !== "object" || def === null || typeof def.init !== "function") {
      throw new TypeError(
        "Cannot spawn: the definition has no init function; allowed: a GenServer",
      );
    }
    if (this.procs.size >= this.processesMax) {
      throw new SystemLimitError(`processesMax ${this.processesMax} live processes`);
    }
    const mailboxMax = options.mailboxMax ?? this.mailboxMax;
    if (!Number.isInteger(mailboxMax) || mailboxMax < 1) {
      throw new RangeError(`Cannot spawn: mailboxMax ${mailboxMax}; allowed: an integer >= 1`);
    }
    const pid = new Pid(this.#nextPid++);
    const proc = new Proc(pid, def, parent, options.trapExit === true, mailboxMax, this);
    this.procs.set(pid.id, proc);
    if (options.name !== undefined) {
      try {
        const name = options.name;
        if (typeof name === "string") this.registry.register(name, pid);
        else name.registry.register(name.key, pid);
      } catch (error) {
        this.procs.delete(pid.id);
        throw error;
      }
    }
    if (link && parent !== null) this.linkProcs(parent, proc);
    if (this.listeners.size > 0) {
      this.emit({ type: "spawn", pid, parent: parent?.pid ?? null, label: proc.label });
    }
    proc.mailbox.push(new Envelope(INIT, args));
    this.schedule(proc);
    return proc;
  }

  start(
    def: AnyServer,
    args: unknown,
    options: SpawnOptions,
    parent: Proc | null,
    link: boolean,
  ): Promise<Pid> {
    return new Promise<Pid>((resolve, reject) => {
      const proc = this.spawn(def, args, options, parent, link);
      proc.starter = { resolve, reject };
    });
  }

  // ---- scheduling --------------------------------------------------------------

  schedule(proc: Proc): void {
    if (proc.status !== IDLE) return;
    proc.status = QUEUED;
    this.#busy++;
    this.#ready.push(proc);
    if (!this.#flushQueued) {
      this.#flushQueued = true;
      queueMicrotask(this.#flush);
    }
  }

  #flush = (): void => {
    this.#flushTimer = undefined;
    let budget = this.turnMessagesMax * 256;
    for (let proc = this.#ready.shift(); proc !== undefined; proc = this.#ready.shift()) {
      budget -= this.run(proc);
      if (budget <= 0 && this.#ready.length > 0) {
        // Let timers and I/O run: a ping-pong of sync handlers must not starve the event loop.
        this.#flushTimer = setTimeout(this.#flush, 0);
        return;
      }
    }
    this.#flushQueued = false;
  };

  /** Runs up to turnMessagesMax messages of `proc`; returns how many it handled. */
  run(proc: Proc): number {
    let handled = 0;
    while (proc.status !== DEAD && !proc.exiting) {
      if (handled >= this.turnMessagesMax) {
        // Others get a turn. This can run outside #flush (after an async
        // handler), so make sure a flush is coming.
        this.#ready.push(proc);
        if (!this.#flushQueued) {
          this.#flushQueued = true;
          queueMicrotask(this.#flush);
        }
        return handled;
      }
      const env = proc.mailbox.shift();
      if (env === undefined) {
        this.#setIdle(proc);
        return handled;
      }
      handled++;
      let result: unknown;
      try {
        result = this.#dispatch(proc, env);
      } catch (error) {
        this.#crash(proc, error);
        return handled;
      }
      if (isThenable(result)) {
        result.then(
          (value) => {
            if (proc.status === DEAD || proc.exiting) return;
            try {
              if (this.#complete(proc, env, value)) this.run(proc);
            } catch (error) {
              this.#crash(proc, error);
            }
          },
          (error) => {
            if (proc.status !== DEAD && !proc.exiting) this.#crash(proc, error);
          },
        );
        return handled;
      }
      try {
        if (!this.#complete(proc, env, result)) return handled;
      } catch (error) {
        this.#crash(proc, error);
        return handled;
      }
    }
    return handled;
  }

  #setIdle(proc: Proc): void {
    proc.status = IDLE;
    this.#busyDown();
  }

  #busyDown(): void {
    if (--this.#busy === 0 && this.#idleWaiters.length > 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  async idle(): Promise<void> {
    // Re-check after each wake-up: work may have been queued in between.
    while (this.#busy > 0) await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
  }

  #dispatch(proc: Proc, env: Envelope | CallRecord): unknown {
    const def = proc.def;
    switch (env.kind) {
      case CALL: {
        proc.current = env as CallRecord;
        if (def.handleCall === undefined) {
          throw new Error(`Process ${proc.pid} (${proc.label}) got a call but has no handleCall`);
        }
        return def.handleCall(env.msg, env as CallRecord, proc.state, proc.ctx);
      }
      case CAST:
        if (def.handleCast === undefined) {
          throw new Error(`Process ${proc.pid} (${proc.label}) got a cast but has no handleCast`);
        }
        return def.handleCast(env.msg, proc.state, proc.ctx);
      case EXIT: {
        const msg = env.msg as ExitMessage;
        if (proc.parent !== null && msg.from === proc.parent.pid) {
          return { stop: msg.reason, state: proc.state };
        }
        return def.handleInfo === undefined
          ? { state: proc.state }
          : def.handleInfo(msg, proc.state, proc.ctx);
      }
      case INFO:
        return def.handleInfo === undefined
          ? { state: proc.state }
          : def.handleInfo(env.msg, proc.state, proc.ctx);
      case STOP:
        return { stop: env.msg as ExitReason, state: proc.state };
      case INIT:
        return def.init(env.msg, proc.ctx);
    }
  }

  /** Applies a callback's result; false when the process stopped. */
  #complete(proc: Proc, env: Envelope | CallRecord, result: unknown): boolean {
    if (typeof result !== "object" || result === null) {
      throw new TypeError(
        `Process ${proc.pid} (${proc.label}) callback returned ${String(result)}: ` +
          `allowed: { state }, { reply, state }, { noreply: true, state }, { stop, state }`,
      );
    }
    const r = result as Record<string, unknown>;
    if (env.kind === INIT) return this.#completeInit(proc, r);
    if (env.kind === CALL) {
      const call = env as CallRecord;
      if (!("stop" in r) && !("reply" in r) && r.noreply !== true) {
        // Thrown while the call is still current, so the crash fails it.
        throw new TypeError(
          `Process ${proc.pid} (${proc.label}) handleCall returned no reply, noreply or stop`,
        );
      }
      proc.current = null;
      if ("stop" in r) {
        if ("reply" in r) this.settle(call, r.reply);
        else if (!call.settled) {
          call.owner = proc;
          (proc.deferred ??= new Set()).add(call);
        }
        proc.state = r.state;
        this.#stop(proc, r.stop as ExitReason);
        return false;
      }
      proc.state = r.state;
      if ("reply" in r) this.settle(call, r.reply);
      else if (!call.settled) {
        call.owner = proc;
        (proc.deferred ??= new Set()).add(call);
      }
      return true;
    }
    if ("stop" in r) {
      proc.state = r.state;
      this.#stop(proc, r.stop as ExitReason);
      return false;
    }
    if (!("state" in r)) {
      throw new TypeError(`Process ${proc.pid} (${proc.label}) callback returned no state`);
    }
    proc.state = r.state;
    return true;
  }

  #completeInit(proc: Proc, r: Record<string, unknown>): boolean {
    const starter = proc.starter;
    proc.starter = null;
    if ("state" in r) {
      proc.state = r.state;
      proc.initialized = true;
      starter?.resolve(proc.pid);
      return true;
    }
    const ignored = r.ignore === true;
    const reason: ExitReason = ignored
      ? "normal"
      : "stop" in r
      ? r.stop as ExitReason
      : new TypeError(`init returned neither state, stop nor ignore`);
    this.#failInit(proc, reason, ignored, starter);
    return false;
  }

  #failInit(
    proc: Proc,
    reason: ExitReason,
    ignored: boolean,
    starter: Proc["starter"],
  ): void {
    // A starter learns of the failure from the rejection, so no exit signal
    // reaches it (a plain spawnLink has no starter and gets the signal).
    if (starter !== null && proc.parent !== null) this.unlinkProcs(proc, proc.parent);
    proc.exiting = true;
    starter?.reject(new StartError(`${proc.pid} (${proc.label})`, reason, ignored));
    this.die(proc, reason);
  }

  #crash(proc: Proc, error: unknown): void {
    const reason = toExitReason(error);
    if (!proc.initialized) {
      const starter = proc.starter;
      proc.starter = null;
      this.#failInit(proc, reason, false, starter);
      return;
    }
    this.#stop(proc, reason);
  }

  /** Runs terminate (if initialized), then dies. */
  #stop(proc: Proc, reason: ExitReason): void {
    if (proc.status === DEAD || proc.exiting) return;
    proc.exiting = true;
    const terminate = proc.def.terminate;
    if (terminate === undefined || !proc.initialized) {
      this.die(proc, reason);
      return;
    }
    let result: unknown;
    try {
      result = terminate.call(proc.def, reason, proc.state, proc.ctx);
    } catch (error) {
      this.die(proc, toExitReason(error));
      return;
    }
    if (isThenable(result)) {
      result.then(
        () => this.die(proc, reason),
        (error) => this.die(proc, toExitReason(error)),
      );
    } else {
      this.die(proc, reason);
    }
  }

  /** The process is gone: everything it held is released and everyone who watches it is told. */
  die(proc: Proc, reason: ExitReason): void {
    if (proc.status === DEAD) return;
    const wasQueued = proc.status === QUEUED;
    proc.status = DEAD;
    this.procs.delete(proc.pid.id);
    if (proc.timers !== null) {
      for (const timer of proc.timers) this.timers.cancel(timer);
      proc.timers = null;
    }
    if (proc.starter !== null) {
      const starter = proc.starter;
      proc.starter = null;
      starter.reject(new StartError(`${proc.pid} (${proc.label})`, reason, false));
    }
    // Built only when a call is waiting: an Error's stack trace is not free.
    let failed: CallExitError | null = null;
    const failCall = (call: CallRecord) => {
      if (call.settled) return;
      this.fail(call, failed ??= new CallExitError(String(proc.pid), reason));
    };
    if (proc.current !== null) failCall(proc.current);
    proc.current = null;
    for (const env of proc.mailbox.drain()) {
      if (env.kind === CALL) failCall(env as CallRecord);
    }
    if (proc.deferred !== null) {
      for (const call of proc.deferred) failCall(call);
      proc.deferred = null;
    }
    if (proc.names !== null) {
      for (const [registry, key] of proc.names) registry.removeExited(key, proc.pid);
      proc.names = null;
    }
    if (proc.monitoring !== null) {
      for (const [ref, target] of proc.monitoring) target.monitoredBy?.delete(ref);
      proc.monitoring = null;
    }
    const event: RuntimeEvent = { type: "exit", pid: proc.pid, label: proc.label, reason };
    // A crash report, as OTP's proc_lib: only for a process that ended itself
    // abnormally (a callback threw, or it stopped with an error), not for one
    // an exit signal took down.
    if (proc.exiting && !isCleanExit(reason) && !this.closed) this.report(event);
    this.emit(event);
    if (proc.exitWaiters !== null) {
      const waiters = proc.exitWaiters;
      proc.exitWaiters = null;
      for (const waiter of waiters) waiter(reason);
    }
    if (proc.monitoredBy !== null) {
      for (const [ref, watcher] of proc.monitoredBy) {
        watcher.monitoring?.delete(ref);
        const down: DownMessage = { type: "DOWN", ref, pid: proc.pid, reason };
        this.#enqueue(watcher, new Envelope(INFO, down));
      }
      proc.monitoredBy = null;
    }
    if (proc.links !== null) {
      const links = proc.links;
      proc.links = null;
      for (const other of links) {
        other.links?.delete(proc);
        this.signal(other, proc.pid, proc, reason, false);
      }
    }
    // Last: whoever got a signal above is queued before the runtime can look idle.
    if (wasQueued) this.#busyDown();
  }

  // ---- exit signals, links, monitors ------------------------------------------

  /** Delivers an exit signal with OTP's rules. `direct`: sent by exit/2 (so "kill" is untrappable). */
  signal(
    target: Proc,
    from: Pid,
    fromProc: Proc | null,
    reason: ExitReason,
    direct: boolean,
  ): void {
    if (target.status === DEAD) return;
    if (direct && reason === "kill") {
      this.die(target, "killed");
      return;
    }
    if (target.trapExit) {
      const msg: ExitMessage = { type: "EXIT", from, reason };
      this.#enqueue(target, new Envelope(EXIT, msg));
      return;
    }
    if (reason === "normal") {
      if (direct && fromProc === target) this.die(target, "normal");
      return;
    }
    this.die(target, reason);
  }

  linkProcs(a: Proc, b: Proc): void {
    if (a === b) return;
    (a.links ??= new Set()).add(b);
    (b.links ??= new Set()).add(a);
  }

  unlinkProcs(a: Proc, b: Proc): void {
    a.links?.delete(b);
    b.links?.delete(a);
  }

  link(self: Proc, target: Target): void {
    const other = this.resolve(target);
    if (other === undefined) {
      const pid = target instanceof Pid ? target : this.runtimePid;
      this.signal(self, pid, null, "noproc", false);
      return;
    }
    this.linkProcs(self, other);
  }

  unlink(self: Proc, target: Target): void {
    const other = this.resolve(target);
    if (other !== undefined) this.unlinkProcs(self, other);
  }

  monitor(self: Proc, target: Target): Ref {
    const ref = new Ref(this.#nextRef++);
    const other = this.resolve(target);
    if (other === undefined) {
      const down: DownMessage = {
        type: "DOWN",
        ref,
        pid: target instanceof Pid ? target : null,
        reason: "noproc",
      };
      this.#enqueue(self, new Envelope(INFO, down));
      return ref;
    }
    (other.monitoredBy ??= new Map()).set(ref, self);
    (self.monitoring ??= new Map()).set(ref, other);
    return ref;
  }

  demonitor(self: Proc, ref: Ref, flush: boolean): boolean {
    const other = self.monitoring?.get(ref);
    self.monitoring?.delete(ref);
    other?.monitoredBy?.delete(ref);
    if (flush) {
      self.mailbox.filter((env) =>
        !(env.kind === INFO && (env.msg as DownMessage | null)?.type === "DOWN" &&
          (env.msg as DownMessage).ref === ref)
      );
    }
    return other !== undefined;
  }

  exit(self: Proc | null, target: Target, reason: ExitReason): void {
    const proc = this.resolve(target);
    if (proc === undefined) return;
    this.signal(proc, self?.pid ?? this.runtimePid, self, reason, true);
  }

  // ---- messages --------------------------------------------------------------

  #enqueue(proc: Proc, env: Envelope): void {
    if (proc.status === DEAD) return;
    proc.mailbox.push(env);
    this.schedule(proc);
  }

  #checkRoom(proc: Proc, target: Target): void {
    if (proc.mailbox.length >= proc.mailboxMax) {
      throw new MailboxFullError(this.describe(target), proc.mailboxMax);
    }
  }

  call(self: Proc | null, target: Target, msg: unknown, options?: CallOptions): Promise<unknown> {
    const proc = this.resolve(target);
    if (proc === undefined || proc.status === DEAD) {
      return Promise.reject(new NoProcessError(this.describe(target), "call"));
    }
    if (proc === self) {
      return Promise.reject(
        new Error(`Cannot call ${proc.pid}: a process cannot call itself (it would deadlock)`),
      );
    }
    if (proc.mailbox.length >= proc.mailboxMax) {
      return Promise.reject(new MailboxFullError(this.describe(target), proc.mailboxMax));
    }
    const timeoutMs = options?.timeoutMs ?? 5000;
    if (!(timeoutMs > 0)) {
      return Promise.reject(
        new RangeError(`Cannot call: timeoutMs ${timeoutMs}; allowed: a number > 0 or Infinity`),
      );
    }
    return new Promise((resolve, reject) => {
      const call = new CallRecord(
        msg,
        resolve,
        reject,
        proc,
        self?.pid ?? null,
        timeoutMs,
        this,
      );
      if (timeoutMs !== Infinity) this.timers.add(call, this.clock.now() + timeoutMs);
      proc.mailbox.push(call);
      this.schedule(proc);
    });
  }

  settle(call: CallRecord, value: unknown): boolean {
    if (call.settled) return false;
    call.settled = true;
    call.owner?.deferred?.delete(call);
    call.resolve(value);
    if (!call.cancelled) this.#cancelTimer(call);
    return true;
  }

  fail(call: CallRecord, error: Error): void {
    if (call.settled) return;
    call.settled = true;
    call.owner?.deferred?.delete(call);
    call.reject(error);
    if (!call.cancelled) this.#cancelTimer(call);
  }

  reply(from: From, value: unknown): boolean {
    if (!(from instanceof CallRecord)) {
      throw new TypeError("Cannot reply: `from` is not a call's From; pass the one handleCall got");
    }
    return this.settle(from, value);
  }

  timeoutCall(call: CallRecord): void {
    if (call.settled) return;
    call.settled = true;
    call.owner?.deferred?.delete(call);
    call.reject(new CallTimeoutError(String(call.target.pid), call.timeoutMs));
  }

  #cancelTimer(entry: TimerEntry): void {
    this.timers.cancel(entry);
  }

  cast(target: Target, msg: unknown): void {
    const proc = this.resolve(target);
    if (proc === undefined) return; // OTP: a cast to a dead process or free name is dropped
    this.#checkRoom(proc, target);
    proc.mailbox.push(new Envelope(CAST, msg));
    this.schedule(proc);
  }

  send(target: Target, msg: unknown): void {
    const proc = this.resolve(target);
    if (proc === undefined) {
      if (target instanceof Pid) return; // OTP: sending to a dead pid is not an error
      throw new NoProcessError(this.describe(target), "send to");
    }
    this.#checkRoom(proc, target);
    proc.mailbox.push(new Envelope(INFO, msg));
    this.schedule(proc);
  }

  stop(target: Target, reason: ExitReason, timeoutMs: number): Promise<ExitReason> {
    const proc = this.resolve(target);
    if (proc === undefined) {
      return Promise.reject(new NoProcessError(this.describe(target), "stop"));
    }
    const done = this.waitForExit(proc.pid, timeoutMs).then((r) => {
      if (r === undefined) throw new CallTimeoutError(`stop of ${proc.pid}`, timeoutMs);
      return r;
    });
    proc.mailbox.push(new Envelope(STOP, reason));
    this.schedule(proc);
    return done;
  }

  sendAfter(self: Proc | null, dest: Target, msg: unknown, delayMs: number): TimerRef {
    if (!(delayMs >= 0)) {
      throw new RangeError(`Cannot sendAfter: delayMs ${delayMs}; allowed: a number >= 0`);
    }
    const destProc = dest instanceof Pid ? this.lookup(dest) : undefined;
    const owner = destProc ?? (dest instanceof Pid ? null : self);
    const timer = new SendTimer(this, dest, msg, owner);
    if (dest instanceof Pid && destProc === undefined) return timer; // dead: never fires
    if (owner !== null) {
      owner.timers ??= new Set();
      if (owner.timers.size >= this.timersPerProcessMax) {
        throw new SystemLimitError(
          `timersPerProcessMax ${this.timersPerProcessMax} timers for ${owner.pid}`,
        );
      }
      owner.timers.add(timer);
    }
    this.timers.add(timer, this.clock.now() + delayMs);
    return timer;
  }

  fireSendTimer(timer: SendTimer): void {
    timer.owner?.timers?.delete(timer);
    const proc = this.resolve(timer.dest);
    // Timer messages bypass the mailbox limit: nobody could see the error, and
    // they are bounded by timersPerProcessMax.
    if (proc !== undefined) this.#enqueue(proc, new Envelope(INFO, timer.msg));
  }

  cancelTimer(ref: TimerRef): number | false {
    if (!(ref instanceof SendTimer)) {
      throw new TypeError("Cannot cancel timer: not a TimerRef from sendAfter");
    }
    if (ref.cancelled) return false;
    const left = Math.max(0, ref.at - this.clock.now());
    this.timers.cancel(ref);
    ref.owner?.timers?.delete(ref);
    return left;
  }

  waitForExit(pid: Pid, timeoutMs: number): Promise<ExitReason | undefined> {
    const proc = this.lookup(pid);
    if (proc === undefined) return Promise.resolve("noproc");
    return new Promise((resolve) => {
      let timer: WaitTimer | null = null;
      const waiter: Waiter = (reason) => {
        if (timer !== null) this.timers.cancel(timer);
        resolve(reason);
      };
      (proc.exitWaiters ??= []).push(waiter);
      if (timeoutMs !== Infinity) {
        timer = new WaitTimer(() => {
          proc.exitWaiters = proc.exitWaiters?.filter((w) => w !== waiter) ?? null;
          resolve(undefined);
        });
        this.timers.add(timer, this.clock.now() + timeoutMs);
      }
    });
  }

  info(proc: Proc): ProcessInfo {
    return {
      pid: proc.pid,
      label: proc.label,
      status: proc.exiting ? "exiting" : proc.status === QUEUED ? "busy" : "idle",
      mailboxLength: proc.mailbox.length,
      mailboxMax: proc.mailboxMax,
      trapExit: proc.trapExit,
      parent: proc.parent?.pid ?? null,
      links: [...(proc.links ?? [])].map((p) => p.pid),
      monitoredBy: proc.monitoredBy?.size ?? 0,
      timers: proc.timers?.size ?? 0,
      deferredCalls: proc.deferred?.size ?? 0,
    };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const proc of [...this.procs.values()].reverse()) this.die(proc, "killed");
    this.timers.clear();
    if (this.#flushTimer !== undefined) clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
  }
}

function defaultReport(event: RuntimeEvent): void {
  if (event.type === "exit") {
    console.error(`[spire] process ${event.pid} (${event.label}) crashed:`, event.reason);
  } else if (event.type === "supervisor_shutdown") {
    console.error(`[spire] supervisor ${event.supervisor} shutting down: ${event.cause}`);
  } else if (event.type === "child_start_failed") {
    console.error(
      `[spire] supervisor ${event.supervisor} failed to start ${event.id}: ` +
        formatReason(event.reason),
    );
  }
}

/**
 * The operations of a running process, handed to its callbacks: the same as
 * {@linkcode Runtime}'s, done as this process (links and monitors belong to
 * it, `spawnLink`/`startLink` link to it, exits carry its pid).
 */
export class Context {
  #k: Kernel;
  #proc: Proc;

  /**
   * @param kernel The runtime's engine (only the runtime creates contexts).
   * @param proc The process.
   */
  constructor(kernel: Kernel, proc: Proc) {
    this.#k = kernel;
    this.#proc = proc;
  }

  #alive(action: string): void {
    if (this.#proc.status === DEAD) {
      throw new Error(
        `Cannot ${action}: process ${this.#proc.pid} has exited (a killed process's pending code ` +
          `still runs in JavaScript, but it can no longer act)`,
      );
    }
  }

  /** This process. */
  get self(): Pid {
    return this.#proc.pid;
  }

  /** The process that started this one, if any. */
  get parent(): Pid | null {
    return this.#proc.parent?.pid ?? null;
  }

  /** The current time on the runtime's clock, in milliseconds. */
  now(): number {
    return this.#k.clock.now();
  }

  /** Sets exit trapping (`Process.flag(:trap_exit, flag)`); returns the old value. */
  trapExit(flag: boolean): boolean {
    const old = this.#proc.trapExit;
    this.#proc.trapExit = flag;
    return old;
  }

  /**
   * Calls `target` and waits for its reply; see {@linkcode Runtime.call}.
   *
   * @throws {NoProcessError | CallTimeoutError | CallExitError | MailboxFullError} (as rejections)
   */
  call<C, R>(target: Target<C, R>, msg: C, options?: CallOptions): Promise<R> {
    this.#alive("call");
    return this.#k.call(this.#proc, target, msg, options) as Promise<R>;
  }

  /** Casts to `target`; see {@linkcode Runtime.cast}. @throws {MailboxFullError} */
  cast<K>(target: Target<unknown, unknown, K>, msg: K): void {
    this.#alive("cast");
    this.#k.cast(target, msg);
  }

  /** Sends a plain message; see {@linkcode Runtime.send}. @throws {MailboxFullError | NoProcessError} */
  send(target: Target, msg: unknown): void {
    this.#alive("send");
    this.#k.send(target, msg);
  }

  /** Answers a call later (a deferred reply); false if it was answered or timed out already. */
  reply<R>(from: From<R>, value: R): boolean {
    return this.#k.reply(from, value);
  }

  /** Sends `msg` to `dest` after `delayMs`; the timer is cancelled when the destination (or, for names, this process) exits. */
  sendAfter(dest: Target, msg: unknown, delayMs: number): TimerRef {
    this.#alive("sendAfter");
    return this.#k.sendAfter(this.#proc, dest, msg, delayMs);
  }

  /** Cancels a timer; returns the milliseconds it had left, or false if it already fired. */
  cancelTimer(ref: TimerRef): number | false {
    return this.#k.cancelTimer(ref);
  }

  /** Links this process with `target` (a dead target sends this process an exit signal `noproc`). */
  link(target: Target): void {
    this.#alive("link");
    this.#k.link(this.#proc, target);
  }

  /** Removes a link. */
  unlink(target: Target): void {
    this.#k.unlink(this.#proc, target);
  }

  /** Monitors `target`: a DOWN message arrives when it exits (at once, `noproc`, if it is not alive). */
  monitor(target: Target): Ref {
    this.#alive("monitor");
    return this.#k.monitor(this.#proc, target);
  }

  /** Removes a monitor; with `flush`, also drops its DOWN message if it was queued. */
  demonitor(ref: Ref, options: { flush?: boolean } = {}): boolean {
    return this.#k.demonitor(this.#proc, ref, options.flush === true);
  }

  /** Sends an exit signal to `target`, with OTP's rules (see {@linkcode Runtime.exit}). */
  exit(target: Target, reason: ExitReason): void {
    this.#alive("exit");
    this.#k.exit(this.#proc, target, reason);
  }

  /** Spawns a process whose parent is this one. */
  spawn<A, S, C, R, K, I>(
    def: GenServer<A, S, C, R, K, I>,
    args: A,
    options: SpawnOptions = {},
  ): Pid<C, R, K> {
    this.#alive("spawn");
    return this.#k.spawn(def, args, options, this.#proc, false).pid as Pid<C, R, K>;
  }

  /** Spawns a process linked to this one. */
  spawnLink<A, S, C, R, K, I>(
    def: GenServer<A, S, C, R, K, I>,
    args: A,
    options: SpawnOptions = {},
  ): Pid<C, R, K> {
    this.#alive("spawnLink");
    return this.#k.spawn(def, args, options, this.#proc, true).pid as Pid<C, R, K>;
  }

  /** Starts a process (waits for its init) whose parent is this one. @throws {StartError} */
  start<A, S, C, R, K, I>(
    def: GenServer<A, S, C, R, K, I>,
    args: A,
    options: SpawnOptions = {},
  ): Promise<Pid<C, R, K>> {
    this.#alive("start");
    return this.#k.start(def, args, options, this.#proc, false) as Promise<Pid<C, R, K>>;
  }

  /** Starts a process linked to this one (waits for its init). @throws {StartError} */
  startLink<A, S, C, R, K, I>(
    def: GenServer<A, S, C, R, K, I>,
    args: A,
    options: SpawnOptions = {},
  ): Promise<Pid<C, R, K>> {
    this.#alive("startLink");
    return this.#k.start(def, args, options, this.#proc, true) as Promise<Pid<C, R, K>>;
  }

  /** Waits for `pid` to exit (or `timeoutMs`); resolves its reason, or undefined on timeout. */
  waitForExit(pid: Pid, timeoutMs = Infinity): Promise<ExitReason | undefined> {
    return this.#k.waitForExit(pid, timeoutMs);
  }

  /** Publishes an event to the runtime's subscribers (for supervisor-like processes). */
  emit(event: RuntimeEvent): void {
    this.#k.emit(event);
  }

  /** Lets a supervisor-like process describe its children to `Runtime.tree`. */
  setInspector(inspector: () => ChildInfo[]): void {
    this.#proc.inspector = inspector;
  }

  /** The runtime's registry (plain string names are looked up here). */
  get registry(): Registry {
    return this.#k.registry;
  }
}

/** A node of {@linkcode Runtime.tree}. */
export interface TreeNode {
  /** The child id (the root's is "root"). */
  readonly id: string;
  /** Its process, or null when not running. */
  readonly pid: Pid | null;
  /** worker or supervisor. */
  readonly type: "worker" | "supervisor";
  /** Supervisor's view of the child; plus "exiting" when the process is in terminate. */
  readonly status: "running" | "restarting" | "terminated" | "ignored" | "exiting";
  /** How often its supervisor restarted it. */
  readonly restartCount: number;
  /** Messages waiting in its mailbox (0 when not running). */
  readonly mailboxLength: number;
  /** Its children, for supervisors. */
  readonly children: TreeNode[];
}

/**
 * A runtime: owns processes, names, the clock and timers. Several can
 * coexist (each has its own pids). Close it when done: `close()` kills
 * what is still running and clears all timers.
 *
 * Mailbox limits: when a process's mailbox holds `mailboxMax` messages,
 * `call` rejects and `cast`/`send` throw {@linkcode MailboxFullError} to
 * the sender, and nothing is queued. Exit signals, DOWN messages, stop
 * requests and timer messages are never refused (they are bounded by links,
 * monitors and timersPerProcessMax).
 *
 * @example
 * ```ts
 * import { Runtime, type GenServer } from "./mod.ts";
 * const Echo: GenServer<void, null, string, string> = {
 *   init: () => ({ state: null }),
 *   handleCall: (msg, _from, s) => ({ reply: msg.toUpperCase(), state: s }),
 * };
 * const rt = new Runtime();
 * const pid = await rt.start(Echo, undefined, { name: "echo" });
 * console.assert((await rt.call(pid, "hi")) === "HI");
 * console.assert((await rt.call<string, string>("echo", "yo")) === "YO");
 * rt.close();
 * ```
 */
export class Runtime {
  #k: Kernel;

  /**
   * @param options Clock, timers, limits, crash reporting.
   * @throws {RangeError} If a limit is not a positive integer.
   */
  constructor(options: RuntimeOptions = {}) {
    this.#k = new Kernel(this, options);
  }

  /** The runtime's registry: plain string targets are looked up here. */
  get registry(): Registry {
    return this.#k.registry;
  }

  /** For {@linkcode Registry} only. */
  get registryHost(): RegistryHost {
    // During construction the kernel does not exist yet; the registry binds lazily.
    return {
      bindName: (pid, registry, key) => this.#k.bindName(pid, registry, key),
      unbindName: (pid, registry, key) => this.#k.unbindName(pid, registry, key),
    };
  }

  /** The runtime's clock. */
  get clock(): Clock {
    return this.#k.clock;
  }

  /** Live processes. */
  get processCount(): number {
    return this.#k.procs.size;
  }

  /** Pending runtime timers (call timeouts, sendAfter, shutdown deadlines). */
  get timerCount(): number {
    return this.#k.timers.size;
  }

  /**
   * Spawns a process; its `init` runs as its first message. Returns at once.
   *
   * @throws {AlreadyRegisteredError} If `options.name` is taken.
   * @throws {SystemLimitError} If processesMax processes live.
   */
  spawn<A, S, C, R, K, I>(
    def: GenServer<A, S, C, R, K, I>,
    args: A,
    options: SpawnOptions = {},
  ): Pid<C, R, K> {
    return this.#k.spawn(def, args, options, null, false).pid as Pid<C, R, K>;
  }

  /**
   * Spawns a process and waits until its `init` returned.
   *
   * @returns Its pid.
   * @throws {StartError} (rejection) If init threw or returned stop/ignore (`ignored` is set for ignore).
   * @throws {AlreadyRegisteredError} If `options.name` is taken.
   */
  start<A, S, C, R, K, I>(
    def: GenServer<A, S, C, R, K, I>,
    args: A,
    options: SpawnOptions = {},
  ): Promise<Pid<C, R, K>> {
    return this.#k.start(def, args, options, null, false) as Promise<Pid<C, R, K>>;
  }

  /**
   * Calls `target` and waits for its reply.
   *
   * @returns The reply.
   * @throws {NoProcessError} (rejection, at once) If the target is not alive or the name is free.
   * @throws {MailboxFullError} (rejection, at once) If the target's mailbox is full.
   * @throws {CallTimeoutError} (rejection) If no reply came within `timeoutMs`; a later reply is dropped.
   * @throws {CallExitError} (rejection) If the target exited before replying; carries its reason.
   */
  call<C, R>(target: Target<C, R>, msg: C, options?: CallOptions): Promise<R> {
    return this.#k.call(null, target, msg, options) as Promise<R>;
  }

  /**
   * Casts `msg` to `target` (handled by handleCast). A cast to a dead pid or a
   * free name is dropped, as in OTP.
   *
   * @throws {MailboxFullError} If the target's mailbox is full (nothing is queued).
   */
  cast<K>(target: Target<unknown, unknown, K>, msg: K): void {
    this.#k.cast(target, msg);
  }

  /**
   * Sends a plain message (handled by handleInfo). To a dead pid: dropped, as in OTP.
   *
   * @throws {NoProcessError} If `target` is a name nobody holds (OTP's badarg).
   * @throws {MailboxFullError} If the target's mailbox is full (nothing is queued).
   */
  send(target: Target, msg: unknown): void {
    this.#k.send(target, msg);
  }

  /** Answers a call later (deferred reply); false if it was answered or timed out already. */
  reply<R>(from: From<R>, value: R): boolean {
    return this.#k.reply(from, value);
  }

  /**
   * Sends `msg` to `dest` after `delayMs`. A timer to a pid is cancelled when
   * that process exits.
   *
   * @throws {SystemLimitError} If the process has timersPerProcessMax timers.
   */
  sendAfter(dest: Target, msg: unknown, delayMs: number): TimerRef {
    return this.#k.sendAfter(null, dest, msg, delayMs);
  }

  /** Cancels a timer; returns the milliseconds it had left, or false if it fired or was cancelled. */
  cancelTimer(ref: TimerRef): number | false {
    return this.#k.cancelTimer(ref);
  }

  /**
   * Sends an exit signal from outside any process (its `from` is `<0.0>`),
   * with OTP's rules: `"kill"` kills even a trapping process (reason
   * `"killed"`); `"normal"` is ignored by a non-trapping process; any other
   * reason kills a non-trapping process without running terminate; a
   * trapping process gets an EXIT message instead.
   */
  exit(target: Target, reason: ExitReason): void {
    this.#k.exit(null, target, reason);
  }

  /**
   * Stops a process the way `GenServer.stop` does: queued behind its current
   * messages, then terminate runs, then it exits with `reason`.
   *
   * @returns The reason it exited with.
   * @throws {NoProcessError} (rejection) If it is not alive.
   * @throws {CallTimeoutError} (rejection) If it did not exit within `timeoutMs` (it keeps running).
   */
  stop(target: Target, reason: ExitReason = "normal", timeoutMs = Infinity): Promise<ExitReason> {
    return this.#k.stop(target, reason, timeoutMs);
  }

  /** Waits for `pid` to exit; resolves its reason (`"noproc"` if dead already), or undefined after `timeoutMs`. */
  waitForExit(pid: Pid, timeoutMs = Infinity): Promise<ExitReason | undefined> {
    return this.#k.waitForExit(pid, timeoutMs);
  }

  /** The process registered as `target` (or `target` itself if alive), else undefined. */
  whereis(target: Target): Pid | undefined {
    const proc = this.#k.resolve(target);
    return proc?.pid;
  }

  /** Whether `pid` is alive. */
  isAlive(pid: Pid): boolean {
    return this.#k.lookup(pid) !== undefined;
  }

  /** A snapshot of a live process, or undefined. */
  inspect(target: Target): ProcessInfo | undefined {
    const proc = this.#k.resolve(target);
    return proc === undefined ? undefined : this.#k.info(proc);
  }

  /** All live processes, oldest first. */
  processes(): Pid[] {
    return [...this.#k.procs.values()].map((p) => p.pid);
  }

  /**
   * The live supervision tree under `root` as data: each supervisor's
   * children with status, restart count and mailbox length.
   *
   * @throws {NoProcessError} If `root` is not alive.
   */
  tree(root: Target): TreeNode {
    const proc = this.#k.resolve(root);
    if (proc === undefined) throw new NoProcessError(this.#k.describe(root), "inspect");
    return this.#node(
      { id: "root", pid: proc.pid, type: "supervisor", status: "running", restartCount: 0 },
      0,
    );
  }

  #node(child: ChildInfo, depth: number): TreeNode {
    const proc = child.pid === null ? undefined : this.#k.lookup(child.pid);
    const children = proc?.inspector != null && depth < 64
      ? proc.inspector().map((c) => this.#node(c, depth + 1))
      : [];
    return {
      id: child.id,
      pid: child.pid,
      type: proc?.inspector != null ? "supervisor" : child.type,
      status: proc?.exiting ? "exiting" : child.status,
      restartCount: child.restartCount,
      mailboxLength: proc?.mailbox.length ?? 0,
      children,
    };
  }

  /**
   * Subscribes to events (spawn, exit, child started/exited/restarted/terminated,
   * supervisor shutdown). Listeners run synchronously, the moment it happens.
   *
   * @returns A function that unsubscribes.
   */
  subscribe(listener: EventListener): () => void {
    this.#k.listeners.add(listener);
    return () => this.#k.listeners.delete(listener);
  }

  /** Resolves when no process has work queued or running (for tests and benchmarks). */
  idle(): Promise<void> {
    return this.#k.idle();
  }

  /**
   * Kills every live process (reason `"killed"`, no terminate) and clears all
   * timers. Stop the tree first (e.g. `stop(root, "shutdown")`) for an
   * orderly shutdown. Safe to call twice.
   */
  close(): void {
    this.#k.close();
  }

  /** `close()`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

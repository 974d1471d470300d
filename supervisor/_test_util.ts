// Helpers shared by this folder's tests (not part of the public API).

import { ManualClock } from "./clock.ts";
import type { ExitReason } from "./exit_reason.ts";
import type { GenServer } from "./gen_server.ts";
import type { RuntimeEvent } from "./events.ts";
import { Runtime } from "./runtime.ts";

/** A runtime on a manual clock with crash reports muted, and an event log. */
export function testRuntime(): { rt: Runtime; clock: ManualClock; events: RuntimeEvent[] } {
  const clock = new ManualClock();
  const rt = new Runtime({ clock, timers: clock, report: () => {} });
  const events: RuntimeEvent[] = [];
  rt.subscribe((e) => events.push(e));
  return { rt, clock, events };
}

/** Arguments of {@linkcode Worker}. */
export interface WorkerArgs {
  id: string;
  log?: string[];
  trapExit?: boolean;
  /** init throws this. */
  initError?: Error;
  /** terminate never returns (a child that ignores the stop). */
  hangInTerminate?: boolean;
}

/** Commands a Worker accepts by cast. */
export type WorkerCast =
  | { readonly crash: string }
  | { readonly stop: ExitReason };

/** A worker that logs start/stop and exits on command. */
export const Worker: GenServer<WorkerArgs, WorkerArgs, "ping", string, WorkerCast> = {
  label: "worker",
  init(args, ctx) {
    if (args.initError !== undefined) throw args.initError;
    if (args.trapExit === true) ctx.trapExit(true);
    args.log?.push(`start:${args.id}`);
    return { state: args };
  },
  handleCall(_msg, _from, state) {
    return { reply: `pong:${state.id}`, state };
  },
  handleCast(msg, state) {
    if ("crash" in msg) throw new Error(msg.crash);
    return { stop: msg.stop, state };
  },
  terminate(reason, state) {
    state.log?.push(`stop:${state.id}`);
    void reason;
    return state.hangInTerminate === true ? new Promise<void>(() => {}) : undefined;
  },
};

/** Lets pending microtasks and zero-delay work run. */
export function tick(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

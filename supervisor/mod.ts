/**
 * Spire's actor runtime, after Erlang/OTP and Elixir: processes running
 * GenServer callbacks one message at a time with bounded mailboxes;
 * call/cast/send, timers, links, exit trapping, monitors and a registry;
 * Supervisor and DynamicSupervisor with OTP's restart rules; an
 * Application entry that stops the tree on SIGINT/SIGTERM; the live tree
 * and events for observability. It imports nothing of Spire's.
 *
 * ```ts
 * import { Runtime, Supervisor, workerSpec, type GenServer } from "./mod.ts";
 * const Counter: GenServer<number, number, "get", number, "inc"> = {
 *   init: (n) => ({ state: n }),
 *   handleCall: (_m, _f, n) => ({ reply: n, state: n }),
 *   handleCast: (_m, n) => ({ state: n + 1 }),
 * };
 * const rt = new Runtime();
 * const root = await Supervisor.start(rt, [workerSpec("counter", Counter, 0, { name: "counter" })]);
 * rt.cast("counter", "inc");
 * console.assert((await rt.call<"get", number>("counter", "get")) === 1);
 * await rt.stop(root, "shutdown");
 * rt.close();
 * ```
 *
 * @module
 */

export { type Clock, ManualClock, systemTime, type TimerHost } from "./clock.ts";
export {
  AlreadyRegisteredError,
  CallExitError,
  CallTimeoutError,
  MailboxFullError,
  NoProcessError,
  StartError,
  SupervisorError,
  type SupervisorErrorCode,
  SystemLimitError,
} from "./errors.ts";
export type * from "./events.ts";
export {
  type ExitReason,
  formatReason,
  isCleanExit,
  isShutdown,
  type ShutdownWith,
  shutdownWith,
  toExitReason,
} from "./exit_reason.ts";
export type * from "./gen_server.ts";
export { Pid, Ref } from "./pid.ts";
export { Registry, type RegistryHost, type RegistryOptions } from "./registry.ts";
export {
  type CallOptions,
  type ChildInfo,
  Context,
  type ProcessInfo,
  Runtime,
  type RuntimeOptions,
  type SpawnOptions,
  type Target,
  type TimerRef,
  type TreeNode,
  type Via,
} from "./runtime.ts";
export {
  type AutoShutdown,
  type Caller,
  type ChildCounts,
  type ChildSpec,
  type RestartType,
  type ShutdownSpec,
  type Strategy,
  Supervisor,
  type SupervisorOptions,
  supervisorSpec,
  workerSpec,
} from "./supervisor.ts";
export {
  type DynamicChildSpec,
  DynamicSupervisor,
  type DynamicSupervisorOptions,
} from "./dynamic_supervisor.ts";
export {
  Application,
  type ApplicationOptions,
  processSignals,
  type SignalSource,
  type StopSignal,
} from "./application.ts";

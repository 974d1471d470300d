/**
 * Events the runtime and its supervisors publish, the moment things
 * happen, for metrics and logs (`runtime.subscribe`).
 *
 * @module
 */

import type { ExitReason } from "./exit_reason.ts";
import type { Pid } from "./pid.ts";

/** A process was spawned. */
export interface SpawnEvent {
  /** Tag. */
  readonly type: "spawn";
  /** The new process. */
  readonly pid: Pid;
  /** The process that spawned it, if any. */
  readonly parent: Pid | null;
  /** Its GenServer's label. */
  readonly label: string;
}

/** A process exited. */
export interface ExitEvent {
  /** Tag. */
  readonly type: "exit";
  /** The process. */
  readonly pid: Pid;
  /** Its label. */
  readonly label: string;
  /** Why. */
  readonly reason: ExitReason;
}

/** A supervisor started a child (first start, or `startChild`). */
export interface ChildStartedEvent {
  /** Tag. */
  readonly type: "child_started";
  /** The supervisor. */
  readonly supervisor: Pid;
  /** The child's id (a DynamicSupervisor uses the pid's text). */
  readonly id: string;
  /** The child's process. */
  readonly pid: Pid;
}

/** A supervisor restarted a child. */
export interface ChildRestartedEvent {
  /** Tag. */
  readonly type: "child_restarted";
  /** The supervisor. */
  readonly supervisor: Pid;
  /** The child's id. */
  readonly id: string;
  /** The new process. */
  readonly pid: Pid;
  /** How often this child has been restarted. */
  readonly restartCount: number;
}

/** A child exited on its own (the supervisor got its EXIT). */
export interface ChildExitedEvent {
  /** Tag. */
  readonly type: "child_exited";
  /** The supervisor. */
  readonly supervisor: Pid;
  /** The child's id. */
  readonly id: string;
  /** The process that exited. */
  readonly pid: Pid;
  /** Its exit reason. */
  readonly reason: ExitReason;
}

/** A supervisor stopped a child (shutdown, strategy, terminateChild). */
export interface ChildTerminatedEvent {
  /** Tag. */
  readonly type: "child_terminated";
  /** The supervisor. */
  readonly supervisor: Pid;
  /** The child's id. */
  readonly id: string;
  /** The process. */
  readonly pid: Pid;
  /** Its exit reason (`"killed"` if the shutdown time ran out). */
  readonly reason: ExitReason;
}

/** Starting or restarting a child failed. */
export interface ChildStartFailedEvent {
  /** Tag. */
  readonly type: "child_start_failed";
  /** The supervisor. */
  readonly supervisor: Pid;
  /** The child's id. */
  readonly id: string;
  /** Why. */
  readonly reason: ExitReason;
}

/** A supervisor shuts itself down: restart intensity exceeded, or auto_shutdown. */
export interface SupervisorShutdownEvent {
  /** Tag. */
  readonly type: "supervisor_shutdown";
  /** The supervisor. */
  readonly supervisor: Pid;
  /** Why it shuts down. */
  readonly cause: "max_intensity" | "auto_shutdown";
}

/** Everything `runtime.subscribe` delivers. */
export type RuntimeEvent =
  | SpawnEvent
  | ExitEvent
  | ChildStartedEvent
  | ChildRestartedEvent
  | ChildExitedEvent
  | ChildTerminatedEvent
  | ChildStartFailedEvent
  | SupervisorShutdownEvent;

/** A subscriber; it runs synchronously where the event happens and must not throw. */
export type EventListener = (event: RuntimeEvent) => void;

/**
 * Exit reasons, in the shape of OTP's: `"normal"`, `"shutdown"`,
 * `{ shutdown: detail }`, `"kill"` (only as a signal), `"killed"`,
 * `"noproc"`, or an `Error` (a crash).
 *
 * @module
 */

/** `{shutdown, Detail}` in OTP: a clean stop that carries a detail. */
export interface ShutdownWith {
  /** Why the process shut down. */
  readonly shutdown: unknown;
}

/**
 * Why a process exited, or the reason carried by an exit signal.
 *
 * - `"normal"`: finished its work; links of non-trapping processes ignore it.
 * - `"shutdown"` / `{ shutdown: detail }`: stopped on purpose (by a supervisor or itself).
 * - `"kill"`: only as the reason of `exit(pid, "kill")`; cannot be trapped.
 * - `"killed"`: the reason a process killed with `"kill"` exits with.
 * - `"noproc"`: the process did not exist (monitor or link of a dead pid).
 * - `Error`: a crash; a handler threw or rejected with it.
 */
export type ExitReason =
  | "normal"
  | "shutdown"
  | "kill"
  | "killed"
  | "noproc"
  | ShutdownWith
  | Error;

/**
 * Builds `{ shutdown: detail }`.
 *
 * @param detail Why the process shut down.
 * @returns The reason.
 * @example
 * ```ts
 * import { shutdownWith } from "./exit_reason.ts";
 * const reason = shutdownWith("config reloaded");
 * console.assert(reason.shutdown === "config reloaded");
 * ```
 */
export function shutdownWith(detail: unknown): ShutdownWith {
  return { shutdown: detail };
}

/**
 * True for `"shutdown"` and `{ shutdown: _ }`.
 *
 * @param reason An exit reason.
 * @returns Whether it is a shutdown.
 * @example
 * ```ts
 * import { isShutdown } from "./exit_reason.ts";
 * console.assert(isShutdown({ shutdown: 1 }) && !isShutdown("normal"));
 * ```
 */
export function isShutdown(reason: ExitReason): boolean {
  return reason === "shutdown" ||
    (typeof reason === "object" && !(reason instanceof Error) && "shutdown" in reason);
}

/**
 * True for the reasons OTP does not log as crashes and transient children
 * are not restarted for: `"normal"`, `"shutdown"`, `{ shutdown: _ }`.
 *
 * @param reason An exit reason.
 * @returns Whether the exit was clean.
 * @example
 * ```ts
 * import { isCleanExit } from "./exit_reason.ts";
 * console.assert(isCleanExit("normal") && !isCleanExit(new Error("boom")));
 * ```
 */
export function isCleanExit(reason: ExitReason): boolean {
  return reason === "normal" || isShutdown(reason);
}

/**
 * Turns anything thrown into an exit reason: an Error passes through;
 * anything else (even a string like `"normal"`: a throw is always a crash;
 * return `{ stop }` to exit cleanly) is wrapped in an Error with it as
 * `cause`.
 *
 * @param thrown What a handler threw or rejected with.
 * @returns The exit reason.
 * @example
 * ```ts
 * import { toExitReason } from "./exit_reason.ts";
 * console.assert(toExitReason("normal") instanceof Error);
 * ```
 */
export function toExitReason(thrown: unknown): ExitReason {
  if (thrown instanceof Error) return thrown;
  return new Error(`Process crashed: non-Error thrown: ${String(thrown)}`, { cause: thrown });
}

/**
 * A short text for an exit reason (for logs and error messages).
 *
 * @param reason An exit reason.
 * @returns The text.
 * @example
 * ```ts
 * import { formatReason } from "./exit_reason.ts";
 * console.assert(formatReason({ shutdown: "x" }) === '{shutdown, "x"}');
 * ```
 */
export function formatReason(reason: ExitReason): string {
  if (typeof reason === "string") return reason;
  if (reason instanceof Error) return `${reason.name}: ${reason.message}`;
  let detail: string;
  try {
    detail = JSON.stringify(reason.shutdown) ?? String(reason.shutdown);
  } catch {
    detail = String(reason.shutdown);
  }
  return `{shutdown, ${detail}}`;
}

/**
 * The errors callers of the actor runtime catch.
 *
 * @module
 */

import { type ExitReason, formatReason } from "./exit_reason.ts";

/** A `call` got no reply within its timeout. A reply that comes later is dropped. */
export class CallTimeoutError extends Error {
  /** The process or name that was called. */
  readonly target: string;
  /** The timeout that expired, in milliseconds. */
  readonly timeoutMs: number;

  /**
   * @param target The callee, printed.
   * @param timeoutMs The timeout that expired.
   */
  constructor(target: string, timeoutMs: number) {
    super(`Call to ${target} timed out: no reply within ${timeoutMs} ms`);
    this.name = "CallTimeoutError";
    this.target = target;
    this.timeoutMs = timeoutMs;
  }
}

/** The target of a `call` (or of `send` to a name) is not alive or not registered. */
export class NoProcessError extends Error {
  /** The process or name that was addressed. */
  readonly target: string;

  /**
   * @param target The addressee, printed.
   * @param action What was attempted ("call", "send", ...).
   */
  constructor(target: string, action: string) {
    super(`Cannot ${action} ${target}: no such process (noproc); it exited or was never started`);
    this.name = "NoProcessError";
    this.target = target;
  }
}

/** The callee exited before it replied; `reason` is its exit reason. */
export class CallExitError extends Error {
  /** The callee's exit reason. */
  readonly reason: ExitReason;
  /** The callee, printed. */
  readonly target: string;

  /**
   * @param target The callee, printed.
   * @param reason Its exit reason.
   */
  constructor(target: string, reason: ExitReason) {
    super(`Call to ${target} failed: the process exited with ${formatReason(reason)}`, {
      cause: reason instanceof Error ? reason : undefined,
    });
    this.name = "CallExitError";
    this.reason = reason;
    this.target = target;
  }
}

/** The target's mailbox holds `mailboxMax` messages already; the message was not queued. */
export class MailboxFullError extends Error {
  /** The addressee, printed. */
  readonly target: string;
  /** The mailbox limit. */
  readonly mailboxMax: number;

  /**
   * @param target The addressee, printed.
   * @param mailboxMax Its mailbox limit.
   */
  constructor(target: string, mailboxMax: number) {
    super(
      `Cannot deliver to ${target}: mailbox full (${mailboxMax} messages); ` +
        `the message was not queued, retry later or shed load`,
    );
    this.name = "MailboxFullError";
    this.target = target;
    this.mailboxMax = mailboxMax;
  }
}

/** A name is registered to another live process already. */
export class AlreadyRegisteredError extends Error {
  /** The name. */
  readonly key: unknown;
  /** The process holding it. */
  readonly holder: string;

  /**
   * @param key The name.
   * @param holder The process holding it, printed.
   */
  constructor(key: unknown, holder: string) {
    super(`Cannot register ${String(key)}: already registered to ${holder}; names are unique`);
    this.name = "AlreadyRegisteredError";
    this.key = key;
    this.holder = holder;
  }
}

/** A process failed to start: its `init` threw, returned `{ stop }`, or it was killed first. */
export class StartError extends Error {
  /** Why it did not start. */
  readonly reason: ExitReason;
  /** True when init returned `{ ignore: true }` (OTP's `ignore`): not an error for supervisors. */
  readonly ignored: boolean;

  /**
   * @param what The process, printed.
   * @param reason Why it did not start.
   * @param ignored Whether init returned ignore.
   */
  constructor(what: string, reason: ExitReason, ignored = false) {
    super(
      ignored
        ? `Cannot start ${what}: init returned ignore`
        : `Cannot start ${what}: init failed with ${formatReason(reason)}`,
      { cause: reason instanceof Error ? reason : undefined },
    );
    this.name = "StartError";
    this.reason = reason;
    this.ignored = ignored;
  }
}

/** A runtime limit (processes, timers per process, registered names) is reached. */
export class SystemLimitError extends Error {
  /**
   * @param what Which limit, with its value.
   */
  constructor(what: string) {
    super(`System limit reached: ${what}`);
    this.name = "SystemLimitError";
  }
}

/** What a supervisor refused, as OTP's error atoms. */
export type SupervisorErrorCode =
  | "not_found"
  | "running"
  | "restarting"
  | "already_present"
  | "already_started"
  | "max_children"
  | "invalid_child_spec";

/** A supervisor refused a request (startChild, deleteChild, ...). */
export class SupervisorError extends Error {
  /** OTP's name for the refusal. */
  readonly code: SupervisorErrorCode;

  /**
   * @param code OTP's name for the refusal.
   * @param message What failed, colon, detail.
   */
  constructor(code: SupervisorErrorCode, message: string) {
    super(message);
    this.name = "SupervisorError";
    this.code = code;
  }
}

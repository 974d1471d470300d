/**
 * INFO commandstats and errorstats, kept as redis-server 7 keeps them: for each command its
 * calls, the time spent in them, and the calls that were rejected before they ran (wrong arity,
 * no authentication) or failed while running (any other error reply); for each error code (the
 * first word of an error reply: `ERR`, `WRONGTYPE`, `NOAUTH`) how many replies carried it.
 * The executor tells which error replies refused a command before it ran (`refusalOf`).
 * CONFIG RESETSTAT starts both again from zero.
 *
 * Bounded: command names come from the command table (plus `unknown`, which is counted only in
 * errorstats, as redis-server counts an unknown command); at most {@link ERROR_CODES_MAX}
 * distinct error codes are tracked, after which replies with a new code still count in
 * `total_error_replies` but under no code (redis-server stops at the same number).
 *
 * @module
 */

import type { Refusal } from "./commands/executor.ts";

/** Distinct error codes tracked by errorstats (redis-server's limit too). */
export const ERROR_CODES_MAX = 128;

/** One command's counters. */
export interface CommandCounters {
  /** Calls that ran, failed ones included (rejected ones are not: they never ran). */
  calls: number;
  /** Time from taking each call that ran to its reply, summed, in µs. */
  usec: number;
  /** Calls refused before they ran: wrong number of arguments, or authentication required. */
  rejectedCalls: number;
  /** Calls that ran and answered an error. */
  failedCalls: number;
}

function errorCode(message: string): string {
  const space = message.indexOf(" ");
  return space < 0 ? message : message.slice(0, space);
}

/** Per-command and per-error-code counters of a client port. */
export class CommandStats {
  readonly #commands = new Map<string, CommandCounters>();
  readonly #errors = new Map<string, number>();
  #errorReplies = 0;

  /**
   * Counts `calls` calls of one command that took `durationMs` in all.
   * @param name the command's name as the table has it (`client|setname`), or `unknown`
   * @param durationMs their time from being taken to the reply, summed
   * @param errorMessage the error reply's text when the calls failed (each with this text)
   * @param refusal why the calls were refused before they ran, if they were (refusalOf)
   * @param calls how many calls this is
   * @returns whether the calls ran: false for an unknown command and for rejected calls, which
   *   redis-server leaves out of `total_commands_processed` too
   */
  record(
    name: string,
    durationMs: number,
    errorMessage?: string,
    refusal?: Refusal,
    calls = 1,
  ): boolean {
    if (errorMessage !== undefined) {
      this.#errorReplies += calls;
      const code = errorCode(errorMessage);
      const seen = this.#errors.get(code);
      if (seen !== undefined) this.#errors.set(code, seen + calls);
      else if (this.#errors.size < ERROR_CODES_MAX) this.#errors.set(code, calls);
    }
    if (refusal === "unknown" || name === "unknown") return false;
    let c = this.#commands.get(name);
    if (c === undefined) {
      c = { calls: 0, usec: 0, rejectedCalls: 0, failedCalls: 0 };
      this.#commands.set(name, c);
    }
    if (refusal === "rejected") {
      c.rejectedCalls += calls;
      return false;
    }
    c.calls += calls;
    c.usec += durationMs * 1000;
    if (errorMessage !== undefined) c.failedCalls += calls;
    return true;
  }

  /** Error replies sent (INFO stats `total_error_replies`). */
  get errorReplies(): number {
    return this.#errorReplies;
  }

  /** One command's counters, or undefined before its first call. */
  command(name: string): Readonly<CommandCounters> | undefined {
    return this.#commands.get(name);
  }

  /** INFO commandstats: `cmdstat_<name>` lines, by name. */
  commandSection(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const name of [...this.#commands.keys()].sort()) {
      const c = this.#commands.get(name)!;
      const usec = Math.round(c.usec);
      const perCall = c.calls === 0 ? 0 : c.usec / c.calls;
      out[`cmdstat_${name}`] = `calls=${c.calls},usec=${usec},usec_per_call=${
        perCall.toFixed(2)
      },rejected_calls=${c.rejectedCalls},failed_calls=${c.failedCalls}`;
    }
    return out;
  }

  /** INFO errorstats: `errorstat_<code>` lines, by code. */
  errorSection(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const code of [...this.#errors.keys()].sort()) {
      out[`errorstat_${code}`] = `count=${this.#errors.get(code)}`;
    }
    return out;
  }

  /** Forgets everything counted (CONFIG RESETSTAT). */
  reset(): void {
    this.#commands.clear();
    this.#errors.clear();
    this.#errorReplies = 0;
  }
}

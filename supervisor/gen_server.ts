/**
 * The GenServer behaviour: the callbacks a process runs and what they
 * return, after Elixir's `GenServer` (tuples become objects).
 *
 * @module
 */

import type { Context } from "./runtime.ts";
import type { ExitReason } from "./exit_reason.ts";
import type { Pid, Ref } from "./pid.ts";

/**
 * Who is waiting for a call's reply: pass it to `reply(from, value)` to
 * answer later (a deferred reply). Opaque.
 *
 * @typeParam Reply The reply's type.
 */
export interface From<Reply = unknown> {
  /** The calling process, or null for a call from outside any process. */
  readonly caller: Pid | null;
  /** Phantom: the reply type. */
  readonly __reply?: Reply;
}

/** `{'EXIT', From, Reason}`: an exit signal, delivered as a message to a process that traps exits. */
export interface ExitMessage {
  /** Tag. */
  readonly type: "EXIT";
  /** The process the signal came from (`<0.0>` for the runtime itself). */
  readonly from: Pid;
  /** The exit reason it carries. */
  readonly reason: ExitReason;
}

/** `{'DOWN', Ref, process, Pid, Reason}`: a monitored process exited. */
export interface DownMessage {
  /** Tag. */
  readonly type: "DOWN";
  /** The monitor's reference. */
  readonly ref: Ref;
  /** The monitored process, or null if a name was monitored that was not registered. */
  readonly pid: Pid | null;
  /** Its exit reason (`"noproc"` if it was not alive when monitored). */
  readonly reason: ExitReason;
}

/** What `init` returns: the initial state, a refusal to start, or `ignore`. */
export type InitResult<State> =
  | { readonly state: State }
  | { readonly stop: ExitReason }
  | { readonly ignore: true };

/**
 * What `handleCall` returns: a reply now, no reply yet (answer later with
 * `reply(from, value)`), or stop (optionally replying first).
 */
export type CallResult<State, Reply> =
  | { readonly reply: Reply; readonly state: State }
  | { readonly noreply: true; readonly state: State }
  | { readonly stop: ExitReason; readonly state: State; readonly reply?: Reply };

/** What `handleCast`, `handleInfo` return: the next state, or stop. */
export type NoReplyResult<State> =
  | { readonly state: State }
  | { readonly stop: ExitReason; readonly state: State };

/** A value or a promise of it: every callback may be async. */
export type MaybePromise<T> = T | Promise<T>;

/**
 * A GenServer definition: an object of callbacks. Each process runs one
 * callback at a time, to completion, including across `await`s.
 *
 * A callback that throws or rejects crashes the process with that error;
 * `terminate` runs (as in OTP) for crashes and stops of an initialized
 * process, and for exit signals only when the process traps exits.
 *
 * @typeParam Args What `init` receives.
 * @typeParam State The process state.
 * @typeParam Call The messages `handleCall` accepts.
 * @typeParam Reply What calls resolve to.
 * @typeParam Cast The messages `handleCast` accepts.
 * @typeParam Info Plain messages (`send`, `sendAfter`) `handleInfo` accepts.
 * @example
 * ```ts
 * import { Runtime, type GenServer } from "./mod.ts";
 * const Counter: GenServer<number, number, "get", number, "inc"> = {
 *   init: (start) => ({ state: start }),
 *   handleCall: (_msg, _from, n) => ({ reply: n, state: n }),
 *   handleCast: (_msg, n) => ({ state: n + 1 }),
 * };
 * const rt = new Runtime();
 * const pid = await rt.start(Counter, 41);
 * rt.cast(pid, "inc");
 * console.assert((await rt.call(pid, "get")) === 42);
 * rt.close();
 * ```
 */
export interface GenServer<
  Args = void,
  State = unknown,
  Call = never,
  Reply = unknown,
  Cast = never,
  Info = never,
> {
  /** A label for logs and the tree view (defaults to "gen_server"). */
  readonly label?: string;
  /** Builds the initial state. Runs in the new process before any message. */
  init(args: Args, ctx: Context): MaybePromise<InitResult<State>>;
  /** Answers a call. Missing: a call crashes the process, as in OTP. */
  handleCall?(
    msg: Call,
    from: From<Reply>,
    state: State,
    ctx: Context,
  ): MaybePromise<CallResult<State, Reply>>;
  /** Handles a cast. Missing: a cast crashes the process, as in OTP. */
  handleCast?(msg: Cast, state: State, ctx: Context): MaybePromise<NoReplyResult<State>>;
  /** Handles plain messages, trapped exits and DOWNs. Missing: they are dropped. */
  handleInfo?(
    msg: Info | ExitMessage | DownMessage,
    state: State,
    ctx: Context,
  ): MaybePromise<NoReplyResult<State>>;
  /** Cleans up before the process exits (see the interface doc for when it runs). */
  terminate?(reason: ExitReason, state: State, ctx: Context): MaybePromise<void>;
}

/**
 * Application: runs a root supervisor as a program. On SIGINT or SIGTERM
 * it stops the tree in order (children in reverse start order, each with
 * its shutdown procedure) and exits 0; when the root exits by itself from a
 * crash (restart intensity exceeded up to the root, or any abnormal
 * reason) it exits 1. Signals and the exit are injectable for tests.
 *
 * @module
 */

import { type ExitReason, isCleanExit } from "./exit_reason.ts";
import type { Pid } from "./pid.ts";
import { Runtime, type RuntimeOptions } from "./runtime.ts";

/** The signals an application stops on. */
export type StopSignal = "SIGINT" | "SIGTERM";

/** Where signals come from (default: the process's, through `Deno.addSignalListener`). */
export interface SignalSource {
  /**
   * Calls `handler` on each `signal`.
   *
   * @returns A function that removes the handler.
   */
  subscribe(signal: StopSignal, handler: () => void): () => void;
}

/**
 * The process's real signals.
 *
 * @returns A signal source on `Deno.addSignalListener`.
 */
export function processSignals(): SignalSource {
  return {
    subscribe(signal, handler) {
      Deno.addSignalListener(signal, handler);
      return () => Deno.removeSignalListener(signal, handler);
    },
  };
}

/** Options of {@linkcode Application.start}. */
export interface ApplicationOptions {
  /** Starts the root supervisor (unlinked: `Supervisor.start(rt, ...)`) and returns its pid. */
  start: (runtime: Runtime) => Promise<Pid>;
  /** A runtime to use (it is closed when the application ends), or options for a new one. */
  runtime?: Runtime | RuntimeOptions;
  /** Default: the process's signals. */
  signals?: SignalSource;
  /** Called once with the exit code when the application ends. Default: `Deno.exit`. */
  exit?: (code: number) => void;
  /** How long the orderly stop may take before the root is killed (default Infinity). */
  shutdownTimeoutMs?: number;
}

/**
 * A running application.
 *
 * @example
 * ```ts
 * import { Application, Supervisor, type SignalSource } from "./mod.ts";
 * let fire = () => {};
 * const signals: SignalSource = { subscribe: (_s, h) => { fire = h; return () => {}; } };
 * let code = -1;
 * const app = await Application.start({
 *   start: (rt) => Supervisor.start(rt, []),
 *   runtime: { report: () => {} },
 *   signals,
 *   exit: (c) => { code = c; },
 * });
 * fire(); // as if SIGTERM arrived
 * console.assert((await app.exited) === 0 && code === 0);
 * ```
 */
export class Application {
  /** The runtime the tree runs in. */
  readonly runtime: Runtime;
  /** The root supervisor. */
  readonly root: Pid;
  /** Resolves with the exit code once the application has ended. */
  readonly exited: Promise<number>;
  #stopping = false;
  #timeoutMs: number;

  private constructor(
    runtime: Runtime,
    root: Pid,
    exited: Promise<number>,
    timeoutMs: number,
  ) {
    this.runtime = runtime;
    this.root = root;
    this.exited = exited;
    this.#timeoutMs = timeoutMs;
  }

  /**
   * Starts the runtime and the root supervisor, and listens for SIGINT/SIGTERM.
   *
   * @returns The running application.
   * @throws {StartError} (rejection) If the root failed to start; the runtime is closed and
   *   `exit` is not called (the caller decides).
   * @throws {RangeError} If `shutdownTimeoutMs` is not > 0.
   */
  static async start(options: ApplicationOptions): Promise<Application> {
    const timeoutMs = options.shutdownTimeoutMs ?? Infinity;
    if (!(timeoutMs > 0)) {
      throw new RangeError(
        `Cannot start application: shutdownTimeoutMs ${timeoutMs}; allowed: a number > 0`,
      );
    }
    const runtime = options.runtime instanceof Runtime
      ? options.runtime
      : new Runtime(options.runtime ?? {});
    let autoShutdown = false;
    let root: Pid | null = null;
    const unsubscribe = runtime.subscribe((event) => {
      if (
        event.type === "supervisor_shutdown" && event.supervisor === root &&
        event.cause === "auto_shutdown"
      ) {
        autoShutdown = true;
      }
    });
    try {
      root = await options.start(runtime);
    } catch (error) {
      unsubscribe();
      runtime.close();
      throw error;
    }
    const signals = options.signals ?? processSignals();
    const exit = options.exit ?? ((code: number) => Deno.exit(code));
    let app: Application | null = null;
    const stopHandler = () => void app?.stop();
    const unlisten = [
      signals.subscribe("SIGINT", stopHandler),
      signals.subscribe("SIGTERM", stopHandler),
    ];
    // Signal listeners do not keep Deno's event loop alive; this does, until the end.
    const keepAlive = setInterval(() => {}, 1 << 30);
    const exited = runtime.waitForExit(root).then((reason) => {
      const code = app!.#exitCode(reason ?? "noproc", autoShutdown);
      clearInterval(keepAlive);
      for (const off of unlisten) off();
      unsubscribe();
      runtime.close();
      exit(code);
      return code;
    });
    app = new Application(runtime, root, exited, timeoutMs);
    return app;
  }

  #exitCode(reason: ExitReason, autoShutdown: boolean): number {
    if (this.#stopping) return isCleanExit(reason) ? 0 : 1;
    if (reason === "normal" || (autoShutdown && reason === "shutdown")) return 0;
    return 1; // the root exited by itself: a crash reached the top of the tree
  }

  /**
   * Stops the tree in order (as on SIGINT/SIGTERM): the root's children in
   * reverse start order, each with its shutdown procedure. If that takes
   * longer than `shutdownTimeoutMs`, the root is killed and the code is 1.
   *
   * @returns The exit code.
   */
  async stop(): Promise<number> {
    if (!this.#stopping) {
      this.#stopping = true;
      try {
        await this.runtime.stop(this.root, "shutdown", this.#timeoutMs);
      } catch {
        this.runtime.exit(this.root, "kill");
      }
    }
    return await this.exited;
  }
}

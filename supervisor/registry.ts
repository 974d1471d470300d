/**
 * A registry of unique names for processes, after Elixir's `Registry`
 * with `keys: :unique`. A name goes away when its process exits.
 *
 * @module
 */

import { AlreadyRegisteredError, NoProcessError, SystemLimitError } from "./errors.ts";
import type { Pid } from "./pid.ts";
import type { Runtime } from "./runtime.ts";

/** Options of a {@linkcode Registry}. */
export interface RegistryOptions {
  /** Most names held at once (default 1,048,576). */
  keysMax?: number;
}

/** Hooks a registry uses on its runtime (provided by the runtime). */
export interface RegistryHost {
  /** Records `key` on `pid` for removal at exit; false if `pid` is not alive. */
  bindName(pid: Pid, registry: Registry, key: unknown): boolean;
  /** Forgets that binding (explicit unregister). */
  unbindName(pid: Pid, registry: Registry, key: unknown): void;
}

/**
 * Unique names → pids. Use one as an address with `{ registry, key }`
 * (OTP's `via`) or, for the runtime's own registry, with a plain string.
 *
 * @example
 * ```ts
 * import { Registry, Runtime, type GenServer } from "./mod.ts";
 * const rt = new Runtime();
 * const regions = new Registry(rt);
 * const Echo: GenServer<void, null, string, string> = {
 *   init: () => ({ state: null }),
 *   handleCall: (m, _f, s) => ({ reply: m, state: s }),
 * };
 * await rt.start(Echo, undefined, { name: { registry: regions, key: 7 } });
 * console.assert((await rt.call({ registry: regions, key: 7 }, "hi")) === "hi");
 * rt.close();
 * ```
 */
export class Registry {
  #names = new Map<unknown, Pid>();
  #host: RegistryHost;
  #keysMax: number;

  /**
   * @param runtime The runtime whose processes it names.
   * @param options Limits.
   * @throws {RangeError} If `keysMax` is not a positive integer.
   */
  constructor(runtime: Runtime, options: RegistryOptions = {}) {
    this.#host = runtime.registryHost;
    this.#keysMax = options.keysMax ?? 1_048_576;
    if (!Number.isInteger(this.#keysMax) || this.#keysMax < 1) {
      throw new RangeError(
        `Cannot create registry: keysMax ${this.#keysMax}; allowed: an integer >= 1`,
      );
    }
  }

  /**
   * Names `pid` with `key`.
   *
   * @throws {AlreadyRegisteredError} If `key` names another process.
   * @throws {NoProcessError} If `pid` is not alive.
   * @throws {SystemLimitError} If `keysMax` names are held.
   */
  register(key: unknown, pid: Pid): void {
    const holder = this.#names.get(key);
    if (holder !== undefined) {
      if (holder === pid) return;
      throw new AlreadyRegisteredError(key, String(holder));
    }
    if (this.#names.size >= this.#keysMax) {
      throw new SystemLimitError(`registry holds keysMax ${this.#keysMax} names`);
    }
    if (!this.#host.bindName(pid, this, key)) throw new NoProcessError(String(pid), "register");
    this.#names.set(key, pid);
  }

  /** Removes `key`; returns whether it was registered. */
  unregister(key: unknown): boolean {
    const pid = this.#names.get(key);
    if (pid === undefined) return false;
    this.#names.delete(key);
    this.#host.unbindName(pid, this, key);
    return true;
  }

  /** The process named `key`, if any. */
  lookup(key: unknown): Pid | undefined {
    return this.#names.get(key);
  }

  /** The names of `pid`. */
  keys(pid: Pid): unknown[] {
    const out: unknown[] = [];
    for (const [key, holder] of this.#names) if (holder === pid) out.push(key);
    return out;
  }

  /** How many names are held. */
  get size(): number {
    return this.#names.size;
  }

  /**
   * Called by the runtime when a named process exits.
   *
   * @param key The name to drop.
   * @param pid The process that held it.
   */
  removeExited(key: unknown, pid: Pid): void {
    if (this.#names.get(key) === pid) this.#names.delete(key);
  }
}

/**
 * The PD process: {@link PlacementDriver} as a GenServer under Spire's
 * supervisor, and {@link PdClient}, a typed client for it.
 *
 * Requests that wait for the disk (ids, timestamps, metadata changes) are
 * answered with a deferred reply, so routing lookups are never held up by an
 * fsync; PD itself keeps every change in arrival order. Rejections a caller
 * can act on (a stale epoch, an unknown store, a bad argument, a busy queue)
 * are returned to that caller; anything else (an I/O error) crashes the
 * process, and its supervisor restarts it from what is on disk. A restarted
 * process first waits for the previous instance's writes to finish.
 *
 * @module
 */

import type {
  Caller,
  CallOptions,
  ChildSpec,
  Context,
  From,
  GenServer,
  Target,
} from "../supervisor/mod.ts";
import { workerSpec } from "../supervisor/mod.ts";
import { PdBusyError, PdClosedError, StaleEpochError, UnknownStoreError } from "./errors.ts";
import {
  type BootstrapOptions,
  type PdStats,
  PlacementDriver,
  type PlacementDriverOptions,
  type RegionHeartbeat,
  type RegionHeartbeatResponse,
  type SplitIds,
} from "./placement_driver.ts";
import type { Region, RegionEpoch } from "./region.ts";
import type { StoreInfo, StoreMeta, StoreStats } from "./store.ts";
import type { TimestampRange } from "./tso.ts";

/** A request to the PD process. */
export type PdRequest =
  | { readonly op: "registerStore"; readonly store: StoreMeta }
  | { readonly op: "storeHeartbeat"; readonly storeId: number; readonly stats: StoreStats }
  | { readonly op: "regionHeartbeat"; readonly heartbeat: RegionHeartbeat }
  | { readonly op: "getRegionByKey"; readonly key: Uint8Array }
  | { readonly op: "getRegionById"; readonly regionId: number }
  | { readonly op: "listRegions" }
  | { readonly op: "listStores" }
  | { readonly op: "askSplit"; readonly regionId: number; readonly epoch: RegionEpoch }
  | { readonly op: "reportSplit"; readonly left: Region; readonly right: Region }
  | { readonly op: "allocId"; readonly count: number }
  | { readonly op: "getTs"; readonly count: number }
  | { readonly op: "bootstrap"; readonly options: BootstrapOptions }
  | { readonly op: "isBootstrapped" }
  | { readonly op: "stats" };

/** The PD process's answer: a value, or an error meant for the caller. */
export type PdReply = { readonly ok: unknown } | { readonly error: Error };

/** Messages the PD process sends itself. */
export interface PdFailure {
  /** Tag. */
  readonly type: "pd-failed";
  /** What failed (crashes the process). */
  readonly error: unknown;
}

/**
 * What the PD process starts from. The same object is passed to every
 * restart (child spec args), which lets a new instance wait for the last
 * one's writes before it reads the directory.
 */
export interface PdServerArgs {
  /** How to open the placement driver. */
  readonly options: PlacementDriverOptions;
  /** Holder of the instance last started with these args (set by the process). */
  readonly instance: { current?: PlacementDriver };
}

/** The PD process's state. */
export interface PdServerState {
  /** The placement driver. */
  readonly pd: PlacementDriver;
}

/** Errors returned to the caller rather than crashing PD. */
function isCallerError(e: unknown): e is Error {
  return e instanceof StaleEpochError || e instanceof UnknownStoreError ||
    e instanceof PdBusyError || e instanceof PdClosedError || e instanceof RangeError ||
    e instanceof TypeError;
}

function answerNow(fn: () => unknown): { reply: PdReply } {
  try {
    return { reply: { ok: fn() } };
  } catch (e) {
    if (isCallerError(e)) return { reply: { error: e } };
    throw e;
  }
}

function answerLater(
  ctx: Context,
  from: From<PdReply>,
  work: () => Promise<unknown>,
): void {
  const self = ctx.self;
  work().then(
    (ok) => safely(() => ctx.reply(from, { ok })),
    (error) => {
      if (isCallerError(error)) safely(() => ctx.reply(from, { error }));
      // The process crashes with the error; the caller's call fails with it.
      else safely(() => ctx.send(self, { type: "pd-failed", error } satisfies PdFailure));
    },
  );
}

/** Replies to a process that has since exited are dropped. */
function safely(fn: () => unknown): void {
  try {
    fn();
  } catch {
    // The process is gone; its callers already got CallExitError.
  }
}

/**
 * The PD GenServer. Start it with {@link pdChildSpec} under a supervisor, or
 * with `runtime.start(PdServer, pdServerArgs(options))`.
 */
export const PdServer: GenServer<
  PdServerArgs,
  PdServerState,
  PdRequest,
  PdReply,
  never,
  PdFailure
> = {
  label: "pd",

  async init(args) {
    const previous = args.instance.current;
    if (previous !== undefined) await previous.close();
    const pd = await PlacementDriver.open(args.options);
    args.instance.current = pd;
    return { state: { pd } };
  },

  handleCall(msg, from, state, ctx) {
    const pd = state.pd;
    const later = (work: () => Promise<unknown>) => {
      answerLater(ctx, from, work);
      return { noreply: true as const, state };
    };
    switch (msg.op) {
      case "registerStore":
        return later(() => pd.registerStore(msg.store));
      case "regionHeartbeat":
        return later(() => pd.regionHeartbeat(msg.heartbeat));
      case "askSplit":
        return later(() => pd.askSplit(msg.regionId, msg.epoch));
      case "reportSplit":
        return later(() => pd.reportSplit(msg.left, msg.right));
      case "allocId":
        return later(() => pd.allocId(msg.count));
      case "getTs":
        return later(() => pd.getTs(msg.count));
      case "bootstrap":
        return later(() => pd.bootstrap(msg.options));
      case "storeHeartbeat":
        return { ...answerNow(() => pd.storeHeartbeat(msg.storeId, msg.stats)), state };
      case "getRegionByKey":
        return { ...answerNow(() => pd.getRegionByKey(msg.key)), state };
      case "getRegionById":
        return { ...answerNow(() => pd.getRegionById(msg.regionId)), state };
      case "listRegions":
        return { ...answerNow(() => pd.listRegions()), state };
      case "listStores":
        return { ...answerNow(() => pd.listStores()), state };
      case "isBootstrapped":
        return { ...answerNow(() => pd.isBootstrapped()), state };
      case "stats":
        return { ...answerNow(() => pd.stats()), state };
    }
  },

  handleInfo(msg, state) {
    if ("type" in msg && msg.type === "pd-failed") {
      throw msg.error instanceof Error ? msg.error : new Error(String(msg.error));
    }
    return { state };
  },

  async terminate(_reason, state) {
    await state.pd.close();
  },
};

/**
 * Builds the start arguments of {@link PdServer}; keep one per PD directory.
 *
 * @param options How to open the placement driver.
 * @returns The arguments.
 */
export function pdServerArgs(options: PlacementDriverOptions): PdServerArgs {
  return { options, instance: {} };
}

/**
 * A supervisor child spec for the PD process (a permanent worker).
 *
 * @param options How to open the placement driver.
 * @param spec Child id (default "pd"), registered name (default "pd"), shutdown.
 * @returns The child spec.
 * @example
 * ```ts
 * import { Runtime, Supervisor } from "../supervisor/mod.ts";
 * import { MemoryFileSystem, pdChildSpec, PdClient } from "./mod.ts";
 * const rt = new Runtime();
 * const root = await Supervisor.start(rt, [pdChildSpec({ dir: "/d/pd", fs: new MemoryFileSystem() })]);
 * const pd = new PdClient(rt, "pd");
 * const first = await pd.allocId();
 * console.assert(first === 1);
 * await rt.stop(root, "shutdown");
 * rt.close();
 * ```
 */
export function pdChildSpec(
  options: PlacementDriverOptions,
  spec: { id?: string; name?: string; shutdownMs?: number } = {},
): ChildSpec {
  return workerSpec(spec.id ?? "pd", PdServer, pdServerArgs(options), {
    name: spec.name ?? "pd",
    shutdown: spec.shutdownMs ?? 10_000,
  });
}

/**
 * A typed client of the PD process: each method is one call. Errors meant for
 * the caller (StaleEpochError, UnknownStoreError, PdBusyError, RangeError,
 * TypeError) are thrown as they were raised; if PD crashes during a call, the
 * supervisor's CallExitError is thrown; CallTimeoutError after `timeoutMs`.
 */
export class PdClient {
  readonly #caller: Caller;
  readonly #target: Target;
  readonly #options: CallOptions;

  /**
   * Creates the instance.
   *
   * @param caller The runtime, or the calling process's context.
   * @param target The PD process's pid or name (default "pd").
   * @param options Call timeout (default 5000 ms).
   */
  constructor(caller: Caller, target: Target = "pd", options: CallOptions = {}) {
    this.#caller = caller;
    this.#target = target;
    this.#options = options;
  }

  async #call<T>(req: PdRequest): Promise<T> {
    const reply = await this.#caller.call<PdRequest, PdReply>(
      this.#target as Target<PdRequest, PdReply>,
      req,
      this.#options,
    );
    if ("error" in reply) throw reply.error;
    return reply.ok as T;
  }

  /** See {@link PlacementDriver.registerStore}. */
  registerStore(store: StoreMeta): Promise<StoreInfo> {
    return this.#call({ op: "registerStore", store });
  }

  /** See {@link PlacementDriver.storeHeartbeat}. */
  storeHeartbeat(storeId: number, stats: StoreStats): Promise<StoreInfo> {
    return this.#call({ op: "storeHeartbeat", storeId, stats });
  }

  /** See {@link PlacementDriver.regionHeartbeat}. */
  regionHeartbeat(heartbeat: RegionHeartbeat): Promise<RegionHeartbeatResponse> {
    return this.#call({ op: "regionHeartbeat", heartbeat });
  }

  /** See {@link PlacementDriver.getRegionByKey}. */
  getRegionByKey(key: Uint8Array): Promise<Region> {
    return this.#call({ op: "getRegionByKey", key });
  }

  /** See {@link PlacementDriver.getRegionById}. */
  getRegionById(regionId: number): Promise<Region | undefined> {
    return this.#call({ op: "getRegionById", regionId });
  }

  /** See {@link PlacementDriver.listRegions}. */
  listRegions(): Promise<readonly Region[]> {
    return this.#call({ op: "listRegions" });
  }

  /** See {@link PlacementDriver.listStores}. */
  listStores(): Promise<StoreInfo[]> {
    return this.#call({ op: "listStores" });
  }

  /** See {@link PlacementDriver.askSplit}. */
  askSplit(regionId: number, epoch: RegionEpoch): Promise<SplitIds> {
    return this.#call({ op: "askSplit", regionId, epoch });
  }

  /** See {@link PlacementDriver.reportSplit}. */
  reportSplit(left: Region, right: Region): Promise<void> {
    return this.#call({ op: "reportSplit", left, right });
  }

  /** See {@link PlacementDriver.allocId}. */
  allocId(count = 1): Promise<number> {
    return this.#call({ op: "allocId", count });
  }

  /** See {@link PlacementDriver.getTs}. */
  getTs(count = 1): Promise<TimestampRange> {
    return this.#call({ op: "getTs", count });
  }

  /** See {@link PlacementDriver.bootstrap}. */
  bootstrap(options: BootstrapOptions): Promise<readonly Region[]> {
    return this.#call({ op: "bootstrap", options });
  }

  /** See {@link PlacementDriver.isBootstrapped}. */
  isBootstrapped(): Promise<boolean> {
    return this.#call({ op: "isBootstrapped" });
  }

  /** See {@link PlacementDriver.stats}. */
  stats(): Promise<PdStats> {
    return this.#call({ op: "stats" });
  }
}

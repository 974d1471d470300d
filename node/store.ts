/**
 * The store process: this node's identity towards PD and the manager of its
 * region peers.
 *
 * At start it registers the store with PD (the store id is kept in the
 * engine), creates the initial regions on a fresh data directory (PD
 * bootstrap; the keyspace cut into `initialRegionCount` ranges), loads the
 * regions the engine's metadata lists, tells PD about splits it missed (the
 * engine is the truth: it holds what the Raft logs applied), fills the
 * routing table and starts one peer per region under the regions'
 * DynamicSupervisor.
 *
 * Then, every `regionHeartbeatIntervalMs`, it sends PD a store heartbeat
 * (disk capacity and free space, region count) and reports each region's
 * approximate size and key count. When PD answers with a split, the
 * store picks the split key (the middle of the region, or PD's split size
 * into it for large regions), asks PD for the new ids and proposes the split
 * through the region's Raft log, so it applies at one index. When a split
 * applies, the region peer tells the store, which updates the routing table,
 * starts the new region's peer and reports the split to PD (again before
 * every heartbeat until PD has it, so a PD restart does not lose it).
 *
 * @module
 */

import { pack, unpack } from "msgpackr";
import { type Operator, PdClient, type Region, StaleEpochError } from "../pd/mod.ts";
import { type Context, DynamicSupervisor, type GenServer } from "../supervisor/mod.ts";
import {
  decodeRegion,
  encodeRegion,
  engineRangeOf,
  isRegionStateKey,
  NODE_IDENTITY_KEY,
  REGION_META_RANGE,
  regionStateKey,
} from "./region_meta.ts";
import { regionPeerSpec, type RegionReply, type RegionRequest } from "./region_peer_process.ts";
import { encodeRegionCommand } from "./region_state_machine.ts";
import { NAMES, type NodeServices } from "./services.ts";
import type { Engine, ScanBatch } from "../engine/mod.ts";

/** Messages the store handles. */
export type StoreInfo =
  | "heartbeat"
  | { readonly type: "split"; readonly left: Region; readonly right: Region };

/** Calls the store answers. */
export type StoreCall = { readonly op: "heartbeatNow" };

/** A region's keys and their key and value bytes, as counted in the engine. */
export interface Counted {
  bytes: number;
  keys: number;
}

interface State {
  readonly services: NodeServices;
  readonly pd: PdClient;
  readonly counted: Map<number, Counted>;
  /**
   * Applied splits PD has not acknowledged yet, oldest first; sent again before
   * every heartbeat (PD rejects the heartbeats of split regions until it knows
   * the split). Bounded by PD itself: a split needs PD's askSplit first.
   */
  readonly unreported: { left: Region; right: Region }[];
  log: (m: string) => void;
}

/**
 * The capacity of the file system holding `path` and the space available to
 * unprivileged users, in bytes (statvfs through glibc); zeros when unknown.
 */
function diskSpace(path: string): { capacityBytes: number; availableBytes: number } {
  let lib: Deno.DynamicLibrary<{ statvfs: { parameters: ["buffer", "buffer"]; result: "i32" } }>;
  try {
    lib = Deno.dlopen("libc.so.6", {
      statvfs: { parameters: ["buffer", "buffer"], result: "i32" },
    });
  } catch {
    return { capacityBytes: 0, availableBytes: 0 }; // not glibc
  }
  try {
    // struct statvfs on 64-bit Linux: f_bsize, f_frsize, f_blocks, f_bfree, f_bavail, ... (112 bytes)
    const buf = new BigUint64Array(14);
    if (lib.symbols.statvfs(new TextEncoder().encode(`${path}\0`), buf) !== 0) {
      return { capacityBytes: 0, availableBytes: 0 };
    }
    const frsize = buf[1]!;
    return { capacityBytes: Number(frsize * buf[2]!), availableBytes: Number(frsize * buf[4]!) };
  } finally {
    lib.close();
  }
}

/**
 * Split keys that cut the keyspace into `n` ranges of the first key byte.
 * @param n number of regions, 1 to 256
 * @returns n - 1 single-byte keys
 */
export function initialSplitKeys(n: number): Uint8Array[] {
  if (!Number.isInteger(n) || n < 1 || n > 256) {
    throw new RangeError(`Invalid initial region count: ${n}; allowed: 1 to 256`);
  }
  const keys: Uint8Array[] = [];
  for (let i = 1; i < n; i++) keys.push(Uint8Array.of(Math.floor((256 * i) / n)));
  return keys;
}

async function loadRegions(engine: Engine): Promise<Region[]> {
  const regions: Region[] = [];
  for await (const batch of engine.scanRange(REGION_META_RANGE.start, REGION_META_RANGE.end)) {
    for (const { key, value } of batch.entries) {
      if (isRegionStateKey(key)) regions.push(decodeRegion(value));
    }
  }
  return regions;
}

async function ensureStoreId(
  services: NodeServices,
  engine: Engine,
  pd: PdClient,
): Promise<number> {
  const raw = await engine.get(NODE_IDENTITY_KEY);
  let storeId: number;
  if (raw === undefined) {
    storeId = await pd.allocId();
    await engine.put(NODE_IDENTITY_KEY, pack({ storeId }));
    await engine.flush();
  } else {
    storeId = (unpack(raw) as { storeId: number }).storeId;
  }
  const { host, port } = services.config;
  await pd.registerStore({ id: storeId, address: `${host}:${port}` });
  return storeId;
}

/** Splits PD has not heard of: local regions PD does not know, with their right neighbour. */
async function reconcileWithPd(pd: PdClient, local: readonly Region[], log: (m: string) => void) {
  const known = new Map((await pd.listRegions()).map((r) => [r.id, r]));
  const byStart = new Map(local.map((r) => [r.startKey.join(","), r]));
  for (const left of local) {
    if (known.has(left.id)) continue;
    const right = byStart.get(left.endKey.join(","));
    if (right === undefined) continue;
    try {
      await pd.reportSplit(left, right);
    } catch (e) {
      log(`could not report split of region ${right.id} to PD: ${(e as Error).message}`);
    }
  }
}

/**
 * Rows per slice of a region count or split-key scan. Between slices the scan
 * waits for the next turn of the event loop, so clients are served while a
 * large region is measured: one unsliced count of a region of 600,000 keys
 * held the event loop for about half a second (redis-benchmark saw SETs of
 * 400-500 ms).
 */
export const SCAN_SLICE_ROWS = 1024;

/** Resolves on a later turn of the event loop: timers and I/O run first (microtasks would not). */
const nextTurn = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

/**
 * Visits a region's engine rows slice by slice (see {@link SCAN_SLICE_ROWS}),
 * yielding the event loop between slices; `visit` returns true to stop.
 */
async function scanSliced(
  engine: Engine,
  region: Region,
  visit: (batch: ScanBatch) => boolean,
): Promise<void> {
  const { start, end } = engineRangeOf(region);
  const scan = engine.scanRange(start, end, { batchSize: SCAN_SLICE_ROWS });
  try {
    for (;;) {
      const next = await scan.next();
      if (next.done || visit(next.value)) return;
      await nextTurn();
    }
  } finally {
    await scan.return?.();
  }
}

/**
 * Rows per slice of a region count: about 0.7 ms of the event loop. The count
 * copies nothing out of the engine (`Engine.measureRange`: 3.0M rows/s here
 * against 2.1M for reading the rows, `./spire bench keyspace`).
 */
export const COUNT_SLICE_ROWS = 2 * SCAN_SLICE_ROWS;

/**
 * Counts a region's keys and bytes in the engine, a slice at a time (clients
 * are served meanwhile, and the count is of the view when it started).
 */
export async function countRegion(engine: Engine, region: Region): Promise<Counted> {
  const { start, end } = engineRangeOf(region);
  const { keys, bytes } = await engine.measureRange(start, end, { sliceRows: COUNT_SLICE_ROWS });
  return { keys, bytes };
}

/** The key about `targetKeys` keys or `targetBytes` bytes into the region, whichever comes first. */
export async function findSplitKey(
  engine: Engine,
  region: Region,
  targetKeys: number,
  targetBytes: number,
): Promise<Uint8Array | undefined> {
  let keys = 0;
  let bytes = 0;
  let found: Uint8Array | undefined;
  await scanSliced(engine, region, (batch) => {
    for (const { key, value } of batch.entries) {
      keys++;
      bytes += key.length + value.length;
      if (keys > 1 && (keys >= targetKeys || bytes >= targetBytes)) {
        found = key.slice(1);
        return true;
      }
    }
    return false;
  });
  return found;
}

/**
 * Starts a region's peer unless it runs already: after a restart of the store
 * alone, the peers it started before are still running under the regions'
 * supervisor (they sit before the store under rest_for_one).
 */
async function startPeer(ctx: Context, services: NodeServices, regionId: number): Promise<void> {
  const name = NAMES.region(regionId);
  if (services.runtime.whereis(name) !== undefined) return;
  try {
    await DynamicSupervisor.startChild(ctx, NAMES.regions, regionPeerSpec(services, regionId));
  } catch (e) {
    // Its supervisor restarted it meanwhile (under the same name): it runs, which is all we want.
    if (services.runtime.whereis(name) !== undefined) return;
    throw e;
  }
}

async function splitRegion(
  state: State,
  ctx: Context,
  region: Region,
  op: Operator & { kind: "split" },
): Promise<void> {
  const engine = state.services.requireEngine("split");
  const counted = state.counted.get(region.id) ?? await countRegion(engine, region);
  const targetKeys = Math.min(op.splitKeys, Math.ceil(counted.keys / 2));
  const targetBytes = Math.min(op.splitSizeBytes, Math.ceil(counted.bytes / 2));
  const splitKey = await findSplitKey(engine, region, targetKeys, targetBytes);
  if (splitKey === undefined || splitKey.length === 0) return;
  const ids = await state.pd.askSplit(region.id, region.epoch);
  const command = encodeRegionCommand({
    kind: "split",
    splitKey,
    newRegionId: ids.newRegionId,
    newPeerIds: ids.newPeerIds,
    version: region.epoch.version,
  });
  const reply = await ctx.call<RegionRequest, RegionReply>(
    NAMES.region(region.id),
    { op: "propose", command },
    { timeoutMs: 30_000 },
  );
  if ("error" in reply) state.log(`split of region ${region.id} failed: ${reply.error.message}`);
  state.counted.delete(region.id);
}

/** Reports the splits PD has not acknowledged, in the order they applied. */
async function reportSplits(state: State): Promise<void> {
  while (state.unreported.length > 0) {
    const { left, right } = state.unreported[0]!;
    try {
      await state.pd.reportSplit(left, right);
    } catch (e) {
      if (!(e instanceof RangeError || e instanceof StaleEpochError)) throw e; // PD unreachable
      // PD refuses it for good (it knows a newer state): the store's restart reconciles.
      state.log(`PD refused split report of region ${right.id}: ${(e as Error).message}`);
    }
    state.unreported.shift();
  }
}

async function heartbeat(state: State, ctx: Context): Promise<void> {
  const s = state.services;
  const engine = s.requireEngine("heartbeat");
  const cfg = s.config;
  await reportSplits(state);
  // The store's own heartbeat keeps it "up" in PD: without it PD sees the store
  // disconnected after 20 s and down after 30 min, and then wants its replicas removed.
  await state.pd.storeHeartbeat(s.storeId!, {
    ...diskSpace(s.config.dataDir),
    regionCount: s.regions().length,
  });
  for (const region of s.regions()) {
    const info = s.raftInfo.get(region.id);
    if (info === undefined || !info.leader) continue;
    let counted = state.counted.get(region.id);
    const dirty = info.bytesPutSinceCount > cfg.regionSplitSizeBytes / 8 ||
      info.keysPutSinceCount > cfg.regionSplitKeys / 8;
    if (counted === undefined || dirty) {
      // Reset first: the writes applied while the count runs stay in the counters (a few may
      // be counted twice, never missed).
      await ctx.call<RegionRequest, RegionReply>(NAMES.region(region.id), {
        op: "resetSizeCounters",
      }).catch(() => {});
      counted = await countRegion(engine, region);
      state.counted.set(region.id, counted);
    }
    const peer = region.peers.find((p) => p.id === info.peerId);
    if (peer === undefined) continue;
    const since = s.raftInfo.get(region.id) ?? info; // as of now: a count took turns
    // A split applied meanwhile: its message waits in this mailbox; the next beat reports both.
    if (since.region.epoch.version !== region.epoch.version) continue;
    const resp = await state.pd.regionHeartbeat({
      region: { ...region, leader: peer },
      approximateSizeBytes: counted.bytes + since.bytesPutSinceCount,
      approximateKeys: counted.keys + since.keysPutSinceCount,
    });
    for (const op of resp.operators) {
      if (op.kind === "split") await splitRegion(state, ctx, region, op);
      // Membership and leadership operators need more than one store: not in standalone mode.
    }
  }
}

/** The store GenServer. */
export const StoreServer: GenServer<NodeServices, State, StoreCall, null, never, StoreInfo> = {
  label: "store",

  async init(services, ctx) {
    const engine = services.requireEngine("start the store");
    const pd = new PdClient(ctx, NAMES.pd, { timeoutMs: 30_000 });
    const log = (m: string) => console.error(`spire store: ${m}`);
    services.storeId = await ensureStoreId(services, engine, pd);
    let local = await loadRegions(engine);
    if (local.length === 0) {
      const regions = (await pd.isBootstrapped()) ? await pd.listRegions() : await pd.bootstrap({
        storeIds: [services.storeId],
        splitKeys: initialSplitKeys(services.config.initialRegionCount),
      });
      await engine.writeBatch(
        regions.map((r) => ({ op: "put", key: regionStateKey(r.id), value: encodeRegion(r) })),
      );
      await engine.flush();
      local = [...regions];
    }
    await reconcileWithPd(pd, local, log);
    services.setRegions(local);
    for (const r of local) await startPeer(ctx, services, r.id);
    ctx.sendAfter(ctx.self, "heartbeat", services.config.regionHeartbeatIntervalMs);
    return { state: { services, pd, counted: new Map(), unreported: [], log } };
  },

  async handleCall(msg, _from, state, ctx) {
    switch (msg.op) {
      case "heartbeatNow":
        await heartbeat(state, ctx);
        return { reply: null, state };
    }
  },

  async handleInfo(msg, state, ctx) {
    if (msg === "heartbeat") {
      try {
        await heartbeat(state, ctx);
      } catch (e) {
        // PD or a region restarting: try again at the next beat.
        state.log(`heartbeat failed: ${(e as Error).message}`);
      }
      ctx.sendAfter(ctx.self, "heartbeat", state.services.config.regionHeartbeatIntervalMs);
    } else if (typeof msg === "object" && "type" in msg && msg.type === "split") {
      state.services.applySplit(msg.left, msg.right);
      state.counted.delete(msg.right.id);
      await startPeer(ctx, state.services, msg.left.id);
      state.unreported.push({ left: msg.left, right: msg.right });
      try {
        await reportSplits(state);
      } catch (e) {
        state.log(
          `could not report split to PD (retried at the next heartbeat): ${(e as Error).message}`,
        );
      }
    }
    return { state };
  },
};

import assert from "node:assert/strict";
import type { Region } from "./region.ts";
import {
  checkLeaderBalance,
  checkReplicas,
  checkSplit,
  type ClusterView,
  decide,
  DEFAULT_SCHEDULE_CONFIG,
  type ScheduleConfig,
  validateScheduleConfig,
} from "./scheduler.ts";
import type { StoreState } from "./store.ts";

const E = new Uint8Array();
const cfg: ScheduleConfig = {
  ...DEFAULT_SCHEDULE_CONFIG,
  regionMaxSizeBytes: 1000,
  regionSplitSizeBytes: 600,
  regionMaxKeys: 100,
  regionSplitKeys: 60,
};

function view(
  states: Record<number, StoreState>,
  regions: Record<number, number> = {},
  leaders: Record<number, number> = {},
): ClusterView {
  return {
    storeState: (id) => states[id] ?? "down",
    storeIds: () => Object.keys(states).map(Number),
    regionCount: (id) => regions[id] ?? 0,
    leaderCount: (id) => leaders[id] ?? 0,
  };
}

function region(stores: number[], leaderStore?: number): Region {
  const peers = stores.map((s) => ({ id: 100 + s, storeId: s, role: "voter" as const }));
  const leader = peers.find((p) => p.storeId === leaderStore);
  return {
    id: 1,
    startKey: E,
    endKey: E,
    epoch: { confVer: 1, version: 1 },
    peers,
    ...(leader === undefined ? {} : { leader }),
  };
}

Deno.test("replica repair adds a voter on the up store with the fewest regions", () => {
  const v = view({ 1: "up", 2: "up", 3: "up", 4: "up", 5: "disconnected" }, { 3: 7, 4: 2, 5: 0 });
  const d = checkReplicas(region([1, 2], 1), cfg, v);
  assert.deepEqual(d?.kind === "add-peer" && d.storeId, 4);
});

Deno.test("replica repair replaces a peer on a down store: add first, then remove", () => {
  const states: Record<number, StoreState> = { 1: "up", 2: "up", 3: "down", 4: "up" };
  const add = checkReplicas(region([1, 2, 3], 1), cfg, view(states));
  assert.equal(add?.kind === "add-peer" && add.storeId, 4);
  const remove = checkReplicas(region([1, 2, 3, 4], 1), cfg, view(states));
  assert.equal(remove?.kind === "remove-peer" && remove.peer.storeId, 3);
  // With no store to move to, the dead peer is still removed.
  const noSpare = checkReplicas(region([1, 2, 3], 1), cfg, view({ 1: "up", 2: "up", 3: "down" }));
  assert.equal(noSpare?.kind === "remove-peer" && noSpare.peer.storeId, 3);
  // A disconnected (not yet down) store keeps its peer.
  const v = view({ 1: "up", 2: "up", 3: "disconnected" });
  assert.equal(checkReplicas(region([1, 2, 3], 1), cfg, v), undefined);
});

Deno.test("replica repair removes a surplus voter, never the leader", () => {
  const v = view({ 1: "up", 2: "up", 3: "up", 4: "up" }, { 1: 9, 2: 1, 3: 5, 4: 1 });
  const d = checkReplicas(region([1, 2, 3, 4], 1), cfg, v);
  assert.equal(d?.kind === "remove-peer" && d.peer.storeId, 3);
});

Deno.test("split fires at the size or key maximum, not below", () => {
  assert.equal(checkSplit({ approximateSizeBytes: 999, approximateKeys: 99 }, cfg), undefined);
  const bySize = checkSplit({ approximateSizeBytes: 1000, approximateKeys: 0 }, cfg);
  assert.deepEqual(bySize, { kind: "split", reason: "size", splitSizeBytes: 600, splitKeys: 60 });
  const byKeys = checkSplit({ approximateSizeBytes: 0, approximateKeys: 100 }, cfg);
  assert.equal(byKeys?.kind === "split" && byKeys.reason, "keys");
});

Deno.test("leader balance moves a leader only across a gap of leaderBalanceGapMin", () => {
  const states: Record<number, StoreState> = { 1: "up", 2: "up", 3: "up" };
  const r = region([1, 2, 3], 1);
  assert.equal(checkLeaderBalance(r, cfg, view(states, {}, { 1: 5, 2: 4, 3: 4 })), undefined);
  const d = checkLeaderBalance(r, cfg, view(states, {}, { 1: 5, 2: 4, 3: 3 }));
  assert.equal(d?.kind === "transfer-leader" && d.to.storeId, 3);
  // Never to a store that is not up.
  const v = view({ 1: "up", 2: "up", 3: "disconnected" }, {}, { 1: 5, 2: 4, 3: 0 });
  assert.equal(checkLeaderBalance(r, cfg, v), undefined);
  assert.equal(checkLeaderBalance(region([1, 2, 3]), cfg, view(states, {}, { 1: 9 })), undefined);
});

Deno.test("decide puts replica repair before split before leader balance", () => {
  const big = { approximateSizeBytes: 5000, approximateKeys: 0 };
  const lopsided = view({ 1: "up", 2: "up", 3: "up", 4: "up" }, {}, { 1: 10 });
  assert.equal(decide(region([1, 2], 1), big, cfg, lopsided)?.kind, "add-peer");
  assert.equal(decide(region([1, 2, 3], 1), big, cfg, lopsided)?.kind, "split");
  const small = { approximateSizeBytes: 0, approximateKeys: 0 };
  assert.equal(decide(region([1, 2, 3], 1), small, cfg, lopsided)?.kind, "transfer-leader");
});

Deno.test("schedule config rejects a split size above the maximum and a gap below 2", () => {
  validateScheduleConfig(DEFAULT_SCHEDULE_CONFIG);
  assert.throws(() => validateScheduleConfig({ ...cfg, regionSplitSizeBytes: 1001 }), /at most/);
  assert.throws(() => validateScheduleConfig({ ...cfg, regionSplitKeys: 101 }), /at most/);
  assert.throws(() => validateScheduleConfig({ ...cfg, leaderBalanceGapMin: 1 }), /back and forth/);
  assert.throws(() => validateScheduleConfig({ ...cfg, replicas: 0 }), /replicas/);
});

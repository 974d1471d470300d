import assert from "node:assert/strict";
import { PdClosedError, PdCorruptError, StaleEpochError, UnknownStoreError } from "./errors.ts";
import { MemoryFileSystem } from "./fs.ts";
import { type Operator, PlacementDriver, type PlacementDriverOptions } from "./placement_driver.ts";
import { type Region, splitRegionMeta } from "./region.ts";

const k = (s: string) => new TextEncoder().encode(s);
const stats = { capacityBytes: 1000, availableBytes: 500, regionCount: 0 };

interface Cluster {
  pd: PlacementDriver;
  fs: MemoryFileSystem;
  clock: { now: number };
  stores: number[];
  open(extra?: Partial<PlacementDriverOptions>): Promise<PlacementDriver>;
}

async function cluster(
  storeCount: number,
  extra: Partial<PlacementDriverOptions> = {},
): Promise<Cluster> {
  const fs = new MemoryFileSystem();
  const clock = { now: 1_000_000 };
  const open = (more: Partial<PlacementDriverOptions> = {}) =>
    PlacementDriver.open({
      dir: "/data/pd",
      fs,
      clock: () => clock.now,
      schedule: {
        replicas: 3,
        regionMaxSizeBytes: 1000,
        regionSplitSizeBytes: 600,
        regionMaxKeys: 100,
        regionSplitKeys: 60,
        ...extra.schedule,
      },
      liveness: { storeDisconnectMs: 20_000, storeDownMs: 60_000 },
      operatorTimeoutMs: 30_000,
      ...(extra.operatorTimeoutMs === undefined
        ? {}
        : { operatorTimeoutMs: extra.operatorTimeoutMs }),
      ...more,
    });
  const pd = await open();
  const stores: number[] = [];
  for (let i = 0; i < storeCount; i++) {
    const id = await pd.allocId();
    await pd.registerStore({ id, address: `127.0.0.1:${20160 + i}` });
    stores.push(id);
  }
  return { pd, fs, clock, stores, open };
}

function withLeader(region: Region, storeId: number): Region {
  const leader = region.peers.find((p) => p.storeId === storeId);
  assert.ok(leader !== undefined, `no peer on store ${storeId}`);
  return { ...region, leader };
}

async function heartbeat(
  pd: PlacementDriver,
  region: Region,
  size = 0,
  keys = 0,
): Promise<Operator[]> {
  const r = await pd.regionHeartbeat({ region, approximateSizeBytes: size, approximateKeys: keys });
  return [...r.operators];
}

Deno.test("bootstrap cuts the keyspace and routes keys to their regions", async () => {
  const c = await cluster(3);
  assert.equal(c.pd.isBootstrapped(), false);
  assert.throws(() => c.pd.getRegionByKey(k("a")), /not bootstrapped/);
  const regions = await c.pd.bootstrap({ storeIds: c.stores, splitKeys: [k("g"), k("p")] });
  assert.equal(regions.length, 3);
  assert.equal(c.pd.getRegionByKey(k("")).id, regions[0]!.id);
  assert.equal(c.pd.getRegionByKey(k("g")).id, regions[1]!.id);
  assert.equal(c.pd.getRegionByKey(k("ozzz")).id, regions[1]!.id);
  assert.equal(c.pd.getRegionByKey(k("zzz")).id, regions[2]!.id);
  assert.deepEqual(regions[0]!.peers.map((p) => p.storeId), c.stores);
  await assert.rejects(c.pd.bootstrap({ storeIds: c.stores }), /already bootstrapped/);
  const again = await c.open();
  assert.deepEqual(again.listRegions(), regions, "bootstrap is durable");
  await assert.rejects(
    (await cluster(1)).pd.bootstrap({ storeIds: [1], splitKeys: [k("b"), k("a")] }),
    /strictly increasing/,
  );
});

Deno.test("region heartbeats record the leader and reject stale or unreported changes", async () => {
  const c = await cluster(3);
  const [r] = await c.pd.bootstrap({ storeIds: c.stores });
  const led = withLeader(r!, c.stores[1]!);
  assert.deepEqual(await heartbeat(c.pd, led, 10, 1), []);
  assert.equal(c.pd.getRegionByKey(k("x")).leader?.storeId, c.stores[1]);
  assert.deepEqual(c.pd.getRegionStats(r!.id), { approximateSizeBytes: 10, approximateKeys: 1 });

  const stale = { ...led, epoch: { confVer: 0, version: 1 } };
  await assert.rejects(heartbeat(c.pd, stale), StaleEpochError);
  const moved = { ...led, endKey: k("m") };
  await assert.rejects(heartbeat(c.pd, moved), /range changed/);
  const sneaky = { ...led, peers: led.peers.slice(0, 2) };
  await assert.rejects(heartbeat(c.pd, sneaky), /confVer did not/);
  await assert.rejects(heartbeat(c.pd, { ...led, id: 999 }), /Unknown region 999/);
  const { leader: _, ...leaderless } = led;
  await assert.rejects(heartbeat(c.pd, leaderless), /no leader/);

  // A membership change with a higher confVer is accepted and persisted.
  const shrunk = { ...led, peers: led.peers.slice(0, 2), epoch: { confVer: 2, version: 1 } };
  assert.equal(
    (await heartbeat(c.pd, shrunk))[0]?.kind,
    "add-peer",
    "2 voters < 3 replicas, but no spare store",
  );
  const reopened = await c.open();
  assert.deepEqual(reopened.getRegionById(r!.id)?.epoch, { confVer: 2, version: 1 });
  assert.equal(reopened.getRegionById(r!.id)?.peers.length, 2);
});

Deno.test("store heartbeats keep a store up; a silent store goes down and its replica is replaced", async () => {
  const c = await cluster(4);
  const [s1, s2, s3, s4] = c.stores as [number, number, number, number];
  const [r0] = await c.pd.bootstrap({ storeIds: [s1, s2, s3] });
  let region = withLeader(r0!, s1);
  assert.deepEqual(await heartbeat(c.pd, region), []);
  assert.throws(() => c.pd.storeHeartbeat(12345, stats), UnknownStoreError);

  // Stores 1, 2 and 4 keep heartbeating; store 3 falls silent.
  for (let t = 0; t < 7; t++) {
    c.clock.now += 10_000;
    for (const s of [s1, s2, s4]) c.pd.storeHeartbeat(s, stats);
  }
  assert.equal(c.pd.getStore(s3)?.state, "down");
  assert.equal(c.pd.getStore(s1)?.state, "up");

  const [add] = await heartbeat(c.pd, region);
  assert.ok(add?.kind === "add-peer");
  assert.equal(add.peer.storeId, s4);
  assert.deepEqual(
    await heartbeat(c.pd, region),
    [add],
    "re-sent with the same peer id until done",
  );

  // The leader adds the peer (confVer 2), then PD asks to remove the dead one.
  region = {
    ...region,
    peers: [...region.peers, add.peer],
    epoch: { confVer: 2, version: 1 },
  };
  const [remove] = await heartbeat(c.pd, region);
  assert.ok(remove?.kind === "remove-peer");
  assert.equal(remove.peer.storeId, s3);
  region = {
    ...region,
    peers: region.peers.filter((p) => p.storeId !== s3),
    epoch: { confVer: 3, version: 1 },
  };
  assert.deepEqual(await heartbeat(c.pd, region), []);
  assert.deepEqual(c.pd.getRegionById(region.id)?.peers.map((p) => p.storeId), [s1, s2, s4]);
});

Deno.test("an operator that never completes times out and is decided afresh", async () => {
  const c = await cluster(4);
  const [r0] = await c.pd.bootstrap({ storeIds: c.stores.slice(0, 2) });
  const region = withLeader(r0!, c.stores[0]!);
  const [first] = await heartbeat(c.pd, region);
  assert.ok(first?.kind === "add-peer");
  c.clock.now += 29_000;
  for (const s of c.stores) c.pd.storeHeartbeat(s, stats);
  assert.deepEqual(await heartbeat(c.pd, region), [first]);
  c.clock.now += 2_000;
  const [second] = await heartbeat(c.pd, region);
  assert.ok(second?.kind === "add-peer");
  assert.notEqual(second.peer.id, first.peer.id, "a fresh operator after the timeout");
});

Deno.test("a region past its size asks for a split; askSplit and reportSplit apply it atomically", async () => {
  const c = await cluster(1, { schedule: { replicas: 1 } });
  const [r0] = await c.pd.bootstrap({ storeIds: c.stores });
  const region = withLeader(r0!, c.stores[0]!);
  assert.deepEqual(await heartbeat(c.pd, region, 999, 99), []);
  const [split] = await heartbeat(c.pd, region, 1000, 5);
  assert.ok(split?.kind === "split");
  assert.equal(split.reason, "size");
  assert.equal(split.splitSizeBytes, 600);
  const [byKeys] = await heartbeat(c.pd, region, 10, 150);
  assert.deepEqual(byKeys, split, "the pending split is re-sent, not doubled");

  await assert.rejects(c.pd.askSplit(region.id, { confVer: 0, version: 1 }), StaleEpochError);
  const ids = await c.pd.askSplit(region.id, region.epoch);
  assert.equal(ids.newPeerIds.length, 1);
  const { left, right } = splitRegionMeta(region, k("m"), ids.newRegionId, ids.newPeerIds);
  await c.pd.reportSplit(left, right);
  assert.equal(c.pd.getRegionByKey(k("a")).id, ids.newRegionId);
  assert.equal(c.pd.getRegionByKey(k("m")).id, region.id);
  assert.equal(c.pd.listRegions().length, 2);
  await c.pd.reportSplit(left, right); // a retried report is a no-op
  assert.equal(c.pd.listRegions().length, 2);

  // The old, unsplit region is now stale.
  await assert.rejects(heartbeat(c.pd, region, 1000, 5), StaleEpochError);
  assert.deepEqual(await heartbeat(c.pd, { ...right, leader: right.peers[0]! }, 400, 40), []);

  // Split is durable: a restarted PD routes the same way.
  const again = await c.open();
  assert.equal(again.getRegionByKey(k("a")).id, ids.newRegionId);
  assert.equal(again.getRegionByKey(k("z")).id, region.id);
});

Deno.test("reportSplit refuses reports that do not cover one region or do not bump the version", async () => {
  const c = await cluster(1, { schedule: { replicas: 1 } });
  const [r0] = await c.pd.bootstrap({ storeIds: c.stores, splitKeys: [k("m")] });
  const ids = await c.pd.askSplit(r0!.id, r0!.epoch);
  const { left, right } = splitRegionMeta(r0!, k("f"), ids.newRegionId, ids.newPeerIds);
  await assert.rejects(c.pd.reportSplit({ ...left, endKey: k("e") }, right), /does not cover/);
  const flat = { confVer: 1, version: 1 };
  await assert.rejects(
    c.pd.reportSplit({ ...left, epoch: flat }, { ...right, epoch: flat }),
    StaleEpochError,
  );
  const forged = {
    ...left,
    id: 777_777,
    peers: [{ id: 777_778, storeId: c.stores[0]!, role: "voter" as const }],
  };
  await assert.rejects(c.pd.reportSplit(forged, right), /not allocated by PD/);
  const before = c.pd.listRegions();
  assert.equal(before.length, 2, "nothing changed");
  await c.pd.reportSplit(left, right);
  assert.equal(c.pd.listRegions().length, 3);
});

Deno.test("leader balancing moves leaders from the busiest store, one at a time", async () => {
  const c = await cluster(3);
  const keys = ["b", "d", "f", "h", "j"].map(k);
  const regions = await c.pd.bootstrap({ storeIds: c.stores, splitKeys: keys });
  const [s1] = c.stores as [number, number, number];
  // All six leaders on store 1.
  const ops: Operator[] = [];
  for (const r of regions) ops.push(...await heartbeat(c.pd, withLeader(r, s1)));
  const transfers = ops.filter((o) => o.kind === "transfer-leader");
  assert.ok(transfers.length >= 2, `${transfers.length} transfers`);
  // Counting moves under way, store 1 ends within the gap of the others.
  const target = new Map<number, number>();
  for (const t of transfers) {
    assert.ok(t.kind === "transfer-leader" && t.from.storeId === s1);
    target.set(t.to.storeId, (target.get(t.to.storeId) ?? 0) + 1);
  }
  const effective = [
    regions.length - transfers.length,
    ...c.stores.slice(1).map((s) => target.get(s) ?? 0),
  ];
  assert.ok(Math.max(...effective) - Math.min(...effective) <= 1, `leaders ${effective}`);
  // Completing a transfer clears it; nothing more is asked of that region.
  const t0 = transfers[0]!;
  assert.ok(t0.kind === "transfer-leader");
  const moved = c.pd.getRegionById(t0.regionId)!;
  assert.deepEqual(await heartbeat(c.pd, withLeader(moved, t0.to.storeId)), []);
});

Deno.test("store registration is durable and rejects a taken address", async () => {
  const c = await cluster(2);
  await assert.rejects(
    c.pd.registerStore({ id: 99, address: "127.0.0.1:20160" }),
    /belongs to store/,
  );
  const again = await c.open();
  assert.deepEqual(again.listStores().map((s) => s.address), [
    "127.0.0.1:20160",
    "127.0.0.1:20161",
  ]);
  assert.ok(again.listStores().every((s) => s.state === "up"), "stores count from PD's restart");
});

Deno.test("PD refuses to open on a corrupt file and ignores a torn temporary file", async () => {
  const c = await cluster(1);
  await c.pd.bootstrap({ storeIds: c.stores });
  await c.fs.writeFile("/data/pd/regions.meta.tmp", new Uint8Array([1, 2, 3]));
  const ok = await c.open();
  assert.equal(ok.listRegions().length, 1);
  assert.deepEqual(await c.fs.readDir("/data/pd").then((n) => n.sort()), [
    "ids.meta",
    "regions.meta",
    "stores.meta",
  ]);
  const bytes = (await c.fs.readFile("/data/pd/ids.meta"))!;
  bytes[bytes.length - 2]! ^= 1;
  c.fs.corrupt("/data/pd/ids.meta", bytes);
  await assert.rejects(c.open(), PdCorruptError);
});

Deno.test("PD persists to a real directory and reloads it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "spire-pd-" });
  try {
    const pd = await PlacementDriver.open({ dir: `${dir}/pd` });
    const store = await pd.allocId();
    await pd.registerStore({ id: store, address: "127.0.0.1:1" });
    await pd.bootstrap({ storeIds: [store], splitKeys: [k("m")] });
    const ts = await pd.getTs(5);
    const again = await PlacementDriver.open({ dir: `${dir}/pd` });
    assert.equal(again.listRegions().length, 2);
    assert.ok((await again.allocId()) > store + 2);
    assert.ok((await again.getTs()).first > ts.last);
    const names = [];
    for await (const e of Deno.readDir(`${dir}/pd`)) names.push(e.name);
    assert.deepEqual(names.sort(), ["ids.meta", "regions.meta", "stores.meta", "tso.meta"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("close lets queued requests finish, then refuses new ones", async () => {
  const c = await cluster(1);
  const queued = [c.pd.allocId(5), c.pd.getTs(3), c.pd.bootstrap({ storeIds: c.stores })];
  await c.pd.close();
  const [id, ts, regions] = await Promise.all(queued);
  assert.ok((id as number) > 0 && ts !== undefined && (regions as Region[]).length === 1);
  await assert.rejects(c.pd.allocId(), PdClosedError);
  await assert.rejects(c.pd.getTs(), PdClosedError);
  await assert.rejects(c.pd.registerStore({ id: 50, address: "x:1" }), PdClosedError);
  assert.equal(c.pd.listRegions().length, 1, "reads still work");
  const again = await c.open();
  assert.ok((await again.allocId()) > (id as number) + 4);
});

Deno.test("a deposed leader's heartbeat with a lower term cannot move the leader back", async () => {
  const c = await cluster(3);
  const [r] = await c.pd.bootstrap({ storeIds: c.stores });
  const [s1, s2] = c.stores as [number, number];
  const hb = (store: number, term: number) =>
    c.pd.regionHeartbeat({
      region: withLeader(r!, store),
      approximateSizeBytes: 0,
      approximateKeys: 0,
      term,
    });
  await hb(s1, 4);
  await hb(s2, 5);
  await assert.rejects(
    hb(s1, 4),
    (e: unknown) => e instanceof StaleEpochError && /term 4/.test(e.message),
  );
  assert.equal(c.pd.getRegionById(r!.id)?.leader?.storeId, s2);
  await hb(s1, 6);
  assert.equal(c.pd.getRegionById(r!.id)?.leader?.storeId, s1);
  await assert.rejects(hb(s1, -1), RangeError);
});

Deno.test("stats count timestamps, heartbeats and splits; a repeated split report counts once", async () => {
  const c = await cluster(1, { schedule: { replicas: 1 } });
  const [r0] = await c.pd.bootstrap({ storeIds: c.stores });
  const region = withLeader(r0!, c.stores[0]!);
  await c.pd.getTs();
  await c.pd.getTs(10);
  c.pd.storeHeartbeat(c.stores[0]!, stats);
  await heartbeat(c.pd, region, 10, 1);
  await assert.rejects(heartbeat(c.pd, { ...region, epoch: { confVer: 0, version: 1 } }));
  const ids = await c.pd.askSplit(region.id, region.epoch);
  const { left, right } = splitRegionMeta(region, k("m"), ids.newRegionId, ids.newPeerIds);
  await c.pd.reportSplit(left, right);
  await c.pd.reportSplit(left, right);
  const s = c.pd.stats();
  assert.deepEqual(
    [s.tsoRequests, s.tsoTimestamps, s.storeHeartbeats, s.regionHeartbeats, s.splits],
    [2, 11, 1, 1, 1],
  );
});

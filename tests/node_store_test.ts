/**
 * The store process towards PD: its heartbeats keep the store up in PD's eyes
 * however long the node runs, so PD keeps deciding splits (a store PD sees
 * down gets its replicas removed instead).
 */

import { TEST_NODE_TUNING } from "../node/testing.ts";

import assert from "node:assert/strict";
import { SpireNode } from "../node/app.ts";
import { resolveNodeConfig } from "../node/config.ts";
import { NAMES } from "../node/services.ts";
import type { StoreCall } from "../node/store.ts";
import { PdClient } from "../pd/mod.ts";
import { RespClient } from "../node/resp/client.ts";
import { Supervisor } from "../supervisor/mod.ts";
import type { RegionReply, RegionRequest } from "../node/region_peer_process.ts";
import { encodeRegionCommand } from "../node/region_state_machine.ts";

Deno.test("store: heartbeats keep the store up in PD after 31 minutes, and regions still split", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "spire_store_" });
  let clock = Date.now();
  const { config } = resolveNodeConfig({
    overrides: {
      dataDir,
      port: 0,
      adminPort: 0,
      regionHeartbeatIntervalMs: 3_600_000, // only the heartbeats this test asks for
      regionMaxKeys: 40,
      regionSplitKeys: 20,
    },
  });
  const node = await SpireNode.start({
    config,
    tuning: TEST_NODE_TUNING,
    now: () => clock,
    report: () => {},
  });
  const rt = node.runtime;
  try {
    const c = await RespClient.connect({ port: node.clientPort });
    try {
      for (let i = 0; i < 60; i++) await c.call(["SET", `k${String(i).padStart(3, "0")}`, "v"]);
    } finally {
      c.close();
    }
    clock += 31 * 60_000; // past TiKV's max-store-down-time (30 min) since registration
    await rt.call<StoreCall, null>(NAMES.store, { op: "heartbeatNow" }, { timeoutMs: 10_000 });
    const pd = new PdClient(rt, NAMES.pd);
    const [store] = await pd.listStores();
    assert.equal(store?.state, "up");
    assert.equal(store?.stats?.regionCount, 1);
    assert.ok((store?.stats?.capacityBytes ?? 0) > 0, "no disk capacity in the store heartbeat");
    assert.ok((store?.stats?.availableBytes ?? 0) > 0, "no free space in the store heartbeat");
    for (let i = 0; i < 20 && node.services.regions().length < 2; i++) {
      await rt.call<StoreCall, null>(NAMES.store, { op: "heartbeatNow" }, { timeoutMs: 10_000 });
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(node.services.regions().length >= 2, "the region past max_keys was never split");
    let metrics = "";
    for (let i = 0; i < 100 && !/^spire_pd_splits_total [1-9]/m.test(metrics); i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 20)); // the split report may be in flight
      metrics = await (await fetch(`http://127.0.0.1:${node.adminPort}/metrics`)).text();
    }
    assert.match(metrics, /^spire_pd_store_heartbeats_total [1-9]/m);
    assert.match(metrics, /^spire_pd_region_heartbeats_total [1-9]/m);
    assert.match(metrics, /^spire_pd_splits_total [1-9]/m);
    assert.match(metrics, /^spire_pd_tso_requests_total 0/m);
  } finally {
    await node.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("store: a split applied while PD is down reaches PD once PD is back, without a store restart", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "spire_store_split_" });
  const { config } = resolveNodeConfig({
    overrides: { dataDir, port: 0, adminPort: 0, regionHeartbeatIntervalMs: 50 },
  });
  const node = await SpireNode.start({
    config,
    tuning: TEST_NODE_TUNING,
    report: () => {},
  });
  const rt = node.runtime;
  const show = (rs: readonly { id: number; epoch: { version: number } }[]) =>
    rs.map((r) => `${r.id}/${r.epoch.version}`).join(",");
  try {
    const pd = new PdClient(rt, NAMES.pd);
    const region = node.services.regions()[0]!;
    const ids = await pd.askSplit(region.id, region.epoch);
    await Supervisor.terminateChild(rt, "spire", "pd");
    const reply = await rt.call<RegionRequest, RegionReply>(NAMES.region(region.id), {
      op: "propose",
      command: encodeRegionCommand({
        kind: "split",
        splitKey: new TextEncoder().encode("m"),
        newRegionId: ids.newRegionId,
        newPeerIds: ids.newPeerIds,
        version: region.epoch.version,
      }),
    });
    assert.ok("ok" in reply && reply.ok.kind === "split", JSON.stringify(reply));
    for (let i = 0; i < 100 && node.services.regions().length < 2; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(node.services.regions().length, 2);
    await new Promise((r) => setTimeout(r, 200)); // heartbeats fail meanwhile: PD is down
    await Supervisor.restartChild(rt, "spire", "pd");
    const pdAfter = new PdClient(rt, NAMES.pd);
    for (let i = 0; i < 100; i++) {
      if (show(await pdAfter.listRegions()) === show(node.services.regions())) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(show(await pdAfter.listRegions()), show(node.services.regions()));
    const storage = node.tree()!.children.find((c) => c.id === "storage")!;
    assert.equal(storage.children.find((c) => c.id === "store")!.restartCount, 0);
  } finally {
    await node.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
});

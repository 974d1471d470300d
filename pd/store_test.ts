import assert from "node:assert/strict";
import { UnknownStoreError } from "./errors.ts";
import { StoreRegistry } from "./store.ts";

const stats = { capacityBytes: 100, availableBytes: 50, regionCount: 1 };

Deno.test("store liveness goes up, disconnected, down with heartbeat age and back on a heartbeat", () => {
  const reg = new StoreRegistry({ storeDisconnectMs: 20, storeDownMs: 100 });
  reg.register({ id: 1, address: "a:1" }, 0);
  assert.equal(reg.state(1, 19), "up");
  assert.equal(reg.state(1, 20), "disconnected");
  assert.equal(reg.state(1, 99), "disconnected");
  assert.equal(reg.state(1, 100), "down");
  reg.heartbeat(1, stats, 150);
  assert.equal(reg.state(1, 160), "up");
  assert.deepEqual(reg.get(1, 160)?.stats, stats);
  // A late heartbeat carrying an older clock reading never moves liveness back.
  reg.heartbeat(1, stats, 140);
  assert.equal(reg.get(1, 160)?.lastHeartbeatMs, 150);
  assert.equal(reg.state(99, 0), "down", "an unknown store counts as down");
});

Deno.test("store registration rejects a taken address and heartbeats of unknown stores", () => {
  const reg = new StoreRegistry();
  assert.equal(reg.register({ id: 1, address: "a:1" }, 0), true);
  assert.equal(reg.register({ id: 1, address: "a:1" }, 0), false, "same metadata is no change");
  assert.throws(() => reg.register({ id: 2, address: "a:1" }, 0), /belongs to store 1/);
  assert.equal(reg.register({ id: 1, address: "a:2" }, 0), true);
  assert.throws(() => reg.heartbeat(3, stats, 0), UnknownStoreError);
  assert.throws(() => new StoreRegistry({ storeDisconnectMs: 10, storeDownMs: 5 }), RangeError);
});

Deno.test("a store heartbeat with a negative statistic is refused", () => {
  const reg = new StoreRegistry();
  reg.register({ id: 1, address: "a:1" }, 0);
  assert.throws(() => reg.heartbeat(1, { ...stats, availableBytes: -1 }, 5), /availableBytes -1/);
  assert.equal(reg.get(1, 5)?.lastHeartbeatMs, 0, "nothing recorded");
});

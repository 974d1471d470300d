/**
 * The value cache through a running node: random writes, deletes, appends,
 * counters, GETDEL, FLUSHDB and reads from several pipelined clients, every
 * reply checked against a model. The same check run on a node with a planted
 * cache bug (deleted keys stay cached) must find a stale read.
 */

import { TEST_NODE_TUNING } from "../node/testing.ts";

import assert from "node:assert/strict";
import { SpireNode } from "../node/app.ts";
import { resolveNodeConfig } from "../node/config.ts";
import type { NodePlant } from "../node/services.ts";
import { RespClient } from "../node/resp/client.ts";
import { showReply } from "../node/resp/reply_parser.ts";
import { prng, withTestNode } from "../node/_test_node.ts";

/**
 * Runs `steps` random commands on a fresh node and returns the first reply
 * that differs from the model (undefined: none), with the cache's hit count.
 */
async function check(
  steps: number,
  options: { plants?: NodePlant[]; valueCacheBytes?: number; native?: boolean } = {},
): Promise<{ mismatch: string | undefined; hits: number }> {
  const dataDir = await Deno.makeTempDir({ prefix: "spire_value_cache_" });
  const { config } = resolveNodeConfig({
    overrides: {
      dataDir,
      port: 0,
      adminPort: 0,
      ...(options.valueCacheBytes !== undefined
        ? { valueCacheBytes: options.valueCacheBytes }
        : {}),
    },
  });
  const node = await SpireNode.start({
    config,
    tuning: TEST_NODE_TUNING,
    report: () => {},
    // native: the cache in native memory, read and filled by the native GET path as well;
    // otherwise the cache in the JS heap, and every GET through the executor.
    ...(options.native ? {} : { nativeGets: false as const }),
    ...(options.plants ? { plants: options.plants } : {}),
  });
  const clients = await Promise.all(
    [0, 1, 2].map(() => RespClient.connect({ port: node.clientPort })),
  );
  try {
    const rnd = prng(20261203);
    const model = new Map<string, string>();
    const keys = ["a", "b", "c", "d", "e", "f"];
    const show = (v: string | undefined) => v === undefined ? "nil" : JSON.stringify(v);
    for (let step = 0; step < steps; step++) {
      const c = clients[rnd(clients.length)]!;
      const key = keys[rnd(keys.length)]!;
      const pick = rnd(100);
      let args: string[];
      let expected: string;
      if (pick < 35) {
        args = ["GET", key];
        expected = show(model.get(key));
      } else if (pick < 60) {
        const v = `v${rnd(1000)}`;
        args = ["SET", key, v];
        model.set(key, v);
        expected = "+OK";
      } else if (pick < 72) {
        args = ["DEL", key];
        expected = `:${model.delete(key) ? 1 : 0}`;
      } else if (pick < 80) {
        args = ["APPEND", key, "x"];
        model.set(key, (model.get(key) ?? "") + "x");
        expected = `:${model.get(key)!.length}`;
      } else if (pick < 86) {
        args = ["GETDEL", key];
        expected = show(model.get(key));
        model.delete(key);
      } else if (pick < 92) {
        const other = `k${rnd(3)}`;
        const n = Number(model.get(other) ?? "0") + 1;
        args = ["INCR", other];
        model.set(other, String(n));
        expected = `:${n}`;
      } else if (pick < 94) {
        args = ["FLUSHDB"];
        model.clear();
        expected = "+OK";
      } else {
        args = ["MGET", ...keys];
        expected = `[${keys.map((k) => show(model.get(k))).join(", ")}]`;
      }
      const got = showReply(await c.call(args));
      if (got !== expected) {
        return {
          mismatch: `step ${step}: ${args.join(" ")} answered ${got}, expected ${expected}`,
          hits: node.services.valueCache.stats.hits,
        };
      }
    }
    return { mismatch: undefined, hits: node.services.valueCache.stats.hits };
  } finally {
    for (const c of clients) c.close();
    await node.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
}

for (const [name, native] of [["js", false], ["native", true]] as const) {
  Deno.test(`${name} value cache: every reply of a random workload matches the model, and the cache served reads`, async () => {
    const { mismatch, hits } = await check(1500, { native });
    assert.equal(mismatch, undefined);
    assert.ok(hits > 100, `the cache served only ${hits} reads`);
  });

  Deno.test(`${name} value cache: turned off (size 0), the same workload matches and nothing is cached`, async () => {
    const { mismatch, hits } = await check(400, { valueCacheBytes: 0, native });
    assert.equal(mismatch, undefined);
    assert.equal(hits, 0);
  });

  Deno.test(`${name} value cache: the check finds the stale read of a planted cache bug`, async () => {
    const { mismatch } = await check(1500, { plants: ["value-cache-keeps-deleted"], native });
    assert.ok(mismatch !== undefined, "a cache that keeps deleted keys went unnoticed");
  });
}

Deno.test("value cache: a write that reads its old value (INCR, APPEND) takes it from the cache", async () => {
  await withTestNode({ prefix: "spire_value_cache_" }, async (node) => {
    const c = await RespClient.connect({ port: node.clientPort });
    try {
      assert.equal(showReply(await c.call(["SET", "counter", "0"])), "+OK");
      const before = node.services.valueCache.stats.hits;
      // One at a time: each INCR is its own Raft entry and its own apply, which reads the value.
      for (let i = 1; i <= 50; i++) {
        assert.equal(showReply(await c.call(["INCR", "counter"])), `:${i}`);
      }
      assert.equal(showReply(await c.call(["APPEND", "counter", "x"])), ":3");
      // No GET ran: every hit is an apply's read (the engine answered none of them).
      assert.ok(node.services.valueCache.stats.hits - before >= 51, "the applies read the engine");
      assert.equal(showReply(await c.call(["DEL", "counter"])), ":1");
      assert.equal(showReply(await c.call(["INCR", "counter"])), ":1"); // the delete was not cached
    } finally {
      c.close();
    }
  });
});

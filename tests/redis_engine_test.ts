/**
 * The command layer over the real RocksDB engine: Redis semantics hold, expiry
 * survives a restart, and the data lives under the user key prefix.
 */
import assert from "node:assert/strict";
import { Engine } from "../engine/mod.ts";
import { startTestServerOn } from "../node/commands/testing.ts";
import { USER_KEY_PREFIX } from "../node/commands/kv_model.ts";
import { RespClient } from "../node/resp/client.ts";
import { showReply } from "../node/resp/reply_parser.ts";

Deno.test("commands over the RocksDB engine persist across a restart, expiry included", async () => {
  const dir = await Deno.makeTempDir({ prefix: "spire_redis_engine_" });
  try {
    let now = 1_700_000_000_000;
    const clock = { now: () => now, tickMs: 1_000_000 };
    {
      const engine = await Engine.open({ dataDir: `${dir}/data` });
      const t = startTestServerOn(engine, clock);
      const c = await RespClient.connect({ port: t.port });
      const replies = await c.pipeline([
        ["SET", "a", "1"],
        ["INCRBY", "a", "41"],
        ["SET", "t", "x", "PX", "5000"],
        ["SET", "gone", "x", "PX", "10"],
        ["MSET", "m1", "v1", "m2", "v2"],
        ["APPEND", "m1", "+"],
        ["DEL", "m2"],
        ["SCAN", "0", "COUNT", "100"],
        ["SPIRE.SCANRANGE", "a", "n", "BATCH", "2"],
      ]);
      assert.deepEqual(replies.slice(0, 7).map(showReply), [
        "+OK",
        ":42",
        "+OK",
        "+OK",
        "+OK",
        ":3",
        ":1",
      ]);
      assert.equal(showReply(replies[7]!), '["0", ["a", "gone", "m1", "t"]]');
      assert.match(
        showReply(replies[8]!),
        /^\["rows", \[\["a", "42"\], \["gone", "x"\], \["m1", "v1\+"\]\], "rowsReturned", :3, "bytesRead", :30, .* "batches", :2\]$/,
      );
      c.close();
      await t.stop();
      await engine.close();
    }
    now += 1000;
    {
      const engine = await Engine.open({ dataDir: `${dir}/data` });
      const t = startTestServerOn(engine, clock);
      const c = await RespClient.connect({ port: t.port });
      const replies = await c.pipeline([["GET", "a"], ["PTTL", "t"], ["GET", "gone"], ["DBSIZE"], [
        "GET",
        "m1",
      ]]);
      assert.deepEqual(replies.map(showReply), ['"42"', ":4000", "nil", ":4", '"v1+"']);
      await t.server.tick(); // Background expiry removes "gone" from RocksDB.
      assert.equal(showReply(await c.call(["DBSIZE"])), ":3");
      assert.equal(t.server.stats.expiredKeys, 1);
      // Every stored key carries the user prefix, so other prefixes stay free for Spire's metadata.
      for await (
        const batch of engine.scanRange(new Uint8Array(0), new Uint8Array(0), { keysOnly: true })
      ) {
        for (const key of batch.keys) assert.equal(key[0], USER_KEY_PREFIX);
      }
      assert.equal(showReply(await c.call(["FLUSHDB"])), "+OK");
      assert.equal(showReply(await c.call(["DBSIZE"])), ":0");
      c.close();
      await t.stop();
      await engine.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

import assert from "node:assert/strict";
import { CommandStats, ERROR_CODES_MAX } from "./command_stats.ts";
import { startTestServer } from "./commands/testing.ts";
import { RespClient } from "./resp/client.ts";
import { showReply } from "./resp/reply_parser.ts";

Deno.test("command stats: calls, time, failures and rejections, and error codes", () => {
  const stats = new CommandStats();
  assert.equal(stats.record("get", 0.5), true);
  assert.equal(stats.record("get", 1.5, "WRONGTYPE Operation against a key"), true);
  assert.equal(stats.record("get", 9, "ERR wrong number of arguments", "rejected"), false);
  assert.equal(stats.record("client|setname", 0.25, "ERR Client names cannot contain"), true);
  assert.equal(stats.record("nosuch", 1, "ERR unknown command 'nosuch'", "unknown"), false);
  assert.equal(stats.record("get", 3, undefined, undefined, 4), true);
  assert.deepEqual(stats.command("get"), {
    calls: 6,
    usec: 5000, // a rejected call's time is not counted: it never ran
    rejectedCalls: 1,
    failedCalls: 1,
  });
  assert.equal(stats.command("nosuch"), undefined);
  assert.deepEqual(stats.commandSection(), {
    "cmdstat_client|setname":
      "calls=1,usec=250,usec_per_call=250.00,rejected_calls=0,failed_calls=1",
    cmdstat_get: "calls=6,usec=5000,usec_per_call=833.33,rejected_calls=1,failed_calls=1",
  });
  assert.deepEqual(stats.errorSection(), {
    errorstat_ERR: "count=3",
    errorstat_WRONGTYPE: "count=1",
  });
  assert.equal(stats.errorReplies, 4);
  stats.reset();
  assert.deepEqual([stats.commandSection(), stats.errorSection(), stats.errorReplies], [{}, {}, 0]);
});

Deno.test("command stats: at most ERROR_CODES_MAX error codes, every error reply still counted", () => {
  const stats = new CommandStats();
  for (let i = 0; i < ERROR_CODES_MAX + 10; i++) stats.record("get", 0, `CODE${i} failed`);
  stats.record("get", 0, "CODE0 again");
  const codes = Object.keys(stats.errorSection());
  assert.equal(codes.length, ERROR_CODES_MAX);
  assert.equal(stats.errorSection()["errorstat_CODE0"], "count=2");
  assert.equal(stats.errorSection()[`errorstat_CODE${ERROR_CODES_MAX}`], undefined);
  assert.equal(stats.errorReplies, ERROR_CODES_MAX + 11);
});

Deno.test("CONFIG RESETSTAT starts INFO's counters again but not the counters behind /metrics", async () => {
  const t = startTestServer();
  const c = await RespClient.connect({ port: t.port });
  const info = async (section: string) => {
    const r = await c.call(["INFO", section]);
    assert.ok(r.kind === "bulk" && r.value !== null);
    return new TextDecoder().decode(r.value);
  };
  const field = (text: string, name: string) =>
    Number(text.match(new RegExp(`^${name}:(\\d+)\r$`, "m"))?.[1]);
  try {
    await c.pipeline([["SET", "a", "1"], ["GET", "a"], ["GET", "b"], ["INCR", "x", "y"], [
      "NOSUCH",
    ]]);
    const before = t.server.stats;
    assert.equal(field(await info("stats"), "keyspace_hits"), 1);
    assert.equal(showReply(await c.call(["CONFIG", "RESETSTAT"])), "+OK");
    const stats = await info("stats");
    // RESETSTAT itself is the one command since (INFO counts once it has answered).
    assert.equal(field(stats, "total_commands_processed"), 1);
    assert.equal(field(stats, "keyspace_hits"), 0);
    assert.equal(field(stats, "keyspace_misses"), 0);
    assert.equal(field(stats, "total_error_replies"), 0);
    assert.match(await info("commandstats"), /^cmdstat_config\|resetstat:calls=1,/m);
    assert.doesNotMatch(await info("commandstats"), /cmdstat_get/);
    const after = t.server.stats;
    assert.ok(after.totalCommandsProcessed > before.totalCommandsProcessed);
    assert.equal(after.keyspaceHits, before.keyspaceHits);
    assert.equal(after.keyspaceMisses, before.keyspaceMisses);
    await c.call(["GET", "a"]);
    assert.equal(field(await info("stats"), "keyspace_hits"), 1);
    assert.equal(t.server.stats.keyspaceHits, before.keyspaceHits + 1);
  } finally {
    c.close();
    await t.stop();
  }
});

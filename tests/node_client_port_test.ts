/**
 * The node's client port (one process per connection) under malformed and
 * oversized input: the offending connection gets a protocol error and is
 * closed; the node and the other connections are undisturbed.
 */

import { TEST_NODE_TUNING } from "../node/testing.ts";

import assert from "node:assert/strict";
import { SpireNode } from "../node/app.ts";
import { resolveNodeConfig } from "../node/config.ts";
import { RespClient } from "../node/resp/client.ts";
import type { Reply } from "../node/resp/reply.ts";
import { NAMES } from "../node/services.ts";
import { DynamicSupervisor } from "../supervisor/mod.ts";

const enc = new TextEncoder();

/** The number of connection processes once it reaches `want` (or after ~2 s). */
async function connectionProcessesSettle(node: SpireNode, want: number): Promise<number> {
  const count = async () =>
    (await DynamicSupervisor.whichChildren(node.runtime, NAMES.connections)).length;
  for (let i = 0; i < 100 && (await count()) !== want; i++) {
    await new Promise((r) => setTimeout(r, 20));
  }
  return await count();
}

Deno.test("client port: malformed, oversized and cut input never disturbs the node or other connections", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "spire_port_" });
  const { config } = resolveNodeConfig({ overrides: { dataDir, port: 0, adminPort: 0 } });
  const node = await SpireNode.start({
    config,
    tuning: TEST_NODE_TUNING,
    report: () => {},
  });
  const port = node.clientPort;
  const steady = await RespClient.connect({ port });
  try {
    assert.deepEqual(await steady.call(["SET", "k", "v"]), { kind: "simple", value: "OK" });
    // Pipelined writes are started together but keep their order per key; reads wait for them.
    const pipeline: string[][] = [["SET", "n", "0"]];
    for (let i = 0; i < 300; i++) pipeline.push(["INCR", "n"], ["APPEND", "log", `${i},`]);
    pipeline.push(["GET", "n"], ["DEL", "n"], ["EXISTS", "n"], ["INCRBY", "n", "5"]);
    const replies = await steady.pipeline(pipeline);
    const int = (r: Reply | undefined) => r?.kind === "integer" ? Number(r.value) : r;
    for (let i = 0; i < 300; i++) assert.equal(int(replies[1 + 2 * i]), i + 1);
    assert.deepEqual(replies.at(-4), { kind: "bulk", value: enc.encode("300") });
    assert.deepEqual(replies.slice(-3).map(int), [1, 0, 5]);
    const log = await steady.call(["GET", "log"]);
    assert.deepEqual(log, {
      kind: "bulk",
      value: enc.encode(Array.from({ length: 300 }, (_, i) => `${i},`).join("")),
    });
    // A GET alone, after every write was answered, takes the native path once the region's
    // peer has published that it may be read locally (at its next tick).
    let native = "";
    for (let i = 0; i < 100 && !/native_commands_processed:[1-9]/.test(native); i++) {
      assert.deepEqual(await steady.call(["GET", "k"]), { kind: "bulk", value: enc.encode("v") });
      const stats = await steady.call(["INFO", "stats"]);
      native = stats.kind === "bulk" && stats.value !== null
        ? new TextDecoder().decode(stats.value)
        : "";
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.match(native, /spire_native_commands_processed:[1-9]/);
    for (
      const bad of [
        "*2\r\n$3\r\nGET\r\n$999999999999\r\n", // a bulk length far over the limit
        "*1\r\n$-5\r\n", // a negative bulk length
        "*99999999\r\n", // too many arguments
      ]
    ) {
      const c = await RespClient.connect({ port });
      await c.sendRaw(enc.encode(bad));
      const reply = await c.read();
      assert.ok(
        reply.kind === "error" && /Protocol error/.test(reply.message),
        JSON.stringify(reply),
      );
      assert.equal(await c.waitClosed(), true);
      c.close();
    }
    // Random bytes and frames cut in the middle, from many connections at once.
    let seed = 7;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    await Promise.all(Array.from({ length: 30 }, async (_, i) => {
      const c = await RespClient.connect({ port });
      const bytes = i % 2 === 0
        ? Uint8Array.from(
          { length: 200 + Math.floor(rand() * 2000) },
          () => Math.floor(rand() * 256),
        )
        : enc.encode("*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$10\r\nabc");
      await c.sendRaw(bytes).catch(() => {});
      c.close();
    }));
    assert.deepEqual(await steady.call(["GET", "k"]), { kind: "bulk", value: enc.encode("v") });
    assert.deepEqual(await steady.call(["EXISTS", "x"]), { kind: "integer", value: 0 });
    // Every broken connection's process is gone; only the steady one remains.
    assert.equal(await connectionProcessesSettle(node, 1), 1);
    assert.equal(node.readiness().ready, true);
    // CLIENT KILL from the steady connection closes another one; its process ends too.
    const victim = await RespClient.connect({ port });
    const id = await victim.call(["CLIENT", "ID"]);
    assert.equal(id.kind, "integer");
    assert.deepEqual(await steady.call(["CLIENT", "KILL", "ID", String(id.value)]), {
      kind: "integer",
      value: 1,
    });
    assert.equal(await victim.waitClosed(2000), true);
    victim.close();
    assert.equal(await connectionProcessesSettle(node, 1), 1);
    assert.deepEqual(await steady.call(["GET", "k"]), { kind: "bulk", value: enc.encode("v") });
  } finally {
    steady.close();
    await node.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("client port: values beyond Raft's default 1 MiB entry are stored; a write no engine batch holds is refused and the region lives on", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "spire_port_" });
  const { config } = resolveNodeConfig({ overrides: { dataDir, port: 0, adminPort: 0 } });
  let node = await SpireNode.start({ config, tuning: TEST_NODE_TUNING, report: () => {} });
  let client = await RespClient.connect({ port: node.clientPort });
  try {
    const big = new Uint8Array(5 * 1024 * 1024).map((_, i) => i % 251);
    assert.deepEqual(await client.call(["SET", "big", big]), { kind: "simple", value: "OK" });
    // 110,000 puts of one key: small as a command, too many operations for one engine batch.
    const mset: (string | Uint8Array)[] = ["MSET"];
    for (let i = 0; i < 110_000; i++) mset.push("k", "v");
    const refused = await client.call(mset);
    assert.ok(
      refused.kind === "error" &&
        /^ERR write too large: 110000 engine operations/.test(refused.message),
      JSON.stringify(refused),
    );
    assert.deepEqual(await client.call(["SET", "after", "1"]), { kind: "simple", value: "OK" });
    assert.deepEqual(await client.call(["EXISTS", "k"]), { kind: "integer", value: 0 });
    // The refused entry is in the region's log: a restart applies it again, refusing it again.
    client.close();
    await node.stop();
    node = await SpireNode.start({ config, tuning: TEST_NODE_TUNING, report: () => {} });
    client = await RespClient.connect({ port: node.clientPort });
    assert.deepEqual(await client.call(["GET", "big"]), { kind: "bulk", value: big });
    assert.deepEqual(await client.call(["GET", "after"]), { kind: "bulk", value: enc.encode("1") });
    assert.deepEqual(await client.call(["SET", "again", "2"]), { kind: "simple", value: "OK" });
  } finally {
    client.close();
    await node.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
});

/**
 * MULTI/EXEC on a node, under concurrent clients: each EXEC is one atomic step (a compare-and-set
 * Raft entry), so no update is lost, no reader sees half of a transaction, WATCH loops count
 * exactly, a transaction whose keys lie in two regions is refused whole, and what transactions
 * wrote survives a restart.
 */

import { TEST_NODE_TUNING } from "../node/testing.ts";

import assert from "node:assert/strict";
import { SpireNode } from "../node/app.ts";
import { resolveNodeConfig } from "../node/config.ts";
import { RespClient } from "../node/resp/client.ts";
import type { Reply } from "../node/resp/reply.ts";

const dec = new TextDecoder();

function int(r: Reply | undefined): number {
  assert.ok(r?.kind === "integer", `expected an integer, got ${JSON.stringify(r)}`);
  return Number(r.value);
}

function text(r: Reply | undefined): string | null {
  assert.ok(r?.kind === "bulk", `expected a bulk string, got ${JSON.stringify(r)}`);
  return r.value === null ? null : dec.decode(r.value);
}

function items(r: Reply | undefined): readonly Reply[] {
  assert.ok(
    r?.kind === "array" && r.items !== null,
    `expected EXEC's array, got ${JSON.stringify(r)}`,
  );
  return r.items;
}

Deno.test("MULTI/EXEC on a node: concurrent transactions lose no update and are never seen half done", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "spire_txn_" });
  const { config } = resolveNodeConfig({
    overrides: { dataDir, port: 0, adminPort: 0, initialRegionCount: 2 },
  });
  let node = await SpireNode.start({ config, tuning: TEST_NODE_TUNING, report: () => {} });
  const clients: RespClient[] = [];
  const connect = async () => {
    const c = await RespClient.connect({ port: node.clientPort });
    clients.push(c);
    return c;
  };
  try {
    const setup = await connect();
    await setup.pipeline([["SET", "a", "100"], ["SET", "b", "0"], ["SET", "c", "0"]]);

    const TRANSFERS = 8, ROUNDS = 25, PLAIN_INCRS = 100, CAS_CLIENTS = 4, CAS_ROUNDS = 10;
    const counts: number[] = [];
    let reads = 0;
    let done = false;
    const transfer = async () => {
      const c = await connect();
      for (let i = 0; i < ROUNDS; i++) {
        const r = await c.pipeline([
          ["MULTI"],
          ["DECRBY", "a", "1"],
          ["INCRBY", "b", "1"],
          ["INCR", "c"],
          ["EXEC"],
        ]);
        const exec = items(r[4]);
        assert.equal(exec.length, 3);
        counts.push(int(exec[2]));
      }
    };
    const plain = async () => {
      const c = await connect();
      for (let i = 0; i < PLAIN_INCRS; i++) counts.push(int(await c.call(["INCR", "c"])));
    };
    const reader = async () => {
      const c = await connect();
      while (!done) {
        const r = await c.pipeline([["MULTI"], ["GET", "a"], ["GET", "b"], ["EXEC"]]);
        const [a, b] = items(r[3]).map((v) => Number(text(v)));
        assert.equal(a! + b!, 100, `a reader saw a=${a} b=${b}: half of a transfer`);
        reads++;
      }
    };
    // WATCH, read, write under MULTI, retry on a null EXEC: the classic optimistic increment.
    const cas = async () => {
      const c = await connect();
      for (let i = 0; i < CAS_ROUNDS; i++) {
        for (;;) {
          await c.call(["WATCH", "w"]);
          const now = Number(text(await c.call(["GET", "w"])) ?? "0");
          const r = await c.pipeline([["MULTI"], ["SET", "w", String(now + 1)], ["EXEC"]]);
          const exec = r[2]!;
          if (exec.kind === "array" && exec.items === null) continue; // another client won
          assert.deepEqual(items(exec), [{ kind: "simple", value: "OK" }]);
          break;
        }
      }
    };
    const writers = [
      ...Array.from({ length: TRANSFERS }, transfer),
      plain(),
      ...Array.from({ length: CAS_CLIENTS }, cas),
    ];
    const writing = Promise.all(writers).finally(() => (done = true));
    await Promise.all([writing, reader(), reader()]);

    const total = TRANSFERS * ROUNDS;
    const end = await setup.pipeline([["GET", "a"], ["GET", "b"], ["GET", "c"], ["GET", "w"]]);
    assert.deepEqual(end.map(text), [
      String(100 - total),
      String(total),
      String(total + PLAIN_INCRS),
      String(CAS_CLIENTS * CAS_ROUNDS),
    ]);
    // Every INCR of c, in a transaction or not, saw a distinct count: one serial order.
    assert.deepEqual([...counts].sort((x, y) => x - y), counts.map((_, i) => i + 1));
    assert.ok(reads > 0);

    // Keys in two regions (cut at the first byte 0x80): refused whole, nothing written.
    const far = Uint8Array.of(0x90, 0x61);
    const r = await setup.pipeline([["MULTI"], ["SET", "a", "0"], ["SET", far, "1"], ["EXEC"]]);
    assert.ok(r[3]!.kind === "error" && /lie in 2 regions/.test(r[3]!.message), String(r[3]));
    const after = await setup.pipeline([["GET", "a"], ["EXISTS", far]]);
    assert.equal(text(after[0]), String(100 - total));
    assert.equal(int(after[1]), 0);

    // What the transactions wrote is there after a restart.
    for (const c of clients.splice(0)) c.close();
    await node.stop();
    node = await SpireNode.start({ config, tuning: TEST_NODE_TUNING, report: () => {} });
    const again = await connect();
    const restarted = await again.pipeline([["GET", "a"], ["GET", "b"], ["GET", "c"], [
      "GET",
      "w",
    ]]);
    assert.deepEqual(restarted.map(text), end.map(text));
  } finally {
    for (const c of clients) c.close();
    await node.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
});

/**
 * Linearizability through a running node: concurrent clients pipeline SETs of unique values,
 * GETs and DELs of a few keys, every operation recorded from when its pipeline was sent to
 * when its reply arrived, and the history is checked by the linearizability checker of
 * raft/lin. This covers what the Raft simulation does not: the client port's paths (the SET
 * lane, the native GET path, the value cache, group-committed rounds, local reads). The same
 * run on a node with a planted bug (the value cache keeps deleted keys) must be found out.
 */

import assert from "node:assert/strict";
import type { NodePlant } from "../node/services.ts";
import { RespClient } from "../node/resp/client.ts";
import type { Reply } from "../node/resp/reply.ts";
import { checkLinearizable, type CheckResult, HistoryRecorder } from "../raft/lin/mod.ts";
import { prng, withTestNode } from "../node/_test_node.ts";

const CLIENTS = 6;
const ROUNDS = 100;
/** Operations in one client's pipeline, at most (each its own process in the history). */
const PIPELINE_MAX = 4;
const KEYS = ["a", "b", "c"];

/**
 * Waits until the region's reads are local (its peer publishes that at a tick after start), so
 * that the run exercises the paths that read the value cache: a GET alone then goes native.
 */
async function localReads(port: number): Promise<void> {
  const c = await RespClient.connect({ port });
  try {
    await c.call(["SET", "warm-up", "1"]);
    for (let i = 0; i < 200; i++) {
      await c.call(["GET", "warm-up"]);
      const info = await c.call(["INFO", "stats"]);
      const text = info.kind === "bulk" && info.value !== null
        ? new TextDecoder().decode(info.value)
        : "";
      if (/spire_native_commands_processed:[1-9]/.test(text)) return;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error("the node's reads never became local");
  } finally {
    c.close();
  }
}

async function run(plants: NodePlant[] = []): Promise<CheckResult> {
  const history = new HistoryRecorder(CLIENTS * ROUNDS * PIPELINE_MAX * 2);
  await withTestNode({ prefix: "spire_lin_", plants }, async (node) => {
    await localReads(node.clientPort);
    const t0 = performance.now();
    const now = () => Math.round((performance.now() - t0) * 1000) / 1000;
    await Promise.all(Array.from({ length: CLIENTS }, async (_, client) => {
      const rnd = prng(20261207 + client);
      const c = await RespClient.connect({ port: node.clientPort });
      try {
        let written = 0;
        for (let round = 0; round < ROUNDS; round++) {
          const n = 1 + rnd(PIPELINE_MAX);
          const cmds: string[][] = [];
          for (let slot = 0; slot < n; slot++) {
            const key = KEYS[rnd(KEYS.length)]!;
            const pick = rnd(10);
            const process = client * PIPELINE_MAX + slot;
            if (pick < 4) {
              const value = `c${client}w${written++}`;
              history.invoke(process, { f: "put", key, value }, now());
              cmds.push(["SET", key, value]);
            } else if (pick < 8) {
              history.invoke(process, { f: "get", key }, now());
              cmds.push(["GET", key]);
            } else {
              history.invoke(process, { f: "put", key, value: null }, now());
              cmds.push(["DEL", key]);
            }
          }
          const replies = await c.pipeline(cmds);
          const done = now();
          replies.forEach((r: Reply, slot) => {
            const process = client * PIPELINE_MAX + slot;
            if (r.kind === "error") return history.info(process, done); // outcome unknown
            if (cmds[slot]![0] !== "GET") return history.ok(process, done);
            assert.ok(r.kind === "bulk", `GET answered ${r.kind}`);
            history.ok(process, done, r.value === null ? null : new TextDecoder().decode(r.value));
          });
        }
      } finally {
        c.close();
      }
    }));
  });
  return checkLinearizable(history.events);
}

Deno.test({
  name: "linearizability: concurrent pipelined SET, GET and DEL through a node",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const result = await run();
    assert.equal(result.valid, true, result.valid === false ? result.explanation : "unknown");
  },
});

Deno.test({
  name: "linearizability: the check finds the stale reads of a planted value-cache bug",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const result = await run(["value-cache-keeps-deleted"]);
    assert.equal(result.valid, false, "a cache that keeps deleted keys went unnoticed");
  },
});

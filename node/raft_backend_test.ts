import { TEST_NODE_TUNING } from "./testing.ts";
import assert from "node:assert/strict";
import { SpireNode } from "./app.ts";
import { resolveNodeConfig } from "./config.ts";
import { RaftBackend } from "./raft_backend.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

Deno.test("raft backend: concurrent single-key writes share batch proposals, keep their order per key and each gets its own reply", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "spire_backend_batch_" });
  const { config } = resolveNodeConfig({
    overrides: { dataDir, port: 0, adminPort: 0, initialRegionCount: 2 },
  });
  const node = await SpireNode.start({
    config,
    tuning: TEST_NODE_TUNING,
    report: () => {},
  });
  try {
    const backend = new RaftBackend({ services: node.services });
    // Two keys in each of the two regions (cut at first byte 0x80).
    const keys = ["a", "b", "\x90c", "\x90d"].map((k) =>
      Uint8Array.from(k, (c) => c.charCodeAt(0))
    );
    assert.equal(new Set(keys.map((k) => node.services.route(k).id)).size, 2);
    const proposalsBefore = [...node.services.raftInfo.values()].reduce(
      (n, r) => n + r.proposals,
      0,
    );
    const rounds = 100;
    const appends: Promise<unknown>[] = [];
    const incrs: Promise<unknown>[] = [];
    for (let i = 0; i < rounds; i++) {
      for (const key of keys) {
        appends.push(backend.execute({ op: "append", key, value: enc.encode(`${i},`) }));
        incrs.push(backend.execute({ op: "incrby", key: Uint8Array.of(...key, 0x6e), delta: "1" }));
      }
    }
    const appendReplies = await Promise.all(appends);
    const incrReplies = await Promise.all(incrs);
    // Each write got its own reply: APPEND the new length, INCR the count so far (issue order).
    let expected = "";
    for (let i = 0; i < rounds; i++) {
      expected += `${i},`;
      for (let k = 0; k < keys.length; k++) {
        assert.deepEqual(appendReplies[i * keys.length + k], {
          kind: "integer",
          value: expected.length,
        });
        assert.deepEqual(incrReplies[i * keys.length + k], {
          kind: "integer",
          value: BigInt(i + 1),
        });
      }
    }
    const values = await backend.read(keys);
    assert.deepEqual(values.map((v) => v && dec.decode(v.value)), keys.map(() => expected));
    // Group commit: far fewer proposals than the 800 writes (counts are published every tick).
    await new Promise((r) => setTimeout(r, 3 * config.raftTickMs + 50));
    const proposals = [...node.services.raftInfo.values()].reduce((n, r) => n + r.proposals, 0) -
      proposalsBefore;
    assert.ok(proposals < 100, `${proposals} proposals for ${2 * rounds * keys.length} writes`);
  } finally {
    await node.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
});

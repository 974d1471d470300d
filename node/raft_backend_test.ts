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

Deno.test("raft backend: a second round of writes is proposed while the first is in flight, never a third", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "spire_backend_rounds_" });
  const { config } = resolveNodeConfig({
    overrides: { dataDir, port: 0, adminPort: 0, initialRegionCount: 1 },
  });
  const node = await SpireNode.start({ config, tuning: TEST_NODE_TUNING, report: () => {} });
  try {
    // Count the proposals in flight at once (the region's calls, as the backend makes them).
    const runtime = node.services.runtime as unknown as {
      call(name: string, req: { op: string }, opts: unknown): Promise<unknown>;
    };
    const call = runtime.call.bind(runtime);
    let inFlight = 0;
    let inFlightMax = 0;
    runtime.call = (name, req, opts) => {
      if (req.op !== "propose") return call(name, req, opts);
      inFlight++;
      inFlightMax = Math.max(inFlightMax, inFlight);
      // Each answer comes 10 ms late, so the rounds overlap whatever the disk's speed.
      return call(name, req, opts)
        .then((r) => new Promise((resolve) => setTimeout(() => resolve(r), 10)))
        .finally(() => inFlight--);
    };
    const backend = new RaftBackend({ services: node.services });
    const replies: Promise<unknown>[] = [];
    for (let i = 0; i < 30; i++) {
      // One write per turn: each turn's write waits for a round to end or starts one.
      replies.push(
        backend.execute({ op: "set", key: enc.encode(`k${i}`), value: enc.encode(`v${i}`) }),
      );
      await new Promise((r) => setTimeout(r, 0));
    }
    for (const r of await Promise.all(replies)) {
      assert.deepEqual(r, { kind: "simple", value: "OK" });
    }
    assert.equal(inFlightMax, 2, `${inFlightMax} rounds were in flight at once`);
    const values = await backend.read([enc.encode("k0"), enc.encode("k29")]);
    assert.deepEqual(values.map((v) => v && dec.decode(v.value)), ["v0", "v29"]);
  } finally {
    await node.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
});

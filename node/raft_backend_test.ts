import assert from "node:assert/strict";
import { hookCalls, withTestNode } from "./_test_node.ts";
import { RaftBackend, WRITE_ROUNDS_MAX } from "./raft_backend.ts";
import { encodeRegionCommand } from "./region_state_machine.ts";
import type { SetBatch } from "./commands/set_batch.ts";
import { NAMES } from "./services.ts";
import { PdClient } from "../pd/mod.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

Deno.test("raft backend: concurrent single-key writes share batch proposals, keep their order per key and each gets its own reply", async () => {
  await withTestNode(
    { prefix: "spire_backend_batch_", overrides: { initialRegionCount: 2 } },
    async (node, config) => {
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
          incrs.push(
            backend.execute({ op: "incrby", key: Uint8Array.of(...key, 0x6e), delta: "1" }),
          );
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
    },
  );
});

Deno.test("raft backend: rounds of writes overlap, at most WRITE_ROUNDS_MAX in flight", async () => {
  await withTestNode(
    { prefix: "spire_backend_rounds_", overrides: { initialRegionCount: 1 } },
    async (node) => {
      // Count the proposals in flight at once (the region's calls, as the backend makes them).
      let inFlight = 0;
      let inFlightMax = 0;
      hookCalls(node, ({ req }, next) => {
        if (req.op !== "propose") return next();
        inFlight++;
        inFlightMax = Math.max(inFlightMax, inFlight);
        // Each answer comes 10 ms late, so the rounds overlap whatever the disk's speed.
        return next()
          .then((r) => new Promise((resolve) => setTimeout(() => resolve(r), 10)))
          .finally(() => inFlight--);
      });
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
      assert.equal(inFlightMax, WRITE_ROUNDS_MAX, `${inFlightMax} rounds were in flight at once`);
      const values = await backend.read([enc.encode("k0"), enc.encode("k29")]);
      assert.deepEqual(values.map((v) => v && dec.decode(v.value)), ["v0", "v29"]);
    },
  );
});

/** Writes one SET into a lane batch as the client port's native code does. */
function addSet(batch: SetBatch, key: string, value: string): void {
  const k = enc.encode(key);
  const v = enc.encode(value);
  const bytes = 8 + k.length + v.length;
  assert.ok(batch.makeRoom(bytes));
  const view = new DataView(batch.buffer.buffer, batch.buffer.byteOffset);
  let at = batch.used;
  view.setUint32(at, k.length);
  batch.buffer.set(k, at + 4);
  at += 4 + k.length;
  view.setUint32(at, v.length);
  batch.buffer.set(v, at + 4);
  batch.added(1, bytes);
}

Deno.test("raft backend: the SET lane answers each SET of a batch in order, one proposal per region and round", async () => {
  await withTestNode(
    { prefix: "spire_backend_lane_", overrides: { initialRegionCount: 2 } },
    async (node) => {
      const backend = new RaftBackend({ services: node.services });
      const a = enc.encode("a");
      const far = enc.encode("\x90");
      assert.notEqual(node.services.route(a).id, node.services.route(far).id);
      const left = backend.setBatch(a, 16)!;
      const right = backend.setBatch(far, 16)!;
      assert.notEqual(left, right, "one batch per region");
      assert.equal(backend.setBatch(enc.encode("b"), 16), left, "the open batch is reused");
      for (let i = 0; i < 100; i++) {
        addSet(left, `k${i % 3}`, `${i}`);
        addSet(right, `\x90${i % 3}`, `${i}`);
      }
      const buffers = [left.buffer, right.buffer];
      const [l, r] = await Promise.all([left.done, right.done]);
      assert.equal(l.length, 100);
      assert.ok([...l, ...r].every((x) => x.kind === "simple" && x.value === "OK"));
      assert.ok(left.sealed && right.sealed);
      // The last SET of each key won, in both regions.
      const keys = ["k0", "k1", "k2", "\x900", "\x901", "\x902"].map((k) => enc.encode(k));
      const values = await backend.read(keys);
      assert.deepEqual(values.map((v) => v && dec.decode(v.value)), [
        "99",
        "97",
        "98",
        "99",
        "97",
        "98",
      ]);
      // A batch that went out is not reused, but its buffer is, once its SETs are in the log.
      const next = backend.setBatch(a, 16)!;
      assert.notEqual(next, left);
      assert.ok(buffers.includes(next.buffer), "no buffer was reused");
      addSet(next, "k0", "again");
      assert.equal((await next.done)[0]?.kind, "simple");
      assert.equal(dec.decode((await backend.read([enc.encode("k0")]))[0]!.value), "again");
      // A SET larger than a batch takes the executor's path.
      assert.equal(backend.setBatch(a, 2 * 1024 * 1024), undefined);
    },
  );
});

Deno.test("raft backend: SETs of one key taken across a split apply in the order they were taken", async () => {
  await withTestNode(
    { prefix: "spire_backend_lane_split_", overrides: { initialRegionCount: 1 } },
    async (node) => {
      // Hold the SET lane's proposals (plain-SETs commands, tag 3) until released.
      let release!: () => void;
      const released = new Promise<void>((r) => (release = r));
      const call = hookCalls(
        node,
        ({ req }, next) =>
          req.op === "propose" && req.command?.[0] === 3 ? released.then(next) : next(),
      );
      const backend = new RaftBackend({ services: node.services });
      // Every round in flight (held): the batches below wait for the next round, together.
      const fillers: SetBatch[] = [];
      for (let i = 0; i < WRITE_ROUNDS_MAX; i++) {
        const b = backend.setBatch(enc.encode("z"), 16)!;
        addSet(b, "z", `${i}`);
        fillers.push(b);
        await new Promise((r) => setTimeout(r, 0));
      }
      const k = enc.encode("k");
      const region = node.services.route(k);
      const before = backend.setBatch(k, 16)!;
      // The old range's batch holds keys of both halves after the split, so it is refused whole
      // and resent SET by SET, which takes longer than the new region's batch.
      for (let i = 0; i < 200; i++) addSet(before, `k${i}`, "old");
      addSet(before, "k", "first");
      addSet(before, "zz", "right half");
      // Split at "m": "k" moves to the new left region.
      const ids = await new PdClient(node.services.runtime, NAMES.pd).askSplit(
        region.id,
        region.epoch,
      );
      const command = encodeRegionCommand({
        kind: "split",
        splitKey: enc.encode("m"),
        newRegionId: ids.newRegionId,
        newPeerIds: ids.newPeerIds,
        version: region.epoch.version,
      });
      await call(NAMES.region(region.id), { op: "propose", command }, { timeoutMs: 10_000 });
      const deadline = Date.now() + 10_000;
      while (node.services.route(k).id === region.id && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.notEqual(node.services.route(k).id, region.id, "the split did not reach the routes");
      const after = backend.setBatch(k, 16)!;
      assert.notEqual(after, before);
      addSet(after, "k", "second");
      release();
      const replies = [
        ...await before.done,
        ...await after.done,
        ...(await Promise.all(fillers.map((f) => f.done))).flat(),
      ];
      assert.ok(
        replies.every((x) => x.kind === "simple"),
        JSON.stringify(replies.find((x) => x.kind !== "simple")),
      );
      const [v] = await backend.read([k]);
      assert.equal(v && dec.decode(v.value), "second");
    },
  );
});

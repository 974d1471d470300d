import assert from "node:assert/strict";
import { MemoryNetwork } from "../transport/mod.ts";
import { RegionLogStore, SimDisk } from "../log_store/mod.ts";
import { MemoryLogStorage } from "./log_storage.ts";
import { encodeKvRequest, type KvResult, KvStateMachine } from "./state_machine.ts";
import { NotLeaderError, RegionPeer } from "./region_peer.ts";
import type { LogStorage } from "./log_storage.ts";

const settle = () => new Promise<void>((r) => setTimeout(r, 0));

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Cluster {
  net: MemoryNetwork;
  peers: Map<number, RegionPeer<KvResult>>;
  start(id: number, storage: LogStorage): Promise<RegionPeer<KvResult>>;
  stop(): Promise<void>;
}

function cluster(ids: number[], opts: { compact?: number; chunk?: number } = {}): Cluster {
  const net = new MemoryNetwork();
  const peers = new Map<number, RegionPeer<KvResult>>();
  const c: Cluster = {
    net,
    peers,
    async start(id, storage) {
      net.remove(id);
      const slot: { peer?: RegionPeer<KvResult> } = {};
      const transport = net.endpoint(id, (f) => slot.peer?.receive(f));
      const peer = await RegionPeer.start({
        id,
        peers: ids,
        storage,
        stateMachine: new KvStateMachine(),
        transport,
        random: seeded(id),
        compactEntriesThreshold: opts.compact ?? 10_000,
        compactKeepEntries: 2,
        snapshotChunkBytes: opts.chunk ?? 1024 * 1024,
      });
      slot.peer = peer;
      peers.set(id, peer);
      return peer;
    },
    async stop() {
      for (const p of peers.values()) await p.stop();
      net.close();
      await settle();
    },
  };
  return c;
}

async function elect(c: Cluster, id: number): Promise<RegionPeer<KvResult>> {
  const p = c.peers.get(id)!;
  p.campaign();
  for (let i = 0; i < 50 && !p.isLeader; i++) await settle();
  assert.ok(p.isLeader, `peer ${id} did not become leader`);
  return p;
}

const put = (key: string, value: string) => encodeKvRequest({ f: "put", key, value });
const get = (key: string) => encodeKvRequest({ f: "get", key });

Deno.test("region peers replicate proposals and serve linearizable reads", async () => {
  const c = cluster([1, 2, 3]);
  for (const id of [1, 2, 3]) await c.start(id, new MemoryLogStorage());
  const leader = await elect(c, 1);
  const results = await Promise.all(
    Array.from({ length: 100 }, (_, i) => leader.propose(put(`k${i}`, `v${i}`))),
  );
  assert.ok(results.every((r) => r === true));
  assert.equal(await leader.read(get("k42")), "v42");
  assert.equal(
    await leader.propose(encodeKvRequest({ f: "cas", key: "k1", expected: "nope", value: "x" })),
    false,
  );
  await assert.rejects(() => c.peers.get(2)!.read(get("k1")), NotLeaderError);
  await assert.rejects(() => c.peers.get(2)!.propose(put("a", "b")), NotLeaderError);
  for (let i = 0; i < 20; i++) await settle();
  for (const p of c.peers.values()) {
    assert.ok(p.applied >= 101, `peer ${p.id} applied ${p.applied}`);
  }
  await c.stop();
});

Deno.test("region peer groups many concurrent proposals into few fsyncs", async () => {
  const c = cluster([1, 2, 3]);
  const disks = new Map<number, SimDisk>();
  for (const id of [1, 2, 3]) {
    const fs = new SimDisk();
    disks.set(id, fs);
    await c.start(id, await RegionLogStore.open({ fs, dir: `/n${id}` }));
  }
  const leader = await elect(c, 1);
  const before = leader.stats.syncedReadies;
  await Promise.all(Array.from({ length: 256 }, (_, i) => leader.propose(put(`k${i}`, "v"))));
  const syncs = leader.stats.syncedReadies - before;
  assert.ok(syncs < 64, `256 proposals took ${syncs} synced readies`);
  await c.stop();
});

Deno.test("region peer restarts from its durable log and catches up by chunked snapshot", async () => {
  const c = cluster([1, 2, 3], { compact: 20, chunk: 64 });
  const disks = new Map<number, SimDisk>();
  for (const id of [1, 2, 3]) {
    const fs = new SimDisk();
    disks.set(id, fs);
    await c.start(id, await RegionLogStore.open({ fs, dir: `/n${id}` }));
  }
  const leader = await elect(c, 1);
  for (let i = 0; i < 10; i++) await leader.propose(put(`a${i}`, `x${i}`));
  // Peer 3 goes down; the others move on far enough to compact past it.
  await c.peers.get(3)!.stop();
  c.net.remove(3);
  for (let i = 0; i < 80; i++) await leader.propose(put(`b${i}`, `y${i}`));
  assert.ok(leader.stats.snapshotsTaken > 0, "the leader must have compacted");
  disks.get(3)!.crash(() => 0);
  const p3 = await c.start(3, await RegionLogStore.open({ fs: disks.get(3)!, dir: "/n3" }));
  assert.ok(p3.applied < 90);
  for (let i = 0; i < 200 && p3.applied < leader.applied; i++) {
    leader.tick();
    await settle();
  }
  assert.equal(p3.applied, leader.applied);
  assert.ok(leader.stats.snapshotChunksSent > 1, "the snapshot must travel in chunks");
  // Peer 3 now has every value: hand it the leadership and read there.
  leader.transferLeader(3);
  const l3 = c.peers.get(3)!;
  for (let i = 0; i < 100 && !l3.isLeader; i++) await settle();
  assert.ok(l3.isLeader, "leadership transfer to peer 3 failed");
  assert.equal(await l3.read(get("b79")), "y79");
  assert.equal(await l3.read(get("a3")), "x3");
  await c.stop();
});

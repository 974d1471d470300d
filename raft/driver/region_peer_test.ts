import assert from "node:assert/strict";
import { MemoryNetwork } from "../transport/mod.ts";
import { RegionLogStore, SimDisk } from "../log_store/mod.ts";
import { MemoryLogStorage } from "./log_storage.ts";
import { encodeKvRequest, type KvResult, KvStateMachine } from "./state_machine.ts";
import { NotLeaderError, RegionPeer } from "./region_peer.ts";
import type { LogStorage } from "./log_storage.ts";
import type { Entry, Snapshot } from "../core/mod.ts";
import type { StateMachine } from "./state_machine.ts";

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

/** A log whose saves take a while and that records what is durable. */
class SlowLog extends MemoryLogStorage {
  durable = 0;
  saving = false;
  /** Saves and applies that ran at the same time (one began while the other ran). */
  overlaps = 0;
  applying = false;
  override async save(
    update: Parameters<MemoryLogStorage["save"]>[0],
    sync: boolean,
  ): Promise<void> {
    this.saving = true;
    if (this.applying) this.overlaps++;
    await new Promise((r) => setTimeout(r, 2));
    await super.save(update, sync);
    const last = update.entries[update.entries.length - 1];
    if (last !== undefined) this.durable = last.index;
    this.saving = false;
  }
}

/** A state machine whose applies take a while and check they only apply durable entries. */
class CheckedMachine implements StateMachine<KvResult> {
  readonly order: number[] = [];
  readonly violations: string[] = [];
  readonly #kv = new KvStateMachine();
  constructor(readonly log: SlowLog) {}
  async apply(commands: readonly Entry[], appliedIndex: number): Promise<KvResult[]> {
    this.log.applying = true;
    if (this.log.saving) this.log.overlaps++;
    for (const e of commands) {
      if (e.index > this.log.durable) {
        this.violations.push(`entry ${e.index} applied before durable (${this.log.durable})`);
      }
      const prev = this.order[this.order.length - 1] ?? 0;
      if (e.index <= prev) this.violations.push(`entry ${e.index} applied after ${prev}`);
      this.order.push(e.index);
    }
    await new Promise((r) => setTimeout(r, 2));
    const results = this.#kv.apply(commands, appliedIndex);
    this.log.applying = false;
    return results;
  }
  query(request: Uint8Array): KvResult {
    return this.#kv.query(request);
  }
  snapshot(): Uint8Array {
    return this.#kv.snapshot();
  }
  restore(snapshot: Snapshot): void {
    this.#kv.restore(snapshot);
  }
  appliedIndex(): number {
    return this.#kv.appliedIndex();
  }
}

/** A sole voter over a slow log and a checking state machine. */
async function slowSoleVoter() {
  const net = new MemoryNetwork();
  const log = new SlowLog({ voters: [1], learners: [] });
  const sm = new CheckedMachine(log);
  const slot: { peer?: RegionPeer<KvResult> } = {};
  const peer = await RegionPeer.start({
    id: 1,
    peers: [1],
    storage: log,
    stateMachine: sm,
    transport: net.endpoint(1, (f) => slot.peer?.receive(f)),
    random: seeded(1),
  });
  slot.peer = peer;
  return { net, log, sm, peer };
}

Deno.test("region peer persists the next Ready while it applies the previous one, in order", async () => {
  const { net, log, sm, peer } = await slowSoleVoter();
  peer.campaign();
  for (let i = 0; i < 50 && !peer.isLeader; i++) await settle();
  assert.ok(peer.isLeader);
  // Proposals keep arriving one by one: each waits for the one before it only to be taken.
  const answers: Promise<KvResult>[] = [];
  const answeredAt: number[] = [];
  for (let i = 0; i < 40; i++) {
    const p = peer.propose(put(`k${i}`, `v${i}`));
    answers.push(p.then((r) => {
      answeredAt.push(sm.appliedIndex());
      assert.ok(log.durable >= sm.appliedIndex(), "answered before its entry was durable");
      return r;
    }));
    await new Promise((r) => setTimeout(r, 1));
  }
  assert.ok((await Promise.all(answers)).every((r) => r === true));
  assert.deepEqual(sm.violations, []);
  assert.ok(log.overlaps > 0, "no save overlapped an apply: the driver is serial");
  assert.equal(await peer.read(get("k39")), "v39");
  await peer.stop();
  net.close();
});

Deno.test("a new leader has applied its own term only after its first entry applied", async () => {
  const { net, log, peer } = await slowSoleVoter();
  assert.equal(peer.appliedOwnTerm, false, "a follower");
  peer.campaign();
  // The log saves slowly (2 ms): the peer leads before its term's empty entry is applied.
  assert.ok(peer.isLeader);
  assert.equal(peer.appliedOwnTerm, false, "leader, but its term's first entry is not applied");
  for (let i = 0; i < 100 && !peer.appliedOwnTerm; i++) await settle();
  assert.ok(peer.appliedOwnTerm);
  assert.equal(log.term(peer.applied), peer.status().hardState.term);
  await peer.stop();
  net.close();
});

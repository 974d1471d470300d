import assert from "node:assert/strict";
import type { Entry } from "../raft/core/mod.ts";
import type { Region } from "../pd/mod.ts";
import { MemoryEngine } from "../node/commands/memory_engine.ts";
import type { EngineOp } from "../node/commands/write_ops.ts";
import { engineKeyOf } from "../node/commands/kv_model.ts";
import {
  appliedIndexKey,
  decodeIndex,
  decodeRegion,
  encodeRegion,
  regionStateKey,
} from "../node/region_meta.ts";
import fc from "fast-check";
import {
  decodeRegionCommand,
  encodeReadRequest,
  encodeRegionCommand,
  type RegionCommand,
  type RegionResult,
  RegionStateMachine,
} from "../node/region_state_machine.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const OK_REPLY = { kind: "simple", value: "OK" };

class CountingEngine extends MemoryEngine {
  batches: EngineOp[][] = [];
  override writeBatch(ops: readonly EngineOp[]): Promise<void> {
    this.batches.push([...ops]);
    return super.writeBatch(ops);
  }
}

const REGION: Region = {
  id: 2,
  startKey: new Uint8Array(),
  endKey: new Uint8Array(),
  epoch: { confVer: 1, version: 1 },
  peers: [{ id: 3, storeId: 1, role: "voter" }],
};

async function fresh(): Promise<CountingEngine> {
  const engine = new CountingEngine();
  await engine.writeBatch([{ op: "put", key: regionStateKey(2), value: encodeRegion(REGION) }]);
  engine.batches = [];
  return engine;
}

function entry(index: number, c: RegionCommand): Entry {
  return { term: 1, index, type: "normal", data: encodeRegionCommand(c) };
}

const set = (key: string, value: string, index: number) =>
  entry(index, {
    kind: "write",
    nowMs: 1000,
    cmd: { op: "set", key: enc.encode(key), value: enc.encode(value) },
  });
const append = (key: string, value: string, index: number) =>
  entry(index, {
    kind: "write",
    nowMs: 1000,
    cmd: { op: "append", key: enc.encode(key), value: enc.encode(value) },
  });

async function userValue(engine: MemoryEngine, key: string): Promise<string | undefined> {
  const v = await engine.get(engineKeyOf(enc.encode(key)));
  return v === undefined ? undefined : dec.decode(v.subarray(2));
}

Deno.test("region state machine writes a batch's effects and its applied index in one engine batch", async () => {
  const engine = await fresh();
  const sm = await RegionStateMachine.open({ engine, regionId: 2 });
  const results = await sm.apply([set("a", "1", 5), append("a", "2", 6), set("b", "x", 7)], 8);
  assert.equal(engine.batches.length, 1);
  assert.equal(results.length, 3);
  assert.deepEqual(results[1], { kind: "reply", reply: { kind: "integer", value: 2 } });
  const applied = engine.batches[0]!.find((op) =>
    op.op === "put" && op.key.join() === appliedIndexKey(2).join()
  );
  assert.ok(applied !== undefined && applied.op === "put");
  assert.equal(decodeIndex(applied.value), 8);
  assert.equal(await userValue(engine, "a"), "12");
  // A restart resumes at the stored applied index.
  const again = await RegionStateMachine.open({ engine, regionId: 2 });
  assert.equal(again.appliedIndex(), 8);
  await assert.rejects(() => again.apply([append("a", "2", 6)], 6), /applied is 8/);
});

const mset = (index: number, keys: number, prefix: string) =>
  entry(index, {
    kind: "write",
    nowMs: 1000,
    cmd: {
      op: "mset",
      entries: Array.from({ length: keys }, (_, i) => [`${prefix}${i}`, "v"]).flat().map((x) =>
        enc.encode(x)
      ),
    },
  });

Deno.test("region state machine cuts batches before they pass the limit, and refuses a write no engine batch holds", async () => {
  const engine = await fresh();
  const sm = await RegionStateMachine.open({ engine, regionId: 2, batchOpsMax: 10 });
  // 4 + 4 fit in one batch; the third entry's 4 would pass 10, so the first two go first.
  const results = await sm.apply([mset(5, 4, "a"), mset(6, 4, "b"), mset(7, 4, "c")], 7);
  assert.deepEqual(results.map((r) => r.kind === "reply" && r.reply), [
    OK_REPLY,
    OK_REPLY,
    OK_REPLY,
  ]);
  assert.deepEqual(engine.batches.map((b) => b.length), [9, 5], "user puts and the applied index");
  const appliedOf = (batch: EngineOp[]) => {
    const op = batch.find((o) => o.op === "put" && o.key.join() === appliedIndexKey(2).join());
    return op?.op === "put" ? decodeIndex(op.value) : undefined;
  };
  assert.deepEqual(engine.batches.map(appliedOf), [6, 7]);
  assert.equal(sm.appliedIndex(), 7);

  // One entry of 100,000 puts cannot go in one engine batch with the applied index: refused with
  // an error reply, nothing written, the index moves on (a replay refuses it again).
  engine.batches = [];
  const [refused] = await sm.apply([mset(8, 100_000, "k")], 8);
  assert.ok(refused?.kind === "reply" && refused.reply.kind === "error");
  assert.match(refused.reply.message, /^ERR write too large: 100000 engine operations/);
  assert.deepEqual(engine.batches.map((b) => b.length), [1]);
  assert.equal(await userValue(engine, "k0"), undefined);
  assert.equal(sm.appliedIndex(), 8);
});

Deno.test("region state machine splits at one index and refuses writes to the half it gave away", async () => {
  const engine = await fresh();
  const splits: [Region, Region][] = [];
  const sm = await RegionStateMachine.open({
    engine,
    regionId: 2,
    onSplit: (l, r) => splits.push([l, r]),
  });
  const split = entry(2, {
    kind: "split",
    splitKey: enc.encode("m"),
    newRegionId: 10,
    newPeerIds: [11],
    version: 1,
  });
  const results: RegionResult[] = await sm.apply([
    set("a", "before", 1),
    split,
    set("b", "after", 3),
    set("z", "kept", 4),
  ], 4);
  assert.equal(results[1]!.kind, "split");
  assert.equal(results[2]!.kind, "keyNotInRegion");
  assert.equal(results[3]!.kind, "reply");
  assert.equal(await userValue(engine, "a"), "before");
  assert.equal(await userValue(engine, "b"), undefined);
  assert.equal(engine.batches.length, 1, "split and writes in one batch");
  assert.equal(splits.length, 1);
  const right = decodeRegion((await engine.get(regionStateKey(2)))!);
  const left = decodeRegion((await engine.get(regionStateKey(10)))!);
  assert.equal(dec.decode(right.startKey), "m");
  assert.equal(dec.decode(left.endKey), "m");
  assert.equal(left.epoch.version, 2);
  assert.equal(right.epoch.version, 2);
  // A split decided on the old epoch is stale now.
  const stale = await sm.apply([entry(5, {
    kind: "split",
    splitKey: enc.encode("t"),
    newRegionId: 12,
    newPeerIds: [13],
    version: 1,
  })], 5);
  assert.equal(stale[0]!.kind, "staleSplit");
  // Reads of keys outside the range are refused too.
  assert.equal((await sm.query(encodeReadRequest([enc.encode("a")]))).kind, "keyNotInRegion");
  const read = await sm.query(encodeReadRequest([enc.encode("z")]));
  assert.equal(read.kind, "values");
});

Deno.test("planted skip-applied-index leaves the applied index out of the batch", async () => {
  const engine = await fresh();
  const sm = await RegionStateMachine.open({
    engine,
    regionId: 2,
    plants: ["skip-applied-index"],
  });
  await sm.apply([set("a", "1", 1)], 1);
  assert.equal(await engine.get(appliedIndexKey(2)), undefined);
  assert.equal((await RegionStateMachine.open({ engine, regionId: 2 })).appliedIndex(), 0);
});

Deno.test("plain SETs take the flat log layout and decode to the same commands; others stay msgpack", () => {
  const bytesArb = fc.uint8Array({ maxLength: 40 });
  const setArb = fc.record({ key: bytesArb, value: bytesArb }).map((s) => ({
    op: "set" as const,
    ...s,
  }));
  fc.assert(
    fc.property(
      fc.array(setArb, { minLength: 1, maxLength: 20 }),
      fc.boolean(),
      fc.double({ noNaN: true }),
      (sets, batch, nowMs) => {
        const cmd = batch ? { op: "batch" as const, cmds: sets } : sets[0]!;
        const data = encodeRegionCommand({ kind: "write", nowMs, cmd });
        assert.equal(data[0], 3, "not the flat layout");
        const back = decodeRegionCommand(data);
        assert.deepEqual(back, { kind: "write", nowMs, cmd });
        // Every cut of the data is refused, never misread.
        for (const cut of [1, 9, 13, data.length - 1]) {
          if (cut < data.length) assert.throws(() => decodeRegionCommand(data.subarray(0, cut)));
        }
      },
    ),
    { numRuns: 200 },
  );
  const key = enc.encode("k");
  for (
    const cmd of [
      { op: "set" as const, key, value: key, cond: "nx" as const },
      { op: "set" as const, key, value: key, expire: { in: 5 } },
      {
        op: "batch" as const,
        cmds: [{ op: "set" as const, key, value: key }, { op: "getdel" as const, key }],
      },
    ]
  ) {
    const data = encodeRegionCommand({ kind: "write", nowMs: 1, cmd });
    assert.equal(data[0], 1, `${JSON.stringify(cmd.op)} left msgpack`);
    assert.deepEqual(decodeRegionCommand(data), { kind: "write", nowMs: 1, cmd });
  }
  assert.throws(
    () =>
      encodeRegionCommand(
        { kind: "write", nowMs: 1, cmd: { op: "set", key, value: new Uint8Array(100) } },
        50,
      ),
    /Cannot encode write command set: 123 bytes exceeds the limit of 50/,
  );
});

Deno.test("plain SETs applied from the log's bytes leave the engine and replies as evaluating each command", async () => {
  const { applyCommand } = await import("../node/commands/transaction.ts");
  const { BatchReader } = await import("../node/commands/batch_reader.ts");
  const keyArb = fc.constantFrom("a", "b", "c");
  const entryArb: fc.Arbitrary<(index: number) => Entry> = fc.oneof(
    fc.array(fc.tuple(keyArb, fc.string({ maxLength: 3 })), { minLength: 1, maxLength: 5 }).map(
      (sets) => (index: number) =>
        entry(index, {
          kind: "write",
          nowMs: 1000,
          cmd: sets.length === 1
            ? { op: "set", key: enc.encode(sets[0]![0]), value: enc.encode(sets[0]![1]) }
            : {
              op: "batch",
              cmds: sets.map(([k, v]) => ({ op: "set", key: enc.encode(k), value: enc.encode(v) })),
            },
        }),
    ),
    fc.tuple(keyArb, fc.string({ maxLength: 2 })).map(([k, v]) => (index: number) =>
      append(k, v, index)
    ),
    keyArb.map((k) => (index: number) =>
      entry(index, { kind: "write", nowMs: 1000, cmd: { op: "getdel", key: enc.encode(k) } })
    ),
  );
  await fc.assert(
    fc.asyncProperty(
      fc.array(entryArb, { minLength: 1, maxLength: 12 }),
      fc.integer({ min: 2, max: 12 }),
      async (makers, batchOpsMax) => {
        const entries = makers.map((make, i) => make(i + 1));
        const engine = await fresh();
        const sm = await RegionStateMachine.open({ engine, regionId: 2, batchOpsMax });
        const results = await sm.apply(entries, entries.length);
        // The reference: each entry decoded and evaluated alone, in order.
        const model = new MemoryEngine();
        const replies = [];
        for (const e of entries) {
          const c = decodeRegionCommand(e.data);
          if (c.kind !== "write") throw new Error("no splits here");
          const r = await applyCommand(c.cmd, c.nowMs, new BatchReader(model));
          await model.writeBatch(r.ops);
          replies.push(r.reply);
        }
        assert.deepEqual(results.map((r) => r.kind === "reply" ? r.reply : r), replies);
        for (const k of ["a", "b", "c"]) {
          assert.deepEqual(
            await engine.get(engineKeyOf(enc.encode(k))),
            await model.get(engineKeyOf(enc.encode(k))),
            `key ${k}`,
          );
        }
        assert.equal(sm.appliedIndex(), entries.length);
      },
    ),
    { numRuns: 150 },
  );
});

Deno.test("a plain SETs entry with one key outside the region is refused whole", async () => {
  const engine = new CountingEngine();
  const bounded = { ...REGION, startKey: enc.encode("b"), endKey: enc.encode("m") };
  await engine.writeBatch([{ op: "put", key: regionStateKey(2), value: encodeRegion(bounded) }]);
  const sm = await RegionStateMachine.open({ engine, regionId: 2 });
  const sets = (...keys: string[]) => ({
    op: "batch" as const,
    cmds: keys.map((k) => ({ op: "set" as const, key: enc.encode(k), value: enc.encode("v") })),
  });
  const results = await sm.apply([
    entry(1, { kind: "write", nowMs: 1, cmd: sets("c", "m") }),
    entry(2, { kind: "write", nowMs: 1, cmd: sets("a", "c") }),
    entry(3, { kind: "write", nowMs: 1, cmd: sets("b", "l") }),
  ], 3);
  assert.deepEqual(results.map((r) => r.kind), ["keyNotInRegion", "keyNotInRegion", "reply"]);
  assert.equal(await userValue(engine, "c"), undefined);
  assert.equal(await userValue(engine, "b"), "v");
  assert.equal(await userValue(engine, "l"), "v");
  assert.equal(sm.stats.writesRerouted, 2);
  assert.equal(sm.stats.keysPutSinceCount, 2);
  assert.equal(sm.stats.bytesPutSinceCount, 2 * (2 + 3));
});

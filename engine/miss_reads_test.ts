import assert from "node:assert/strict";
import { Engine } from "./engine.ts";
import {
  DEFAULT_MISS_READS,
  type MissReadOptions,
  missReadOptions,
  MissReadPolicy,
  RELAPSE_READS,
} from "./miss_reads.ts";
import { b, s, tempEngine } from "./_test_util.ts";

/** A policy on a clock the test moves by hand. */
function policy(options: Partial<MissReadOptions> = {}) {
  const clock = { ms: 0 };
  const p = new MissReadPolicy(missReadOptions(options), () => clock.ms);
  return { p, clock };
}

Deno.test("miss reads: fast synchronous reads stay on the JavaScript thread", () => {
  const { p } = policy();
  for (let i = 0; i < 1000; i++) {
    assert.ok(p.syncAllowed());
    p.recordSync(1, 0.008); // 8 µs: a page-cache read
  }
  assert.deepEqual(p.stats(), { sync: 1000, worker: 0, slowSync: 0, syncMaxUs: 8 });
});

Deno.test("miss reads: a read over the limit backs off; slow again soon after doubles the back-off, a lone one does not", () => {
  const { p, clock } = policy({ backoffMs: 100, backoffMaxMs: 300 });
  p.recordSync(1, 2); // 2 ms: over the 1 ms limit
  assert.equal(p.syncAllowed(), false);
  clock.ms = 99.9;
  assert.equal(p.syncAllowed(), false, "still backing off");
  clock.ms = 100;
  assert.equal(p.syncAllowed(), true, "synchronous again after 100 ms");
  p.recordSync(1, 2); // slow again at once: a relapse
  clock.ms = 299;
  assert.equal(p.syncAllowed(), false, "second back-off is 200 ms");
  clock.ms = 300;
  p.recordSync(1, 2);
  clock.ms = 599;
  assert.equal(p.syncAllowed(), false, "third back-off is capped at 300 ms");
  clock.ms = 600;
  assert.equal(p.syncAllowed(), true);
  for (let i = 0; i < RELAPSE_READS; i++) p.recordSync(1, 0.005); // fast for a while
  p.recordSync(1, 2); // a lone slow read: back to the first back-off
  clock.ms = 700;
  assert.equal(p.syncAllowed(), true, "back-off back to 100 ms");
  assert.equal(p.stats().slowSync, 4);
});

Deno.test("miss reads: a device-bound workload holds the thread for a few reads per back-off, and the back-offs grow", () => {
  const { p, clock } = policy({ backoffMs: 10, backoffMaxMs: 5000 });
  const syncReadsPerBackoff: number[] = [];
  for (let round = 0; round < 12; round++) {
    let reads = 0;
    while (p.syncAllowed() && reads < 1000) {
      p.recordSync(1, 0.15); // 150 µs device reads, under the 1 ms limit
      reads++;
    }
    syncReadsPerBackoff.push(reads);
    clock.ms += 10_000; // past any back-off
  }
  assert.ok(syncReadsPerBackoff.every((n) => n >= 1 && n <= 8), `${syncReadsPerBackoff}`);
  // 10, 20, 40, ... ms: the back-off reached its maximum.
  const before = clock.ms;
  p.recordSync(1, 0.15);
  while (p.syncAllowed()) p.recordSync(1, 0.15);
  clock.ms = before + 4999;
  assert.equal(p.syncAllowed(), false, "back-off at its 5 s maximum");
});

Deno.test("miss reads: the moving average decides, so one preempted read does not", () => {
  const { p } = policy();
  for (let i = 0; i < 100; i++) p.recordSync(1, 0.005);
  p.recordSync(1, 0.9); // 900 µs: under the limit, capped at 4 budgets in the average
  assert.ok(p.syncAllowed(), "one outlier alone keeps reads synchronous");
  let reads = 0;
  while (p.syncAllowed() && reads < 1000) {
    p.recordSync(1, 0.12); // device-like reads of 120 µs
    reads++;
  }
  assert.ok(
    reads >= 2 && reads <= 12,
    `a device-bound run backs off within a few reads (${reads})`,
  );
});

Deno.test("miss reads: worker mode never reads synchronously; big multi-key misses go to the worker", () => {
  const worker = policy({ mode: "worker" }).p;
  assert.equal(worker.syncAllowed(), false);
  for (let i = 0; i < 100; i++) worker.recordLookup(true);
  assert.equal(worker.readDirect(), false);
  const { p } = policy({ syncBudgetUs: 50, syncLimitUs: 1000 });
  assert.equal(p.syncAllowed(20), true, "20 keys x 50 µs fit the 1 ms limit");
  assert.equal(p.syncAllowed(21), false);
});

Deno.test("miss reads: reads go direct only while most of them miss", () => {
  const { p } = policy();
  assert.equal(p.readDirect(), false);
  for (let i = 0; i < 32; i++) p.recordLookup(true);
  assert.equal(p.readDirect(), true);
  for (let i = 0; i < 32; i++) p.recordLookup(false);
  assert.equal(p.readDirect(), false);
  for (let i = 0; i < 32; i++) p.recordLookup(true);
  p.recordSync(1, 5); // slow: backing off, so no direct reads either
  assert.equal(p.readDirect(), false);
});

Deno.test("miss reads: bad options are refused with what is allowed", () => {
  assert.deepEqual(missReadOptions(), { ...DEFAULT_MISS_READS });
  assert.throws(
    () => missReadOptions({ mode: "sync" as "worker" }),
    /mode: "sync"; allowed: "adaptive", "worker"/,
  );
  assert.throws(
    () => missReadOptions({ syncBudgetUs: 0 }),
    /syncBudgetUs: 0; allowed: a whole number from 1/,
  );
  assert.throws(() => missReadOptions({ backoffMs: 1.5 }), /backoffMs: 1.5/);
  assert.throws(() => missReadOptions({ syncBudgetUs: 2000 }), /above syncLimitUs/);
  assert.throws(() => missReadOptions({ backoffMs: 10, backoffMaxMs: 5 }), /above backoffMaxMs/);
  assert.throws(
    () => missReadOptions({ budget: 5 } as unknown as Partial<MissReadOptions>),
    /unknown field "budget"/,
  );
});

// --- through the engine ----------------------------------------------------------------

const key = (i: number) => b(`key${String(i).padStart(6, "0")}`);
const value = (i: number) => `v${i}`.repeat(40);
const ROWS = 4000;

/** A flushed data set several times larger than a 64 KiB block cache. */
async function coldDir(): Promise<{ dir: string } & AsyncDisposable> {
  const t = await tempEngine();
  for (let i = 0; i < ROWS; i += 500) {
    await t.engine.writeBatch(
      Array.from({ length: 500 }, (_, j) => ({
        op: "put" as const,
        key: key(i + j),
        value: b(value(i + j)),
      })),
    );
  }
  await t.engine.flush();
  await t.engine.close();
  return { dir: t.dir, [Symbol.asyncDispose]: () => t[Symbol.asyncDispose]() };
}

async function readAll(
  dir: string,
  options: Partial<MissReadOptions>,
  clock: () => number,
  snapshotCheck = false,
) {
  const engine = await Engine.open({
    dataDir: dir,
    tuning: { syncWrites: false, blockCacheSizeBytes: 64 * 1024 },
    missReads: options,
    clock,
  });
  try {
    const snap = snapshotCheck ? engine.snapshot() : undefined;
    if (snap !== undefined) {
      await engine.put(key(7), b("after the snapshot"));
      await engine.flush(); // the new value is in a file too
    }
    for (let n = 0; n < 600; n++) {
      const i = (n * 2654435761) % ROWS; // scattered over the data set
      const got = s(await engine.get(key(i), snap ? { snapshot: snap } : undefined));
      assert.equal(got, value(i), `key ${i}`);
    }
    if (snap !== undefined) {
      assert.equal(s(await engine.get(key(7), { snapshot: snap })), value(7));
      assert.equal(s(await engine.get(key(7))), "after the snapshot");
      snap.release();
    }
    const many = await engine.getBatch(Array.from({ length: 10 }, (_, j) => key(j * 397)));
    many.forEach((v, j) => assert.equal(s(v), value(j * 397)));
    return engine.getStats();
  } finally {
    await engine.close();
  }
}

Deno.test("engine: with fast misses, reads stay on the JavaScript thread and skip the memory-only attempt", async () => {
  await using d = await coldDir();
  const stats = await readAll(d.dir, {}, () => 0); // a stopped clock: every read takes 0 µs
  assert.equal(stats.missReads.worker, 0);
  assert.equal(stats.missReads.slowSync, 0);
  assert.ok(stats.missReads.sync > 300, `most reads missed the cache (${stats.missReads.sync})`);
  assert.ok(
    stats.memoryOnlyMisses < stats.missReads.sync / 2,
    `direct reads saved most memory-only attempts (${stats.memoryOnlyMisses} attempts missed)`,
  );
  assert.equal(stats.keysRead, 600 + 10, "each key read counts once");
});

Deno.test("engine: a slow synchronous miss read sends the following misses to the worker thread", async () => {
  await using d = await coldDir();
  let ms = 0;
  // Every call of the clock moves it 2 ms: each synchronous read looks like a 2 ms device read.
  const stats = await readAll(d.dir, { backoffMs: 1000, backoffMaxMs: 1000 }, () => (ms += 2));
  assert.ok(stats.missReads.slowSync >= 1);
  assert.equal(
    stats.missReads.sync,
    stats.missReads.slowSync,
    "each slow synchronous read was followed by a back-off, not by another synchronous read",
  );
  assert.ok(
    stats.missReads.worker > 300,
    `the misses went to the worker (${stats.missReads.worker})`,
  );
});

Deno.test("engine: synchronous and direct miss reads respect a snapshot", async () => {
  await using d = await coldDir();
  const stats = await readAll(d.dir, {}, () => 0, true);
  assert.ok(stats.missReads.sync > 0);
  assert.equal(stats.missReads.worker, 0);
});

Deno.test("engine: worker mode reads every miss on the worker thread", async () => {
  await using d = await coldDir();
  const stats = await readAll(d.dir, { mode: "worker" }, () => 0);
  assert.equal(stats.missReads.sync, 0);
  assert.ok(stats.missReads.worker > 300);
});

Deno.test("engine: bad missReads or clock options stop open before RocksDB opens", async () => {
  await assert.rejects(
    Engine.open({ dataDir: "/nonexistent/never", missReads: { syncLimitUs: -1 } }),
    /Invalid missReads.syncLimitUs: -1/,
  );
  await assert.rejects(
    Engine.open({ dataDir: "/nonexistent/never", clock: 5 as unknown as () => number }),
    /clock must be a function/,
  );
});

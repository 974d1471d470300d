/**
 * The store's region measurements: exact counts and split keys, taken a slice
 * at a time so that the event loop keeps serving clients meanwhile.
 */

import assert from "node:assert/strict";
import { Engine } from "../engine/mod.ts";
import type { Region } from "../pd/mod.ts";
import { engineKeyOf } from "./commands/kv_model.ts";
import { COUNT_SLICE_ROWS, countRegion, findSplitKey, SCAN_SLICE_ROWS } from "./store.ts";
import { TEST_NODE_TUNING } from "./testing.ts";

const enc = new TextEncoder();
const userKey = (i: number) => enc.encode(`k${String(i).padStart(6, "0")}`);

const whole: Region = {
  id: 1,
  startKey: new Uint8Array(0),
  endKey: new Uint8Array(0),
  epoch: { confVer: 1, version: 1 },
  peers: [{ id: 2, storeId: 1, role: "voter" }],
};

async function withRows<T>(rows: number, body: (engine: Engine) => Promise<T>): Promise<T> {
  const dataDir = await Deno.makeTempDir({ prefix: "spire_store_test_" });
  const engine = await Engine.open({ dataDir, tuning: TEST_NODE_TUNING });
  try {
    for (let i = 0; i < rows; i += 1000) {
      const ops = [];
      for (let j = i; j < Math.min(rows, i + 1000); j++) {
        ops.push({ op: "put" as const, key: engineKeyOf(userKey(j)), value: new Uint8Array(10) });
      }
      await engine.writeBatch(ops);
    }
    return await body(engine);
  } finally {
    await engine.close();
    await Deno.remove(dataDir, { recursive: true });
  }
}

/** Whether a timer set before `work` started fired before `work` was done. */
async function timerFiresDuring(work: () => Promise<unknown>): Promise<boolean> {
  let fired = false;
  const timer = new Promise<void>((r) =>
    setTimeout(() => {
      fired = true;
      r();
    }, 0)
  );
  await work();
  const during = fired;
  await timer;
  return during;
}

Deno.test("countRegion counts every key and byte of a large region and lets timers run meanwhile", async () => {
  const rows = 2 * COUNT_SLICE_ROWS + 7;
  await withRows(rows, async (engine) => {
    let counted = { keys: 0, bytes: 0 };
    const yielded = await timerFiresDuring(async () => {
      counted = await countRegion(engine, whole);
    });
    assert.deepEqual(counted, { keys: rows, bytes: rows * (1 + 7 + 10) });
    assert.ok(yielded, "the count held the event loop from start to end");
    // Only the region's own range is counted.
    const part: Region = { ...whole, startKey: userKey(100), endKey: userKey(300) };
    assert.deepEqual(await countRegion(engine, part), { keys: 200, bytes: 200 * 18 });
  });
});

Deno.test("findSplitKey finds the key past the target in a later slice, and lets timers run meanwhile", async () => {
  const rows = 4 * SCAN_SLICE_ROWS;
  await withRows(rows, async (engine) => {
    const target = 3 * SCAN_SLICE_ROWS + 5;
    let key: Uint8Array | undefined;
    const yielded = await timerFiresDuring(async () => {
      key = await findSplitKey(engine, whole, target, Number.MAX_SAFE_INTEGER);
    });
    assert.deepEqual(key, userKey(target - 1));
    assert.ok(yielded, "the split-key scan held the event loop from start to end");
    assert.deepEqual(
      await findSplitKey(engine, whole, Number.MAX_SAFE_INTEGER, 18 * 10),
      userKey(9),
    );
    assert.equal(await findSplitKey(engine, whole, rows + 1, Number.MAX_SAFE_INTEGER), undefined);
  });
});

/**
 * The engine's walks that copy little or nothing out: scanExpired (the expired
 * keys of a range) and measureRange (its keys and bytes), each checked against
 * a model or a plain scan, with the native helpers and without.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { DEFAULT_HELPERS_PATH } from "./_ffi/helpers.ts";
import { compareBytes } from "./codec/mod.ts";
import type { DeadlineLayout } from "./deadline.ts";
import { Engine } from "./engine.ts";
import { b, key, tempEngine, TEST_TUNING } from "./_test_util.ts";

const LAYOUT: DeadlineLayout = { flagOffset: 1, flagMask: 0x01, deadlineOffset: 2 };
const NOW = 1_000_000;

/** A value: a type byte, flags, and (maybe) an 8-byte big-endian deadline, then data. */
const value = fc.oneof(
  fc.tuple(
    fc.integer({ min: 0, max: 255 }),
    // Deadlines on both sides of now, and now itself (not expired: below now only).
    fc.constantFrom(0, NOW - 1, NOW, NOW + 1, 2 ** 40, -5),
    fc.uint8Array({ maxLength: 40 }),
  ).map(([flags, deadline, data]) => {
    const v = new Uint8Array(10 + data.length);
    v[0] = 1;
    v[1] = flags;
    new DataView(v.buffer).setBigInt64(2, BigInt(deadline));
    v.set(data, 10);
    return v;
  }),
  fc.uint8Array({ maxLength: 9 }), // too short for a deadline, whatever its flags say
);

/** What the rule says: rows whose flag is set and deadline is below now. */
function model(rows: Map<string, Uint8Array>, start: Uint8Array, end: Uint8Array): string[] {
  return [...rows.entries()]
    .map(([k, v]) =>
      [Uint8Array.from(k.split(",").filter((x) => x !== "").map(Number)), v] as const
    )
    .filter(([k]) => compareBytes(k, start) >= 0 && (end.length === 0 || compareBytes(k, end) < 0))
    .sort(([a], [b]) => compareBytes(a, b))
    .filter(([, v]) =>
      v.length >= 10 && (v[1]! & 1) !== 0 &&
      Number(new DataView(v.buffer, v.byteOffset).getBigInt64(2)) < NOW
    )
    .map(([k]) => String([...k]));
}

/** Pages through [start, end) with scanExpired, checking each page's bounds. */
async function scanAll(engine: Engine, start: Uint8Array, end: Uint8Array, rowsMax: number) {
  const keys: string[] = [];
  let from = start;
  let examined = 0;
  for (let pages = 0; pages < 10_000; pages++) {
    const page = await engine.scanExpired(from, end, { layout: LAYOUT, now: NOW, rowsMax });
    assert.ok(page.rowsExamined <= rowsMax, `${page.rowsExamined} rows examined, max ${rowsMax}`);
    examined += page.rowsExamined;
    keys.push(...page.keys.map((k) => String([...k])));
    if (page.next === undefined) return { keys, examined };
    assert.equal(page.rowsExamined, rowsMax, "a page stops early only at the end");
    from = page.next;
  }
  throw new Error("scanExpired made no progress");
}

/** Runs `check` on a fresh engine holding `rows`, once with the native helpers and once without. */
async function onBothEngines(
  rows: readonly (readonly [Uint8Array, Uint8Array])[],
  flush: boolean,
  check: (engine: Engine, helpers: boolean) => Promise<void>,
): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "spire_engine_walks_" });
  try {
    for (const helpers of [true, false]) {
      const engine = await Engine.open({
        dataDir: `${root}/${helpers}`,
        tuning: TEST_TUNING,
        helpers,
      });
      try {
        assert.equal(engine.nativeHelpers, helpers);
        await engine.writeBatch(rows.map(([k, v]) => ({ op: "put", key: k, value: v })));
        if (flush) await engine.flush();
        await check(engine, helpers);
      } finally {
        await engine.close();
      }
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

Deno.test("scanExpired returns exactly the rows whose deadline passed, with and without the helpers", async () => {
  Deno.statSync(DEFAULT_HELPERS_PATH); // ./spire builds them: this checks the native path too
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(fc.uint8Array({ minLength: 1, maxLength: 6 }), value), { maxLength: 80 }),
      fc.uint8Array({ maxLength: 2 }),
      fc.uint8Array({ maxLength: 2 }),
      fc.integer({ min: 1, max: 30 }),
      fc.boolean(),
      async (written, start, end, rowsMax, flush) => {
        const rows = new Map(written.map(([k, v]) => [String([...k]), v]));
        const want = model(rows, start, end);
        const inRange = [...rows.keys()]
          .map((k) => Uint8Array.from(k.split(",").filter((x) => x !== "").map(Number)))
          .filter((k) =>
            compareBytes(k, start) >= 0 && (end.length === 0 || compareBytes(k, end) < 0)
          ).length;
        await onBothEngines(written, flush, async (engine, helpers) => {
          const got = await scanAll(engine, start, end, rowsMax);
          assert.deepEqual(got.keys, want, `helpers: ${helpers}`);
          assert.equal(got.examined, inRange, `helpers: ${helpers}: every row examined once`);
        });
      },
    ),
    { numRuns: 60 },
  );
});

Deno.test("scanExpired refuses a bad layout, now or rowsMax", async () => {
  const root = await Deno.makeTempDir({ prefix: "spire_scan_expired_" });
  const engine = await Engine.open({ dataDir: root, tuning: TEST_TUNING });
  try {
    const none = new Uint8Array();
    const scan = (layout: DeadlineLayout, now: number, rowsMax: number) =>
      engine.scanExpired(none, none, { layout, now, rowsMax });
    await assert.rejects(scan({ ...LAYOUT, flagMask: 0 }, NOW, 1), /layout.flagMask: 0/);
    await assert.rejects(scan({ ...LAYOUT, deadlineOffset: -1 }, NOW, 1), /layout.deadlineOffset/);
    await assert.rejects(scan(LAYOUT, NaN, 1), /Invalid now: NaN/);
    await assert.rejects(scan(LAYOUT, NOW, 0), /Invalid rowsMax: 0/);
    assert.deepEqual(await scan(LAYOUT, NOW, 5), { keys: [], rowsExamined: 0, next: undefined });
  } finally {
    await engine.close();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("measureRange counts the keys, bytes and deadlines a scan reads, with and without the helpers", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(fc.uint8Array({ minLength: 1, maxLength: 6 }), value), { maxLength: 80 }),
      fc.uint8Array({ maxLength: 2 }),
      fc.uint8Array({ maxLength: 2 }),
      fc.integer({ min: 1, max: 20 }),
      fc.boolean(),
      async (written, start, end, sliceRows, withDeadlines) => {
        await onBothEngines(written, false, async (engine, helpers) => {
          const want = { keys: 0, bytes: 0, deadlines: 0, pending: 0, pendingSum: 0 };
          for await (const batch of engine.scanRange(start, end)) {
            want.keys += batch.rowsReturned;
            want.bytes += batch.bytesRead;
            for (const { value: v } of batch.entries) {
              if (!withDeadlines || v.length < 10 || (v[1]! & 1) === 0) continue;
              const deadline = Number(new DataView(v.buffer, v.byteOffset).getBigInt64(2));
              want.deadlines++;
              if (deadline < NOW) continue;
              want.pending++;
              want.pendingSum += deadline - NOW;
            }
          }
          const deadlines = withDeadlines ? { layout: LAYOUT, now: NOW } : undefined;
          assert.deepEqual(
            await engine.measureRange(start, end, {
              sliceRows,
              ...(deadlines ? { deadlines } : {}),
            }),
            want,
            `helpers: ${helpers}`,
          );
        });
      },
    ),
    { numRuns: 40 },
  );
});

Deno.test("countRange and measureRange let other work run every few thousand rows by default", async () => {
  // A DBSIZE or INFO keyspace of a large keyspace walks it in slices; between slices every other
  // client is served. With 65,536-row slices a walk of 800k keys held the event loop ~100 ms at a
  // time (a PING waited that long); the default slice is 8,192 rows now.
  await using t = await tempEngine();
  const rows = 8_192 * 6;
  const ops = [];
  for (let i = 0; i < rows; i++) ops.push({ op: "put" as const, key: key(i, 6), value: b("v") });
  await t.engine.writeBatch(ops);
  for (const walk of ["countRange", "measureRange"] as const) {
    let turns = 0;
    let done = false;
    const other = (async () => {
      while (!done) {
        await new Promise((r) => setTimeout(r, 0));
        turns++;
      }
    })();
    const n = walk === "countRange"
      ? await t.engine.countRange(b(""), b(""))
      : (await t.engine.measureRange(b(""), b(""))).keys;
    done = true;
    await other;
    assert.equal(n, rows);
    assert.ok(turns >= 5, `${walk}: other work ran ${turns} times during a walk of ${rows} rows`);
  }
});

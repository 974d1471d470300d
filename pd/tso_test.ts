import assert from "node:assert/strict";
import { composeTs, parseTs, type TimestampRange, Tso, TSO_LOGICAL_MAX } from "./tso.ts";

interface Harness {
  tso: Tso;
  setNow(ms: number): void;
  saved(): number;
  saves: number[];
}

function harness(savedLimitMs = 0, now = 1_000_000): Harness {
  let clock = now;
  let durable = savedLimitMs;
  const saves: number[] = [];
  const tso = new Tso({
    clock: () => clock,
    savedLimitMs,
    saveLimit: (l) => {
      saves.push(l);
      durable = l;
      return Promise.resolve();
    },
  });
  return { tso, setNow: (ms) => (clock = ms), saved: () => durable, saves };
}

Deno.test("timestamps pack 46 physical and 18 logical bits", () => {
  const ts = composeTs(2 ** 46 - 1, TSO_LOGICAL_MAX);
  assert.equal(ts, 2n ** 64n - 1n);
  assert.deepEqual(parseTs(ts), { physicalMs: 2 ** 46 - 1, logical: TSO_LOGICAL_MAX });
  assert.throws(() => composeTs(2 ** 46, 0), RangeError);
  assert.throws(() => composeTs(0, 2 ** 18), RangeError);
});

Deno.test("TSO stays strictly increasing while the wall clock steps back", async () => {
  const h = harness();
  let last = -1n;
  const clocks = [1_000_000, 1_000_005, 999_000, 999_000, 1_000_004, 500, 1_000_100, 1_000_100];
  for (const now of clocks) {
    h.setNow(now);
    const r = await h.tso.getTs(3);
    assert.ok(r.first > last, `${r.first} after ${last}`);
    assert.equal(r.last, r.first + 2n);
    last = r.last;
  }
  assert.equal(parseTs(last).physicalMs, 1_000_100);
});

Deno.test("TSO persists the window before handing out a timestamp under it", async () => {
  const h = harness();
  const r = await h.tso.getTs();
  assert.equal(h.saved(), 1_000_000 + 3000);
  assert.ok(r.physicalMs < h.saved());
  h.setNow(1_001_499);
  await h.tso.getTs();
  assert.equal(h.saves.length, 1, "more than half the window left: no save");
  h.setNow(1_003_000);
  const r2 = await h.tso.getTs();
  assert.ok(r2.physicalMs < h.saved(), "every timestamp stays under the durable bound");
});

Deno.test("TSO saves the next window in the background once half is used", async () => {
  let clock = 1_000_000;
  const pending: { limit: number; done: () => void }[] = [];
  let durable = 0;
  const tso = new Tso({
    clock: () => clock,
    savedLimitMs: 0,
    saveLimit: (limit) =>
      new Promise<void>((resolve) =>
        pending.push({ limit, done: () => ((durable = limit), resolve()) })
      ),
  });
  const first = tso.getTs();
  await new Promise((r) => setTimeout(r, 0));
  pending.shift()!.done(); // the first save blocks: nothing is durable yet
  await first;
  clock = 1_001_600; // past half of the 3000 ms window
  const r = await tso.getTs(); // answered at once; a save starts behind it
  assert.ok(r.physicalMs < durable);
  assert.equal(pending.length, 1);
  assert.equal(pending[0]!.limit, 1_004_600);
  clock = 1_003_500; // past the old bound: must wait for the save in flight
  let answered = false;
  const late = tso.getTs().then((x) => ((answered = true), x));
  await new Promise((r) => setTimeout(r, 1));
  assert.equal(answered, false);
  pending.shift()!.done();
  const x = await late;
  assert.ok(x.physicalMs < durable && durable === 1_004_600);
  // It was answered without a save of its own; the next background one is under way.
  assert.deepEqual(pending.map((p) => p.limit), [1_006_500]);
  const closing = tso.close();
  pending.shift()!.done();
  await closing;
  assert.equal(tso.limitMs, 1_006_500, "close waited for the background save");
});

Deno.test("TSO logical overflow moves the physical part on instead of repeating", async () => {
  const h = harness();
  const a = await h.tso.getTs(TSO_LOGICAL_MAX); // leaves one logical value
  const b = await h.tso.getTs(1);
  const c = await h.tso.getTs(2); // does not fit: next millisecond
  assert.equal(a.physicalMs, b.physicalMs);
  assert.equal(b.firstLogical, TSO_LOGICAL_MAX);
  assert.equal(c.physicalMs, b.physicalMs + 1);
  assert.equal(c.firstLogical, 0);
  assert.ok(c.first > b.last);
  await assert.rejects(h.tso.getTs(TSO_LOGICAL_MAX + 2), RangeError);
  await assert.rejects(h.tso.getTs(0), RangeError);
});

Deno.test("TSO after a restart with the clock stepped back starts above the saved bound", async () => {
  const h = harness();
  let before: TimestampRange | undefined;
  for (let i = 0; i < 5; i++) before = await h.tso.getTs(10);
  // Restart: the clock is now an hour behind.
  const h2 = harness(h.saved(), 1_000_000 - 3_600_000);
  const after = await h2.tso.getTs();
  assert.ok(after.first > before!.last);
  assert.equal(after.physicalMs, h.saved());
  assert.ok(h2.saved() > after.physicalMs, "a new window was saved before use");
});

Deno.test("TSO hands out nothing when saving the window fails", async () => {
  let fail = true;
  const tso = new Tso({
    clock: () => 5000,
    savedLimitMs: 0,
    saveLimit: () => fail ? Promise.reject(new Error("disk full")) : Promise.resolve(),
  });
  await assert.rejects(tso.getTs(), /disk full/);
  assert.equal(tso.limitMs, 0);
  fail = false;
  const r = await tso.getTs();
  assert.equal(r.physicalMs, 5000);
  assert.equal(tso.limitMs, 8000);
});

Deno.test("concurrent TSO requests get disjoint increasing ranges", async () => {
  const h = harness();
  const ranges = await Promise.all(Array.from({ length: 50 }, (_, i) => h.tso.getTs(i + 1)));
  for (let i = 1; i < ranges.length; i++) assert.ok(ranges[i]!.first > ranges[i - 1]!.last);
});

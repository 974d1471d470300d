import assert from "node:assert/strict";
import { IdAllocator } from "./id_allocator.ts";

Deno.test("id allocator persists one step ahead before handing ids out", async () => {
  const saves: number[] = [];
  const alloc = new IdAllocator({
    savedLimit: 0,
    step: 10,
    saveLimit: (l) => (saves.push(l), Promise.resolve()),
  });
  assert.equal(await alloc.alloc(), 1);
  assert.deepEqual(saves, [11]);
  assert.equal(await alloc.alloc(9), 2);
  assert.deepEqual(saves, [11], "ids 1..10 came from one step");
  assert.equal(await alloc.alloc(25), 11);
  assert.deepEqual(saves, [11, 36], "a large request reserves at least its own size");
  assert.equal(await alloc.alloc(), 36);
  assert.deepEqual(saves, [11, 36, 46]);
});

Deno.test("id allocator after a restart starts at the saved bound", async () => {
  let durable = 0;
  const save = (l: number) => ((durable = l), Promise.resolve());
  const a = new IdAllocator({ savedLimit: 0, step: 100, saveLimit: save });
  const handed: number[] = [];
  for (let i = 0; i < 5; i++) handed.push(await a.alloc());
  const b = new IdAllocator({ savedLimit: durable, step: 100, saveLimit: save });
  const next = await b.alloc();
  assert.ok(next > Math.max(...handed));
  assert.equal(next, 101);
});

Deno.test("id allocator hands out nothing when the save fails and rejects bad counts", async () => {
  let fail = true;
  const a = new IdAllocator({
    savedLimit: 0,
    saveLimit: () => fail ? Promise.reject(new Error("EIO")) : Promise.resolve(),
  });
  await assert.rejects(a.alloc(), /EIO/);
  fail = false;
  assert.equal(await a.alloc(), 1);
  await assert.rejects(a.alloc(0), RangeError);
  await assert.rejects(a.alloc(10_001), RangeError);
});

Deno.test("concurrent id requests never overlap", async () => {
  const a = new IdAllocator({ savedLimit: 0, step: 7, saveLimit: () => Promise.resolve() });
  const counts = Array.from({ length: 40 }, (_, i) => (i % 5) + 1);
  const firsts = await Promise.all(counts.map((c) => a.alloc(c)));
  const seen = new Set<number>();
  firsts.forEach((f, i) => {
    for (let id = f; id < f + counts[i]!; id++) {
      assert.ok(!seen.has(id), `id ${id} twice`);
      seen.add(id);
    }
  });
});

import assert from "node:assert/strict";
import fc from "fast-check";
import type { EngineOp } from "./commands/write_ops.ts";
import { WriteBatch } from "../engine/mod.ts";
import { CACHED_KEY_BYTES_MAX, ValueCache, type ValueCacheLike } from "./value_cache.ts";
import { NativeValueCache } from "./native_value_cache.ts";
import { NativeGets } from "./native_gets.ts";

const b = (s: string) => new TextEncoder().encode(s);
const put = (k: string, v: string): EngineOp => ({ op: "put", key: b(k), value: b(v) });
const del = (k: string): EngineOp => ({ op: "delete", key: b(k) });
const text = (v: Uint8Array | undefined) => v && new TextDecoder().decode(v);

function batchOf(ops: readonly EngineOp[]): WriteBatch {
  const batch = new WriteBatch();
  for (const op of ops) batch.add(op);
  return batch;
}

function written(cache: ValueCacheLike, ops: EngineOp[]): void {
  cache.endWrite(cache.beginWrite(batchOf(ops)));
}

// The same rules hold for the cache in the JavaScript heap and the one in native memory.
const native = NativeGets.open();
const IMPLS: [string, (capacityBytes: number) => ValueCacheLike][] = [
  ["js", (n) => new ValueCache(n)],
  ...(native === undefined ? [] : [[
    "native",
    (n: number) => new NativeValueCache(native, n),
  ] as [string, (capacityBytes: number) => ValueCacheLike]]),
];

Deno.test("the native value cache is built (./spire builds it)", () => {
  assert.ok(native !== undefined, "the library is missing: run ./spire to build .build/");
});

for (const [impl, make] of IMPLS) {
  Deno.test(`${impl} value cache: written values are served, deletes and range deletes forget them`, () => {
    const cache = make(1 << 20);
    const engine = {};
    cache.use(engine);
    written(cache, [put("a", "1"), put("b", "2")]);
    assert.equal(text(cache.get(b("a"))), "1");
    written(cache, [put("a", "3"), del("b")]);
    assert.equal(text(cache.get(b("a"))), "3");
    assert.equal(cache.get(b("b")), undefined);
    written(cache, [{ op: "deleteRange", start: b("a"), end: b("b") }]);
    assert.equal(cache.get(b("a")), undefined);
    assert.equal(cache.stats.entries, 0);
    assert.equal(cache.stats.bytes, 0);
    // Values are copied in: the writer may reuse its buffer.
    const value = b("xyz");
    written(cache, [{ op: "put", key: b("c"), value }]);
    value.fill(0);
    assert.equal(text(cache.get(b("c"))), "xyz");
    assert.equal(cache.stats.hits, 3);
    assert.equal(cache.stats.misses, 2);
  });

  Deno.test(`${impl} value cache: a scope's key prefix limits what a write teaches it`, () => {
    const cache = make(1 << 20);
    cache.use({});
    const batch = batchOf([put("ua", "1"), put("ma", "2"), put("ub", "3")]);
    cache.endWrite(cache.beginWrite(batch, { keyPrefix: "u".charCodeAt(0) }));
    assert.equal(text(cache.get(b("ua"))), "1");
    assert.equal(cache.get(b("ma")), undefined);
    assert.equal(text(cache.get(b("ub"))), "3");
    // The planted bug the node's tests must catch: a delete that is not forgotten.
    cache.endWrite(cache.beginWrite(batchOf([del("ua")]), { keepDeleted: true }));
    assert.equal(text(cache.get(b("ua"))), "1");
    written(cache, [del("ua")]);
    assert.equal(cache.get(b("ua")), undefined);
  });

  Deno.test(`${impl} value cache: a write learnt in one pass caches puts, forgets deletes, and refuses older reads`, () => {
    const cache = make(1 << 20);
    cache.use({});
    cache.written(batchOf([put("a", "1"), put("b", "2")]));
    assert.equal(text(cache.get(b("a"))), "1");
    const before = cache.generation; // a read that went to a worker thread before the next write
    cache.written(batchOf([put("a", "3"), del("b")]));
    assert.equal(text(cache.get(b("a"))), "3");
    assert.equal(cache.get(b("b")), undefined);
    cache.fill(before, b("a"), b("1")); // its answer comes after the write: refused
    cache.fill(before, b("b"), b("2"));
    assert.equal(text(cache.get(b("a"))), "3");
    assert.equal(cache.get(b("b")), undefined);
  });

  Deno.test(`${impl} value cache: a failed write leaves its keys out; another engine empties it`, () => {
    const cache = make(1 << 20);
    const first = {};
    cache.use(first);
    written(cache, [put("a", "1")]);
    cache.beginWrite(batchOf([put("a", "2")])); // the engine write then fails: no endWrite
    assert.equal(cache.get(b("a")), undefined);
    written(cache, [put("b", "1")]);
    cache.use(first);
    assert.equal(text(cache.get(b("b"))), "1");
    cache.use({}); // the engine process restarted
    assert.equal(cache.get(b("b")), undefined);
  });

  Deno.test(`${impl} value cache: a read fills it only if no write began or ended since the read began`, () => {
    const cache = make(1 << 20);
    let g = cache.generation;
    cache.fill(g, b("a"), b("old"));
    assert.equal(text(cache.get(b("a"))), "old");
    g = cache.generation;
    const w = cache.beginWrite(batchOf([put("a", "new")]));
    cache.fill(g, b("a"), b("old")); // read before the write, answered after it began: stale
    assert.equal(cache.get(b("a")), undefined);
    g = cache.generation; // a read during the write may see either value
    cache.endWrite(w);
    cache.fill(g, b("a"), b("old"));
    assert.equal(text(cache.get(b("a"))), "new");
    // A read during a delete that saw the old value: the delete's end forgets it again.
    const d = cache.beginWrite(batchOf([del("a")]));
    cache.fill(cache.generation, b("a"), b("new"));
    cache.endWrite(d);
    assert.equal(cache.get(b("a")), undefined);
    cache.fill(cache.generation, b("missing"), undefined);
    assert.equal(cache.stats.entries, 0);
  });

  Deno.test(`${impl} value cache: bytes stay within the capacity, the oldest slab out first`, () => {
    // 16 slabs of 100 bytes would fill it; entries' overhead leaves room for fewer.
    const cache = make(1600);
    assert.equal(cache.slabBytes, 100);
    const v = "x".repeat(50); // two values per slab
    for (let i = 0; i < 40; i++) {
      written(cache, [put(`k${i}`, v)]);
      assert.ok(cache.stats.bytes <= 1600, `${cache.stats.bytes} bytes held`);
    }
    const held = Array.from({ length: 40 }, (_, i) => cache.get(b(`k${i}`)) !== undefined);
    const first = held.indexOf(true);
    assert.ok(first > 0, "nothing was evicted");
    assert.deepEqual(held.slice(first), held.slice(first).map(() => true), "not oldest first");
    assert.equal(cache.stats.evictions, first);
    assert.equal(cache.stats.entries, 40 - first);
    // A value handed out stays intact after its slab is dropped.
    const kept = cache.get(b("k39"))!;
    for (let i = 40; i < 80; i++) written(cache, [put(`k${i}`, "y".repeat(50))]);
    assert.equal(cache.get(b("k39")), undefined);
    assert.equal(text(kept), v);
    // Larger than a slab, or a key too long: not cached, and an older copy is dropped.
    written(cache, [put("k79", "z".repeat(101))]);
    assert.equal(cache.get(b("k79")), undefined);
    written(cache, [put("z".repeat(CACHED_KEY_BYTES_MAX + 1), "1")]);
    assert.equal(cache.get(b("z".repeat(CACHED_KEY_BYTES_MAX + 1))), undefined);
  });

  Deno.test(`${impl} value cache: capacity 0 holds nothing; a bad capacity is refused`, () => {
    const cache = make(0);
    assert.equal(cache.enabled, false);
    written(cache, [put("a", "1")]);
    assert.equal(cache.get(b("a")), undefined);
    assert.throws(() => make(-1), /Invalid value cache capacity: -1/);
    assert.throws(() => make(1.5), /non-negative integer/);
  });

  Deno.test(`${impl} value cache: under random writes, fills and evictions it never disagrees with the engine`, () => {
    const keys = ["a", "b", "c", "d", "e"];
    const opArb = fc.oneof(
      fc.record({
        kind: fc.constant("put" as const),
        key: fc.constantFrom(...keys),
        v: fc.nat(99),
      }),
      fc.record({ kind: fc.constant("del" as const), key: fc.constantFrom(...keys) }),
      fc.record({ kind: fc.constant("range" as const) }),
      fc.record({ kind: fc.constant("read" as const), key: fc.constantFrom(...keys) }),
      // A read that began before the next write and is answered after it.
      fc.record({ kind: fc.constant("lateRead" as const), key: fc.constantFrom(...keys) }),
    );
    fc.assert(
      fc.property(
        fc.array(opArb, { maxLength: 60 }),
        fc.integer({ min: 1, max: 4 }),
        (ops, room) => {
          const engine = new Map<string, string>();
          const cache = make(room * 16 * 8); // slabs of 8 bytes: a few values each
          let late: { key: string; generation: number; value: string | undefined } | undefined;
          for (const op of ops) {
            if (op.kind === "read" || op.kind === "lateRead") {
              const r = { key: op.key, generation: cache.generation, value: engine.get(op.key) };
              if (op.kind === "read") {
                cache.fill(r.generation, b(r.key), r.value ? b(r.value) : undefined);
              } else late = r;
              continue;
            }
            const eops: EngineOp[] = op.kind === "put"
              ? [put(op.key, String(op.v))]
              : op.kind === "del"
              ? [del(op.key)]
              : [{ op: "deleteRange", start: b("a"), end: b("z") }];
            const apply = () => {
              if (op.kind === "put") engine.set(op.key, String(op.v));
              else if (op.kind === "del") engine.delete(op.key);
              else engine.clear();
            };
            if (op.kind !== "range" && op.key === "c") {
              // A write made synchronously, learnt in one pass: no read ran in between, but one
              // that went to a worker thread before it may still fill the cache after it.
              apply();
              cache.written(batchOf(eops));
            } else {
              const w = cache.beginWrite(batchOf(eops));
              apply();
              cache.endWrite(w);
            }
            if (late !== undefined) {
              cache.fill(late.generation, b(late.key), late.value ? b(late.value) : undefined);
              late = undefined;
            }
            for (const k of keys) {
              const c = cache.get(b(k));
              if (c !== undefined) {
                assert.equal(text(c), engine.get(k), `cache serves a stale ${k}`);
              }
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });
}

Deno.test("native value cache: thousands of keys through table growth and deletions match a map", () => {
  if (native === undefined) throw new Error("the native library is missing");
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          put: fc.boolean(),
          key: fc.integer({ min: 0, max: 4999 }),
          len: fc.integer({ min: 0, max: 40 }),
        }),
        { minLength: 1000, maxLength: 6000 },
      ),
      (ops) => {
        const cache = new NativeValueCache(native, 256 << 20); // no eviction at this size
        const model = new Map<number, string>();
        try {
          for (const op of ops) {
            const v = String(op.key).padEnd(op.len, "v");
            written(cache, [op.put ? put(`key:${op.key}`, v) : del(`key:${op.key}`)]);
            if (op.put) model.set(op.key, v);
            else model.delete(op.key);
          }
          assert.equal(cache.stats.entries, model.size);
          for (let k = 0; k < 5000; k++) assert.equal(text(cache.get(b(`key:${k}`))), model.get(k));
        } finally {
          cache.close();
        }
      },
    ),
    { numRuns: 20 },
  );
});

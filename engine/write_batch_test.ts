import assert from "node:assert/strict";
import fc from "fast-check";
import { openLibrary } from "./_ffi/library.ts";
import { b, collect, s, tempEngine } from "./_test_util.ts";
import {
  concatWriteBatches,
  decodeWriteBatch,
  WRITE_BATCH_HEADER_BYTES,
  WriteBatch,
  type WriteOp,
} from "./write_batch.ts";
import { KEY_SIZE_MAX_BYTES, WRITE_BATCH_OPS_MAX } from "./limits.ts";

const key = fc.uint8Array({ maxLength: 40 });
const value = fc.oneof(fc.uint8Array({ maxLength: 60 }), fc.uint8Array({ maxLength: 300 }));
const op: fc.Arbitrary<WriteOp> = fc.oneof(
  fc.record({ op: fc.constant("put" as const), key, value }),
  fc.record({ op: fc.constant("delete" as const), key }),
  fc.tuple(key, key).map(([x, y]) => {
    const [start, end] = Buffer.compare(x, y) <= 0 ? [x, y] : [y, x];
    return { op: "deleteRange" as const, start, end };
  }),
);

/** The representation RocksDB's own writebatch_put/delete/delete_range build for `ops`. */
function rocksRep(ops: readonly WriteOp[]): Uint8Array {
  const lib = openLibrary();
  try {
    const sym = lib.symbols;
    const batch = sym.rocksdb_writebatch_create()!;
    for (const o of ops) {
      if (o.op === "put") {
        sym.rocksdb_writebatch_put(
          batch,
          o.key,
          BigInt(o.key.length),
          o.value,
          BigInt(o.value.length),
        );
      } else if (o.op === "delete") {
        sym.rocksdb_writebatch_delete(batch, o.key, BigInt(o.key.length));
      } else {
        sym.rocksdb_writebatch_delete_range(
          batch,
          o.start,
          BigInt(o.start.length),
          o.end,
          BigInt(o.end.length),
        );
      }
    }
    const size = new BigUint64Array(1);
    const ptr = sym.rocksdb_writebatch_data(batch, size)!;
    const out = new Uint8Array(
      Deno.UnsafePointerView.getArrayBuffer(ptr, Number(size[0]!)).slice(0),
    );
    sym.rocksdb_writebatch_destroy(batch);
    return out;
  } finally {
    lib.close();
  }
}

Deno.test("WriteBatch encodes exactly what RocksDB's own write batch holds, and decodes back", () => {
  fc.assert(
    fc.property(fc.array(op, { maxLength: 30 }), (ops) => {
      const batch = new WriteBatch();
      for (const o of ops) batch.add(o);
      const rep = batch.rep();
      assert.deepEqual(rep, rocksRep(ops));
      assert.equal(batch.count, ops.length);
      assert.deepEqual(decodeWriteBatch(rep), ops.map((o) => ({ ...o })));
    }),
    { numRuns: 200 },
  );
});

Deno.test("WriteBatch encodes long lengths as RocksDB does (multi-byte varints)", () => {
  const ops: WriteOp[] = [
    { op: "put", key: new Uint8Array(200).fill(1), value: new Uint8Array(70_000).fill(2) },
    { op: "delete", key: new Uint8Array(20_000).fill(3) },
  ];
  const batch = new WriteBatch();
  for (const o of ops) batch.add(o);
  assert.deepEqual(batch.rep(), rocksRep(ops));
});

Deno.test("putParts equals a put of the concatenated key and value", () => {
  fc.assert(
    fc.property(
      key,
      fc.uint8Array({ maxLength: 50 }),
      fc.nat(50),
      fc.nat(50),
      (head, src, a, n) => {
        const at = Math.min(a, src.length);
        const len = Math.min(n, src.length - at);
        const v = new Uint8Array([9, ...src]);
        const parts = new WriteBatch();
        parts.putParts(head, src, at, len, new Uint8Array([9]), src, 0, src.length);
        const plain = new WriteBatch();
        plain.put(new Uint8Array([...head, ...src.subarray(at, at + len)]), v);
        assert.deepEqual(parts.rep(), plain.rep());
        assert.equal(parts.bytes, plain.bytes);
      },
    ),
  );
});

Deno.test("WriteBatch refuses what the engine refuses and stays as it was", () => {
  const batch = new WriteBatch();
  batch.put(b("a"), b("1"));
  const before = batch.copy();
  assert.throws(() => batch.put(new Uint8Array(KEY_SIZE_MAX_BYTES + 1), b("x")), /Invalid key/);
  assert.throws(() => batch.deleteRange(b("b"), b("a")), /end sorts before start/);
  assert.throws(
    () => batch.putParts(b("h"), b("abc"), 2, 5, b(""), b("v"), 0, 1),
    /Invalid key slice: \[2, 7\) is not within its source of 3 bytes/,
  );
  assert.throws(
    () => batch.putParts(new Uint8Array(KEY_SIZE_MAX_BYTES), b("k"), 0, 1, b(""), b(""), 0, 0),
    /Invalid key: 65537 bytes is above the maximum/,
  );
  assert.throws(() => batch.add({ op: "nope" } as unknown as WriteOp), /Invalid op: "nope"/);
  assert.deepEqual(batch.rep(), before);
  assert.equal(batch.count, 1);
  const full = new WriteBatch();
  for (let i = 0; i < WRITE_BATCH_OPS_MAX; i++) full.delete(b("k"));
  assert.throws(() => full.delete(b("k")), /100001 operations is above the maximum of 100000/);
  assert.equal(full.count, WRITE_BATCH_OPS_MAX);
});

Deno.test("decodeWriteBatch refuses bytes that are not a batch", () => {
  const batch = new WriteBatch();
  batch.put(b("key"), b("value"));
  const rep = batch.copy();
  assert.throws(() => decodeWriteBatch(rep.subarray(0, 5)), /shorter than its header/);
  assert.throws(() => decodeWriteBatch(rep.subarray(0, rep.length - 1)), /past the end/);
  const tagged = rep.slice();
  tagged[WRITE_BATCH_HEADER_BYTES] = 0x42;
  assert.throws(() => decodeWriteBatch(tagged), /tag 66/);
  const miscounted = rep.slice();
  miscounted[8] = 2;
  assert.throws(() => decodeWriteBatch(miscounted), /1 records where the header counts 2/);
});

Deno.test("concatWriteBatches keeps every record in order and sums the counts", () => {
  const x = new WriteBatch();
  x.put(b("a"), b("1"));
  const y = new WriteBatch();
  y.delete(b("a"));
  y.put(b("b"), b("2"));
  const merged = concatWriteBatches([x.copy(), y.copy()]);
  assert.deepEqual(decodeWriteBatch(merged).map((o) => o.op), ["put", "delete", "put"]);
  const all = new WriteBatch();
  all.put(b("a"), b("1"));
  all.delete(b("a"));
  all.put(b("b"), b("2"));
  assert.deepEqual(merged, all.rep());
});

Deno.test("engine.write applies a WriteBatch atomically, and the batch is reusable at once", async () => {
  for (const syncWrites of [false, true]) {
    await using t = await tempEngine({ syncWrites });
    const batch = new WriteBatch();
    batch.put(b("a"), b("1"));
    batch.put(b("b"), b("2"));
    batch.put(b("c"), b("3"));
    await t.engine.write(batch);
    batch.clear();
    batch.deleteRange(b("a"), b("c"));
    batch.putParts(b("k"), b("xyz"), 1, 2, b("v:"), b("w"), 0, 1);
    const written = t.engine.write(batch);
    batch.clear(); // the caller's reuse must not change what is written
    batch.put(b("zzz"), b("not written"));
    await written;
    const rows = (await collect(t.engine.scanRange(b(""), b("~")))).flatMap((x) => x.entries);
    assert.deepEqual(rows.map((r) => [s(r.key), s(r.value)]), [["c", "3"], ["kyz", "v:w"]]);
    await assert.rejects(
      t.engine.write({} as WriteBatch),
      /Invalid batch: a WriteBatch is required/,
    );
  }
});

import assert from "node:assert/strict";
import type { RocksDbTuning } from "../tuning/types.ts";
import { Engine } from "./engine.ts";
import { EngineClosedError, EngineError } from "./errors.ts";
import { LibraryLoadError, openLibrary } from "./_ffi/library.ts";
import { KEY_SIZE_MAX_BYTES, VALUE_SIZE_MAX_BYTES } from "./limits.ts";
import { b, key, tempEngine } from "./_test_util.ts";

const EMPTY = new Uint8Array();

Deno.test("every method after close fails with EngineClosedError; close twice is fine", async () => {
  await using t = await tempEngine();
  await t.engine.close();
  await t.engine.close();
  assert.equal(t.engine.closed, true);
  await assert.rejects(t.engine.get(b("k")), EngineClosedError);
  await assert.rejects(t.engine.getBatch([b("k")]), EngineClosedError);
  await assert.rejects(t.engine.put(b("k"), b("v")), EngineClosedError);
  await assert.rejects(t.engine.delete(b("k")), EngineClosedError);
  await assert.rejects(t.engine.writeBatch([]), EngineClosedError);
  await assert.rejects(t.engine.countRange(EMPTY, EMPTY), EngineClosedError);
  await assert.rejects(t.engine.checkpoint(`${t.root}/cp`), EngineClosedError);
  await assert.rejects(t.engine.flush(), EngineClosedError);
  await assert.rejects(t.engine.compactRange(), EngineClosedError);
  assert.throws(() => t.engine.scanRange(EMPTY, EMPTY), EngineClosedError);
  assert.throws(() => t.engine.snapshot(), EngineClosedError);
  assert.throws(() => t.engine.getStats(), EngineClosedError);
  assert.throws(() => t.engine.getCacheInfo(), EngineClosedError);
  await assert.rejects(
    t.engine.get(b("k")),
    /^EngineClosedError: Cannot get: the engine is closed/,
  );
});

Deno.test("close while a scan is open ends the scan with EngineClosedError, not a crash", async () => {
  await using t = await tempEngine();
  for (let i = 0; i < 50; i++) await t.engine.put(key(i), b("v"));
  const scan = t.engine.scanRange(EMPTY, EMPTY, { batchSize: 10 });
  assert.equal((await scan.next()).value?.rowsReturned, 10);
  const snap = t.engine.snapshot();
  await t.engine.close();
  await assert.rejects(scan.next(), EngineClosedError);
  assert.equal(snap.released, true);
  snap.release();
  assert.deepEqual(await scan.return!(), { done: true, value: undefined });
});

Deno.test("close waits for synced writes that are queued or in flight", async () => {
  await using t = await tempEngine({ syncWrites: true });
  const writes = Array.from({ length: 20 }, (_, i) => t.engine.put(key(i), b("v")));
  await t.engine.close();
  await Promise.all(writes); // all acknowledged, none rejected
  const engine = await Engine.open({ dataDir: t.dir });
  try {
    assert.equal(await engine.countRange(EMPTY, EMPTY), 20);
  } finally {
    await engine.close();
  }
});

Deno.test("keys and values: TypeError for non-Uint8Array, RangeError above the documented maxima", async () => {
  await using t = await tempEngine();
  const e = t.engine;
  await assert.rejects(e.get("k" as unknown as Uint8Array), TypeError);
  await assert.rejects(e.put([1, 2] as unknown as Uint8Array, b("v")), /Invalid key: got Array/);
  await assert.rejects(e.put(b("k"), "v" as unknown as Uint8Array), TypeError);
  await assert.rejects(e.getBatch([b("a"), null as unknown as Uint8Array]), TypeError);
  await assert.rejects(e.get(new Uint8Array(KEY_SIZE_MAX_BYTES + 1)), RangeError);
  await e.put(new Uint8Array(KEY_SIZE_MAX_BYTES), b("at the limit"));
  await assert.rejects(e.put(b("k"), new Uint8Array(VALUE_SIZE_MAX_BYTES + 1)), RangeError);
  await assert.rejects(
    e.writeBatch([{ op: "nope" } as unknown as { op: "delete"; key: Uint8Array }]),
    /Invalid op: "nope"; one of put, delete, deleteRange is allowed/,
  );
  assert.throws(() => e.scanRange(EMPTY, EMPTY, { batchSize: 0 }), RangeError);
  assert.throws(() => e.scanRange(EMPTY, EMPTY, { limit: -1 }), RangeError);
  assert.throws(() => e.scanRange("a" as unknown as Uint8Array, EMPTY), TypeError);
});

Deno.test("a snapshot of another engine is refused", async () => {
  await using a = await tempEngine();
  await using other = await tempEngine();
  const snap = other.engine.snapshot();
  await assert.rejects(a.engine.get(b("k"), { snapshot: snap }), /belongs to another engine/);
  snap.release();
});

Deno.test("a data directory held by another process fails with EngineError (RocksDB's LOCK)", async () => {
  await using t = await tempEngine();
  await t.engine.close();
  const script = `
    import { Engine } from ${JSON.stringify(new URL("./engine.ts", import.meta.url).href)};
    const e = await Engine.open({ dataDir: ${JSON.stringify(t.dir)} });
    console.log("ready");
    for await (const _ of Deno.stdin.readable) { /* hold the lock until stdin closes */ }
    await e.close();
  `;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-check", script],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.getReader();
  const first = await reader.read();
  assert.match(new TextDecoder().decode(first.value), /ready/);
  try {
    const error = await Engine.open({ dataDir: t.dir }).catch((e: unknown) => e);
    assert.ok(error instanceof EngineError, String(error));
    assert.equal(error.code, "IO error");
    assert.match(error.message, /^Cannot open engine at ".*": IO error: .*LOCK/);
  } finally {
    await child.stdin.close();
    reader.releaseLock();
    await child.stdout.cancel();
    assert.equal((await child.status).code, 0);
  }
});

Deno.test("the same directory opened twice in one process fails with EngineError", async () => {
  await using t = await tempEngine();
  await assert.rejects(Engine.open({ dataDir: t.dir }), EngineError);
});

Deno.test("an unwritable data directory fails with EngineError, not a crash", async () => {
  const root = await Deno.makeTempDir({ prefix: "spire_bad_dir_" });
  try {
    await Deno.writeTextFile(`${root}/file`, "a regular file");
    // A path under a regular file cannot be created, even by root.
    const error = await Engine.open({ dataDir: `${root}/file/data` }).catch((e: unknown) => e);
    assert.ok(error instanceof EngineError, String(error));
    assert.equal(error.code, "IO error");
    if (Deno.uid() !== 0) {
      await Deno.mkdir(`${root}/ro`, { mode: 0o500 });
      await assert.rejects(Engine.open({ dataDir: `${root}/ro/data` }), EngineError);
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a bad library path fails with LibraryLoadError naming the path and SPIRE_ROCKSDB_LIB", async () => {
  assert.throws(() => openLibrary("/nonexistent/librocksdb.so"), LibraryLoadError);
  assert.throws(() => openLibrary("/nonexistent/librocksdb.so"), /SPIRE_ROCKSDB_LIB/);
  await assert.rejects(
    Engine.open({ dataDir: "/tmp/unused", libraryPath: "/nonexistent/x.so" }),
    /Cannot load librocksdb: \/nonexistent\/x.so/,
  );
  await assert.rejects(Engine.open({ dataDir: "" }), TypeError);
});

Deno.test("a tuning out of range is refused before RocksDB is touched", async () => {
  const dataDir = "/nonexistent/never-created";
  await assert.rejects(
    Engine.open({ dataDir, tuning: { blockCacheSizeBytes: -1 } }),
    /Invalid tuning blockCacheSizeBytes: -1; an integer from 0 to/,
  );
  await assert.rejects(Engine.open({ dataDir, tuning: { maxWriteBufferNumber: 0 } }), RangeError);
  await assert.rejects(
    Engine.open({ dataDir, tuning: { blockCacheSize: 1 << 30 } as Partial<RocksDbTuning> }),
    /^TypeError: Invalid tuning blockCacheSize: not a knob; allowed: blockCacheSizeBytes, /,
  );
  await assert.rejects(Engine.open({ dataDir, tuning: { bloomBitsPerKey: 1.5 } }), RangeError);
  await assert.rejects(
    Engine.open({ dataDir, tuning: { compression: "lz5" as "lz4" } }),
    /Invalid tuning compression: "lz5"; one of none, lz4, zstd is allowed/,
  );
  await assert.rejects(
    Engine.open({ dataDir, tuning: { syncWrites: "yes" as unknown as boolean } }),
    TypeError,
  );
});

Deno.test("a reversed deleteRange is a RangeError: nothing of the batch applies, later writes work", async () => {
  for (const syncWrites of [true, false]) {
    await using t = await tempEngine({ syncWrites });
    await assert.rejects(
      t.engine.writeBatch([
        { op: "put", key: b("p"), value: b("x") },
        { op: "deleteRange", start: b("c"), end: b("a") },
      ]),
      /^RangeError: Invalid deleteRange: end sorts before start/,
    );
    await assert.rejects(
      t.engine.writeBatch([{ op: "deleteRange", start: b("a"), end: EMPTY }]),
      RangeError,
    );
    assert.equal(await t.engine.get(b("p")), undefined, "no op of the refused batch applied");
    await t.engine.put(b("after"), b("ok")); // the engine still takes writes
    await t.engine.writeBatch([{ op: "deleteRange", start: b("a"), end: b("a") }]); // empty range
    assert.deepEqual(await t.engine.get(b("after")), b("ok"));
  }
});

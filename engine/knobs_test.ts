/**
 * Proof that every tuning knob reaches RocksDB, read back from what RocksDB
 * itself wrote or measured: the OPTIONS-* file and info LOG in the data
 * directory, the table properties of a flushed SST (`sst_dump
 * --show_properties`), RocksDB's WAL-sync counter, and the time a flush takes
 * under the rate limiter.
 *
 * Each checker is also run against an engine opened with that one knob left
 * out (`unappliedKnobsForTest`), and must fail there: the custom values below
 * differ from RocksDB's own defaults, so a knob that is not applied shows up
 * as RocksDB's default and the checker rejects it.
 */
import assert from "node:assert/strict";
import type { RocksDbTuning } from "../tuning/types.ts";
import { Engine } from "./engine.ts";
import { key, TEST_TUNING } from "./_test_util.ts";
import { MEMTABLE_BLOOM_RATIO } from "./_options.ts";

const MiB = 1024 * 1024;

/** Values that differ from both Spire's and RocksDB's defaults. */
const CUSTOM: RocksDbTuning = {
  blockCacheSizeBytes: 3 * MiB + 4096,
  bloomBitsPerKey: 20,
  compression: "zstd",
  writeBufferSizeBytes: 3 * MiB,
  maxWriteBufferNumber: 5,
  maxBackgroundJobs: 3,
  rateLimitBytesPerSec: 50 * MiB,
  syncWrites: true,
};

async function withEngine(
  tuning: Partial<RocksDbTuning>,
  unapplied: (keyof RocksDbTuning)[],
  body: (engine: Engine, dir: string) => Promise<void>,
): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "spire_knobs_" });
  const dir = `${root}/data`;
  const engine = await Engine.open({
    dataDir: dir,
    tuning: { ...TEST_TUNING, ...tuning },
    unappliedKnobsForTest: unapplied,
  });
  try {
    await body(engine, dir);
  } finally {
    await engine.close();
    await Deno.remove(root, { recursive: true });
  }
}

/** `key=value` pairs of the newest OPTIONS-* file RocksDB wrote. */
async function optionsFile(dir: string): Promise<Map<string, string>> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) if (e.name.startsWith("OPTIONS-")) names.push(e.name);
  names.sort((a, z) => Number(a.slice(8)) - Number(z.slice(8)));
  const newest = names.at(-1);
  assert.ok(newest !== undefined, "RocksDB wrote an OPTIONS file");
  const map = new Map<string, string>();
  for (const line of (await Deno.readTextFile(`${dir}/${newest}`)).split("\n")) {
    const m = /^\s*([a-z_0-9]+)=(.*)$/.exec(line);
    if (m !== null && !map.has(m[1]!)) map.set(m[1]!, m[2]!);
  }
  return map;
}

async function infoLog(dir: string): Promise<string> {
  return await Deno.readTextFile(`${dir}/LOG`);
}

/** Table properties of every SST file in `dir`, through RocksDB's sst_dump. */
async function sstProperties(dir: string): Promise<string> {
  const out = await new Deno.Command("sst_dump", {
    args: [`--file=${dir}`, "--show_properties"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout);
}

/** Writes `count` keys with incompressible `valueBytes`-byte values and flushes them. */
async function fillAndFlush(engine: Engine, count: number, valueBytes: number): Promise<void> {
  const ops = [];
  for (let i = 0; i < count; i++) {
    const value = new Uint8Array(valueBytes);
    crypto.getRandomValues(value);
    ops.push({ op: "put" as const, key: key(i, 7), value });
    if (ops.length === 500) await engine.writeBatch(ops.splice(0));
  }
  if (ops.length > 0) await engine.writeBatch(ops);
  await engine.flush();
}

const COMPRESSION_NAMES = { none: "kNoCompression", lz4: "kLZ4Compression", zstd: "kZSTD" };
const SST_COMPRESSION = { none: "NoCompression", lz4: "LZ4", zstd: "ZSTD" };

type Checker = (engine: Engine, dir: string, tuning: RocksDbTuning) => Promise<void>;

const CHECKERS: Record<Exclude<keyof RocksDbTuning, "rateLimitBytesPerSec">, Checker> = {
  async compression(engine, dir, t) {
    const opts = await optionsFile(dir);
    assert.equal(opts.get("compression"), COMPRESSION_NAMES[t.compression]);
    assert.equal(opts.get("bottommost_compression"), COMPRESSION_NAMES[t.compression]);
    await fillAndFlush(engine, 200, 100);
    const props = await sstProperties(dir);
    assert.match(
      props,
      new RegExp(`SST file compression algo: ${SST_COMPRESSION[t.compression]}\\b`),
    );
  },
  async writeBufferSizeBytes(_engine, dir, t) {
    assert.equal((await optionsFile(dir)).get("write_buffer_size"), String(t.writeBufferSizeBytes));
    assert.match(
      await infoLog(dir),
      new RegExp(`Options.write_buffer_size: ${t.writeBufferSizeBytes}\\n`),
    );
  },
  async maxWriteBufferNumber(_engine, dir, t) {
    assert.equal(
      (await optionsFile(dir)).get("max_write_buffer_number"),
      String(t.maxWriteBufferNumber),
    );
  },
  async maxBackgroundJobs(_engine, dir, t) {
    assert.equal((await optionsFile(dir)).get("max_background_jobs"), String(t.maxBackgroundJobs));
    assert.match(
      await infoLog(dir),
      new RegExp(`Options.max_background_jobs: ${t.maxBackgroundJobs}\\n`),
    );
  },
  async blockCacheSizeBytes(_engine, dir, t) {
    // The LOG prints the table factory's block cache options, including its capacity.
    assert.match(await infoLog(dir), new RegExp(`\\n\\s+capacity : ${t.blockCacheSizeBytes}\\n`));
  },
  async bloomBitsPerKey(engine, dir, t) {
    const keys = 4000;
    await fillAndFlush(engine, keys, 16);
    const props = await sstProperties(dir);
    const size = Number(/filter block size: (\d+)/.exec(props)?.[1]);
    const options = await optionsFile(dir);
    if (t.bloomBitsPerKey === 0) {
      assert.equal(size, 0, "no filter block at 0 bits per key");
      assert.match(props, /filter policy name: N\/A/);
      assert.equal(options.get("memtable_whole_key_filtering"), "false");
    } else {
      // The memtables' own filter of whole keys comes with it.
      assert.equal(options.get("memtable_whole_key_filtering"), "true");
      assert.equal(Number(options.get("memtable_prefix_bloom_size_ratio")), MEMTABLE_BLOOM_RATIO);
      const expected = (t.bloomBitsPerKey * keys) / 8;
      assert.ok(
        Math.abs(size - expected) < expected * 0.15 + 64,
        `filter block of ${size} bytes for ${t.bloomBitsPerKey} bits x ${keys} keys (~${expected})`,
      );
      assert.equal(options.get("filter_policy"), "bloomfilter");
    }
  },
  async syncWrites(engine, _dir, t) {
    const before = engine.getStats().tickers["rocksdb.wal.synced"] ?? 0;
    for (let i = 0; i < 5; i++) await engine.put(key(i), new Uint8Array(10));
    const synced = (engine.getStats().tickers["rocksdb.wal.synced"] ?? 0) - before;
    if (t.syncWrites) assert.equal(synced, 5, "each acknowledged write synced the WAL");
    else assert.equal(synced, 0);
  },
};

for (const [knob, check] of Object.entries(CHECKERS) as [keyof typeof CHECKERS, Checker][]) {
  Deno.test(`knob ${knob} is applied: read back from RocksDB's own files and counters`, async () => {
    await withEngine(CUSTOM, [], (engine, dir) => check(engine, dir, CUSTOM));
  });
  Deno.test(`knob ${knob} proof fails when the knob is not applied`, async () => {
    await withEngine(CUSTOM, [knob], async (engine, dir) => {
      await assert.rejects(check(engine, dir, CUSTOM), assert.AssertionError);
    });
  });
}

Deno.test("knob proofs hold for the other values: compression none and lz4, bloom 0 and 5, sync off", async () => {
  for (
    const tuning of [
      { ...CUSTOM, compression: "none", bloomBitsPerKey: 0, syncWrites: false },
      { ...CUSTOM, compression: "lz4", bloomBitsPerKey: 5 },
    ] satisfies RocksDbTuning[]
  ) {
    await withEngine(tuning, [], (e, d) => CHECKERS.compression(e, d, tuning));
    await withEngine(tuning, [], (e, d) => CHECKERS.bloomBitsPerKey(e, d, tuning));
    await withEngine(tuning, [], (e, d) => CHECKERS.syncWrites(e, d, tuning));
  }
});

Deno.test("leveled compaction shape, statistics and the info LOG are on", async () => {
  await withEngine(CUSTOM, [], async (engine, dir) => {
    const opts = await optionsFile(dir);
    assert.equal(opts.get("compaction_style"), "kCompactionStyleLevel");
    assert.equal(opts.get("level0_file_num_compaction_trigger"), "4");
    assert.equal(opts.get("max_bytes_for_level_base"), String(256 * MiB));
    assert.equal(opts.get("max_bytes_for_level_multiplier"), "10.000000");
    assert.ok((await infoLog(dir)).length > 1000, "RocksDB writes its info LOG");
    assert.ok(Object.keys(engine.getStats().tickers).length > 50, "statistics are enabled");
  });
});

// Rate limiter ----------------------------------------------------------------------
// A flush of a known number of incompressible bytes under a low limit must take at
// least (bytes - one refill burst) / rate. The only way this fails is by being too
// fast, which is exactly what an unapplied limiter looks like.

const RATE = 1 * MiB;
const FLUSH_BYTES = 1.5 * MiB;

async function flushSeconds(
  unapplied: (keyof RocksDbTuning)[],
): Promise<{ seconds: number; log: string }> {
  let seconds = 0;
  let log = "";
  await withEngine(
    {
      ...CUSTOM,
      compression: "none",
      bloomBitsPerKey: 0,
      syncWrites: false,
      rateLimitBytesPerSec: RATE,
    },
    unapplied,
    async (engine, dir) => {
      const ops = [];
      for (let i = 0; i < FLUSH_BYTES / 1024; i++) {
        const value = new Uint8Array(1024);
        crypto.getRandomValues(value);
        ops.push({ op: "put" as const, key: key(i, 7), value });
      }
      await engine.writeBatch(ops);
      const began = performance.now();
      await engine.flush();
      seconds = (performance.now() - began) / 1000;
      log = await infoLog(dir);
    },
  );
  return { seconds, log };
}

function checkRateLimited(r: { seconds: number; log: string }): void {
  assert.match(r.log, /Options.rate_limiter: 0x[0-9a-f]+/);
  // 100 ms refill period: at most one period's worth may pass before the limiter waits.
  const floor = (FLUSH_BYTES - RATE * 0.1) / RATE * 0.9;
  assert.ok(
    r.seconds >= floor,
    `flush of ${FLUSH_BYTES} bytes took ${r.seconds.toFixed(2)} s, floor ${floor.toFixed(2)} s`,
  );
}

Deno.test("knob rateLimitBytesPerSec is applied: a flush under a 1 MiB/s limit takes its time", async () => {
  checkRateLimited(await flushSeconds([]));
});

Deno.test("knob rateLimitBytesPerSec proof fails when the limiter is not applied", async () => {
  const r = await flushSeconds(["rateLimitBytesPerSec"]);
  assert.throws(() => checkRateLimited(r), assert.AssertionError);
});

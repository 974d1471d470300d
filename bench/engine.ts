/**
 * `spire bench engine`: Spire's Engine against npm:rocksdb (driven from Deno)
 * and RocksDB's own `db_bench`, on the same key and value sizes, counts,
 * compression, bloom bits, block cache, write buffer and sync settings.
 *
 * Each system runs each phase in its own process under `/usr/bin/time`, so
 * peak memory (max RSS) is measured the same way for all three. Phases:
 * fillseq, fillrandom, hot reads (readrandom after a warm-up pass, 100-key
 * scans from random seeks, getBatch/MultiGet of 100 keys), cold readrandom
 * with a block cache far smaller than the data, and synced writes from 1 and
 * from 64 concurrent writers. The whole set repeats `--runs` times; tables
 * show medians.
 *
 * Flags: --num N (keys, default 200000) --reads N (default min(num, 100000)) --runs N (3)
 * --sync-ops N (writes of the single synced writer, 400) --sync64-ops N (per
 * writer, 50) --cache-mb N (hot block cache, 256) --small-cache-kb N (cold,
 * 1024) --systems spire,npm,db_bench.
 *
 * @module
 */

import { Engine } from "../engine/mod.ts";
import { intFlag, parseFlags, UsageError } from "../cli/flags.ts";

const KEY_BYTES = 16;
const VALUE_BYTES = 100;
const WRITE_BUFFER_BYTES = 64 * 1024 * 1024;
const MAX_WRITE_BUFFER_NUMBER = 4;
const BACKGROUND_JOBS = 2;
const BLOOM_BITS = 10;
const RATE_LIMIT_BYTES_PER_SEC = 100 * 1024 * 1024;
const SCAN_KEYS = 100;
const BATCH_KEYS = 100;
const WRITERS = 64; // matches the "synced put, 64 writers" workload name
const PHASE_TIMEOUT_MS = 240_000;

type System = "spire" | "npm" | "db_bench";
const SYSTEMS: readonly System[] = ["spire", "npm", "db_bench"];
const SYSTEM_NAMES: Record<System, string> = {
  spire: "Spire Engine",
  npm: "npm:rocksdb",
  db_bench: "db_bench",
};

type Phase = "fillseq" | "fillrandom" | "hot" | "cold" | "cold16" | "sync1" | "sync64";
const PHASES: readonly Phase[] = [
  "fillseq",
  "fillrandom",
  "hot",
  "cold",
  "cold16",
  "sync1",
  "sync64",
];
const COLD_READERS = 16; // matches the "readrandom (data >> cache), 16 readers" workload name

type WorkloadName =
  | "fillseq"
  | "fillrandom"
  | "readrandom (hot cache)"
  | "scan 100 keys (random seek)"
  | "getBatch 100 keys"
  | "readrandom (data >> cache)"
  | "synced put, 1 writer"
  | "readrandom (data >> cache), 16 readers"
  | "synced put, 64 writers";

/** Workloads as reported; `unit` is what one op is. */
const WORKLOADS: readonly { name: WorkloadName; unit: string }[] = [
  { name: "fillseq", unit: "put" },
  { name: "fillrandom", unit: "put" },
  { name: "readrandom (hot cache)", unit: "get" },
  { name: "scan 100 keys (random seek)", unit: "scan" },
  { name: "getBatch 100 keys", unit: "batch" },
  { name: "readrandom (data >> cache)", unit: "get" },
  { name: "readrandom (data >> cache), 16 readers", unit: "get" },
  { name: "synced put, 1 writer", unit: "put" },
  { name: "synced put, 64 writers", unit: "put" },
];

interface Measure {
  opsPerSec: number;
  p50Us: number;
  p99Us: number;
  peakRssMb: number;
}

interface Config {
  num: number;
  reads: number;
  runs: number;
  syncOps: number;
  sync64Ops: number;
  cacheBytes: number;
  smallCacheBytes: number;
  systems: System[];
}

// --- argument parsing ----------------------------------------------------------------

function parseConfig(args: string[]): Config {
  const command = "spire bench engine";
  const flags = parseFlags(command, args, {
    num: "N",
    reads: "N",
    runs: "N",
    "sync-ops": "N",
    "sync64-ops": "N",
    "cache-mb": "N",
    "small-cache-kb": "N",
    systems: "LIST",
  });
  const int = (name: string, fallback: number, max: number) =>
    intFlag(command, flags, name, fallback, max);
  const num = int("num", 200_000, 50_000_000);
  const config: Config = {
    num,
    reads: int("reads", Math.min(num, 100_000), 50_000_000),
    runs: int("runs", 3, 20),
    syncOps: int("sync-ops", 400, 1_000_000),
    sync64Ops: int("sync64-ops", 50, 100_000),
    cacheBytes: int("cache-mb", 256, 65_536) * 1024 * 1024,
    smallCacheBytes: int("small-cache-kb", 1024, 1_048_576) * 1024,
    systems: [...SYSTEMS],
  };
  const systems = flags.systems;
  if (typeof systems === "string") {
    config.systems = systems.split(",").map((s) => {
      if (!(SYSTEMS as readonly string[]).includes(s)) {
        throw new UsageError(
          `Cannot parse ${command} arguments: --systems "${s}" is not one of ${SYSTEMS.join(", ")}`,
        );
      }
      return s as System;
    });
  }
  return config;
}

// --- shared workload helpers ------------------------------------------------------------

/**
 * Writes key i, its decimal digits zero-padded to 16 ASCII bytes (byte order
 * equals numeric order), into `out` and returns `out`.
 *
 * Every loop makes its keys as it uses them, in a buffer of its own that it
 * reuses, as db_bench does. An array of 200,000 key objects (each a typed
 * array with its own buffer) adds tens of MiB of V8 heap to what the CPU
 * caches hold beside RocksDB's blocks: measured here, it slowed each cached
 * lookup by about 1 µs (4.8 against 3.7 µs for a bare `rocksdb_get` from
 * Deno), a cost of the harness, not of the store.
 */
function writeKey(i: number, out: Uint8Array): Uint8Array {
  let n = i;
  for (let p = KEY_BYTES - 1; p >= 0; p--) {
    out[p] = 48 + n % 10;
    n = Math.floor(n / 10);
  }
  return out;
}

/** A reusable key buffer for {@link writeKey}. */
const keyBuffer = (): Uint8Array => new Uint8Array(KEY_BYTES);

/** Deterministic xorshift32, so every system reads the same key sequence. */
function rng(seed: number): () => number {
  let x = seed | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x1_0000_0000;
  };
}

function randomValue(random: () => number): Uint8Array {
  const v = new Uint8Array(VALUE_BYTES);
  for (let i = 0; i < VALUE_BYTES; i++) v[i] = Math.floor(random() * 256);
  return v;
}

function permutation(n: number, random: () => number): Uint32Array {
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = p[i]!;
    p[i] = p[j]!;
    p[j] = t;
  }
  return p;
}

function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** Runs `ops` operations, timing each; returns ops/s and latency percentiles in µs. */
async function timed(
  ops: number,
  op: (i: number) => Promise<unknown> | unknown,
): Promise<Omit<Measure, "peakRssMb">> {
  const lat = new Float64Array(ops);
  const began = performance.now();
  for (let i = 0; i < ops; i++) {
    const t0 = performance.now();
    await op(i);
    lat[i] = performance.now() - t0;
  }
  const seconds = (performance.now() - began) / 1000;
  lat.sort();
  return {
    opsPerSec: ops / seconds,
    p50Us: percentile(lat, 0.5) * 1000,
    p99Us: percentile(lat, 0.99) * 1000,
  };
}

/** `writers` concurrent loops of `opsEach` operations each. */
async function timedConcurrent(
  writers: number,
  opsEach: number,
  op: (writer: number, i: number) => Promise<unknown>,
): Promise<Omit<Measure, "peakRssMb">> {
  const lat = new Float64Array(writers * opsEach);
  const began = performance.now();
  await Promise.all(Array.from({ length: writers }, async (_, w) => {
    for (let i = 0; i < opsEach; i++) {
      const t0 = performance.now();
      await op(w, i);
      lat[w * opsEach + i] = performance.now() - t0;
    }
  }));
  const seconds = (performance.now() - began) / 1000;
  lat.sort();
  return {
    opsPerSec: lat.length / seconds,
    p50Us: percentile(lat, 0.5) * 1000,
    p99Us: percentile(lat, 0.99) * 1000,
  };
}

// --- the systems, behind one small interface ------------------------------------------------

interface Store {
  put(key: Uint8Array, value: Uint8Array): Promise<void>;
  get(key: Uint8Array): Promise<Uint8Array | undefined>;
  getBatch(keys: Uint8Array[]): Promise<(Uint8Array | undefined)[]>;
  scan(start: Uint8Array, limit: number): Promise<number>;
  close(): Promise<void>;
}

async function openSpire(dir: string, cacheBytes: number, sync: boolean): Promise<Store> {
  const engine = await Engine.open({
    dataDir: dir,
    tuning: {
      compression: "none",
      bloomBitsPerKey: BLOOM_BITS,
      blockCacheSizeBytes: cacheBytes,
      writeBufferSizeBytes: WRITE_BUFFER_BYTES,
      maxWriteBufferNumber: MAX_WRITE_BUFFER_NUMBER,
      maxBackgroundJobs: BACKGROUND_JOBS,
      rateLimitBytesPerSec: RATE_LIMIT_BYTES_PER_SEC,
      syncWrites: sync,
    },
  });
  const end = new Uint8Array();
  return {
    put: (k, v) => engine.put(k, v),
    get: (k) => engine.get(k),
    getBatch: (keys) => engine.getBatch(keys),
    async scan(start, limit) {
      let rows = 0;
      for await (const batch of engine.scanRange(start, end, { limit, batchSize: limit })) {
        rows += batch.rowsReturned;
      }
      return rows;
    },
    close: () => {
      const { missReads } = engine.getStats();
      if (missReads.sync + missReads.worker > 0) {
        // Where the cache misses were read (JavaScript thread or worker thread), for the notes.
        console.error(`spire miss reads: ${JSON.stringify(missReads)}`);
      }
      return engine.close();
    },
  };
}

// npm:rocksdb (leveldown API) is callback based.
type Callback<T> = (error: Error | null | undefined, value?: T) => void;
interface LevelIterator {
  next(cb: (error: Error | null | undefined, key?: unknown, value?: unknown) => void): void;
  end(cb: Callback<void>): void;
}
interface LevelDown {
  open(options: Record<string, unknown>, cb: Callback<void>): void;
  put(
    key: Uint8Array,
    value: Uint8Array,
    options: Record<string, unknown>,
    cb: Callback<void>,
  ): void;
  get(key: Uint8Array, options: Record<string, unknown>, cb: Callback<Uint8Array>): void;
  getMany(
    keys: Uint8Array[],
    options: Record<string, unknown>,
    cb: Callback<(Uint8Array | undefined)[]>,
  ): void;
  iterator(options: Record<string, unknown>): LevelIterator;
  close(cb: Callback<void>): void;
}

function call<T>(f: (cb: Callback<T>) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => f((e, v) => (e ? reject(e) : resolve(v as T))));
}

async function openNpm(dir: string, cacheBytes: number, sync: boolean): Promise<Store> {
  // deno-lint-ignore no-import-prefix -- deno.json (lead-owned) has no import map entry yet
  const { default: rocksdb } = await import("npm:rocksdb@5.2.1");
  const db = (rocksdb as unknown as (location: string) => LevelDown)(dir);
  await call<void>((cb) =>
    db.open({
      createIfMissing: true,
      compression: false,
      cacheSize: cacheBytes,
      writeBufferSize: WRITE_BUFFER_BYTES,
    }, cb)
  );
  const writeOptions = { sync };
  const readOptions = { asBuffer: true, fillCache: true };
  return {
    put: (k, v) => call<void>((cb) => db.put(k, v, writeOptions, cb)),
    get: (k) =>
      call<Uint8Array>((cb) => db.get(k, readOptions, cb)).catch((e: Error & { code?: string }) => {
        if (e.code === "LEVEL_NOT_FOUND" || /NotFound/.test(e.message)) return undefined;
        throw e;
      }),
    getBatch: (keys) => call((cb) => db.getMany(keys, readOptions, cb)),
    async scan(start, limit) {
      const it = db.iterator({ gte: start, limit, keyAsBuffer: true, valueAsBuffer: true });
      let rows = 0;
      for (;;) {
        const key = await new Promise<unknown>((resolve, reject) =>
          it.next((e, k) => (e ? reject(e) : resolve(k)))
        );
        if (key === undefined) break;
        rows++;
      }
      await call<void>((cb) => it.end(cb));
      return rows;
    },
    close: () => call<void>((cb) => db.close(cb)),
  };
}

// --- a phase inside a worker process ---------------------------------------------------------

type PhaseResult = Partial<Record<WorkloadName, Omit<Measure, "peakRssMb">>>;

async function runPhase(
  system: "spire" | "npm",
  phase: Phase,
  dir: string,
  c: Config,
): Promise<PhaseResult> {
  const open = system === "spire" ? openSpire : openNpm;
  const random = rng(phase.length * 7919 + 17);
  const out: PhaseResult = {};
  const key = keyBuffer(); // one per loop; a loop awaits each operation before the next
  if (phase === "fillseq" || phase === "fillrandom") {
    const store = await open(dir, c.cacheBytes, false);
    const order = phase === "fillseq" ? undefined : permutation(c.num, random);
    const values = Array.from({ length: 1024 }, () => randomValue(random));
    out[phase] = await timed(
      c.num,
      (i) => store.put(writeKey(order ? order[i]! : i, key), values[i & 1023]!),
    );
    await store.close();
  } else if (phase === "hot") {
    const store = await open(dir, c.cacheBytes, false);
    const pick = (out: Uint8Array) => writeKey(Math.floor(random() * c.num), out);
    await timed(c.reads, () => store.get(pick(key))); // warm-up pass fills the block cache
    out["readrandom (hot cache)"] = await timed(c.reads, async () => {
      if ((await store.get(pick(key))) === undefined) {
        throw new Error("bench: a written key is missing");
      }
    });
    const scans = Math.max(1, Math.floor(c.reads / 20));
    out["scan 100 keys (random seek)"] = await timed(
      scans,
      () => store.scan(writeKey(Math.floor(random() * (c.num - SCAN_KEYS)), key), SCAN_KEYS),
    );
    const batches = Math.max(1, Math.floor(c.reads / BATCH_KEYS));
    const batchKeys = Array.from({ length: BATCH_KEYS }, keyBuffer);
    out["getBatch 100 keys"] = await timed(
      batches,
      () => store.getBatch(batchKeys.map(pick)),
    );
    await store.close();
  } else if (phase === "cold") {
    const store = await open(dir, c.smallCacheBytes, false);
    out["readrandom (data >> cache)"] = await timed(c.reads, async () => {
      if ((await store.get(writeKey(Math.floor(random() * c.num), key))) === undefined) {
        throw new Error("bench: a written key is missing");
      }
    });
    await store.close();
  } else if (phase === "cold16") {
    const store = await open(dir, c.smallCacheBytes, false);
    const readerKeys = Array.from({ length: COLD_READERS }, keyBuffer);
    out["readrandom (data >> cache), 16 readers"] = await timedConcurrent(
      COLD_READERS,
      Math.ceil(c.reads / COLD_READERS),
      async (r) => {
        const k = writeKey(Math.floor(random() * c.num), readerKeys[r]!);
        if ((await store.get(k)) === undefined) {
          throw new Error("bench: a written key is missing");
        }
      },
    );
    await store.close();
  } else if (phase === "sync1") {
    const store = await open(dir, c.cacheBytes, true);
    const value = randomValue(random);
    out["synced put, 1 writer"] = await timed(
      c.syncOps,
      (i) => store.put(writeKey(i % c.num, key), value),
    );
    await store.close();
  } else {
    const store = await open(dir, c.cacheBytes, true);
    const value = randomValue(random);
    const writerKeys = Array.from({ length: WRITERS }, keyBuffer);
    out["synced put, 64 writers"] = await timedConcurrent(
      WRITERS,
      c.sync64Ops,
      (w, i) => store.put(writeKey((w * c.sync64Ops + i) % c.num, writerKeys[w]!), value),
    );
    await store.close();
  }
  return out;
}

// --- db_bench ----------------------------------------------------------------------------------

function dbBenchArgs(phase: Phase, dir: string, c: Config): string[] {
  const common = [
    `--db=${dir}`,
    `--num=${c.num}`,
    `--key_size=${KEY_BYTES}`,
    `--value_size=${VALUE_BYTES}`,
    "--compression_type=none",
    "--compression_ratio=1",
    `--bloom_bits=${BLOOM_BITS}`,
    `--write_buffer_size=${WRITE_BUFFER_BYTES}`,
    `--max_write_buffer_number=${MAX_WRITE_BUFFER_NUMBER}`,
    `--max_background_jobs=${BACKGROUND_JOBS}`,
    `--rate_limiter_bytes_per_sec=${RATE_LIMIT_BYTES_PER_SEC}`,
    "--histogram=1",
    "--statistics=1", // Spire always runs with statistics on (an operator needs them)
    "--threads=1",
  ];
  switch (phase) {
    case "fillseq":
    case "fillrandom":
      return [
        ...common,
        `--benchmarks=${phase}`,
        "--use_existing_db=0",
        `--cache_size=${c.cacheBytes}`,
      ];
    case "hot":
      // readrandom twice: the first pass warms the cache (as the JS systems do).
      return [
        ...common,
        "--use_existing_db=1",
        `--cache_size=${c.cacheBytes}`,
        `--reads=${c.reads}`,
        "--benchmarks=readrandom,readrandom,seekrandom,multireadrandom",
        `--seek_nexts=${SCAN_KEYS - 1}`,
        `--batch_size=${BATCH_KEYS}`,
      ];
    case "cold":
      return [
        ...common,
        "--use_existing_db=1",
        `--cache_size=${c.smallCacheBytes}`,
        `--reads=${c.reads}`,
        "--benchmarks=readrandom",
      ];
    case "cold16":
      return [
        ...common.filter((a) => a !== "--threads=1"),
        "--use_existing_db=1",
        `--cache_size=${c.smallCacheBytes}`,
        `--reads=${Math.ceil(c.reads / COLD_READERS)}`,
        `--threads=${COLD_READERS}`,
        "--benchmarks=readrandom",
      ];
    case "sync1":
      return [
        ...common,
        "--benchmarks=fillrandom",
        "--sync=1",
        `--num=${c.syncOps}`,
        "--use_existing_db=0",
      ];
    case "sync64":
      return [
        ...common.filter((a) => a !== "--threads=1"),
        "--benchmarks=fillrandom",
        "--sync=1",
        `--num=${c.sync64Ops}`,
        `--threads=${WRITERS}`,
        "--use_existing_db=0",
      ];
  }
}

/** Parses `name : X micros/op Y ops/sec` lines, each followed by its histogram percentiles. */
function parseDbBench(phase: Phase, text: string, c: Config): PhaseResult {
  const runs: { name: string; opsPerSec: number; p50Us: number; p99Us: number }[] = [];
  for (const line of text.split("\n")) {
    const head = /^(\w+)\s*:\s*[\d.]+ micros\/op (\d+) ops\/sec/.exec(line);
    if (head !== null) {
      runs.push({ name: head[1]!, opsPerSec: Number(head[2]), p50Us: NaN, p99Us: NaN });
    }
    const pct = /Percentiles: P50: ([\d.]+) P75: [\d.]+ P99: ([\d.]+)/.exec(line);
    const last = runs.at(-1);
    if (pct !== null && last !== undefined && Number.isNaN(last.p50Us)) {
      last.p50Us = Number(pct[1]);
      last.p99Us = Number(pct[2]);
    }
  }
  const get = (name: string, index = 0) => {
    const found = runs.filter((r) => r.name === name)[index];
    if (found === undefined) {
      throw new Error(`Cannot parse db_bench output: no ${name} line in\n${text}`);
    }
    return { opsPerSec: found.opsPerSec, p50Us: found.p50Us, p99Us: found.p99Us };
  };
  void c;
  switch (phase) {
    case "fillseq":
      return { fillseq: get("fillseq") };
    case "fillrandom":
      return { fillrandom: get("fillrandom") };
    case "hot": {
      const multi = get("multireadrandom"); // ops/sec counts keys; latency is per batch
      return {
        "readrandom (hot cache)": get("readrandom", 1),
        "scan 100 keys (random seek)": get("seekrandom"),
        "getBatch 100 keys": { ...multi, opsPerSec: multi.opsPerSec / BATCH_KEYS },
      };
    }
    case "cold":
      return { "readrandom (data >> cache)": get("readrandom") };
    case "cold16":
      return { "readrandom (data >> cache), 16 readers": get("readrandom") };
    case "sync1":
      return { "synced put, 1 writer": get("fillrandom") };
    case "sync64":
      return { ["synced put, 64 writers"]: get("fillrandom") };
  }
}

// --- orchestration -------------------------------------------------------------------------------

async function runProcess(
  cmd: string[],
  cwd: string,
): Promise<{ stdout: string; peakRssMb: number }> {
  const child = new Deno.Command("/usr/bin/time", {
    args: ["-f", "SPIRE_MAXRSS_KB %M", ...cmd],
    cwd,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), PHASE_TIMEOUT_MS);
  try {
    const out = await child.output();
    const stdout = new TextDecoder().decode(out.stdout);
    const stderr = new TextDecoder().decode(out.stderr);
    if (!out.success) {
      throw new Error(`Cannot run ${cmd.slice(0, 6).join(" ")}: exit ${out.code}\n${stderr}`);
    }
    const kb = Number(/SPIRE_MAXRSS_KB (\d+)/.exec(stderr)?.[1] ?? NaN);
    return { stdout: stdout + stderr, peakRssMb: kb / 1024 };
  } finally {
    clearTimeout(timer);
  }
}

async function runSystemPhase(
  system: System,
  phase: Phase,
  dirs: Record<string, string>,
  c: Config,
  configArgs: string[],
): Promise<Partial<Record<WorkloadName, Measure>>> {
  const dir = phase === "hot" || phase === "cold" || phase === "cold16"
    ? dirs.fillseq!
    : dirs[phase]!;
  const root = new URL("..", import.meta.url).pathname;
  let result: PhaseResult;
  let peakRssMb: number;
  if (system === "db_bench") {
    const r = await runProcess(["db_bench", ...dbBenchArgs(phase, dir, c)], root);
    result = parseDbBench(phase, r.stdout, c);
    peakRssMb = r.peakRssMb;
  } else {
    const r = await runProcess([
      Deno.execPath(),
      "run",
      "-A",
      new URL(import.meta.url).pathname,
      "--worker",
      `${system}:${phase}:${dir}`,
      ...configArgs,
    ], root);
    const line = r.stdout.split("\n").find((l) => l.startsWith("SPIRE_RESULT "));
    if (line === undefined) throw new Error(`Cannot read ${system} ${phase} result:\n${r.stdout}`);
    result = JSON.parse(line.slice("SPIRE_RESULT ".length));
    peakRssMb = r.peakRssMb;
    for (const note of r.stdout.split("\n").filter((l) => l.startsWith("spire miss reads"))) {
      console.error(`${phase}: ${note}`);
    }
  }
  const out: Partial<Record<WorkloadName, Measure>> = {};
  for (const [name, m] of Object.entries(result) as [WorkloadName, Omit<Measure, "peakRssMb">][]) {
    out[name] = { ...m, peakRssMb };
  }
  return out;
}

function median(values: number[]): number {
  const s = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function fmt(n: number, digits = 0): string {
  if (Number.isNaN(n)) return "n/a";
  return n.toLocaleString("en-US", {
    maximumFractionDigits: digits,
    minimumFractionDigits: digits,
  });
}

function report(
  c: Config,
  argv: string[],
  results: Map<System, Map<WorkloadName, Measure[]>>,
  seconds: number,
  load: string,
): string {
  const med = (s: System, w: WorkloadName, f: keyof Measure) =>
    median((results.get(s)?.get(w) ?? []).map((m) => m[f]));
  /** Median over runs of the per-run ratio a/b (each run's figures come from the same minutes). */
  const pairedRatio = (a: System, wa: WorkloadName, b: System, wb: WorkloadName) => {
    const xs = results.get(a)?.get(wa) ?? [];
    const ys = results.get(b)?.get(wb) ?? [];
    return median(xs.map((x, i) => x.opsPerSec / (ys[i]?.opsPerSec ?? NaN)));
  };
  const lines: string[] = [];
  lines.push(`## Engine: Spire vs npm:rocksdb vs db_bench`);
  lines.push("");
  lines.push("```");
  lines.push(`./spire bench engine ${argv.join(" ")}`.trimEnd());
  lines.push("```");
  lines.push("");
  lines.push(
    `${c.num} keys of ${KEY_BYTES} B, values of ${VALUE_BYTES} B (random, incompressible), ` +
      `compression none, bloom ${BLOOM_BITS} bits/key, write buffer ${
        WRITE_BUFFER_BYTES / 1048576
      } MiB, ` +
      `block cache ${c.cacheBytes / 1048576} MiB (cold reads: ${c.smallCacheBytes / 1024} KiB), ` +
      `${c.reads} reads, synced writes: ${c.syncOps} by 1 writer, ${c.sync64Ops} x ${WRITERS} writers. ` +
      `Medians of ${c.runs} runs; every system ran each phase in its own process ` +
      `(peak RSS from /usr/bin/time). Machine: ${navigator.hardwareConcurrency} CPUs. ` +
      `Total ${fmt(seconds)} s; ${load}. librocksdb/db_bench 7.8.3; npm:rocksdb 5.2.1 ` +
      `(its own bundled RocksDB). Ratios are medians of per-run ratios; the systems took turns ` +
      `phase by phase in rotating order.`,
  );
  lines.push("");
  const has = (s: System) => c.systems.includes(s);
  const header = ["workload", "op"];
  for (const s of c.systems) header.push(`${SYSTEM_NAMES[s]} ops/s`);
  if (has("spire") && has("db_bench")) header.push("Spire / db_bench");
  if (has("spire") && has("npm")) header.push("Spire / npm");
  lines.push(`| ${header.join(" | ")} |`);
  lines.push(`|${header.map((_, i) => (i < 2 ? "---" : "---:")).join("|")}|`);
  for (const w of WORKLOADS) {
    const row = [w.name, w.unit];
    for (const s of c.systems) row.push(fmt(med(s, w.name, "opsPerSec")));
    if (has("spire") && has("db_bench")) {
      row.push(fmt(pairedRatio("spire", w.name, "db_bench", w.name), 2));
    }
    if (has("spire") && has("npm")) {
      row.push(fmt(pairedRatio("spire", w.name, "npm", w.name), 2));
    }
    lines.push(`| ${row.join(" | ")} |`);
  }
  lines.push("");
  const lh = ["workload"];
  for (const s of c.systems) lh.push(`${SYSTEM_NAMES[s]} p50 / p99 µs`);
  for (const s of c.systems) lh.push(`${SYSTEM_NAMES[s]} peak RSS MiB`);
  lines.push(`| ${lh.join(" | ")} |`);
  lines.push(`|${lh.map((_, i) => (i < 1 ? "---" : "---:")).join("|")}|`);
  for (const w of WORKLOADS) {
    const row: string[] = [w.name];
    for (const s of c.systems) {
      row.push(`${fmt(med(s, w.name, "p50Us"), 1)} / ${fmt(med(s, w.name, "p99Us"), 1)}`);
    }
    for (const s of c.systems) row.push(fmt(med(s, w.name, "peakRssMb")));
    lines.push(`| ${lh.length ? row.join(" | ") : ""} |`);
  }
  lines.push("");
  if (has("spire")) {
    const sp = (w: WorkloadName) => med("spire", w, "opsPerSec");
    const goals: string[] = [];
    const scanKeys = sp("scan 100 keys (random seek)") * SCAN_KEYS;
    goals.push(
      `- scans: ${fmt(scanKeys)} keys/s (goal >= 1,000,000): ${scanKeys >= 1e6 ? "met" : "MISSED"}`,
    );
    const ratio = pairedRatio("spire", "synced put, 64 writers", "spire", "synced put, 1 writer");
    goals.push(
      `- ${WRITERS} synced writers / 1: ${fmt(ratio, 1)}x (goal >= 10x): ${
        ratio >= 10 ? "met" : "MISSED"
      }`,
    );
    for (
      const w of [
        "fillseq",
        "fillrandom",
        "readrandom (hot cache)",
        "readrandom (data >> cache)",
      ] as const
    ) {
      if (has("db_bench")) {
        const r = pairedRatio("spire", w, "db_bench", w);
        goals.push(
          `- ${w}: ${fmt(r * 100)}% of db_bench (goal >= 50%): ${r >= 0.5 ? "met" : "MISSED"}`,
        );
      }
      if (has("npm")) {
        const r = pairedRatio("spire", w, "npm", w);
        goals.push(`- ${w}: ${fmt(r, 2)}x npm:rocksdb (goal >= 3x): ${r >= 3 ? "met" : "MISSED"}`);
      }
    }
    lines.push("Goals (Spire Engine, medians):");
    lines.push("");
    lines.push(...goals);
  }
  return lines.join("\n");
}

async function orchestrate(args: string[]): Promise<number> {
  const c = parseConfig(args);
  const began = performance.now();
  const loadBefore = await loadAverage();
  const results = new Map<System, Map<WorkloadName, Measure[]>>();
  const root = await Deno.makeTempDir({ prefix: "spire_bench_engine_" });
  try {
    for (let run = 1; run <= c.runs; run++) {
      const dirs = new Map<System, Record<string, string>>();
      for (const system of c.systems) {
        const base = `${root}/${system}_${run}`;
        await Deno.mkdir(base, { recursive: true });
        const d: Record<string, string> = {};
        for (const p of PHASES) d[p] = `${base}/${p}`;
        dirs.set(system, d);
      }
      // The systems take turns phase by phase, in a rotating order, so that noise
      // from a shared machine falls on all of them alike; ratios are paired per run.
      for (const [pi, phase] of PHASES.entries()) {
        const order = c.systems.map((_, i) => c.systems[(i + run + pi) % c.systems.length]!);
        for (const system of order) {
          const measured = await runSystemPhase(system, phase, dirs.get(system)!, c, args);
          const perSystem = results.get(system) ?? new Map<WorkloadName, Measure[]>();
          results.set(system, perSystem);
          for (const [name, m] of Object.entries(measured) as [WorkloadName, Measure][]) {
            const list = perSystem.get(name) ?? [];
            list[run - 1] = m;
            perSystem.set(name, list);
            console.error(
              `run ${run} ${system.padEnd(8)} ${name.padEnd(40)} ${
                fmt(m.opsPerSec).padStart(11)
              } ops/s ` +
                `p50 ${fmt(m.p50Us, 1)} µs p99 ${fmt(m.p99Us, 1)} µs rss ${fmt(m.peakRssMb)} MiB`,
            );
          }
        }
      }
      for (const system of c.systems) {
        await Deno.remove(`${root}/${system}_${run}`, { recursive: true });
      }
    }
  } finally {
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
  const load = `load average ${loadBefore} before, ${await loadAverage()} after`;
  console.log(report(c, args, results, (performance.now() - began) / 1000, load));
  return 0;
}

async function loadAverage(): Promise<string> {
  try {
    return (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" ");
  } catch {
    return "unknown";
  }
}

/**
 * Entry point of `spire bench engine`.
 * @param args command-line flags (see the module documentation)
 * @returns the exit code
 */
export async function main(args: string[]): Promise<number> {
  const w = args.indexOf("--worker");
  try {
    if (w === -1) return await orchestrate(args);
    const [system, phase, ...dirParts] = (args[w + 1] ?? "").split(":");
    const rest = args.filter((_, i) => i !== w && i !== w + 1);
    const result = await runPhase(
      system as "spire" | "npm",
      phase as Phase,
      dirParts.join(":"),
      parseConfig(rest),
    );
    console.log(`SPIRE_RESULT ${JSON.stringify(result)}`);
    return 0;
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));

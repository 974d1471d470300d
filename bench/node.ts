/**
 * `spire bench node`: redis-benchmark against a Spire node and against
 * redis-server on this machine, in the same run: SET and GET, 50 clients,
 * 100-byte values, pipeline 1 and 16. redis-server runs twice: without
 * persistence (`appendonly no`, no RDB saves) and durable (`appendonly yes`,
 * `appendfsync always`), because every Spire write is fsynced before it is
 * acknowledged. The three servers run side by side and take turns run by
 * run, so each ratio compares neighbouring runs. Prints a Markdown section
 * for bench/RESULTS.md.
 *
 * Goals (issue 5): GET >= 50% of redis-server's requests/s; durable SET >=
 * redis-server with appendfsync always.
 *
 * Beside them, RocksDB alone: db_bench fillrandom with the node's tuning, one
 * writer, the same key and value sizes, WAL written but not fsynced, and as many
 * puts as the node's SETs (so that the memtable is as full). It is the most puts
 * per second the node's engine takes on this machine without any request, Raft
 * or fsync work around them: a durable-SET goal above it is out of reach of any
 * node built on this engine here.
 *
 * `--config FILE` starts Spire with that YAML config (bench/configs/ has small split thresholds,
 * so that the keyspace lies in several regions) and `--warmup N` sends N SETs to each server
 * before the timed runs; the report names Spire's region count, its config file and its tuning.
 *
 * `spire bench node --crash N [--config FILE]` runs the long version of the crash test
 * instead: N kill -9 of a node during concurrent writes, each restart checked (with
 * bench/configs/regions_many.yaml, over dozens of regions sharing the Raft log journal).
 *
 * @module
 */

import { crashLoop } from "../node/testing.ts";
import { PowercutFs } from "../node/powercut_fs.ts";
import { RespClient } from "../node/resp/client.ts";
import { startRedisServer } from "../node/commands/testing.ts";
import { MEMTABLE_BLOOM_RATIO } from "../engine/_options.ts";
import {
  formatSize,
  KNOBS,
  PROFILE_VARIABLE,
  type ResolvedTuning,
  resolveTuning,
  type RocksDbTuning,
} from "../tuning/mod.ts";

/** One redis-benchmark result row. */
export interface BenchRow {
  /** Test name as redis-benchmark prints it ("SET", "GET"). */
  test: string;
  /** Requests per second. */
  rps: number;
  /** Average latency in milliseconds. */
  avgMs: number;
  /** 50th percentile latency in milliseconds. */
  p50Ms: number;
  /** 99th percentile latency in milliseconds. */
  p99Ms: number;
  /**
   * The server's CPU time (user + system, all threads, from /proc) per request
   * during the run, in microseconds; absent where /proc cannot be read.
   */
  cpuUsPerRequest?: number;
  /**
   * The same for the server's main thread alone (`/proc/<pid>/task/<pid>/stat`): Spire's event
   * loop, redis-server's command loop. Near 1e6 / requests-per-second, the thread is saturated.
   */
  mainThreadUsPerRequest?: number;
}

/** Linux reports process times in USER_HZ ticks, 100 per second on every Linux ABI. */
const USER_HZ = 100;

/**
 * The CPU time of a process from the text of `/proc/<pid>/stat`.
 *
 * @param text the file's contents
 * @returns user + system time of all its threads, in seconds
 * @throws {Error} when the text is not a stat line
 */
export function parseProcStatCpuSeconds(text: string): number {
  // The command name (field 2) is in parentheses and may hold spaces and parentheses.
  const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isInteger(utime) || !Number.isInteger(stime)) {
    throw new Error(`Cannot parse /proc stat: "${text.slice(0, 80)}" has no utime and stime`);
  }
  return (utime + stime) / USER_HZ;
}

async function loadAverage(): Promise<string> {
  try {
    return (await Deno.readTextFile("/proc/loadavg")).split(" ")[0] ?? "n/a";
  } catch {
    return "n/a";
  }
}

/** CPU seconds of a process (all threads) and of its main thread; undefined where unreadable. */
async function cpuSeconds(
  pid: number,
): Promise<{ all: number | undefined; main: number | undefined }> {
  const read = async (path: string) => {
    try {
      return parseProcStatCpuSeconds(await Deno.readTextFile(path));
    } catch {
      return undefined;
    }
  };
  return {
    all: await read(`/proc/${pid}/stat`),
    main: await read(`/proc/${pid}/task/${pid}/stat`),
  };
}

/** Options of one bench run, parsed from the command line. */
export interface NodeBenchOptions {
  /** Requests per test (redis-benchmark -n). */
  requests: number;
  /** Parallel connections (-c). */
  clients: number;
  /** Value size in bytes (-d). */
  valueBytes: number;
  /** Random keyspace size (-r). */
  keyspace: number;
  /** Pipeline depths to run (-P). */
  pipelines: number[];
  /** Runs per configuration; the median requests/s run is reported. */
  repeats: number;
  /** Write the Markdown section to this file as well as stdout. */
  out: string | undefined;
  /** Instead of the benchmark: a crash soak with this many kill -9 (0: off). */
  crashKills: number;
  /** In the crash soak, a power cut of the node's disk after each kill (powercut_fs). */
  powerCut: boolean;
  /** With powerCut: partial cuts, their choices drawn from this seed (see PowercutOptions). */
  cutSeed: number | undefined;
  /** Spire's YAML config file (`spire start --config`), e.g. small split thresholds. */
  config: string | undefined;
  /** SETs (-P 16) sent to each server before the timed runs, e.g. to split Spire's regions. */
  warmup: number;
}

const USAGE = "usage: spire bench node [--requests N] [--clients N] [--value-bytes N] " +
  "[--keyspace N] [--pipelines 1,16] [--repeats N] [--config FILE] [--warmup N] [--out FILE] " +
  "| --crash KILLS [--power-cut] [--cut-seed N] [--config FILE]";

/**
 * Parses the bench's flags.
 *
 * @param args arguments after `bench node`
 * @returns the options
 * @throws {RangeError} on an unknown flag or a bad number
 */
export function parseNodeBenchArgs(args: string[]): NodeBenchOptions {
  const opts: NodeBenchOptions = {
    requests: 100_000,
    clients: 50,
    valueBytes: 100,
    keyspace: 100_000,
    pipelines: [1, 16],
    repeats: 1,
    out: undefined,
    crashKills: 0,
    powerCut: false,
    cutSeed: undefined,
    config: undefined,
    warmup: 0,
  };
  const int = (flag: string, v: string | undefined, max: number): number => {
    const n = Number(v);
    if (v === undefined || !Number.isInteger(n) || n < 1 || n > max) {
      throw new RangeError(
        `Cannot parse ${flag}: "${v ?? ""}" is not an integer from 1 to ${max}\n${USAGE}`,
      );
    }
    return n;
  };
  for (let i = 0; i < args.length; i++) {
    const flag = args[i];
    const v = args[i + 1];
    i++;
    switch (flag) {
      case "--requests":
        opts.requests = int(flag, v, 100_000_000);
        break;
      case "--clients":
        opts.clients = int(flag, v, 10_000);
        break;
      case "--value-bytes":
        opts.valueBytes = int(flag, v, 1 << 20);
        break;
      case "--keyspace":
        opts.keyspace = int(flag, v, 1_000_000_000);
        break;
      case "--repeats":
        opts.repeats = int(flag, v, 20);
        break;
      case "--pipelines":
        opts.pipelines = (v ?? "").split(",").map((p) => int(flag, p, 1000));
        break;
      case "--crash":
        opts.crashKills = int(flag, v, 1_000_000);
        break;
      case "--power-cut":
        opts.powerCut = true;
        i--; // a switch: takes no value
        break;
      case "--cut-seed":
        opts.cutSeed = int(flag, v, 2 ** 31);
        opts.powerCut = true;
        break;
      case "--out":
        if (v === undefined) throw new RangeError(`Cannot parse --out: missing file\n${USAGE}`);
        opts.out = v;
        break;
      case "--config":
        if (v === undefined) throw new RangeError(`Cannot parse --config: missing file\n${USAGE}`);
        opts.config = v;
        break;
      case "--warmup":
        opts.warmup = int(flag, v, 1_000_000_000);
        break;
      default:
        throw new RangeError(`Cannot parse arguments: unknown flag "${flag}"\n${USAGE}`);
    }
  }
  return opts;
}

/**
 * Parses redis-benchmark's `--csv` output.
 *
 * @param text the standard output of `redis-benchmark --csv`
 * @returns one row per test
 * @throws {Error} when a row cannot be read
 */
export function parseBenchmarkCsv(text: string): BenchRow[] {
  const rows: BenchRow[] = [];
  const lines = text.split("\n").map((l) => l.trim()).filter((l) => l.startsWith('"'));
  const header = lines.shift()?.split(",").map((c) => c.replaceAll('"', ""));
  if (header === undefined) throw new Error(`Cannot parse redis-benchmark output: no header`);
  const col = (name: string): number => {
    const i = header.indexOf(name);
    if (i < 0) throw new Error(`Cannot parse redis-benchmark output: no "${name}" column`);
    return i;
  };
  const [iTest, iRps, iAvg, iP50, iP99] = [
    col("test"),
    col("rps"),
    col("avg_latency_ms"),
    col("p50_latency_ms"),
    col("p99_latency_ms"),
  ];
  for (const line of lines) {
    const cells = line.split(",").map((c) => c.replaceAll('"', ""));
    const num = (i: number): number => {
      const n = Number(cells[i]);
      if (!Number.isFinite(n)) throw new Error(`Cannot parse redis-benchmark row: ${line}`);
      return n;
    };
    rows.push({
      test: cells[iTest] ?? "",
      rps: num(iRps),
      avgMs: num(iAvg),
      p50Ms: num(iP50),
      p99Ms: num(iP99),
    });
  }
  return rows;
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Waits until a RESP server on `port` answers PING, or throws after `timeoutMs`. */
async function waitForPing(port: number, timeoutMs: number, password?: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const out = await new Deno.Command("redis-cli", {
        args: [
          "-p",
          String(port),
          ...(password ? ["-a", password, "--no-auth-warning"] : []),
          "PING",
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout).trim();
      if (text === "PONG") return;
      lastError = new Error(text || new TextDecoder().decode(out.stderr));
    } catch (e) {
      lastError = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`Cannot reach server on port ${port}: ${String(lastError)}`);
}

interface Server {
  name: string;
  port: number;
  pid: number;
  stop(): Promise<void>;
}

async function startRedis(name: string, dir: string, extra: string[]): Promise<Server> {
  await Deno.mkdir(dir, { recursive: true });
  const redis = await startRedisServer(["--dir", dir, ...extra]); // later options win
  return { name, ...redis };
}

async function startSpire(dir: string, config: string | undefined): Promise<Server> {
  const port = freePort();
  const adminPort = freePort();
  const entry = new URL("../cli/start.ts", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      entry,
      "--data-dir",
      dir,
      "--port",
      String(port),
      "--admin-port",
      String(adminPort),
      ...(config === undefined ? [] : ["--config", config]),
    ],
    stdout: "null",
    stderr: "inherit",
    env: { SPIRE_PASSWORD: "" },
  }).spawn();
  await waitForPing(port, 60_000);
  return {
    name: "spire",
    port,
    pid: child.pid,
    async stop() {
      child.kill("SIGTERM");
      const status = await child.status;
      if (status.code !== 0) console.error(`spire exited with code ${status.code}`);
    },
  };
}

/** The bare server's name in the report. */
const BARE = "bare Deno server";

/** The runtime's network path alone (bench/_bare_resp_server.ts). */
async function startBare(): Promise<Server> {
  const port = freePort();
  const entry = new URL("./_bare_resp_server.ts", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", entry, String(port)],
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  await waitForPing(port, 30_000);
  return {
    name: BARE,
    port,
    pid: child.pid,
    async stop() {
      child.kill("SIGTERM");
      await child.status;
    },
  };
}

async function runBenchmark(
  server: Server,
  test: "set" | "get" | "ping_mbulk",
  pipeline: number,
  opts: NodeBenchOptions,
): Promise<BenchRow> {
  const port = server.port;
  const cpuBefore = await cpuSeconds(server.pid);
  const out = await new Deno.Command("redis-benchmark", {
    args: [
      "-p",
      String(port),
      "-t",
      test,
      "-n",
      String(opts.requests),
      "-c",
      String(opts.clients),
      "-d",
      String(opts.valueBytes),
      "-r",
      String(opts.keyspace),
      "-P",
      String(pipeline),
      "--csv",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const row = parseBenchmarkCsv(text).find((r) => r.test === test.toUpperCase());
  if (!out.success || row === undefined) {
    throw new Error(
      `redis-benchmark failed on port ${port} (${test}, -P ${pipeline}): ` +
        new TextDecoder().decode(out.stderr) + text,
    );
  }
  const cpuAfter = await cpuSeconds(server.pid);
  if (cpuBefore.all !== undefined && cpuAfter.all !== undefined) {
    row.cpuUsPerRequest = (cpuAfter.all - cpuBefore.all) * 1e6 / opts.requests;
  }
  if (cpuBefore.main !== undefined && cpuAfter.main !== undefined) {
    row.mainThreadUsPerRequest = (cpuAfter.main - cpuBefore.main) * 1e6 / opts.requests;
  }
  return row;
}

/** redis-benchmark's keys (`key:` and 12 digits) are 16 bytes. */
const BENCH_KEY_BYTES = 16;
/** Puts per db_bench write batch: a pipeline of 16 SETs from one client. */
const CEILING_BATCH = 16;

/** One db_bench fillrandom run. */
export interface CeilingRow {
  /** Puts per second. */
  opsPerSec: number;
  /** Microseconds per put. */
  usPerOp: number;
  /** Puts in the run (see {@link ceilingWrites}). */
  writes?: number;
}

/**
 * The puts of the engine-alone run: as many as the node takes in SETs during the bench (the
 * warm-up and every timed SET run), so that RocksDB's memtable fills as far as the node's does.
 * A put's cost grows with the memtable (its skiplist walk misses the cache more): on this
 * machine 2.6 µs over the first 200,000 puts, 4.0-4.4 µs over 3,000,000.
 *
 * @param opts the bench's options
 * @returns the number of puts
 */
export function ceilingWrites(opts: NodeBenchOptions): number {
  return opts.warmup + opts.repeats * opts.pipelines.length * opts.requests;
}

/**
 * db_bench's arguments for a fillrandom run with the node's tuning.
 *
 * @param tuning the tuning the node runs with
 * @param opts the bench's options (value size, keyspace, requests)
 * @param dir a fresh database directory
 * @returns the arguments
 */
export function ceilingArgs(tuning: RocksDbTuning, opts: NodeBenchOptions, dir: string): string[] {
  return [
    "--benchmarks=fillrandom",
    `--db=${dir}`,
    "--use_existing_db=0",
    `--num=${opts.keyspace}`,
    `--writes=${ceilingWrites(opts)}`,
    `--key_size=${BENCH_KEY_BYTES}`,
    `--value_size=${opts.valueBytes}`,
    "--compression_ratio=1",
    `--batch_size=${CEILING_BATCH}`,
    "--threads=1",
    "--sync=0",
    "--disable_wal=0",
    "--statistics=1",
    `--compression_type=${tuning.compression}`,
    `--bloom_bits=${tuning.bloomBitsPerKey}`,
    `--cache_size=${tuning.blockCacheSizeBytes}`,
    `--write_buffer_size=${tuning.writeBufferSizeBytes}`,
    `--max_write_buffer_number=${tuning.maxWriteBufferNumber}`,
    `--max_background_jobs=${tuning.maxBackgroundJobs}`,
    `--rate_limiter_bytes_per_sec=${tuning.rateLimitBytesPerSec}`,
    `--memtable_bloom_size_ratio=${MEMTABLE_BLOOM_RATIO}`,
    "--memtable_whole_key_filtering=1",
  ];
}

/**
 * Parses db_bench's `fillrandom : X micros/op Y ops/sec` line.
 *
 * @param text db_bench's standard output
 * @returns the run's figures
 * @throws {Error} when the line is missing
 */
export function parseFillrandom(text: string): CeilingRow {
  const m = /^fillrandom\s*:\s*([\d.]+) micros\/op (\d+) ops\/sec/m.exec(text);
  if (m === null) throw new Error(`Cannot parse db_bench output: no fillrandom line in\n${text}`);
  return { usPerOp: Number(m[1]), opsPerSec: Number(m[2]) };
}

async function runCeiling(tuning: RocksDbTuning, opts: NodeBenchOptions, dir: string) {
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  const out = await new Deno.Command("db_bench", {
    args: ceilingArgs(tuning, opts, dir),
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`db_bench failed: ${new TextDecoder().decode(out.stderr)}${text}`);
  }
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  return { ...parseFillrandom(text), writes: ceilingWrites(opts) };
}

/** The run with the median requests/s. */
function medianByRps(rows: BenchRow[]): BenchRow {
  const sorted = [...rows].sort((a, b) => a.rps - b.rps);
  return sorted[Math.floor(sorted.length / 2)]!;
}

type Results = Map<string, BenchRow>; // key: `${server}/${test}/${pipeline}`

const fmt = (n: number): string => n.toLocaleString("en-US", { maximumFractionDigits: 0 });
const fmtMs = (n: number): string => n.toFixed(3);

/** "11.2 (8.0)": CPU µs a request of all the server's threads, and of its main thread. */
function cpuCell(r: BenchRow): string {
  if (r.cpuUsPerRequest === undefined) return "n/a";
  const main = r.mainThreadUsPerRequest;
  return r.cpuUsPerRequest.toFixed(1) + (main === undefined ? "" : ` (${main.toFixed(1)})`);
}

/**
 * Renders the results as Markdown: one table per (test, pipeline) with each
 * server's requests/s, p50 and p99, and Spire's ratio to each peer.
 */
export function renderResults(
  results: Results,
  servers: string[],
  pipelines: number[],
  command: string,
  ceiling?: CeilingRow,
): string {
  const lines = [`Command: \`${command}\``, ""];
  lines.push(
    "| test | pipeline | server | requests/s | p50 ms | p99 ms | server CPU µs/request " +
      "(main thread) | " +
      "Spire rps / server rps |",
  );
  lines.push("|---|---|---|---|---|---|---|---|");
  for (const test of ["SET", "GET"]) {
    for (const p of pipelines) {
      const spire = results.get(`spire/${test}/${p}`);
      for (const s of servers) {
        const r = results.get(`${s}/${test}/${p}`);
        if (r === undefined) continue;
        const ratio = spire === undefined ? "n/a" : (spire.rps / r.rps).toFixed(2);
        lines.push(
          `| ${test} | ${p} | ${s} | ${fmt(r.rps)} | ${fmtMs(r.p50Ms)} | ${fmtMs(r.p99Ms)} | ${
            cpuCell(r)
          } | ${s === "spire" ? "1.00" : ratio} |`,
        );
      }
    }
  }
  const goal = (ok: boolean | undefined) => ok === undefined ? "n/a" : ok ? "met" : "MISSED";
  lines.push("");
  for (const p of pipelines) {
    const sg = results.get(`spire/GET/${p}`);
    const rg = results.get(`redis (appendonly no)/GET/${p}`);
    const ss = results.get(`spire/SET/${p}`);
    const rs = results.get(`redis (appendfsync always)/SET/${p}`);
    lines.push(
      `- pipeline ${p}: GET >= 50% of redis-server: ${
        goal(sg && rg ? sg.rps >= 0.5 * rg.rps : undefined)
      } (${sg && rg ? (sg.rps / rg.rps * 100).toFixed(0) + "%" : "n/a"}); ` +
        `durable SET >= redis-server appendfsync always: ${
          goal(ss && rs ? ss.rps >= rs.rps : undefined)
        } (${ss && rs ? (ss.rps / rs.rps).toFixed(2) + "x" : "n/a"})`,
    );
  }
  if (ceiling !== undefined) {
    const durable = pipelines.flatMap((p) => {
      const r = results.get(`redis (appendfsync always)/SET/${p}`);
      return r === undefined ? [] : [
        `-P ${p} ${fmt(r.rps)}/s (${(r.rps / ceiling.opsPerSec).toFixed(2)}x of it${
          r.rps >= ceiling.opsPerSec ? ": above what the engine alone takes" : ""
        })`,
      ];
    });
    lines.push(
      `- RocksDB alone with the node's tuning (db_bench fillrandom, one writer, batches of ` +
        `${CEILING_BATCH}, WAL not fsynced${
          ceiling.writes === undefined
            ? ""
            : `, ${fmt(ceiling.writes)} puts: as many as the node's SETs`
        }): ${fmt(ceiling.opsPerSec)} puts/s, ` +
        `${ceiling.usPerOp.toFixed(2)} µs a put` +
        (durable.length > 0 ? `; redis-server appendfsync always SET: ${durable.join(", ")}` : ""),
    );
  }
  return lines.join("\n") + "\n";
}

/**
 * Renders the PING runs (Spire, redis-server and the bare server of Spire's runtime) and, per
 * pipeline, the least CPU a durable SET can cost on this runtime and engine: the bare server's
 * CPU a request plus RocksDB's alone a put, beside redis-server appendfsync always's whole CPU
 * a SET. Empty when there were no PING runs.
 */
export function renderFloor(results: Results, pipelines: number[], ceiling?: CeilingRow): string {
  const servers = ["spire", "redis (appendonly no)", BARE];
  const lines = [
    "",
    "PING (`redis-benchmark -t ping_mbulk`, same clients): what a request costs before any work",
    "",
    "| pipeline | server | requests/s | p50 ms | p99 ms | server CPU µs/request (main thread) |",
    "|---|---|---|---|---|---|",
  ];
  let rows = 0;
  for (const p of pipelines) {
    for (const s of servers) {
      const r = results.get(`${s}/PING_MBULK/${p}`);
      if (r === undefined) continue;
      rows++;
      lines.push(
        `| ${p} | ${s} | ${fmt(r.rps)} | ${fmtMs(r.p50Ms)} | ${fmtMs(r.p99Ms)} | ${cpuCell(r)} |`,
      );
    }
  }
  if (rows === 0) return "";
  lines.push("");
  for (const p of pipelines) {
    const bare = results.get(`${BARE}/PING_MBULK/${p}`)?.cpuUsPerRequest;
    const durable = results.get(`redis (appendfsync always)/SET/${p}`)?.cpuUsPerRequest;
    if (bare === undefined || ceiling === undefined || durable === undefined) continue;
    const floor = bare + ceiling.usPerOp;
    lines.push(
      `- pipeline ${p}: a durable SET on this runtime and engine costs at least ` +
        `${bare.toFixed(1)} µs (the bare server's request) + ${ceiling.usPerOp.toFixed(1)} µs ` +
        `(RocksDB's put alone) = ${floor.toFixed(1)} µs of CPU, before any parsing, Raft, log or ` +
        `fsync; redis-server appendfsync always spends ${durable.toFixed(1)} µs a SET in all ` +
        `(${(floor / durable).toFixed(2)}x of it)`,
    );
  }
  return lines.join("\n") + "\n";
}

/**
 * What the report says of the node's RocksDB tuning: the `SPIRE_ROCKSDB_*` variables set for
 * the run (the node inherits them; they go in front of the command line so that it repeats
 * the run) and each knob they move away from its default, with its value.
 *
 * @param env the environment the bench runs in
 * @returns the resolved tuning, the variable assignments, sorted, and a one-line description
 * @throws {TuningError} when a variable is invalid (the node would refuse to start)
 */
export function benchTuning(
  env: Record<string, string>,
): { tuning: RocksDbTuning; assignments: string[]; line: string } {
  const resolved: ResolvedTuning = resolveTuning({ env });
  const assignments = Object.keys(env).filter((k) => k.startsWith("SPIRE_ROCKSDB_")).sort()
    .map((k) => `${k}=${env[k]}`);
  const moved = KNOBS.filter((k) => resolved.provenance[k.key] !== "default").map((k) => {
    const v = resolved.tuning[k.key];
    return `${k.variable} ${k.kind === "size" && typeof v === "number" ? formatSize(v) : v} ` +
      `(${resolved.provenance[k.key]})`;
  });
  const profile = resolved.profile === undefined ? [] : [`${PROFILE_VARIABLE} ${resolved.profile}`];
  const changes = [...profile, ...moved];
  return {
    tuning: resolved.tuning,
    assignments,
    line: `- Spire's RocksDB tuning: ${
      changes.length === 0 ? "the defaults (`spire config` lists them)" : changes.join(", ") +
        "; every other knob at its default"
    }`,
  };
}

/** The number of regions a Spire node reports (SPIRE.REGIONS), or undefined if it cannot tell. */
async function spireRegions(port: number): Promise<number | undefined> {
  let client: RespClient | undefined;
  try {
    client = await RespClient.connect({ port });
    const reply = await client.call(["SPIRE.REGIONS"]);
    return reply.kind === "array" && reply.items !== null ? reply.items.length : undefined;
  } catch {
    return undefined;
  } finally {
    client?.close();
  }
}

/**
 * The long version of the crash test: `crashKills` times kill -9 during writes,
 * checking every acknowledged write after each restart; `configText` (from `--config`, without
 * a `raft:` section) is added to the node's config, e.g. to make it split into many regions.
 * With `powerCut`, the node's files are on powercut_fs, which loses every byte and name not yet
 * fsynced after each kill (with `cutSeed`, some of them, torn appends included).
 */
async function crashSoak(opts: NodeBenchOptions, configText: string | undefined): Promise<number> {
  const { crashKills: kills, powerCut, cutSeed } = opts;
  const started = performance.now();
  const fs = powerCut
    ? await PowercutFs.mount({ names: true, ...(cutSeed === undefined ? {} : { seed: cutSeed }) })
    : undefined;
  let cutBytes = 0;
  const run = await crashLoop({
    kills,
    logCompactEntries: 500,
    ...(configText === undefined ? {} : { extraConfig: configText }),
    ...(fs === undefined ? {} : {
      dir: `${fs.root}/node`,
      afterKill: async () => void (cutBytes += (await fs.cut()).bytes),
    }),
    onRound: (round, acked, violations) => {
      if ((round + 1) % 10 === 0 || violations > 0) {
        console.error(
          `kill ${round + 1}/${kills}: ${acked} writes acknowledged, ${violations} violations`,
        );
      }
    },
  }).finally(() => fs?.unmount());
  const s = ((performance.now() - started) / 1000).toFixed(0);
  console.log(
    `crash soak: ${run.kills} kills${
      fs === undefined
        ? ""
        : ` each followed by a ${
          cutSeed === undefined ? "" : `partial (seed ${cutSeed}) `
        }power cut (${fmt(cutBytes)} unsynced bytes lost)`
    } in ${s} s, ${run.acked} acknowledged writes, ` +
      `${run.regions} regions at the end, ${run.violations.length} violations`,
  );
  for (const v of run.violations.slice(0, 10)) console.log(`  ${v.key}: ${v.problem}`);
  return run.violations.length === 0 ? 0 : 1;
}

/**
 * Runs the node benchmark.
 *
 * @param args flags (see {@link parseNodeBenchArgs})
 * @returns exit code: 0 when every run completed
 */
export async function main(args: string[]): Promise<number> {
  let opts: NodeBenchOptions;
  try {
    opts = parseNodeBenchArgs(args);
  } catch (e) {
    console.error((e as Error).message);
    return 2;
  }
  let configText: string | undefined;
  if (opts.config !== undefined) {
    try {
      configText = await Deno.readTextFile(opts.config);
    } catch (e) {
      console.error(`Cannot read --config ${opts.config}: ${(e as Error).message}`);
      return 2;
    }
  }
  if (opts.crashKills > 0) return await crashSoak(opts, configText);
  const env = Deno.env.toObject();
  let tuningNote: ReturnType<typeof benchTuning>;
  try {
    tuningNote = benchTuning(env);
  } catch (e) {
    console.error((e as Error).message);
    return 2;
  }
  const root = await Deno.makeTempDir({ prefix: "spire_bench_node_" });
  const startedAt = new Date().toISOString().slice(11, 16);
  const loadAtStart = await loadAverage();
  const results: Results = new Map();
  let ceiling: CeilingRow | undefined;
  let regionsAtStart: number | undefined;
  let regionsAtEnd: number | undefined;
  const servers = ["spire", "redis (appendonly no)", "redis (appendfsync always)"];
  const running: Server[] = [];
  try {
    const starts: Array<() => Promise<Server>> = [
      () => startSpire(`${root}/spire`, opts.config),
      () => startRedis(servers[1]!, `${root}/redis_plain`, ["--appendonly", "no"]),
      () =>
        startRedis(servers[2]!, `${root}/redis_fsync`, [
          "--appendonly",
          "yes",
          "--appendfsync",
          "always",
        ]),
    ];
    // All servers run at once and take turns, run by run, so that each ratio compares runs
    // made minutes apart at most under the same load (an idle Spire node uses ~3% of a core).
    for (const start of starts) running.push(await start());
    if (opts.warmup > 0) {
      for (const server of running) {
        await runBenchmark(server, "set", 16, { ...opts, requests: opts.warmup });
      }
    }
    regionsAtStart = await spireRegions(running[0]!.port);
    const tuning = tuningNote.tuning;
    const ceilings: CeilingRow[] = [];
    for (let i = 0; i < opts.repeats; i++) {
      ceilings.push(await runCeiling(tuning, opts, `${root}/db_bench`));
    }
    ceiling = ceilings.sort((a, b) => a.opsPerSec - b.opsPerSec)[Math.floor(ceilings.length / 2)];
    console.error(
      `db_bench fillrandom: ${fmt(ceiling!.opsPerSec)} puts/s, ${ceiling!.usPerOp} µs a put`,
    );
    /** Runs `test` on each of `servers` in turn, `repeats` times; keeps each one's median. */
    const runRound = async (test: "set" | "get" | "ping_mbulk", p: number, servers: Server[]) => {
      const rows = new Map<string, BenchRow[]>(servers.map((s) => [s.name, []]));
      for (let i = 0; i < opts.repeats; i++) {
        for (const server of servers) {
          rows.get(server.name)!.push(await runBenchmark(server, test, p, opts));
        }
      }
      for (const server of servers) {
        const row = medianByRps(rows.get(server.name)!);
        results.set(`${server.name}/${test.toUpperCase()}/${p}`, row);
        console.error(
          `${server.name} ${test.toUpperCase()} -P ${p}: ${fmt(row.rps)} req/s, p99 ${
            fmtMs(row.p99Ms)
          } ms, CPU ${cpuCell(row)} µs/request`,
        );
      }
    };
    for (const test of ["set", "get"] as const) {
      for (const p of opts.pipelines) await runRound(test, p, running);
    }
    regionsAtEnd = await spireRegions(running[0]!.port);
    // What a request costs before any work is done: PING on Spire, on redis-server and on a
    // bare server of Spire's runtime.
    running.push(await startBare());
    const pinged = [running[0]!, running[1]!, running[3]!];
    for (const p of opts.pipelines) await runRound("ping_mbulk", p, pinged);
  } finally {
    for (const server of running) await server.stop();
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
  const command = [...tuningNote.assignments, "./spire bench node", ...args].join(" ");
  const md = renderResults(results, servers, opts.pipelines, command, ceiling) +
    renderFloor(results, opts.pipelines, ceiling) +
    `${tuningNote.line}\n` +
    `- Spire's regions: ${regionsAtStart ?? "n/a"} when the timed runs started, ` +
    `${regionsAtEnd ?? "n/a"} at the end${
      opts.warmup > 0 ? ` (after ${fmt(opts.warmup)} warm-up SETs)` : ""
    }\n` +
    (configText === undefined
      ? ""
      : `- Spire's config file (\`--config ${opts.config}\`):\n\n\`\`\`yaml\n${configText.trimEnd()}\n\`\`\`\n`) +
    `\nRun ${startedAt}-${new Date().toISOString().slice(11, 16)} UTC; load average (1 min) ` +
    `${loadAtStart} at the start, ${await loadAverage()} at the end. Server CPU is user + ` +
    "system time of all the server's threads from /proc during the run, per request; in " +
    "parentheses its main thread's alone.\n";
  console.log(md);
  if (opts.out !== undefined) await Deno.writeTextFile(opts.out, md);
  return 0;
}

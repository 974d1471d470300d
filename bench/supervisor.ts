/**
 * `spire bench supervisor`: the actor runtime beside a bare async function
 * call measured in the same run: call round trip (p50, p99, calls/s) with
 * one caller and with 1,000 processes, cast throughput, spawn rate, crash
 * to restarted-process-answering time, and memory per idle process
 * (measured in a child Deno with `--expose-gc`). Each figure is the median
 * of `--runs` repetitions. Prints Markdown.
 *
 * Options: `--runs N` (default 5), `--calls N` (default 200000),
 * `--processes N` idle processes for memory (default 100000).
 *
 * @module
 */

import { type GenServer, type Pid, Runtime, Supervisor, workerSpec } from "../supervisor/mod.ts";

interface Options {
  runs: number;
  calls: number;
  processes: number;
}

function parse(args: string[]): Options {
  const options: Options = { runs: 5, calls: 200_000, processes: 100_000 };
  for (let i = 0; i < args.length; i++) {
    const flag = args[i];
    const value = Number(args[i + 1]);
    const key = flag === "--runs"
      ? "runs"
      : flag === "--calls"
      ? "calls"
      : flag === "--processes"
      ? "processes"
      : undefined;
    if (key === undefined || !Number.isInteger(value) || value < 1) {
      throw new RangeError(
        `Cannot parse bench supervisor arguments: "${flag} ${args[i + 1] ?? ""}"; ` +
          `allowed: --runs N, --calls N, --processes N (integers >= 1)`,
      );
    }
    options[key] = value;
    i++;
  }
  return options;
}

const Echo: GenServer<void, number, number, number, number> = {
  init: () => ({ state: 0 }),
  handleCall: (msg, _from, n) => ({ reply: msg, state: n }),
  handleCast: (_msg, n) => ({ state: n + 1 }),
};

// The peer: the cheapest async call there is (no await inside, on purpose).
// deno-lint-ignore require-await
async function bare(x: number): Promise<number> {
  return x;
}

function quantile(sorted: Float64Array, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

interface Latency {
  p50Us: number;
  p99Us: number;
  perSec: number;
}

/** Times `n` sequential awaits of `op`, each individually. */
async function sequential(n: number, op: (i: number) => Promise<unknown>): Promise<Latency> {
  const samples = new Float64Array(n);
  const start = performance.now();
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await op(i);
    samples[i] = performance.now() - t;
  }
  const total = performance.now() - start;
  samples.sort();
  return {
    p50Us: quantile(samples, 0.5) * 1000,
    p99Us: quantile(samples, 0.99) * 1000,
    perSec: n / (total / 1000),
  };
}

/** `lanes` concurrent loops, each doing `perLane` sequential awaits of `op(lane)`. */
async function concurrent(
  lanes: number,
  perLane: number,
  op: (lane: number) => Promise<unknown>,
): Promise<Latency> {
  const samples = new Float64Array(lanes * perLane);
  let k = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: lanes }, async (_, lane) => {
      for (let i = 0; i < perLane; i++) {
        const t = performance.now();
        await op(lane);
        samples[k++] = performance.now() - t;
      }
    }),
  );
  const total = performance.now() - start;
  samples.sort();
  return {
    p50Us: quantile(samples, 0.5) * 1000,
    p99Us: quantile(samples, 0.99) * 1000,
    perSec: samples.length / (total / 1000),
  };
}

function medianLatency(runs: Latency[]): Latency {
  return {
    p50Us: median(runs.map((r) => r.p50Us)),
    p99Us: median(runs.map((r) => r.p99Us)),
    perSec: median(runs.map((r) => r.perSec)),
  };
}

async function oneCaller(o: Options): Promise<{ spire: Latency; bare: Latency }> {
  const spire: Latency[] = [];
  const peer: Latency[] = [];
  for (let r = 0; r < o.runs; r++) {
    const rt = new Runtime();
    const pid = await rt.start(Echo, undefined);
    await sequential(10_000, (i) => rt.call(pid, i)); // warm-up
    await sequential(10_000, bare);
    peer.push(await sequential(o.calls, bare));
    spire.push(await sequential(o.calls, (i) => rt.call(pid, i)));
    rt.close();
  }
  return { spire: medianLatency(spire), bare: medianLatency(peer) };
}

async function thousand(o: Options): Promise<{ spire: Latency; bare: Latency }> {
  const lanes = 1000;
  const perLane = Math.max(1, Math.floor(o.calls / lanes));
  const spire: Latency[] = [];
  const peer: Latency[] = [];
  for (let r = 0; r < o.runs; r++) {
    const rt = new Runtime();
    const pids: Pid<number, number, number>[] = [];
    for (let i = 0; i < lanes; i++) pids.push(rt.spawn(Echo, undefined));
    await rt.idle();
    await concurrent(lanes, 10, (lane) => rt.call(pids[lane]!, lane)); // warm-up
    peer.push(await concurrent(lanes, perLane, bare));
    spire.push(await concurrent(lanes, perLane, (lane) => rt.call(pids[lane]!, lane)));
    rt.close();
  }
  return { spire: medianLatency(spire), bare: medianLatency(peer) };
}

async function castThroughput(o: Options): Promise<{ spire: number; bare: number }> {
  const spire: number[] = [];
  const peer: number[] = [];
  const n = o.calls * 5;
  for (let r = 0; r < o.runs; r++) {
    const rt = new Runtime({ mailboxMax: n });
    const pid = await rt.start(Echo, undefined);
    let t = performance.now();
    for (let i = 0; i < n; i++) rt.cast(pid, i);
    await rt.idle();
    spire.push(n / ((performance.now() - t) / 1000));
    if ((await rt.call(pid, -1)) !== -1) throw new Error("bench: echo broken");
    rt.close();
    let sum = 0;
    t = performance.now();
    const pending: Promise<number>[] = new Array(n);
    for (let i = 0; i < n; i++) pending[i] = bare(i).then((x) => sum += x);
    await Promise.all(pending);
    peer.push(n / ((performance.now() - t) / 1000));
  }
  return { spire: median(spire), bare: median(peer) };
}

async function spawnRate(o: Options): Promise<{ spire: number; bare: number }> {
  const spire: number[] = [];
  const peer: number[] = [];
  const n = Math.min(o.processes, 100_000);
  for (let r = 0; r < o.runs; r++) {
    const rt = new Runtime();
    let t = performance.now();
    for (let i = 0; i < n; i++) rt.spawn(Echo, undefined);
    await rt.idle(); // every init has run
    spire.push(n / ((performance.now() - t) / 1000));
    rt.close();
    t = performance.now();
    const tasks: Promise<number>[] = new Array(n);
    for (let i = 0; i < n; i++) tasks[i] = bare(i);
    await Promise.all(tasks);
    peer.push(n / ((performance.now() - t) / 1000));
  }
  return { spire: median(spire), bare: median(peer) };
}

async function restartTime(o: Options): Promise<{ p50Us: number; p99Us: number }> {
  const p50: number[] = [];
  const p99: number[] = [];
  const rounds = 2000;
  for (let r = 0; r < o.runs; r++) {
    const rt = new Runtime({ report: () => {} });
    const Crashy: GenServer<void, null, "ping", "pong", "crash"> = {
      init: () => ({ state: null }),
      handleCall: (_m, _f, s) => ({ reply: "pong", state: s }),
      handleCast: () => {
        throw new Error("bench crash");
      },
    };
    const sup = await Supervisor.start(
      rt,
      [workerSpec("w", Crashy, undefined, { name: "w" })],
      { maxRestarts: rounds * 2 },
    );
    let restarted: ((pid: Pid) => void) | null = null;
    rt.subscribe((e) => {
      if (e.type === "child_restarted") restarted?.(e.pid);
    });
    const samples = new Float64Array(rounds);
    for (let i = 0; i < rounds; i++) {
      const next = new Promise<Pid>((resolve) => restarted = resolve);
      const t = performance.now();
      rt.cast("w", "crash");
      const pid = await next;
      await rt.call(pid as Pid<"ping", "pong">, "ping");
      samples[i] = performance.now() - t;
    }
    samples.sort();
    p50.push(quantile(samples, 0.5) * 1000);
    p99.push(quantile(samples, 0.99) * 1000);
    await rt.stop(sup, "shutdown");
    rt.close();
  }
  return { p50Us: median(p50), p99Us: median(p99) };
}

interface MemoryResult {
  spireMb: number;
  bareMb: number;
}

/** Runs in a child Deno (`--expose-gc`): heap growth for N idle processes vs N pending async functions. */
async function memoryChild(n: number): Promise<MemoryResult> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error("bench: memory child needs --v8-flags=--expose-gc");
  const heap = () => {
    gc();
    gc();
    return Deno.memoryUsage().heapUsed;
  };
  const rt = new Runtime();
  let before = heap();
  for (let i = 0; i < n; i++) rt.spawn(Echo, undefined);
  await rt.idle();
  const spireMb = (heap() - before) / 1e6;
  if (rt.processCount !== n) throw new Error("bench: processes missing");
  rt.close();
  let release!: () => void;
  const gate = new Promise<void>((resolve) => release = resolve);
  before = heap();
  const tasks: Promise<number>[] = new Array(n);
  for (let i = 0; i < n; i++) {
    tasks[i] = (async () => {
      let state = 0;
      await gate;
      return state++;
    })();
  }
  const bareMb = (heap() - before) / 1e6;
  release();
  await Promise.all(tasks);
  return { spireMb, bareMb };
}

async function memory(o: Options): Promise<MemoryResult> {
  const spire: number[] = [];
  const bareRuns: number[] = [];
  for (let r = 0; r < o.runs; r++) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--v8-flags=--expose-gc,--max-old-space-size=4096",
        new URL(import.meta.url).pathname,
        "--memory-child",
        String(o.processes),
      ],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    if (!out.success) throw new Error("bench: memory child failed");
    const result = JSON.parse(new TextDecoder().decode(out.stdout)) as MemoryResult;
    spire.push(result.spireMb);
    bareRuns.push(result.bareMb);
  }
  return { spireMb: median(spire), bareMb: median(bareRuns) };
}

const f2 = (x: number) => x.toFixed(2);
const f0 = (x: number) => Math.round(x).toLocaleString("en-US");
const ratio = (a: number, b: number) => (a / b).toFixed(2);

/** Runs the suite and prints Markdown tables. */
export async function main(args: string[]): Promise<number> {
  const o = parse(args);
  console.log(`## Supervisor (actor runtime)\n`);
  console.log(
    `Command: \`${["./spire bench supervisor", ...args].join(" ")}\`. ` +
      `Deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} cores; median of ${o.runs} runs. ` +
      `Latencies are timed per operation with performance.now() (its own cost is in both columns).\n`,
  );
  const one = await oneCaller(o);
  const many = await thousand(o);
  console.log(`| metric | Spire call | bare async call | Spire ÷ bare |`);
  console.log(`|---|---|---|---|`);
  console.log(
    `| 1 caller, p50 (us) | ${f2(one.spire.p50Us)} | ${f2(one.bare.p50Us)} | ${
      ratio(one.spire.p50Us, one.bare.p50Us)
    } |`,
  );
  console.log(
    `| 1 caller, p99 (us) | ${f2(one.spire.p99Us)} | ${f2(one.bare.p99Us)} | ${
      ratio(one.spire.p99Us, one.bare.p99Us)
    } |`,
  );
  console.log(
    `| 1 caller, calls/s | ${f0(one.spire.perSec)} | ${f0(one.bare.perSec)} | ${
      ratio(one.spire.perSec, one.bare.perSec)
    } |`,
  );
  console.log(
    `| 1,000 processes, p50 (us) | ${f2(many.spire.p50Us)} | ${f2(many.bare.p50Us)} | ${
      ratio(many.spire.p50Us, many.bare.p50Us)
    } |`,
  );
  console.log(
    `| 1,000 processes, p99 (us) | ${f2(many.spire.p99Us)} | ${f2(many.bare.p99Us)} | ${
      ratio(many.spire.p99Us, many.bare.p99Us)
    } |`,
  );
  console.log(
    `| 1,000 processes, calls/s | ${f0(many.spire.perSec)} | ${f0(many.bare.perSec)} | ${
      ratio(many.spire.perSec, many.bare.perSec)
    } |`,
  );
  console.log(
    `\nCall overhead at p50 (Spire − bare, 1 caller): **${
      f2(one.spire.p50Us - one.bare.p50Us)
    } us** (goal < 2 us).\n`,
  );
  const cast = await castThroughput(o);
  const spawn = await spawnRate(o);
  console.log(`| metric | Spire | bare async function | Spire ÷ bare |`);
  console.log(`|---|---|---|---|`);
  console.log(
    `| cast throughput, msgs/s (one process) | ${f0(cast.spire)} | ${
      f0(cast.bare)
    } (un-awaited calls) | ${ratio(cast.spire, cast.bare)} |`,
  );
  console.log(
    `| spawn rate, processes/s (init run) | ${f0(spawn.spire)} | ${
      f0(spawn.bare)
    } (async calls) | ${ratio(spawn.spire, spawn.bare)} |`,
  );
  const restart = await restartTime(o);
  console.log(
    `\nCrash → restarted process answering a call (one_for_one): p50 **${
      f2(restart.p50Us)
    } us**, ` +
      `p99 ${f2(restart.p99Us)} us (goal < 1 ms).\n`,
  );
  const mem = await memory(o);
  console.log(
    `| ${f0(o.processes)} idle | Spire processes | bare pending async functions | Spire ÷ bare |`,
  );
  console.log(`|---|---|---|---|`);
  console.log(
    `| heap, MB | ${f2(mem.spireMb)} | ${f2(mem.bareMb)} | ${ratio(mem.spireMb, mem.bareMb)} |`,
  );
  console.log(
    `| bytes per process | ${f0((mem.spireMb * 1e6) / o.processes)} | ${
      f0((mem.bareMb * 1e6) / o.processes)
    } | |`,
  );
  console.log(`\nGoal: 100,000 idle processes < 500 MB.`);
  return 0;
}

if (import.meta.main) {
  if (Deno.args[0] === "--memory-child") {
    console.log(JSON.stringify(await memoryChild(Number(Deno.args[1]))));
  } else {
    Deno.exit(await main(Deno.args));
  }
}

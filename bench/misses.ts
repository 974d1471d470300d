/**
 * `spire bench misses`: point reads that miss the block cache, read on the
 * JavaScript thread (`missReads.mode` adaptive, the default) or always on a
 * worker thread (`worker`), side by side in the same run, in two settings:
 *
 * - `page cache`: the data set is in the OS page cache (a second pass over it);
 * - `device`: the page cache is dropped before the pass (`echo 1 >
 *   /proc/sys/vm/drop_caches`, root only), so most reads go to the disk.
 *
 * Each read's synchronous part is timed: from the call of \`get\` until it
 * returns its promise, the event loop can do nothing else. That is the stall a
 * read causes. The adaptive mode is meant to be as fast as a direct read from
 * the page cache and, on the device, to hold the event loop only for a few
 * device reads per back-off.
 *
 * Flags: --keys N (2,000,000) --reads N (20,000 per pass) --runs N (3) --dir DIR
 * (a scratch directory; default a temporary one, removed afterwards).
 *
 * @module
 */

import { Engine } from "../engine/mod.ts";
import { intFlag, parseFlags, UsageError } from "../cli/flags.ts";

type Mode = "adaptive" | "worker";
type Setting = "page cache" | "device";

interface Pass {
  readsPerSec: number;
  heldP99Us: number;
  heldMaxUs: number;
  /** Total time the event loop was held by reads, in ms. */
  heldTotalMs: number;
  sync: number;
  worker: number;
  backoffs: number;
}

const VALUE_BYTES = 100;
const BLOCK_CACHE_BYTES = 1024 * 1024;

const encoder = new TextEncoder();
const keyOf = (i: number) => encoder.encode(String(i).padStart(16, "0"));

async function fill(dir: string, keys: number): Promise<void> {
  const engine = await Engine.open({
    dataDir: dir,
    tuning: { compression: "none", blockCacheSizeBytes: BLOCK_CACHE_BYTES, syncWrites: false },
  });
  try {
    const value = new Uint8Array(VALUE_BYTES).map((_, i) => (i * 37) & 255);
    for (let i = 0; i < keys; i += 1000) {
      const n = Math.min(1000, keys - i);
      await engine.writeBatch(
        Array.from({ length: n }, (_, j) => ({ op: "put" as const, key: keyOf(i + j), value })),
      );
    }
    await engine.flush();
    await engine.compactRange();
  } finally {
    await engine.close();
  }
}

async function dropPageCache(): Promise<void> {
  const out = await new Deno.Command("sh", {
    args: ["-c", "sync && echo 1 > /proc/sys/vm/drop_caches"],
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(
      `Cannot drop the page cache (needs root): ${new TextDecoder().decode(out.stderr).trim()}`,
    );
  }
}

async function pass(
  dir: string,
  mode: Mode,
  setting: Setting,
  keys: number,
  reads: number,
  seed: number,
): Promise<Pass> {
  if (setting === "device") await dropPageCache();
  const engine = await Engine.open({
    dataDir: dir,
    tuning: { compression: "none", blockCacheSizeBytes: BLOCK_CACHE_BYTES, syncWrites: false },
    missReads: { mode },
  });
  let x = seed | 1;
  const random = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x1_0000_0000;
  };
  const held = new Float64Array(reads);
  try {
    const began = performance.now();
    for (let i = 0; i < reads; i++) {
      const t = performance.now();
      const pending = engine.get(keyOf(Math.floor(random() * keys)));
      held[i] = (performance.now() - t) * 1000;
      if ((await pending) === undefined) throw new Error("bench misses: a written key is missing");
    }
    const seconds = (performance.now() - began) / 1000;
    const total = held.reduce((a, b) => a + b, 0);
    held.sort();
    const stats = engine.getStats().missReads;
    return {
      readsPerSec: reads / seconds,
      heldP99Us: held[Math.floor(0.99 * (reads - 1))] ?? 0,
      heldMaxUs: held[reads - 1] ?? 0,
      heldTotalMs: total / 1000,
      sync: stats.sync,
      worker: stats.worker,
      backoffs: stats.slowSync,
    };
  } finally {
    await engine.close();
  }
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)] ?? NaN;
}

const fmt = (n: number, digits = 0) =>
  n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });

/**
 * Runs the suite.
 * @param args flags (see the module doc)
 * @returns exit code
 */
export async function main(args: string[]): Promise<number> {
  let keys: number, reads: number, runs: number, dirFlag: string | undefined;
  try {
    const command = "spire bench misses";
    const flags = parseFlags(command, args, { keys: "N", reads: "N", runs: "N", dir: "DIR" });
    keys = intFlag(command, flags, "keys", 2_000_000, 100_000_000);
    reads = intFlag(command, flags, "reads", 20_000, 10_000_000);
    runs = intFlag(command, flags, "runs", 3, 20);
    dirFlag = typeof flags.dir === "string" ? flags.dir : undefined;
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(error.message);
    return 2;
  }
  const root = dirFlag ?? await Deno.makeTempDir({ prefix: "spire_bench_misses_" });
  const dir = `${root}/data`;
  const load = async () => (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3);
  try {
    const loadBefore = await load();
    const began = performance.now();
    await fill(dir, keys);
    const results = new Map<string, Pass[]>();
    for (let run = 1; run <= runs; run++) {
      for (const setting of ["page cache", "device"] as Setting[]) {
        // Modes take turns, in a rotating order, so that noise falls on both.
        const modes: Mode[] = run % 2 === 1 ? ["adaptive", "worker"] : ["worker", "adaptive"];
        for (const mode of modes) {
          if (setting === "page cache") await pass(dir, mode, setting, keys, reads, 99); // warm
          const p = await pass(dir, mode, setting, keys, reads, run * 7919);
          const name = `${setting}|${mode}`;
          results.set(name, [...(results.get(name) ?? []), p]);
          console.error(
            `run ${run} ${setting.padEnd(10)} ${mode.padEnd(8)} ${
              fmt(p.readsPerSec).padStart(9)
            } ` +
              `reads/s, held p99 ${fmt(p.heldP99Us, 1)} µs max ${fmt(p.heldMaxUs)} µs ` +
              `total ${fmt(p.heldTotalMs, 1)} ms, ` +
              `sync ${p.sync} worker ${p.worker} back-offs ${p.backoffs}`,
          );
        }
      }
    }
    const secs = (performance.now() - began) / 1000;
    const lines = [
      "```",
      `./spire bench misses${args.length > 0 ? ` ${args.join(" ")}` : ""}`,
      "```",
      "",
      `${fmt(keys)} keys of 16 B with ${VALUE_BYTES}-byte values (one compacted level, about ` +
      `${fmt((keys * (16 + VALUE_BYTES)) / 1048576)} MiB), block cache 1 MiB, ${
        fmt(reads)
      } random ` +
      `point reads per pass, ${runs} runs (medians). "Held": the synchronous part of one \`get\` ` +
      `(the event loop can do nothing else meanwhile). ` +
      `Total ${fmt(secs, 0)} s; load average ${loadBefore.join(" ")} before, ` +
      `${(await load()).join(" ")} after.`,
      "",
      "| data in | missReads.mode | reads/s | held p99 µs | held max µs | held in all, ms | " +
      "misses read on the JS thread | on a worker | back-offs | adaptive / worker |",
      "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ];
    for (const setting of ["page cache", "device"] as Setting[]) {
      const worker = median(results.get(`${setting}|worker`)!.map((p) => p.readsPerSec));
      for (const mode of ["adaptive", "worker"] as Mode[]) {
        const ps = results.get(`${setting}|${mode}`)!;
        const rate = median(ps.map((p) => p.readsPerSec));
        const m = (f: (p: Pass) => number) => median(ps.map(f));
        const cells = [
          setting,
          mode,
          fmt(rate),
          fmt(m((p) => p.heldP99Us), 1),
          fmt(m((p) => p.heldMaxUs)),
          fmt(m((p) => p.heldTotalMs), 1),
          fmt(m((p) => p.sync)),
          fmt(m((p) => p.worker)),
          fmt(m((p) => p.backoffs)),
          mode === "adaptive" ? `${fmt(rate / worker, 2)}x` : "",
        ];
        lines.push(`| ${cells.join(" | ")} |`);
      }
    }
    console.log(lines.join("\n"));
    return 0;
  } finally {
    if (dirFlag === undefined) await Deno.remove(root, { recursive: true }).catch(() => {});
  }
}

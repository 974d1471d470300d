/**
 * `spire bench keyspace`: walks over a whole keyspace that the node runs in
 * the background, each beside the way it was done before, in the same run.
 *
 * The background expiry's scan, as the client port runs it:
 *
 * - `scanExpired`: the engine walks the rows and hands over only the expired
 *   keys (the native helper reads each value's expiry header in C);
 * - `scanKeys + decode`: every key and value is read into TypeScript and
 *   decoded, then filtered (what the expiry did before scanExpired, and what
 *   SCAN still does).
 *
 * Both walk the whole keyspace in steps of the expiry's default size and must
 * find the same expired keys.
 *
 * The store's region size count (keys and bytes, for split decisions):
 *
 * - `measureRange`: the engine sums key and value lengths without copying
 *   anything out (`countRegion` now);
 * - `scanRange`: every row copied into TypeScript in batches of 1,024 (as
 *   `countRegion` did). Both must agree.
 *
 * The figure is rows per second of event-loop time: the walks are synchronous
 * work on the event loop, so this is also what they cost clients. The store
 * and the expiry run them in slices with a wait for the next turn of the event
 * loop between slices; the bench leaves those waits out (one slice, no waits).
 *
 * Flags: --keys N (1,000,000; a quarter expired, a quarter with a future
 * expiry) --runs N (3).
 *
 * @module
 */

import { Engine, SCAN_BATCH_SIZE_MAX } from "../engine/mod.ts";
import { intFlag, parseFlags, UsageError } from "../cli/flags.ts";
import { LocalBackend } from "../node/commands/backend.ts";
import { encodeValue, engineKeyOf, isExpired, USER_KEY_RANGE } from "../node/commands/kv_model.ts";

const VALUE_BYTES = 100;
const NOW = 1_800_000_000_000;
/** The client port's default rows per expiry step (expireScanKeysMax). */
const STEP_ROWS = 2048;
/** Rows per step of the old walk (its default before scanExpired). */
const OLD_STEP_ROWS = 500;

const encoder = new TextEncoder();
const keyOf = (i: number) => encoder.encode(`key:${String(i).padStart(12, "0")}`);

async function fill(engine: Engine, keys: number): Promise<number> {
  const data = new Uint8Array(VALUE_BYTES).map((_, i) => (i * 37) & 255);
  let expired = 0;
  for (let i = 0; i < keys; i += 1000) {
    const n = Math.min(1000, keys - i);
    await engine.writeBatch(Array.from({ length: n }, (_, j) => {
      const k = i + j;
      const expireAtMs = k % 4 === 0 ? NOW - 1000 : k % 4 === 1 ? NOW + 60_000 : undefined;
      if (k % 4 === 0) expired++;
      return {
        op: "put" as const,
        key: engineKeyOf(keyOf(k)),
        value: encodeValue({ type: "string", value: data, expireAtMs }),
      };
    }));
  }
  await engine.flush();
  return expired;
}

async function walkNew(backend: LocalBackend): Promise<number> {
  let from: Uint8Array | undefined;
  let found = 0;
  do {
    const page = await backend.scanExpired(from, STEP_ROWS, NOW);
    found += page.keys.length;
    from = page.next;
  } while (from !== undefined);
  return found;
}

async function walkOld(backend: LocalBackend, stepRows: number): Promise<number> {
  let after: Uint8Array | undefined;
  let found = 0;
  for (;;) {
    const page = await backend.scanKeys(after, stepRows);
    found += page.entries.filter((e) => isExpired(e.value, NOW)).length;
    const last = page.entries[page.entries.length - 1];
    if (page.done || last === undefined) return found;
    after = last.key;
  }
}

async function countOld(engine: Engine): Promise<string> {
  let keys = 0, bytes = 0;
  const { start, end } = USER_KEY_RANGE;
  for await (const batch of engine.scanRange(start, end, { batchSize: 1024 })) {
    keys += batch.rowsReturned;
    bytes += batch.bytesRead;
  }
  return `${keys} keys, ${bytes} bytes`;
}

async function countNew(engine: Engine): Promise<string> {
  const { start, end } = USER_KEY_RANGE;
  // One slice: the walk's own cost, without the waits for the next turn between slices.
  const { keys, bytes } = await engine.measureRange(start, end, { sliceRows: SCAN_BATCH_SIZE_MAX });
  return `${keys} keys, ${bytes} bytes`;
}

/**
 * A whole-keyspace walk (DBSIZE, INFO keyspace) in slices of `sliceRows` (undefined: the engine's
 * default) while another task asks for a turn of the event loop as often as it can: the walk's
 * time, and the longest the other task waited for its turn (what a client's request waits).
 */
async function walkWithNeighbour(
  engine: Engine,
  sliceRows: number | undefined,
): Promise<{ ms: number; longestWaitMs: number }> {
  const { start, end } = USER_KEY_RANGE;
  let done = false;
  let longestWaitMs = 0;
  const neighbour = (async () => {
    while (!done) {
      const asked = performance.now();
      await new Promise((r) => setTimeout(r, 0));
      longestWaitMs = Math.max(longestWaitMs, performance.now() - asked);
    }
  })();
  const began = performance.now();
  await engine.measureRange(start, end, sliceRows === undefined ? {} : { sliceRows });
  const ms = performance.now() - began;
  done = true;
  await neighbour;
  return { ms, longestWaitMs };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (n: number) => Math.round(n).toLocaleString("en-US");

/**
 * Runs the suite and prints a Markdown table.
 * @param args flags
 * @returns exit code
 */
export async function main(args: string[]): Promise<number> {
  let keys: number, runs: number;
  try {
    const command = "spire bench keyspace";
    const flags = parseFlags(command, args, { keys: "N", runs: "N" });
    keys = intFlag(command, flags, "keys", 1_000_000, 100_000_000);
    runs = intFlag(command, flags, "runs", 3, 20);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(error.message);
    return 2;
  }
  const root = await Deno.makeTempDir({ prefix: "spire_bench_expiry_" });
  const engine = await Engine.open({
    dataDir: `${root}/data`,
    tuning: { compression: "none", syncWrites: false },
  });
  const backend = new LocalBackend({ engine, now: () => NOW });
  try {
    const expired = await fill(engine, keys);
    const expiryWays: [string, () => Promise<number>][] = [
      [`scanExpired (${STEP_ROWS} rows a step)`, () => walkNew(backend)],
      [`scanKeys + decode (${OLD_STEP_ROWS} rows a step)`, () => walkOld(backend, OLD_STEP_ROWS)],
      [`scanKeys + decode (${STEP_ROWS} rows a step)`, () => walkOld(backend, STEP_ROWS)],
    ];
    const countWays: [string, () => Promise<string>][] = [
      ["measureRange (as countRegion now)", () => countNew(engine)],
      ["scanRange, 1024 rows a batch (as countRegion did)", () => countOld(engine)],
    ];
    const sliceWays: [string, number | undefined][] = [
      ["default slices (8,192 rows)", undefined],
      ["65,536-row slices (before)", 65_536],
    ];
    const slices = new Map<string, { ms: number[]; waitMs: number[] }>();
    const rates = new Map<string, number[]>();
    const counts = new Set<string>();
    for (let run = 0; run < runs; run++) {
      for (const [name, walk] of expiryWays) {
        const began = performance.now();
        const found = await walk();
        const seconds = (performance.now() - began) / 1000;
        if (found !== expired) {
          throw new Error(`${name} found ${found} expired keys, ${expired} expected`);
        }
        rates.set(name, [...rates.get(name) ?? [], keys / seconds]);
      }
      for (const [name, count] of countWays) {
        const began = performance.now();
        counts.add(await count());
        const seconds = (performance.now() - began) / 1000;
        rates.set(name, [...rates.get(name) ?? [], keys / seconds]);
      }
      for (const [name, rows] of sliceWays) {
        const r = await walkWithNeighbour(engine, rows);
        const got = slices.get(name) ?? { ms: [], waitMs: [] };
        got.ms.push(r.ms);
        got.waitMs.push(r.longestWaitMs);
        slices.set(name, got);
      }
      if (counts.size !== 1) throw new Error(`the counts differ: ${[...counts].join("; ")}`);
    }
    console.log(
      `keys: ${fmt(keys)} (${fmt(expired)} expired), ${VALUE_BYTES}-byte values, ` +
        `native helpers: ${engine.nativeHelpers}, ${runs} runs, median; count: ${[...counts][0]}`,
    );
    for (
      const [title, ways] of [["expiry walk", expiryWays], ["region count", countWays]] as const
    ) {
      console.log(`\n| ${title} | rows/s | ratio to the first |`);
      console.log("|---|---|---|");
      const base = median(rates.get(ways[0]![0])!);
      for (const [name] of ways) {
        const r = median(rates.get(name)!);
        console.log(`| ${name} | ${fmt(r)} | ${(r / base).toFixed(2)} |`);
      }
    }
    console.log(
      "\n| whole-keyspace walk (DBSIZE, INFO keyspace) beside another task | walk ms | " +
        "longest wait of the other task, ms |",
    );
    console.log("|---|---|---|");
    for (const [name] of sliceWays) {
      const r = slices.get(name)!;
      console.log(`| ${name} | ${fmt(median(r.ms))} | ${median(r.waitMs).toFixed(1)} |`);
    }
    return 0;
  } finally {
    await backend.close();
    await engine.close();
    await Deno.remove(root, { recursive: true });
  }
}

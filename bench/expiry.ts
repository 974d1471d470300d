/**
 * `spire bench expiry`: the background expiry's scan over a keyspace, as the
 * client port runs it, in two ways side by side in the same run:
 *
 * - `scanExpired`: the engine walks the rows and hands over only the expired
 *   keys (the native helper reads each value's expiry header in C);
 * - `scanKeys + decode`: every key and value is read into TypeScript and
 *   decoded, then filtered (what the expiry did before scanExpired, and what
 *   SCAN still does).
 *
 * Both walk the whole keyspace in steps of the expiry's default size and must
 * find the same expired keys. The figure is rows examined per second of
 * event-loop time; the walk is synchronous work on the event loop, so this is
 * also what a sweep costs the clients.
 *
 * Flags: --keys N (1,000,000; a quarter expired, a quarter with a future
 * expiry) --runs N (3).
 *
 * @module
 */

import { Engine } from "../engine/mod.ts";
import { intFlag, parseFlags, UsageError } from "../cli/flags.ts";
import { LocalBackend } from "../node/commands/backend.ts";
import { encodeValue, engineKeyOf, isExpired } from "../node/commands/kv_model.ts";

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
    const command = "spire bench expiry";
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
    const ways: [string, () => Promise<number>][] = [
      [`scanExpired (${STEP_ROWS} rows a step)`, () => walkNew(backend)],
      [`scanKeys + decode (${OLD_STEP_ROWS} rows a step)`, () => walkOld(backend, OLD_STEP_ROWS)],
      [`scanKeys + decode (${STEP_ROWS} rows a step)`, () => walkOld(backend, STEP_ROWS)],
    ];
    const rates = new Map<string, number[]>(ways.map(([name]) => [name, []]));
    for (let run = 0; run < runs; run++) {
      for (const [name, walk] of ways) {
        const began = performance.now();
        const found = await walk();
        const seconds = (performance.now() - began) / 1000;
        if (found !== expired) {
          throw new Error(`${name} found ${found} expired keys, ${expired} expected`);
        }
        rates.get(name)!.push(keys / seconds);
      }
    }
    console.log(
      `keys: ${fmt(keys)} (${fmt(expired)} expired), ${VALUE_BYTES}-byte values, ` +
        `native helpers: ${engine.nativeHelpers}, ${runs} runs, median`,
    );
    console.log("| walk | rows examined/s | ratio to scanExpired |");
    console.log("|---|---|---|");
    const base = median(rates.get(ways[0]![0])!);
    for (const [name] of ways) {
      const r = median(rates.get(name)!);
      console.log(`| ${name} | ${fmt(r)} | ${(r / base).toFixed(2)} |`);
    }
    return 0;
  } finally {
    await backend.close();
    await engine.close();
    await Deno.remove(root, { recursive: true });
  }
}

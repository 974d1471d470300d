import assert from "node:assert/strict";
import fc from "fast-check";
import { DEFAULT_HELPERS_PATH, openHelpers } from "./_ffi/helpers.ts";
import { openLibrary } from "./_ffi/library.ts";
import { Engine, type ScanOptions } from "./engine.ts";
import { TEST_TUNING } from "./_test_util.ts";

const built = (() => {
  try {
    Deno.statSync(DEFAULT_HELPERS_PATH);
    return true;
  } catch {
    return false;
  }
})();

/** What a read or scan returned, as plain arrays, for comparing two engines. */
type Seen = (number[] | null)[];

const bytes = (u: Uint8Array | undefined): number[] | null => u === undefined ? null : [...u];

async function readAll(
  engine: Engine,
  gets: Uint8Array[],
  scans: { start: Uint8Array; end: Uint8Array; options: ScanOptions }[],
): Promise<Seen> {
  const seen: Seen = [];
  for (const key of gets) seen.push(bytes(await engine.get(key)));
  for (const { start, end, options } of scans) {
    for await (const batch of engine.scanRange(start, end, options)) {
      seen.push([batch.rowsReturned, batch.bytesRead, batch.keys.length, batch.entries.length]);
      for (const key of batch.keys) seen.push(bytes(key));
      for (const { key, value } of batch.entries) seen.push(bytes(key), bytes(value));
    }
    seen.push(null); // end of one scan
  }
  return seen;
}

/** The first index where two results differ, or -1. */
function firstDifference(a: Seen, b: Seen): number {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (JSON.stringify(a[i]) !== JSON.stringify(b[i])) return i;
  }
  return -1;
}

Deno.test("an engine uses the native helpers when ./spire built them, and not when told not to", async () => {
  const root = await Deno.makeTempDir({ prefix: "spire_helpers_test_" });
  try {
    const on = await Engine.open({ dataDir: `${root}/a`, tuning: TEST_TUNING });
    assert.equal(on.nativeHelpers, built, `built: ${built} (${DEFAULT_HELPERS_PATH})`);
    assert.equal(on.getStats().nativeHelpers, built);
    await on.close();
    const off = await Engine.open({ dataDir: `${root}/b`, tuning: TEST_TUNING, helpers: false });
    assert.equal(off.nativeHelpers, false);
    await off.close();
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("./spire test builds the native helpers (the suite runs them, not only the fallback)", () => {
  // ./spire builds them before every run when a C compiler is there; CI runs ./spire test.
  if (Deno.env.get("CI") !== "true") return;
  assert.ok(built, `the native helpers are not built at ${DEFAULT_HELPERS_PATH}`);
});

Deno.test("openHelpers gives undefined for a missing library, so the engine falls back", () => {
  const lib = openLibrary();
  try {
    assert.equal(openHelpers(lib, "/nonexistent/libspire_rocksdb.so"), undefined);
  } finally {
    lib.close();
  }
});

/**
 * Writes random rows, reads random keys and scans through an engine with the
 * native helpers at `helpersPath`, then again through plain FFI calls on the
 * same data, and fails at the first read that differs.
 */
async function checkAgainstPlainCalls(
  helpersPath: string | undefined,
  numRuns: number,
  shrink = true,
  seed?: number,
) {
  const key = fc.uint8Array({ minLength: 1, maxLength: 24 });
  // Values from empty to past the point-read slab (1 KiB) and the scan buffers (64 KiB).
  const value = fc.oneof(
    fc.uint8Array({ maxLength: 200 }),
    fc.uint8Array({ minLength: 900, maxLength: 1200 }),
    fc.integer({ min: 60_000, max: 70_000 }).map((n) => new Uint8Array(n).fill(n & 0xff)),
  );
  const scan = fc.record({
    start: fc.uint8Array({ maxLength: 3 }),
    end: fc.uint8Array({ maxLength: 3 }),
    options: fc.record({
      batchSize: fc.integer({ min: 1, max: 50 }),
      limit: fc.integer({ min: 0, max: 80 }),
      reverse: fc.boolean(),
      keysOnly: fc.boolean(),
    }),
  });
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(key, value), { maxLength: 60 }),
      fc.array(key, { maxLength: 20 }),
      fc.array(scan, { maxLength: 6 }),
      fc.boolean(),
      async (rows, gets, scans, flush) => {
        const root = await Deno.makeTempDir({ prefix: "spire_helpers_test_" });
        try {
          const dataDir = `${root}/data`;
          const opened = { dataDir, tuning: TEST_TUNING };
          const native = await Engine.open(
            helpersPath === undefined ? opened : { ...opened, helpersPath },
          );
          assert.ok(native.nativeHelpers);
          await native.writeBatch(rows.map(([k, v]) => ({ op: "put", key: k, value: v })));
          if (flush) await native.flush();
          const readKeys = [...gets, ...rows.slice(0, 10).map(([k]) => k)];
          const seen = await readAll(native, readKeys, scans);
          await native.close();
          const plain = await Engine.open({ ...opened, helpers: false });
          const expected = await readAll(plain, readKeys, scans);
          await plain.close();
          const at = firstDifference(seen, expected);
          if (at !== -1) {
            throw new Error(
              `reads differ at item ${at}: ${JSON.stringify(seen[at])?.slice(0, 80)} against ` +
                `${JSON.stringify(expected[at])?.slice(0, 80)}`,
            );
          }
        } finally {
          await Deno.remove(root, { recursive: true });
        }
      },
    ),
    { numRuns, endOnFailure: !shrink, ...(seed === undefined ? {} : { seed }) },
  );
}

Deno.test({
  name: "native helpers return exactly what plain FFI calls return: gets and scans of random data",
  ignore: !built,
  fn: () => checkAgainstPlainCalls(undefined, 40),
});

/** fast-check's seed for the planted-bug runs: its 40 cases catch every plant below. */
const PLANT_SEED = 1;

/** Builds the helpers from their source with one line changed, into `dir`. */
async function buildPlanted(dir: string, from: string, to: string): Promise<string> {
  const source = await Deno.readTextFile(new URL("./_native/spire_rocksdb.c", import.meta.url));
  assert.ok(source.includes(from), `the planted bug's line is gone: ${from}`);
  await Deno.writeTextFile(`${dir}/planted.c`, source.replace(from, to));
  const out = `${dir}/libplanted.so`;
  const cc = await new Deno.Command("cc", {
    args: ["-O2", "-shared", "-fPIC", "-o", out, `${dir}/planted.c`],
  }).output();
  assert.ok(cc.success, new TextDecoder().decode(cc.stderr));
  return out;
}

Deno.test({
  name: "the comparison with plain calls fails on helpers that cut a value short or skip a row",
  ignore: !built,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "spire_helpers_plant_" });
    try {
      const plants = [
        [
          "lengths[2 * count + 1] = (uint32_t)value_len;",
          "lengths[2 * count + 1] = (uint32_t)(value_len / 2);",
        ],
        [ // a reverse scan skips its third row
          "if (reverse) iter_prev(it);",
          "if (reverse) { iter_prev(it); if (count == 2 && iter_valid(it)) iter_prev(it); }",
        ],
        ["*value_len = (uint32_t)length;", "*value_len = (uint32_t)(length > 0 ? length - 1 : 0);"],
      ];
      for (const [from, to] of plants) {
        const path = await buildPlanted(dir, from!, to!);
        // Caught by the comparison itself (a read that differs), not by anything else failing.
        // Seeded: unseeded, one run in this project's CI missed the reverse-scan plant (no reverse
        // scan over three rows or more among its 40 cases).
        await assert.rejects(
          checkAgainstPlainCalls(path, 40, false, PLANT_SEED),
          // fast-check's error carries the property's own error as its cause
          (e: Error) => /reads differ at item \d+/.test(String((e.cause as Error)?.message)),
          `not caught: ${to}`,
        );
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

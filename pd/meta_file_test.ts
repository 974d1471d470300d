import assert from "node:assert/strict";
import { crc32 } from "./_crc32.ts";
import { PdCorruptError } from "./errors.ts";
import { MemoryFileSystem, SimulatedCrashError } from "./fs.ts";
import { decodeMeta, encodeMeta, writeFileAtomic } from "./meta_file.ts";

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

Deno.test("crc32 matches the IEEE check value", () => {
  assert.equal(crc32(new TextEncoder().encode("123456789")), 0xcbf43926);
});

Deno.test("metadata files round-trip and name their kind", () => {
  const bytes = encodeMeta("ids", { limit: 4000 });
  assert.deepEqual(decodeMeta("f", "ids", bytes), { kind: "ids", limit: 4000 });
  assert.throws(() => decodeMeta("f", "tso", bytes), /holds "ids", expected "tso"/);
});

Deno.test("every flipped byte and every truncation of a metadata file is detected", () => {
  const bytes = encodeMeta("regions", { regions: [{ id: 1, startKey: "", endKey: "61" }] });
  for (let i = 0; i < bytes.length; i++) {
    for (const mask of [0x01, 0x80, 0xff]) {
      const bad = bytes.slice();
      bad[i]! ^= mask;
      assert.throws(() => decodeMeta("f", "regions", bad), PdCorruptError, `flip at ${i}`);
    }
  }
  for (let n = 0; n < bytes.length; n++) {
    assert.throws(() => decodeMeta("f", "regions", bytes.slice(0, n)), PdCorruptError, `cut ${n}`);
  }
  const longer = new Uint8Array(bytes.length + 1);
  longer.set(bytes);
  assert.throws(() => decodeMeta("f", "regions", longer), PdCorruptError);
});

/** Crashes a write at every step (with torn unsynced data) and returns what survived. */
async function survivors(
  write: (fs: MemoryFileSystem, data: Uint8Array) => Promise<void>,
  seeds: number,
): Promise<Uint8Array[]> {
  const oldBytes = encodeMeta("ids", { limit: 1000 });
  const newBytes = encodeMeta("ids", { limit: 2000 });
  const seen: Uint8Array[] = [];
  for (let seed = 0; seed < seeds; seed++) {
    for (let step = 0; step < 6; step++) {
      const fs = new MemoryFileSystem({ random: mulberry32(seed * 31 + step) });
      await fs.mkdir("/d");
      await writeFileAtomic(fs, "/d/ids.meta", oldBytes);
      fs.failAfter(step);
      try {
        await write(fs, newBytes);
      } catch (e) {
        if (!(e instanceof SimulatedCrashError)) throw e;
      }
      fs.crash();
      seen.push((await fs.readFile("/d/ids.meta")) ?? new Uint8Array());
    }
  }
  return seen;
}

Deno.test("an atomic write leaves the old or the new file after a crash at any step", async () => {
  const files = await survivors((fs, data) => writeFileAtomic(fs, "/d/ids.meta", data), 20);
  for (const bytes of files) {
    const { limit } = decodeMeta("f", "ids", bytes);
    assert.ok(limit === 1000 || limit === 2000);
  }
  assert.ok(files.some((b) => decodeMeta("f", "ids", b).limit === 2000));
});

Deno.test("the crash check catches a write in place (torn file), and the checksum flags it", async () => {
  const inPlace = async (fs: MemoryFileSystem, data: Uint8Array) => {
    await fs.writeFile("/d/ids.meta", data);
    await fs.syncFile("/d/ids.meta");
  };
  const files = await survivors(inPlace, 20);
  const broken = files.filter((bytes) => {
    try {
      decodeMeta("f", "ids", bytes);
      return false;
    } catch (e) {
      assert.ok(e instanceof PdCorruptError);
      return true;
    }
  });
  assert.ok(broken.length > 0, "writing in place must tear the file in some crash");
});

Deno.test("a rename without a directory fsync is lost in a crash", async () => {
  const fs = new MemoryFileSystem();
  await fs.mkdir("/d");
  await fs.writeFile("/d/a.tmp", new Uint8Array([1]));
  await fs.syncFile("/d/a.tmp");
  await fs.rename("/d/a.tmp", "/d/a");
  fs.crash();
  assert.equal(await fs.readFile("/d/a"), undefined);
  await fs.writeFile("/d/b", new Uint8Array([2]));
  await fs.syncFile("/d/b");
  await fs.syncDir("/d");
  fs.crash();
  assert.deepEqual(await fs.readFile("/d/b"), new Uint8Array([2]));
});

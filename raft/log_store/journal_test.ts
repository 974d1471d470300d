import assert from "node:assert/strict";
import fc from "fast-check";
import { JournalFileSystem, type JournalPlant } from "./journal.ts";
import { RegionLogStore } from "./region_log_store.ts";
import { SimDisk } from "./sim_disk.ts";
import { CorruptLogError } from "./region_log_store.ts";
import type { AppendFile } from "./file_system.ts";

const J = "/data/raft/journal";
const FILES = ["/data/raft/region_1/seg", "/data/raft/region_2/seg", "/data/raft/region_3/seg"];

async function openFiles(fs: JournalFileSystem): Promise<AppendFile[]> {
  for (const f of FILES) await fs.mkdirAll(f.slice(0, f.lastIndexOf("/")));
  return await Promise.all(FILES.map((f) => fs.openAppend(f, true)));
}

Deno.test("journal: concurrent syncs of appends to many files cost one fsync of the journal", async () => {
  const disk = new SimDisk();
  const fs = await JournalFileSystem.open({ fs: disk, dir: J });
  const files = await openFiles(fs);
  const before = disk.syncs;
  for (const [i, f] of files.entries()) await f.append(new Uint8Array(100).fill(i));
  await Promise.all(files.map((f) => f.sync()));
  assert.equal(disk.syncs - before, 1, "one fsync, of the journal, for three files");
  assert.equal(fs.stats.syncs, 1);
  assert.equal(fs.stats.syncRequests, 3);
  assert.equal(fs.stats.records, 3);
  await fs.close();
});

Deno.test("journal: each fsync is reported with its time on the given clock; a throwing observer fails nothing", async () => {
  const disk = new SimDisk();
  let now = 1000;
  const seen: number[] = [];
  const fs = await JournalFileSystem.open({
    fs: disk,
    dir: J,
    clock: () => (now += 2.5),
    onSynced: (ms) => {
      seen.push(ms);
      throw new Error("a broken metric");
    },
  });
  const files = await openFiles(fs);
  for (const round of [1, 2]) {
    for (const f of files) await f.append(new Uint8Array([round]));
    await Promise.all(files.map((f) => f.sync()));
  }
  assert.deepEqual(seen, [2.5, 2.5], "one report per fsync: one clock step between issue and done");
  assert.equal(fs.stats.syncs, 2);
  await files[0]!.append(new Uint8Array([3]));
  await files[0]!.sync(); // still works after the observer threw
  assert.equal(seen.length, 3);
  await fs.close();
});

Deno.test("journal: a crash that drops every unsynced byte of the files loses no synced append", async () => {
  const disk = new SimDisk();
  const fs = await JournalFileSystem.open({ fs: disk, dir: J });
  const files = await openFiles(fs);
  for (const [i, f] of files.entries()) {
    await f.append(new Uint8Array([i, 1]));
    await f.sync();
    await f.append(new Uint8Array([i, 2])); // appended, never synced
  }
  fs.abandon();
  disk.crash(() => 0);
  for (const f of FILES) assert.equal((await disk.readFile(f)).length, 0, "the files lost it all");
  const again = await JournalFileSystem.open({ fs: disk, dir: J });
  // The last file's second append went into the journal with nobody's sync: it is lost.
  for (const [i, f] of FILES.entries()) {
    assert.deepEqual([...await again.readFile(f)], i < 2 ? [i, 1, i, 2] : [i, 1]);
  }
  assert.deepEqual(again.replayed, {
    journals: 1,
    records: 5,
    files: 3,
    filesRepaired: 3,
    bytesRepaired: 10,
  });
  // The replay left the files durable and the journal empty: another crash changes nothing.
  disk.crash(() => 0);
  assert.deepEqual([...await disk.readFile(FILES[0]!)], [0, 1, 0, 2]);
  assert.deepEqual(await disk.list(J), ["journal_0000000002.wal"]);
  await again.close();
});

Deno.test("journal: a restart without a crash (files intact, not durable) fsyncs them before the journal goes", async () => {
  const disk = new SimDisk();
  const fs = await JournalFileSystem.open({ fs: disk, dir: J });
  const [a] = await openFiles(fs);
  await a!.append(new Uint8Array([7, 7, 7]));
  await a!.sync();
  fs.abandon(); // the process dies; the machine does not
  const again = await JournalFileSystem.open({ fs: disk, dir: J });
  assert.equal(again.replayed.filesRepaired, 0);
  await again.close();
  disk.crash(() => 0); // now the machine goes down too
  assert.deepEqual([...await disk.readFile(FILES[0]!)], [7, 7, 7]);
});

Deno.test("journal: removing a file with journaled appends checkpoints first, so a replay cannot bring it back", async () => {
  const disk = new SimDisk();
  const fs = await JournalFileSystem.open({ fs: disk, dir: J });
  const [a, b] = await openFiles(fs);
  await a!.append(new Uint8Array([1]));
  await b!.append(new Uint8Array([2]));
  await a!.sync();
  a!.close();
  await fs.remove(FILES[0]!);
  assert.equal(fs.stats.checkpoints, 1);
  assert.equal(fs.stats.checkpointFileSyncs, 2, "both files of the old journal");
  fs.abandon();
  disk.crash(() => 0);
  const again = await JournalFileSystem.open({ fs: disk, dir: J });
  await assert.rejects(disk.readFile(FILES[0]!), Deno.errors.NotFound);
  assert.deepEqual([...await again.readFile(FILES[1]!)], [2], "checkpointed: durable by itself");
  await again.close();
});

Deno.test("journal: a torn last record is dropped; a damaged record before the end is corruption", async () => {
  const disk = new SimDisk();
  const fs = await JournalFileSystem.open({ fs: disk, dir: J });
  const [a] = await openFiles(fs);
  await a!.append(new Uint8Array(50).fill(1));
  await a!.append(new Uint8Array(50).fill(2));
  await a!.sync();
  fs.abandon();
  const name = `${J}/journal_0000000001.wal`;
  const bytes = await disk.readFile(name);
  // Torn: the journal ends inside its second record.
  await disk.truncate(name, bytes.length - 10);
  const again = await JournalFileSystem.open({ fs: disk, dir: J });
  assert.equal(again.replayed.records, 1);
  again.abandon();
  // Damaged: a byte of the first record's body flipped, with a record after it.
  const damaged = bytes.slice();
  damaged[20]! ^= 0xff;
  const f = await disk.openAppend(`${J}/journal_0000000009.wal`, true);
  await f.append(damaged);
  await f.sync();
  await assert.rejects(
    JournalFileSystem.open({ fs: disk, dir: J }),
    (e: unknown) => e instanceof CorruptLogError && /fails its checksum/.test(e.message),
  );
});

Deno.test("journal: a failed fsync fails every waiting and later sync and is reported once", async () => {
  let fail = false;
  const disk = new SimDisk({
    syncDelay: () => fail ? Promise.reject(new Error("EIO")) : Promise.resolve(),
  });
  const failures: Error[] = [];
  const fs = await JournalFileSystem.open({ fs: disk, dir: J, onFailure: (e) => failures.push(e) });
  const [a, b] = await openFiles(fs);
  await a!.append(new Uint8Array([1]));
  fail = true;
  await assert.rejects(a!.sync(), /EIO/);
  fail = false; // an fsync that failed is not retried: the pages it covered may be gone
  await b!.append(new Uint8Array([2]));
  await assert.rejects(b!.sync(), /Raft log journal failed: EIO/);
  assert.equal(failures.length, 1);
  await fs.close();
});

Deno.test("journal: region logs written through it recover every synced entry after a crash", async () => {
  const disk = new SimDisk();
  const conf = { voters: [1], learners: [] };
  const fs = await JournalFileSystem.open({ fs: disk, dir: J, checkpointBytes: 4096 });
  const stores = await Promise.all(
    [1, 2, 3].map((id) =>
      RegionLogStore.open({
        fs,
        dir: `/data/raft/region_${id}`,
        confState: conf,
        segmentBytesMax: 2048,
      })
    ),
  );
  for (let index = 1; index <= 60; index++) {
    await Promise.all(stores.map((s, i) =>
      s.save({
        entries: [{ term: 1, index, type: "normal", data: new Uint8Array(40).fill(i) }],
        hardState: { term: 1, vote: 1, commit: index },
      }, true)
    ));
  }
  assert.ok(fs.stats.checkpoints > 0, "the journal passed its checkpoint size");
  fs.abandon();
  disk.crash(() => 0);
  const again = await JournalFileSystem.open({ fs: disk, dir: J });
  for (const id of [1, 2, 3]) {
    const s = await RegionLogStore.open({ fs: again, dir: `/data/raft/region_${id}` });
    assert.equal(s.lastIndex(), 60, `region ${id}`);
    assert.equal(s.hardState.commit, 60);
    assert.deepEqual([...s.entries(60, 61, 1e6)[0]!.data], new Array(40).fill(id - 1));
    s.close();
  }
  await again.close();
});

/**
 * Random appends and syncs over three files, fsyncs finishing in random order and checkpoints
 * every 4 KiB, then a crash at a random moment that keeps a random part of every file's
 * unsynced bytes. Returns what was lost, or undefined.
 */
async function crashRun(
  seed: number,
  plants: readonly JournalPlant[],
): Promise<string | undefined> {
  let state = seed >>> 0 || 1;
  const random = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
  const waiting: (() => void)[] = [];
  // Everything here is promises over memory: a few microtask turns let every chain move on.
  const turn = async () => {
    for (let k = 0; k < 8; k++) await null;
  };
  const disk = new SimDisk({ syncDelay: () => new Promise<void>((r) => waiting.push(r)) });
  const pump = async <T>(p: Promise<T>): Promise<T> => {
    let done = false;
    p.finally(() => done = true).catch(() => {});
    while (!done) {
      waiting.shift()?.();
      await turn();
    }
    return p;
  };
  const fs = await pump(
    JournalFileSystem.open({ fs: disk, dir: J, checkpointBytes: 4096, plants }),
  );
  const files = await openFiles(fs);
  const written = FILES.map(() => [] as number[]);
  const acked = FILES.map(() => 0);
  const steps = 50 + Math.floor(random() * 300);
  for (let step = 0; step < steps; step++) {
    const r = random();
    const i = Math.floor(random() * FILES.length);
    if (r < 0.45) {
      const data = Array.from(
        { length: 1 + Math.floor(random() * 300) },
        () => (random() * 256) | 0,
      );
      written[i]!.push(...data);
      files[i]!.append(new Uint8Array(data)).catch(() => {});
    } else if (r < 0.7) {
      const covered = written.map((w) => w.length);
      files[i]!.sync().then(() => covered.forEach((n, k) => acked[k] = Math.max(acked[k]!, n)))
        .catch(() => {});
    } else if (r < 0.9) {
      const k = Math.floor(random() * (waiting.length + 1));
      waiting.splice(k, 1)[0]?.();
    }
    await turn();
  }
  fs.abandon();
  disk.crash(random);
  while (waiting.length > 0) waiting.shift()!(); // the dead incarnation's fsyncs fail now
  await turn();
  let again: JournalFileSystem;
  try {
    again = await pump(JournalFileSystem.open({ fs: disk, dir: J, checkpointBytes: 4096, plants }));
  } catch (error) {
    return `reopening failed: ${(error as Error).message}`;
  }
  try {
    for (const [k, path] of FILES.entries()) {
      const got = [...await again.readFile(path)];
      const want = written[k]!;
      if (got.length < acked[k]!) return `${path}: ${got.length} bytes, ${acked[k]} acknowledged`;
      if (got.some((b, j) => b !== want[j])) return `${path}: bytes differ from what was appended`;
    }
    return undefined;
  } finally {
    again.abandon();
  }
}

Deno.test("journal: random appends, syncs, checkpoints and a crash lose no acknowledged byte", async () => {
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 1, max: 2 ** 31 - 1 }), async (seed) => {
      assert.equal(await crashRun(seed, []), undefined, `seed ${seed}`);
    }),
    { numRuns: 400 },
  );
});

Deno.test("journal: the random crash check catches a journal that is not replayed and one deleted before its files are fsynced", async () => {
  for (const plant of ["skip-replay", "delete-before-sync"] as const) {
    let caught: string | undefined;
    for (let seed = 1; seed <= 300 && caught === undefined; seed++) {
      caught = await crashRun(seed, [plant]);
    }
    assert.ok(caught !== undefined, `planted ${plant} was not caught in 300 seeds`);
  }
});

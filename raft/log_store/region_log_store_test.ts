import assert from "node:assert/strict";
import type { Entry } from "../core/mod.ts";
import { DenoFileSystem } from "./file_system.ts";
import { CorruptLogError, regionLogDir, RegionLogStore } from "./region_log_store.ts";
import { SimDisk } from "./sim_disk.ts";
import { Crc32c } from "./crc32c.ts";

const conf = { voters: [1, 2, 3], learners: [] };
const ent = (index: number, term: number, text = `e${index}t${term}`): Entry => ({
  index,
  term,
  type: "normal",
  data: new TextEncoder().encode(text),
});
const ents = (from: number, to: number, term: number) => {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push(ent(i, term));
  return out;
};
const terms = (s: RegionLogStore) =>
  s.entries(s.firstIndex(), s.lastIndex() + 1, Infinity).map((e) => `${e.index}:${e.term}`);

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "spire_raftlog_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("crc32c matches the standard check value", () => {
  const crc = new Crc32c();
  assert.equal(crc.compute(new TextEncoder().encode("123456789")), 0xe3069283);
  assert.equal(crc.compute(new Uint8Array(32)), 0x8a9136aa);
});

Deno.test("region log survives reopen with entries, hard state and a truncated conflict", async () => {
  await withTempDir(async (data) => {
    const fs = new DenoFileSystem();
    const dir = regionLogDir(data, 7);
    assert.equal(dir, `${data}/raft/region_7`);
    let s = await RegionLogStore.open({ fs, dir, confState: conf });
    await s.save({ entries: ents(1, 5, 1), hardState: { term: 1, vote: 2, commit: 2 } }, true);
    await s.save({ entries: ents(4, 6, 2), hardState: { term: 2, vote: 3, commit: 3 } }, true);
    s.close();
    s = await RegionLogStore.open({ fs, dir });
    assert.deepEqual(terms(s), ["1:1", "2:1", "3:1", "4:2", "5:2", "6:2"]);
    assert.deepEqual(s.initialState().hardState, { term: 2, vote: 3, commit: 3 });
    assert.deepEqual(s.initialState().confState, conf);
    assert.equal(new TextDecoder().decode(s.entries(5, 6, 0)[0]!.data), "e5t2");
    s.close();
  });
});

Deno.test("region log uses one fsync for many entries saved together", async () => {
  const fs = new SimDisk();
  const s = await RegionLogStore.open({ fs, dir: "/r", confState: conf });
  const before = s.stats.fsyncs;
  await s.save({ entries: ents(1, 500, 1), hardState: { term: 1, vote: 1, commit: 0 } }, true);
  assert.equal(s.stats.fsyncs - before, 1);
  await s.save({ entries: [], hardState: { term: 1, vote: 1, commit: 500 } }, false);
  assert.equal(s.stats.fsyncs - before, 1, "a commit-only change needs no fsync");
  s.close();
});

Deno.test("region log recovery cuts a torn last record at every byte offset", async () => {
  await withTempDir(async (data) => {
    const fs = new DenoFileSystem();
    const dir = `${data}/src`;
    const s = await RegionLogStore.open({ fs, dir, confState: conf });
    await s.save({ entries: ents(1, 3, 1), hardState: { term: 1, vote: 1, commit: 1 } }, true);
    const seg = `${dir}/seg_0000000001.wal`;
    const before = (await Deno.stat(seg)).size;
    await s.save({ entries: [ent(4, 1, "the last record")] }, true);
    const after = (await Deno.stat(seg)).size;
    s.close();
    const full = await Deno.readFile(seg);
    assert.ok(after - before > 20);
    for (let cut = before; cut < after; cut++) {
      const copy = `${data}/cut_${cut}`;
      await Deno.mkdir(copy);
      await Deno.writeFile(`${copy}/seg_0000000001.wal`, full.subarray(0, cut));
      const r = await RegionLogStore.open({ fs, dir: copy });
      assert.equal(r.lastIndex(), 3, `cut at ${cut}`);
      assert.equal((await Deno.stat(`${copy}/seg_0000000001.wal`)).size, before, `cut at ${cut}`);
      await r.save({ entries: [ent(4, 2)] }, true);
      r.close();
      const again = await RegionLogStore.open({ fs, dir: copy });
      assert.deepEqual(terms(again).slice(-2), ["3:1", "4:2"]);
      again.close();
    }
  });
});

Deno.test("region log refuses a corrupt record in the middle, naming file and offset", async () => {
  await withTempDir(async (data) => {
    const fs = new DenoFileSystem();
    const s = await RegionLogStore.open({ fs, dir: data, confState: conf });
    await s.save({ entries: ents(1, 10, 1) }, true);
    s.close();
    const seg = `${data}/seg_0000000001.wal`;
    const bytes = await Deno.readFile(seg);
    const flipped = bytes.slice();
    const at = Math.floor(bytes.length / 2);
    flipped[at] = flipped[at]! ^ 0x40;
    await Deno.writeFile(seg, flipped);
    await assert.rejects(
      () => RegionLogStore.open({ fs, dir: data }),
      (e: unknown) =>
        e instanceof CorruptLogError && e.path === seg && e.offset <= at && e.offset > 0 &&
        e.message.includes(seg) && e.message.includes(`offset ${e.offset}`),
    );
  });
});

Deno.test("region log snapshot + compaction deletes old segments and survives reopen", async () => {
  const fs = new SimDisk();
  let s = await RegionLogStore.open({ fs, dir: "/r", confState: conf, segmentBytesMax: 1024 });
  for (let i = 1; i <= 200; i += 10) await s.save({ entries: ents(i, i + 9, 1) }, true);
  const segsBefore = s.stats.segments;
  assert.ok(segsBefore > 4, `expected several segments, got ${segsBefore}`);
  await s.createSnapshot(150, conf, new TextEncoder().encode("image@150"));
  await s.compact(140);
  assert.equal(s.firstIndex(), 141);
  assert.equal(s.term(140), 1);
  assert.ok(s.stats.segments < segsBefore, "old segments must be deleted");
  assert.equal((await fs.list("/r")).filter((n) => n.endsWith(".snap")).length, 1);
  s.close();
  s = await RegionLogStore.open({ fs, dir: "/r" });
  assert.equal(s.firstIndex(), 151);
  assert.equal(s.lastIndex(), 200);
  assert.equal(new TextDecoder().decode(s.snapshot().data), "image@150");
  assert.equal(s.snapshot().metadata.index, 150);
  s.close();
});

Deno.test("region log installing a leader's snapshot discards the old log", async () => {
  const fs = new SimDisk();
  let s = await RegionLogStore.open({ fs, dir: "/r", confState: conf, segmentBytesMax: 1024 });
  for (let i = 1; i <= 100; i += 10) await s.save({ entries: ents(i, i + 9, 1) }, true);
  const snap = {
    metadata: { index: 60, term: 3, confState: { voters: [1, 2], learners: [3] } },
    data: new Uint8Array([9, 9]),
  };
  await s.save({
    snapshot: snap,
    entries: ents(61, 62, 3),
    hardState: { term: 3, vote: 0, commit: 60 },
  }, true);
  assert.deepEqual(terms(s), ["61:3", "62:3"]);
  s.close();
  s = await RegionLogStore.open({ fs, dir: "/r" });
  assert.deepEqual(terms(s), ["61:3", "62:3"]);
  assert.deepEqual(s.initialState().confState, { voters: [1, 2], learners: [3] });
  assert.equal(s.term(60), 3);
  s.close();
});

Deno.test("region log on a simulated disk keeps synced entries and loses unsynced ones", async () => {
  for (let trial = 0; trial < 40; trial++) {
    const fs = new SimDisk();
    const s = await RegionLogStore.open({ fs, dir: "/r", confState: conf, segmentBytesMax: 2048 });
    await s.save({ entries: ents(1, 30, 1), hardState: { term: 1, vote: 1, commit: 5 } }, true);
    await s.save({ entries: ents(31, 60, 1) }, false);
    const cut = trial / 40;
    fs.crash(() => cut);
    const r = await RegionLogStore.open({ fs, dir: "/r" });
    assert.ok(r.lastIndex() >= 30 && r.lastIndex() <= 60, `trial ${trial}: ${r.lastIndex()}`);
    assert.deepEqual(r.initialState().hardState.term, 1);
    assert.equal(r.term(r.lastIndex()), 1);
    r.close();
  }
});

Deno.test("region log rejects a gap in appended entries", async () => {
  const s = await RegionLogStore.open({ fs: new SimDisk(), dir: "/r", confState: conf });
  await s.save({ entries: ents(1, 2, 1) }, true);
  await assert.rejects(() => s.save({ entries: ents(5, 6, 1) }, true), /gap/);
  s.close();
});

Deno.test("region log matches a model through random appends, overwrites, snapshots and crashes", async () => {
  let seed = 12345;
  const rand = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 4294967296;
  };
  const int = (n: number) => Math.floor(rand() * n);
  for (let trial = 0; trial < 30; trial++) {
    const fs = new SimDisk();
    const dir = "/m";
    let s = await RegionLogStore.open({ fs, dir, confState: conf, segmentBytesMax: 1024 });
    // The model: the log's entries by index (above the snapshot), the snapshot index, and the
    // hard states a crash may leave: the synced one and any written after it without a sync.
    let model: Entry[] = [];
    let snapIndex = 0;
    let term = 1;
    let hsCandidates = [JSON.stringify({ term: 0, vote: 0, commit: 0 })];
    for (let step = 0; step < 120; step++) {
      const roll = rand();
      const last = snapIndex + model.length;
      if (roll < 0.5) {
        // Append, sometimes overwriting a suffix with a newer term.
        const from = model.length > 0 && rand() < 0.3
          ? snapIndex + 1 + int(model.length)
          : last + 1;
        if (from <= last) term++;
        const batch = ents(from, from + int(5), term);
        await s.save({ entries: batch }, true);
        model = model.slice(0, from - snapIndex - 1).concat(batch);
        hsCandidates = hsCandidates.slice(-1); // the fsync covers every earlier write
      } else if (roll < 0.65) {
        const hs = { term, vote: int(3), commit: Math.min(last, int(last + 1)) };
        const sync = rand() < 0.5;
        await s.save({ entries: [], hardState: hs }, sync);
        hsCandidates = sync ? [JSON.stringify(hs)] : [...hsCandidates, JSON.stringify(hs)];
      } else if (roll < 0.75 && model.length > 0) {
        const at = snapIndex + 1 + int(model.length);
        await s.createSnapshot(at, conf, new TextEncoder().encode(`img${at}`));
        await s.compact(at);
        model = model.slice(at - snapIndex);
        snapIndex = at;
        hsCandidates = hsCandidates.slice(-1); // the snapshot record's fsync covers earlier writes
      } else if (roll < 0.9) {
        s.close();
        fs.crash(rand);
        s = await RegionLogStore.open({ fs, dir, segmentBytesMax: 1024 });
        const hs = JSON.stringify(s.initialState().hardState);
        assert.ok(hsCandidates.includes(hs), `trial ${trial} step ${step}: hard state ${hs}`);
        hsCandidates = [hs];
      }
      assert.equal(s.snapshot().metadata.index, snapIndex, `trial ${trial} step ${step}`);
      assert.deepEqual(
        terms(s),
        model.map((e) => `${e.index}:${e.term}`),
        `trial ${trial} step ${step}`,
      );
      if (snapIndex > 0) {
        assert.equal(new TextDecoder().decode(s.snapshot().data), `img${snapIndex}`);
      }
    }
    s.close();
  }
});

import assert from "node:assert/strict";
import { crashLoop } from "../node/testing.ts";
import { mkdirDurable } from "../raft/log_store/mod.ts";
import { type CutReport, PowercutFs, type PowercutOptions } from "../node/powercut_fs.ts";

Deno.test({
  name: "powercut_fs: a cut brings every file back to its last fsync, whatever changed it since",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const fs = await PowercutFs.mount();
    const te = new TextEncoder();
    const read = (name: string) => Deno.readTextFile(`${fs.root}/${name}`);
    try {
      const synced = async (name: string, text: string) => {
        using f = await Deno.open(`${fs.root}/${name}`, { create: true, write: true });
        await f.write(te.encode(text));
        await f.syncData();
      };
      await synced("append", "kept;");
      await synced("overwrite", "0123456789");
      await synced("shrink", "0123456789");
      await synced("reopen", "kept");
      {
        using f = await Deno.open(`${fs.root}/append`, { append: true });
        await f.write(te.encode("lost;")); // appended after the fsync
      }
      {
        using f = await Deno.open(`${fs.root}/overwrite`, { write: true });
        await f.seek(4, Deno.SeekMode.Start);
        await f.write(te.encode("ABCDEFGHIJ")); // overwrites the tail and grows the file
      }
      await Deno.truncate(`${fs.root}/shrink`, 3);
      await Deno.writeTextFile(`${fs.root}/reopen`, "x"); // a truncating open
      await Deno.writeTextFile(`${fs.root}/new`, "never synced");
      const before = await Promise.all(["append", "overwrite", "shrink", "reopen"].map(read));
      assert.deepEqual(before, ["kept;lost;", "0123ABCDEFGHIJ", "012", "x"]);
      const report = await fs.cut();
      const after = await Promise.all(["append", "overwrite", "shrink", "reopen", "new"].map(read));
      assert.deepEqual(after, ["kept;", "0123456789", "0123456789", "kept", ""]);
      assert.equal(report.files, 5);
      // Nothing left to undo: a second cut changes nothing.
      assert.deepEqual(await fs.cut(), { files: 0, records: 0, bytes: 0, names: 0 });
      assert.equal(await read("overwrite"), "0123456789");
    } finally {
      await fs.unmount();
    }
  },
});

Deno.test({
  name: "powercut_fs --names: a name is durable only once its directory is fsynced",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const fs = await PowercutFs.mount({ names: true });
    const r = fs.root;
    const exists = (p: string) => Deno.stat(`${r}/${p}`).then(() => true, () => false);
    const syncDir = async (p: string) => {
      using d = await Deno.open(`${r}/${p}`, { read: true });
      await d.sync();
    };
    const synced = async (p: string, text: string) => {
      using f = await Deno.open(`${r}/${p}`, { create: true, write: true, truncate: true });
      await f.write(new TextEncoder().encode(text));
      await f.syncData();
    };
    try {
      await synced("kept", "k");
      await synced("gone", "g"); // its data synced, its name not yet
      await synced("old", "o");
      await synced("moved", "m");
      await mkdirDurable(`${r}/t/durable/deep`); // fsyncs / (t's parent), t and t/durable
      await synced("t/durable/deep/f", "kept");
      await syncDir("t/durable/deep");
      // From here on nothing fsyncs / or t.
      await synced("unsynced-name", "u");
      await Deno.remove(`${r}/old`);
      await Deno.rename(`${r}/moved`, `${r}/renamed`);
      await Deno.mkdir(`${r}/t/plain/deep`, { recursive: true });
      await synced("t/plain/deep/f", "lost with its directory");
      await syncDir("t/plain/deep");
      const report = await fs.cut();
      assert.ok(report.names >= 4, JSON.stringify(report));
      assert.equal(await exists("unsynced-name"), false, "a create without a directory fsync");
      assert.equal(await Deno.readTextFile(`${r}/old`), "o", "an unlink without one is undone");
      assert.equal(await Deno.readTextFile(`${r}/moved`), "m", "so is a rename");
      assert.equal(await exists("renamed"), false);
      assert.equal(await exists("t/plain"), false, "a plain mkdir -p is not durable");
      assert.equal(await Deno.readTextFile(`${r}/t/durable/deep/f`), "kept", "mkdirDurable is");
      assert.equal(await Deno.readTextFile(`${r}/kept`), "k");
      assert.equal(await exists("gone"), true, "made durable by mkdirDurable's fsync of /");
    } finally {
      await fs.unmount();
    }
  },
});

Deno.test({
  name: "powercut_fs --seed: a partial cut keeps a prefix of the unsynced appends, sometimes torn",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const fs = await PowercutFs.mount({ seed: 7 });
    const chunks = ["aaaa", "bbbb", "cccc", "dddd", "eeee"];
    const all = chunks.join("");
    const seen = { none: 0, some: 0, torn: 0, all: 0 };
    try {
      for (let round = 0; round < 40; round++) {
        const path = `${fs.root}/f${round}`;
        {
          using f = await Deno.open(path, { create: true, write: true });
          await f.write(new TextEncoder().encode("synced:"));
          await f.syncData();
        }
        for (const c of chunks) {
          using f = await Deno.open(path, { append: true });
          await f.write(new TextEncoder().encode(c));
        }
        await fs.cut();
        const text = await Deno.readTextFile(path);
        assert.ok(text.startsWith("synced:"), text);
        const kept = text.slice("synced:".length);
        assert.equal(all.slice(0, kept.length), kept, "not a prefix of what was written");
        if (kept.length === 0) seen.none++;
        else if (kept.length === all.length) seen.all++;
        else if (kept.length % 4 !== 0) seen.torn++;
        else seen.some++;
      }
      assert.ok(
        seen.none > 0 && seen.some > 0 && seen.torn > 0 && seen.all > 0,
        JSON.stringify(seen),
      );
    } finally {
      await fs.unmount();
    }
  },
});

// The node's files on powercut_fs: at every kill, each file loses what was written since its
// last fsync, as in a power cut (a kill alone leaves the page cache, synced or not, in place).

/** 8 kills of a node on powercut_fs (strict names), a cut after each; checks every acked write. */
async function cutRun(options: PowercutOptions): Promise<CutReport[]> {
  const fs = await PowercutFs.mount({ names: true, ...options });
  const cuts: CutReport[] = [];
  try {
    const run = await crashLoop({
      kills: 8,
      logCompactEntries: 500,
      dir: `${fs.root}/node`,
      afterKill: async () => void cuts.push(await fs.cut()),
    });
    console.log(
      `kills ${run.kills}, acknowledged writes ${run.acked}, cuts ${JSON.stringify(cuts)}`,
    );
    assert.ok(run.acked > 0, "no write was acknowledged");
    assert.deepEqual(run.violations.slice(0, 5), [], `${run.violations.length} violations`);
    assert.equal(cuts.length, 8);
    return cuts;
  } finally {
    await fs.unmount();
  }
}

Deno.test({
  name:
    "power loss: a node whose disk loses every unsynced byte at each kill keeps every acknowledged write",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const cuts = await cutRun({});
    // The cuts were real: every one threw away unsynced bytes (RocksDB's WAL, which the node
    // writes without fsync because the Raft log is durable, at least).
    assert.ok(cuts.every((c) => c.bytes > 0), JSON.stringify(cuts));
  },
});

Deno.test({
  name:
    "power loss: partial cuts (some unsynced bytes reach the disk, an append torn) lose nothing acknowledged",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const cuts = await cutRun({ seed: 19 });
    assert.ok(cuts.some((c) => c.bytes > 0), JSON.stringify(cuts));
  },
});

Deno.test({
  name:
    "power loss: the check catches a journal that acknowledges syncs it never fsyncs, which kills alone do not",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const env = { SPIRE_TEST_PLANTS: "journal-skip-fsync" };
    // Kills alone: the page cache keeps the unsynced journal, so nothing is missed.
    const killed = await crashLoop({ kills: 3, logCompactEntries: 500, env });
    assert.deepEqual(killed.violations.slice(0, 3), [], "kills alone found the planted bug");
    const fs = await PowercutFs.mount({ names: true });
    try {
      // Caught either way: acknowledged SETs lost, or a region log the node finds damaged
      // (a snapshot or entries it acknowledged are gone) and refuses to start from.
      let caught: string;
      try {
        const cut = await crashLoop({
          kills: 4,
          logCompactEntries: 500,
          env,
          dir: `${fs.root}/node`,
          afterKill: async () => void await fs.cut(),
          stopAtFirstViolation: true,
        });
        caught = cut.violations.find((v) => /^acknowledged SET of .* is lost$/.test(v.problem))
          ?.problem ?? "";
      } catch (e) {
        if (!(e instanceof Error) || !/CorruptLogError/.test(e.message)) throw e;
        caught = "the node refused to start: CorruptLogError";
      }
      assert.notEqual(caught, "", "the planted bug went unnoticed");
      console.log(`caught: ${caught}`);
    } finally {
      await fs.unmount();
    }
  },
});

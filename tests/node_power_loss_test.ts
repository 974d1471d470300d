import assert from "node:assert/strict";
import { crashLoop } from "../node/testing.ts";
import { type CutReport, PowercutFs } from "../node/powercut_fs.ts";

// The node's files on powercut_fs: at every kill, each file loses what was written since its
// last fsync, as in a power cut (a kill alone leaves the page cache, synced or not, in place).

Deno.test({
  name:
    "power loss: a node whose disk loses every unsynced byte at each kill keeps every acknowledged write",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const fs = await PowercutFs.mount();
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
      // The cuts were real: every one threw away unsynced bytes (RocksDB's WAL, which the node
      // writes without fsync because the Raft log is durable, at least).
      assert.equal(cuts.length, 8);
      assert.ok(cuts.every((c) => c.bytes > 0), JSON.stringify(cuts));
    } finally {
      await fs.unmount();
    }
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
    const fs = await PowercutFs.mount();
    try {
      const cut = await crashLoop({
        kills: 4,
        logCompactEntries: 500,
        env,
        dir: `${fs.root}/node`,
        afterKill: async () => void await fs.cut(),
        stopAtFirstViolation: true,
      });
      assert.ok(cut.violations.length > 0, "the planted bug went unnoticed");
      assert.ok(
        cut.violations.some((v) => /^acknowledged SET of .* is lost$/.test(v.problem)),
        `expected a lost acknowledged write, got: ${cut.violations[0]?.problem}`,
      );
    } finally {
      await fs.unmount();
    }
  },
});

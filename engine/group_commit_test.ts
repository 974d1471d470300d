import assert from "node:assert/strict";
import { Engine } from "./engine.ts";
import { EngineOverloadedError } from "./errors.ts";
import { type GroupCommitLimits, GroupCommitter } from "./group_commit.ts";
import { b, key, tempEngine } from "./_test_util.ts";

function recorder(fail?: (group: number[][]) => boolean) {
  const groups: number[][][] = [];
  const committer = new GroupCommitter<number>(async (requests) => {
    await new Promise((r) => setTimeout(r, 1));
    const group = requests.map((r) => [...r]);
    if (fail?.(group)) throw new Error("disk full");
    groups.push(group);
  }, { groupOpsMax: 5, groupBytesMax: 100, queueRequestsMax: 10 });
  return { groups, committer };
}

Deno.test("group commit: requests queued behind a commit share the next one, in order, each whole", async () => {
  const { groups, committer } = recorder();
  await Promise.all([
    committer.submit([1, 2], 2),
    committer.submit([3], 1),
    committer.submit([4, 5], 2),
    committer.submit([6], 1),
  ]);
  assert.deepEqual(groups, [[[1, 2]], [[3], [4, 5], [6]]]);
  assert.deepEqual(committer.counters, { groups: 2, requests: 4 });
});

Deno.test("group commit: groups respect op and byte limits; an oversized request goes alone", async () => {
  const { groups, committer } = recorder();
  await Promise.all([
    committer.submit([0], 1),
    committer.submit([1, 2, 3], 3),
    committer.submit([4, 5, 6], 3), // would make 6 ops > 5
    committer.submit([7], 90),
    committer.submit([8], 20), // would make 110 bytes > 100
    committer.submit([9, 9, 9, 9, 9, 9, 9], 7), // alone: above the op limit by itself
  ]);
  assert.deepEqual(groups, [[[0]], [[1, 2, 3]], [[4, 5, 6], [7]], [[8]], [[9, 9, 9, 9, 9, 9, 9]]]);
});

Deno.test("group commit: a failed commit rejects only the requests of that group", async () => {
  const { committer } = recorder((group) => group.some((r) => r.includes(13)));
  const results = await Promise.allSettled([
    committer.submit([1], 1),
    committer.submit([13], 1),
    committer.submit([2], 1),
  ]);
  assert.deepEqual(results.map((r) => r.status), ["fulfilled", "rejected", "rejected"]);
  await committer.submit([3], 1); // and it keeps working
});

Deno.test("group commit: a full queue rejects with EngineOverloadedError", async () => {
  const { committer } = recorder();
  const accepted = Array.from({ length: 11 }, (_, i) => committer.submit([i], 1));
  await assert.rejects(committer.submit([99], 1), EngineOverloadedError);
  await Promise.all(accepted);
  await committer.idle();
});

async function syncsFor64Writers(groupOpsMax: number): Promise<{ syncs: number; groups: number }> {
  await using t = await tempEngine({ syncWrites: true }, { groupCommit: { groupOpsMax } });
  const s0 = t.engine.getStats();
  await Promise.all(Array.from({ length: 64 }, (_, i) => t.engine.put(key(i), b("v"))));
  const s1 = t.engine.getStats();
  assert.equal(await t.engine.countRange(new Uint8Array(), new Uint8Array()), 64);
  return {
    syncs: s1.walSyncs - s0.walSyncs,
    groups: s1.groupCommit.groups - s0.groupCommit.groups,
  };
}

Deno.test("64 concurrent synced writers share fsyncs: RocksDB counts at most 3 WAL syncs", async () => {
  const r = await syncsFor64Writers(20_000);
  assert.ok(r.syncs <= 3, `${r.syncs} WAL syncs for 64 writers`);
  assert.equal(r.syncs, r.groups);
});

Deno.test("the fsync-sharing check fails without grouping (one op per group: 64 syncs)", async () => {
  const r = await syncsFor64Writers(1);
  assert.equal(r.syncs, 64);
});

Deno.test("group commit: limits must be known whole numbers of 1 or more", () => {
  const commit = () => Promise.resolve();
  assert.throws(() => new GroupCommitter(commit, { queueRequestsMax: 0 }), RangeError);
  assert.throws(() => new GroupCommitter(commit, { groupOpsMax: NaN }), RangeError);
  assert.throws(() => new GroupCommitter(commit, { groupBytesMax: 1.5 }), RangeError);
  assert.throws(
    () => new GroupCommitter(commit, { groupOpsMaxx: 3 } as Partial<GroupCommitLimits>),
    /^TypeError: Invalid group commit limit groupOpsMaxx: unknown/,
  );
  new GroupCommitter(commit, { groupOpsMax: 1 }); // the smallest allowed
});

Deno.test("Engine.open checks the group commit limits before it opens RocksDB", async () => {
  const root = await Deno.makeTempDir({ prefix: "spire_group_limits_" });
  try {
    await assert.rejects(
      Engine.open({ dataDir: `${root}/data`, groupCommit: { queueRequestsMax: -1 } }),
      /^RangeError: Invalid group commit limit queueRequestsMax: -1/,
    );
    await assert.rejects(() => Deno.stat(`${root}/data`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

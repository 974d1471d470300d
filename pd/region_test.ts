import assert from "node:assert/strict";
import fc from "fast-check";
import { compareKeys } from "./_keys.ts";
import {
  isStaleEpoch,
  type Region,
  regionContains,
  RegionMap,
  splitRegionMeta,
  validateRegion,
} from "./region.ts";

const E = new Uint8Array();
const k = (...b: number[]) => new Uint8Array(b);

function region(id: number, startKey: Uint8Array, endKey: Uint8Array): Region {
  return {
    id,
    startKey,
    endKey,
    epoch: { confVer: 1, version: 1 },
    peers: [{ id: id + 1000, storeId: 1, role: "voter" }],
  };
}

/** Regions cut at the given sorted distinct non-empty keys. */
function tiled(keys: Uint8Array[]): Region[] {
  const bounds = [E, ...keys, E];
  return bounds.slice(0, -1).map((s, i) => region(i + 1, s, bounds[i + 1]!));
}

const keyArb = fc.uint8Array({ minLength: 0, maxLength: 4 });

function distinctSorted(keys: Uint8Array[]): Uint8Array[] {
  const sorted = keys.filter((x) => x.length > 0).sort(compareKeys);
  return sorted.filter((x, i) => i === 0 || compareKeys(sorted[i - 1]!, x) !== 0);
}

Deno.test("routing by binary search agrees with a linear scan", () => {
  fc.assert(
    fc.property(
      fc.array(keyArb, { maxLength: 40 }),
      fc.array(keyArb, { maxLength: 30 }),
      (cuts, probes) => {
        const regions = tiled(distinctSorted(cuts));
        const shuffled = [...regions].reverse();
        const map = RegionMap.from(shuffled);
        for (const key of [...probes, ...distinctSorted(cuts)]) {
          const expected = regions.filter((r) => regionContains(r, key));
          assert.equal(expected.length, 1);
          assert.equal(map.getByKey(key).id, expected[0]!.id);
        }
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("region map rejects a gap, an overlap, a bounded last region and a repeated id", () => {
  assert.throws(() => RegionMap.from([region(1, E, k(5)), region(2, k(6), E)]), /tile/);
  assert.throws(() => RegionMap.from([region(1, E, k(6)), region(2, k(5), E)]), /tile/);
  assert.throws(() => RegionMap.from([region(1, E, k(5))]), /gap after/);
  assert.throws(() => RegionMap.from([region(1, k(1), E)]), /gap before/);
  assert.throws(() => RegionMap.from([region(1, E, k(5)), region(1, k(5), E)]), /repeats/);
  assert.throws(() => RegionMap.from([]), /no regions/);
  assert.equal(RegionMap.from([region(1, E, k(5)), region(2, k(5), E)]).size, 2);
});

Deno.test("replace applies a split atomically or not at all", () => {
  const map = RegionMap.from([region(1, E, E)]);
  const { left, right } = splitRegionMeta(map.getById(1)!, k(9), 2, [3]);
  const next = map.replace([1], [left, right]);
  assert.equal(next.getByKey(k(8)).id, 2);
  assert.equal(next.getByKey(k(9)).id, 1);
  assert.equal(map.getByKey(k(8)).id, 1, "the old map is unchanged");
  // Dropping the right half leaves a gap: refused, nothing changes.
  assert.throws(() => map.replace([1], [left]), /gap/);
  assert.throws(() => map.replace([7], [left]), /unknown/);
});

Deno.test("splitRegionMeta derives the right part and bumps the version", () => {
  const r: Region = {
    ...region(1, k(1), k(9)),
    epoch: { confVer: 3, version: 4 },
    peers: [
      { id: 10, storeId: 1, role: "voter" },
      { id: 11, storeId: 2, role: "learner" },
    ],
    leader: { id: 10, storeId: 1, role: "voter" },
  };
  const { left, right } = splitRegionMeta(r, k(5), 20, [21, 22]);
  assert.deepEqual(left.epoch, { confVer: 3, version: 5 });
  assert.deepEqual(right.epoch, { confVer: 3, version: 5 });
  assert.deepEqual([left.startKey, left.endKey, right.startKey, right.endKey], [
    k(1),
    k(5),
    k(5),
    k(9),
  ]);
  assert.deepEqual(left.peers, [
    { id: 21, storeId: 1, role: "voter" },
    { id: 22, storeId: 2, role: "learner" },
  ]);
  assert.equal(right.id, 1);
  assert.equal(right.leader?.id, 10);
  assert.throws(() => splitRegionMeta(r, k(1), 20, [21, 22]), /strictly inside/);
  assert.throws(() => splitRegionMeta(r, k(9), 20, [21, 22]), /strictly inside/);
  assert.throws(() => splitRegionMeta(r, k(5), 20, [21]), /one per peer/);
});

Deno.test("validateRegion rejects bad ranges, duplicate stores and a leader outside the voters", () => {
  assert.throws(() => validateRegion(region(1, k(5), k(5))), /non-empty/);
  assert.throws(() => validateRegion(region(0, E, E)), /region id/);
  const twoOnOneStore: Region = {
    ...region(1, E, E),
    peers: [{ id: 2, storeId: 1, role: "voter" }, { id: 3, storeId: 1, role: "voter" }],
  };
  assert.throws(() => validateRegion(twoOnOneStore), /one peer per store/);
  const learnerLeader: Region = {
    ...region(1, E, E),
    peers: [{ id: 2, storeId: 1, role: "learner" }],
    leader: { id: 2, storeId: 1, role: "learner" },
  };
  assert.throws(() => validateRegion(learnerLeader), /voters/);
});

Deno.test("an epoch older in either field is stale", () => {
  assert.equal(isStaleEpoch({ confVer: 2, version: 1 }, { confVer: 2, version: 2 }), true);
  assert.equal(isStaleEpoch({ confVer: 1, version: 3 }, { confVer: 2, version: 2 }), true);
  assert.equal(isStaleEpoch({ confVer: 2, version: 2 }, { confVer: 2, version: 2 }), false);
  assert.equal(isStaleEpoch({ confVer: 3, version: 2 }, { confVer: 2, version: 2 }), false);
});

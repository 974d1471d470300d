import { assertEqual, assertJsonEqual, assertThrows } from "./_assert.ts";
import { MemoryStorage } from "./memory_storage.ts";
import { CompactedError, type Entry, entrySizeBytes, UnavailableError } from "./types.ts";

function ents(from: number, to: number, term = 1): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) {
    out.push({ term, index: i, type: "normal", data: new TextEncoder().encode(`e${i}`) });
  }
  return out;
}

Deno.test("MemoryStorage serves entries and terms within [first - 1, last]", () => {
  const s = new MemoryStorage();
  s.append(ents(1, 5));
  assertEqual(s.firstIndex(), 1, "first");
  assertEqual(s.lastIndex(), 5, "last");
  assertEqual(s.term(0), 0, "dummy term");
  assertEqual(s.term(5), 1, "term 5");
  assertThrows(() => s.term(6), UnavailableError, "last index is 5");
  assertThrows(() => s.entries(2, 7, 1000), UnavailableError, "last index is 5");
  assertJsonEqual(s.entries(2, 4, 1000).map((e) => e.index), [2, 3], "slice");
});

Deno.test("MemoryStorage.entries respects maxBytes but returns at least one entry", () => {
  const s = new MemoryStorage();
  s.append(ents(1, 5));
  const size = entrySizeBytes(s.entries(1, 2, 1000)[0]!);
  assertEqual(s.entries(1, 6, 0).length, 1, "at least one");
  assertEqual(s.entries(1, 6, size * 2).length, 2, "two fit");
  assertEqual(s.entries(1, 6, size * 2 + 1).length, 2, "a third does not");
});

Deno.test("MemoryStorage.append truncates a conflicting suffix", () => {
  const s = new MemoryStorage();
  s.append(ents(1, 5));
  s.append(ents(3, 4, 2));
  assertEqual(s.lastIndex(), 4, "suffix after 4 dropped");
  assertJsonEqual(s.entries(1, 5, 1e9).map((e) => e.term), [1, 1, 2, 2], "terms");
});

Deno.test("MemoryStorage compaction and snapshots", () => {
  const s = new MemoryStorage();
  s.append(ents(1, 5));
  const snap = s.createSnapshot(3, { voters: [1], learners: [] }, new Uint8Array([9]));
  assertEqual(snap.metadata.term, 1, "snapshot term");
  s.compact(3);
  assertEqual(s.firstIndex(), 4, "first after compaction");
  assertEqual(s.term(3), 1, "term of the compacted index is kept");
  assertThrows(() => s.term(2), CompactedError, "compacted");
  assertThrows(() => s.entries(3, 5, 1e9), CompactedError, "first available is 4");
  assertThrows(
    () => s.createSnapshot(2, { voters: [1], learners: [] }, new Uint8Array()),
    RangeError,
    "not newer",
  );
  assertThrows(() => s.compact(9), RangeError, "beyond the last index");
  // A newer snapshot from a leader replaces the whole log.
  s.applySnapshot({
    metadata: { index: 10, term: 3, confState: { voters: [1, 2], learners: [] } },
    data: new Uint8Array(),
  });
  assertEqual(s.firstIndex(), 11, "first after install");
  assertEqual(s.lastIndex(), 10, "empty log");
  assertJsonEqual(s.initialState().confState.voters, [1, 2], "membership from the snapshot");
});

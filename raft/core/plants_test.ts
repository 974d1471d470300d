// Each planted bug changes behaviour: the same transcript, replayed with the plant switched
// off, keeps the safety property that the plant breaks.

import { assertEqual, assertTrue } from "./_assert.ts";
import { InteractionEnv, parseTranscript } from "./_interaction.ts";
import { PLANTS } from "./types.ts";

function replay(file: string, withPlant: boolean): { env: InteractionEnv; outputs: string[] } {
  const text = Deno.readTextFileSync(new URL(`../testdata/${file}`, import.meta.url));
  const env = new InteractionEnv();
  const outputs: string[] = [];
  for (const c of parseTranscript(text)) {
    const command = withPlant ? c.command : c.command.replace(/ plants=\([^)]*\)/, "");
    outputs.push(env.run(command));
  }
  return { env, outputs };
}

/** The first index at which two nodes applied different data, or undefined. */
function appliedDivergence(env: InteractionEnv): string | undefined {
  const seen = new Map<number, string>();
  for (const [id, n] of env.nodes) {
    for (const a of n.applied) {
      const prev = seen.get(a.index);
      if (prev !== undefined && prev !== a.data) {
        return `node ${id} applied ${a.data} at ${a.index}, another ${prev}`;
      }
      seen.set(a.index, a.data);
    }
  }
  return undefined;
}

/** The first index at which two nodes' committed logs differ, or undefined. */
function committedDivergence(env: InteractionEnv): string | undefined {
  const seen = new Map<number, number>();
  for (const [id, n] of env.nodes) {
    const commit = n.storage.initialState().hardState.commit;
    const first = n.storage.firstIndex();
    if (commit < first) continue;
    for (const e of n.storage.entries(first, commit + 1, Number.MAX_SAFE_INTEGER)) {
      const prev = seen.get(e.index);
      if (prev !== undefined && prev !== e.term) {
        return `node ${id} committed term ${e.term} at ${e.index}, another ${prev}`;
      }
      seen.set(e.index, e.term);
    }
  }
  return undefined;
}

Deno.test("PLANTS names the four planted bugs", () => {
  assertEqual(
    PLANTS.join(","),
    "commit-old-term-by-count,vote-without-log-check,no-conflict-truncate,lease-read-without-check-quorum",
    "names",
  );
});

Deno.test("commit-old-term-by-count: Figure 8 loses a committed entry only with the plant", () => {
  assertTrue(
    appliedDivergence(replay("figure8_plant.txt", false).env) === undefined,
    "clean without",
  );
  const bad = appliedDivergence(replay("figure8_plant.txt", true).env);
  assertTrue(bad !== undefined && bad.includes("at 2"), `with plant: ${bad}`);
});

Deno.test("vote-without-log-check: a stale node wins and commits over a committed entry", () => {
  assertTrue(committedDivergence(replay("plants.txt", false).env) === undefined, "clean without");
  const bad = committedDivergence(replay("plants.txt", true).env);
  assertTrue(bad !== undefined && bad.includes("at 4"), `with plant: ${bad}`);
});

Deno.test("no-conflict-truncate: the follower keeps conflicting entries and applies them", () => {
  assertTrue(appliedDivergence(replay("plants_truncate.txt", false).env) === undefined, "clean");
  const bad = appliedDivergence(replay("plants_truncate.txt", true).env);
  assertTrue(bad !== undefined, `with plant: ${bad}`);
});

Deno.test("lease-read-without-check-quorum: a deposed leader answers a stale read", () => {
  const last = (r: { outputs: string[] }) => r.outputs[r.outputs.length - 1]!;
  const clean = replay("read_lease_plant.txt", false);
  assertTrue(!last(clean).includes("ReadState"), `without plant: ${last(clean)}`);
  const bad = replay("read_lease_plant.txt", true);
  assertTrue(last(bad).includes('ReadState index=3 ctx="r3"'), `with plant: ${last(bad)}`);
  // The new leader had committed y at index 5 by then.
  assertEqual(bad.env.nodes.get(2)!.node.status().hardState.commit, 5, "new leader's commit");
});

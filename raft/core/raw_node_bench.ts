// `deno bench raft/core/raw_node_bench.ts`: the core alone, three nodes in one thread with an
// in-memory log and a direct message queue (no driver, no transport, no fsync).

import { MemoryStorage } from "./memory_storage.ts";
import { RawNode } from "./raw_node.ts";
import type { Message } from "./types.ts";

function group(): { leader: RawNode; pump: () => number } {
  const ids = [1, 2, 3];
  const nodes = new Map<number, { n: RawNode; s: MemoryStorage }>();
  for (const id of ids) {
    const s = new MemoryStorage();
    s.applySnapshot({
      metadata: { index: 1, term: 1, confState: { voters: ids, learners: [] } },
      data: new Uint8Array(),
    });
    const n = new RawNode({
      id,
      electionTick: 10,
      heartbeatTick: 1,
      storage: s,
      checkQuorum: true,
      preVote: true,
      random: () => 0.5,
    });
    nodes.set(id, { n, s });
  }
  let queue: Message[] = [];
  const pump = () => {
    let applied = 0;
    for (;;) {
      let busy = false;
      for (const [id, { n, s }] of nodes) {
        if (!n.hasReady()) continue;
        busy = true;
        const rd = n.ready();
        s.append(rd.entries);
        if (rd.hardState !== undefined) s.setHardState(rd.hardState);
        for (const m of rd.messages) queue.push(m);
        if (id === 1) applied += rd.committedEntries.length;
        n.advance(rd);
        const st = n.status();
        if (st.applied - s.firstIndex() > 4096) {
          s.createSnapshot(st.applied, st.confState, new Uint8Array());
          s.compact(st.applied);
        }
      }
      const batch = queue;
      queue = [];
      for (const m of batch) nodes.get(m.to)!.n.step(m);
      if (!busy && batch.length === 0) return applied;
    }
  };
  nodes.get(1)!.n.campaign();
  pump();
  return { leader: nodes.get(1)!.n, pump };
}

const data = new Uint8Array(64);

for (const batch of [1, 64]) {
  const g = group();
  Deno.bench(`3-node group commits ${batch} proposal(s) of 64 bytes per round`, () => {
    for (let i = 0; i < batch; i++) g.leader.propose(data);
    g.pump();
  });
}

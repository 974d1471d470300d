import { assertEqual, assertJsonEqual, assertThrows, assertTrue } from "./_assert.ts";
import { InteractionEnv } from "./_interaction.ts";
import { MemoryStorage } from "./memory_storage.ts";
import { RawNode } from "./raw_node.ts";
import {
  type Config,
  decodeConfChange,
  encodeConfChange,
  type Message,
  ProposalDroppedError,
  RaftAssertionError,
} from "./types.ts";

function bootstrapped(voters: number[]): MemoryStorage {
  const s = new MemoryStorage();
  s.applySnapshot({
    metadata: { index: 1, term: 1, confState: { voters, learners: [] } },
    data: new Uint8Array(),
  });
  return s;
}

function config(over: Partial<Config> = {}): Config {
  return {
    id: 1,
    electionTick: 10,
    heartbeatTick: 1,
    storage: bootstrapped([1, 2, 3]),
    checkQuorum: true,
    preVote: false,
    random: () => 0,
    ...over,
  };
}

/** Runs transcript commands and returns the output of the last one. */
function runAll(env: InteractionEnv, commands: string[]): string {
  let out = "";
  for (const c of commands) out = env.run(c);
  return out;
}

Deno.test("RawNode rejects invalid configs with RangeError naming the option", () => {
  assertThrows(() => new RawNode(config({ id: 0 })), RangeError, "id");
  assertThrows(() => new RawNode(config({ heartbeatTick: 10 })), RangeError, "heartbeatTick");
  assertThrows(
    () => new RawNode(config({ readOnlyOption: "leaseBased", checkQuorum: false })),
    RangeError,
    "leaseBased requires checkQuorum",
  );
  assertThrows(
    () => new RawNode(config({ readOnlyOption: "leaseBased", electionTick: 3, heartbeatTick: 2 })),
    RangeError,
    "lease",
  );
  assertThrows(() => new RawNode(config({ clockDriftRatioMax: 1 })), RangeError, "clockDrift");
  assertThrows(
    () => new RawNode(config({ maxSizePerMsg: 1024, maxInflightBytes: 100 })),
    RangeError,
    "maxInflightBytes",
  );
  assertThrows(() => new RawNode(config({ maxInflightMsgs: 0 })), RangeError, "maxInflightMsgs");
  // The planted lease bug is the one way to run leaseBased without check-quorum.
  new RawNode(config({
    readOnlyOption: "leaseBased",
    checkQuorum: false,
    plants: ["lease-read-without-check-quorum"],
  }));
});

Deno.test("RawNode refuses a membership without a bootstrap snapshot at index >= 1", () => {
  const storage = new MemoryStorage({ voters: [1, 2, 3], learners: [] });
  assertThrows(() => new RawNode(config({ storage })), RangeError, "bootstrap snapshot");
  // An empty node that will join a group is fine.
  new RawNode(config({ storage: new MemoryStorage() }));
});

Deno.test("RawNode.step refuses local kinds and messages for another node", () => {
  const node = new RawNode(config());
  const m: Message = {
    type: "MsgHup",
    to: 1,
    from: 1,
    term: 0,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    leaseTick: 0,
  };
  assertThrows(() => node.step(m), RangeError, "local message kind");
  assertThrows(() => node.step({ ...m, type: "MsgHeartbeat", to: 2, term: 2 }), RangeError, "to 2");
});

Deno.test("ready must be advanced before the next one, with the same object", () => {
  const node = new RawNode(config());
  node.campaign();
  const rd = node.ready();
  assertEqual(node.hasReady(), false, "no ready while one is outstanding");
  assertThrows(() => node.ready(), Error, "not advanced");
  assertThrows(() => node.advance({ ...rd }), Error, "not the Ready");
  node.advance(rd);
});

Deno.test("proposals: too large, no leader, forwarding disabled", () => {
  const node = new RawNode(config({ maxSizePerMsg: 16 }));
  assertThrows(() => node.propose(new Uint8Array(17)), RangeError, "maxSizePerMsg");
  try {
    node.propose(new Uint8Array(1));
    throw new Error("expected a drop");
  } catch (e) {
    assertTrue(e instanceof ProposalDroppedError, String(e));
    assertEqual(e.leaderHint, 0, "no leader hint");
  }
  const env = new InteractionEnv();
  runAll(env, ["add-nodes 3 voters=(1,2,3) index=2", "campaign 1", "stabilize"]);
  const follower = env.nodes.get(2)!.node;
  follower.propose(new Uint8Array([1])); // forwarded
  assertTrue(
    follower.ready().messages.some((m) => m.type === "MsgProp" && m.to === 1),
    "forwarded",
  );
});

Deno.test("the leader drops proposals beyond maxUncommittedEntriesSize", () => {
  const env = new InteractionEnv();
  runAll(env, [
    "add-nodes 3 voters=(1,2,3) index=2 max-uncommitted-bytes=10",
    "campaign 1",
    "stabilize",
    "partition (1) (2,3)",
  ]);
  assertEqual(env.run("propose 1 aaaaaa"), "", "first proposal fits");
  assertEqual(env.run("propose 1 bbbb"), "", "second reaches the limit exactly");
  assertTrue(env.run("propose 1 c").includes("maxUncommittedEntriesSize"), "third is dropped");
  runAll(env, ["heal", "stabilize", "tick-heartbeat 1", "stabilize"]);
  assertEqual(env.run("propose 1 c"), "", "accepted again once committed");
});

Deno.test("a follower that never answers gets at most maxInflightMsgs appends", () => {
  const env = new InteractionEnv();
  runAll(env, [
    "add-nodes 3 voters=(1,2,3) index=2 max-inflight=2",
    "campaign 1",
    "stabilize",
    "partition (1,2) (3)",
  ]);
  let appendsTo3 = 0;
  for (let i = 0; i < 6; i++) {
    env.run(`propose 1 p${i}`);
    const out = env.run("stabilize");
    appendsTo3 += out.split("\n").filter((l) => l.startsWith("dropped: 1->3 MsgApp")).length;
  }
  const st = env.nodes.get(1)!.node.status().progress.get(3)!;
  assertEqual(st.inflightMsgs, 2, "window full");
  // Two windowed appends with entries; the others carried no entries (commit updates only).
  const withEntries = env.run("status 1");
  assertTrue(withEntries.includes("3: replicate"), withEntries);
  assertTrue(appendsTo3 >= 2, `appends to 3: ${appendsTo3}`);
});

Deno.test("maxInflightBytes bounds the bytes in flight to one follower", () => {
  const env = new InteractionEnv();
  runAll(env, [
    "add-nodes 3 voters=(1,2,3) index=2 max-size-per-msg=30 max-inflight-bytes=60",
    "campaign 1",
    "stabilize",
    "partition (1,2) (3)",
  ]);
  for (let i = 0; i < 5; i++) {
    env.run(`propose 1 x${i}`);
    env.run("stabilize");
  }
  const pr = env.nodes.get(1)!.node.status().progress.get(3)!;
  assertEqual(pr.inflightMsgs, 3, "three entries of 26 bytes reach the 60-byte bound");
  assertTrue(pr.inflightBytes >= 60 && pr.inflightBytes < 60 + 30, `bytes ${pr.inflightBytes}`);
});

Deno.test("the lease lasts floor((electionTick - 1) / (1 + drift)) ticks after the acked heartbeat", () => {
  for (const [drift, lease] of [[0, 9], [0.1, 8], [0.25, 7], [0.5, 6]] as const) {
    const env = new InteractionEnv();
    runAll(env, [
      `add-nodes 3 voters=(1,2,3) index=2 check-quorum=true read-only=lease drift=${drift} random=0.5`,
      "tick 1 2 3 n=10",
      "campaign 1",
      "stabilize",
      "tick-heartbeat 1",
      "stabilize",
      "partition (1) (2,3)",
    ]);
    const leader = env.nodes.get(1)!.node;
    // The acked heartbeat went out at this tick; now - s + 1 = 1.
    let valid = 0;
    while (leader.leaseValid()) {
      env.run("tick 1");
      valid++;
    }
    assertEqual(valid, lease, `drift ${drift}`);
  }
});

Deno.test("a leader that sends MsgTimeoutNow gives up its lease for the term", () => {
  const env = new InteractionEnv();
  runAll(env, [
    "add-nodes 3 voters=(1,2,3) index=2 check-quorum=true read-only=lease random=0.5",
    "tick 1 2 3 n=10",
    "campaign 1",
    "stabilize",
    "tick-heartbeat 1",
    "stabilize",
  ]);
  const leader = env.nodes.get(1)!.node;
  assertTrue(leader.leaseValid(), "lease before transfer");
  runAll(env, ["partition (1,2) (3)", "transfer-leadership from=1 to=2", "process-ready 1"]);
  assertEqual(leader.leaseValid(), false, "lease after MsgTimeoutNow");
});

Deno.test("conf changes encode and decode; garbage is a TypeError", () => {
  const cc = { type: "addLearner" as const, nodeId: 7, context: new Uint8Array([1, 2]) };
  assertJsonEqual(decodeConfChange(encodeConfChange(cc)), {
    type: "addLearner",
    nodeId: 7,
    context: { 0: 1, 1: 2 },
  });
  assertThrows(() => decodeConfChange(new TextEncoder().encode("{")), TypeError, "conf change");
  assertThrows(
    () => decodeConfChange(new TextEncoder().encode('{"type":"x","nodeId":1}')),
    TypeError,
    "addNode",
  );
});

Deno.test("removing the last voter is refused", () => {
  const storage = bootstrapped([1]);
  const node = new RawNode(config({ storage }));
  node.campaign();
  const rd = node.ready();
  storage.append(rd.entries);
  node.advance(rd);
  const rd2 = node.ready();
  node.advance(rd2);
  assertEqual(node.status().applied, 2, "own-term entry applied");
  assertThrows(
    () => node.proposeConfChange({ type: "removeNode", nodeId: 1 }),
    ProposalDroppedError,
    "last voter",
  );
});

Deno.test("the core asserts commit <= lastIndex when a peer asks for more", () => {
  const env = new InteractionEnv();
  runAll(env, ["add-nodes 3 voters=(1,2,3) index=2", "campaign 1", "stabilize"]);
  const follower = env.nodes.get(2)!.node;
  assertThrows(
    () =>
      follower.step({
        type: "MsgHeartbeat",
        to: 2,
        from: 1,
        term: 2,
        logTerm: 0,
        index: 0,
        entries: [],
        commit: 9,
        reject: false,
        rejectHint: 0,
        leaseTick: 0,
      }),
    RaftAssertionError,
    "out of range",
  );
});

Deno.test("a restart with applied beyond the snapshot restores commit and membership", () => {
  // Node 1 of a group that added node 4 at index 3 (after the bootstrap snapshot at 1),
  // whose state machine applied up to 4 but whose last persisted hard state says commit 2.
  const storage = bootstrapped([1, 2, 3]);
  storage.append([
    { term: 2, index: 2, type: "normal", data: new Uint8Array() },
    {
      term: 2,
      index: 3,
      type: "confChange",
      data: encodeConfChange({ type: "addNode", nodeId: 4 }),
    },
    { term: 2, index: 4, type: "normal", data: new Uint8Array([1]) },
  ]);
  storage.setHardState({ term: 2, vote: 1, commit: 2 });
  const node = new RawNode(config({ storage, applied: 4 }));
  const st = node.status();
  assertEqual(st.applied, 4, "applied");
  assertEqual(st.hardState.commit, 4, "commit raised to applied");
  assertJsonEqual(st.confState.voters, [1, 2, 3, 4], "membership includes the applied change");
  assertEqual(node.hasReady(), true, "the raised commit is reported for persisting");
  assertEqual(node.ready().committedEntries.length, 0, "nothing is applied twice");
  assertThrows(
    () => new RawNode(config({ storage: bootstrappedAt(5), applied: 3 })),
    RangeError,
    "below the snapshot index",
  );
});

function bootstrappedAt(index: number): MemoryStorage {
  const s = new MemoryStorage();
  s.applySnapshot({
    metadata: { index, term: 1, confState: { voters: [1, 2, 3], learners: [] } },
    data: new Uint8Array(),
  });
  return s;
}

Deno.test("a snapshot installed while a Ready is outstanding wins over its older conf changes", () => {
  const storage = bootstrapped([1, 2, 3]);
  const node = new RawNode(config({ id: 3, storage }));
  const base: Message = {
    type: "MsgApp",
    to: 3,
    from: 1,
    term: 2,
    logTerm: 1,
    index: 1,
    entries: [{
      term: 2,
      index: 2,
      type: "confChange",
      data: encodeConfChange({ type: "addNode", nodeId: 4 }),
    }],
    commit: 2,
    reject: false,
    rejectHint: 0,
    leaseTick: 0,
  };
  node.step(base);
  const rd = node.ready();
  assertEqual(rd.committedEntries.length, 1, "the conf change is handed out");
  // Before advance, the leader's snapshot at 5 arrives: node 4 was added and removed again.
  node.step({
    ...base,
    type: "MsgSnap",
    entries: [],
    snapshot: {
      metadata: { index: 5, term: 2, confState: { voters: [1, 2, 3], learners: [] } },
      data: new Uint8Array(),
    },
  });
  storage.append(rd.entries);
  node.advance(rd);
  assertJsonEqual(node.status().confState.voters, [1, 2, 3], "snapshot membership kept");
  const rd2 = node.ready();
  assertEqual(rd2.snapshot?.metadata.index, 5, "snapshot to install");
  storage.applySnapshot(rd2.snapshot!);
  node.advance(rd2);
  assertEqual(node.status().applied, 5, "applied at the snapshot");
});

Deno.test("a one-voter leader with check-quorum keeps leading past its quorum checks", () => {
  const storage = bootstrapped([1]);
  const node = new RawNode(config({ storage, checkQuorum: true }));
  node.campaign();
  assertEqual(node.status().softState.raftState, "leader", "elected alone");
  for (let i = 0; i < 35; i++) node.tick(); // three and a half election timeouts
  assertEqual(node.status().softState.raftState, "leader", "still leader after check-quorum");
});

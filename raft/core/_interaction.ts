/**
 * The transcript harness: replays `raft/testdata/*.txt` files of commands
 * against a cluster of `RawNode`s with `MemoryStorage`, a message queue and a
 * tiny state machine, and renders what happened as text.
 *
 * File format (as etcd's datadriven tests): a command line, a `----` line, the
 * expected output, then a blank line. Lines starting with `#` before a command
 * are comments. Output never contains blank lines.
 *
 * @module
 */

import { MemoryStorage } from "./memory_storage.ts";
import { RawNode } from "./raw_node.ts";
import {
  type ConfChange,
  type ConfState,
  decodeConfChange,
  type Entry,
  type Message,
  type PlantName,
  PLANTS,
  ProposalDroppedError,
  type Ready,
  type Snapshot,
} from "./types.ts";

/** One command of a transcript file and its expected output. */
export interface TranscriptCase {
  /** Comment lines preceding the command. */
  readonly comments: string[];
  /** The command line. */
  readonly command: string;
  /** The expected output (lines joined by "\n"). */
  readonly expected: string;
  /** 1-based line of the command in the file. */
  readonly line: number;
}

/** Parses a transcript file. */
export function parseTranscript(text: string): TranscriptCase[] {
  const lines = text.split("\n");
  const out: TranscriptCase[] = [];
  let i = 0;
  while (i < lines.length) {
    const comments: string[] = [];
    while (i < lines.length && (lines[i]!.startsWith("#") || lines[i]!.trim() === "")) {
      if (lines[i]!.startsWith("#")) comments.push(lines[i]!);
      i++;
    }
    if (i >= lines.length) break;
    const command = lines[i]!;
    const line = i + 1;
    i++;
    if (lines[i] !== "----") {
      throw new TypeError(
        `Cannot parse transcript line ${i + 1}: expected ---- after "${command}"`,
      );
    }
    i++;
    const body: string[] = [];
    while (i < lines.length && lines[i]!.trim() !== "") {
      body.push(lines[i]!);
      i++;
    }
    out.push({ comments, command, expected: body.join("\n"), line });
  }
  return out;
}

/** Renders cases back to file text with the given outputs. */
export function renderTranscript(
  cases: readonly TranscriptCase[],
  outputs: readonly string[],
): string {
  const parts: string[] = [];
  cases.forEach((c, i) => {
    const head = c.comments.length > 0 ? c.comments.join("\n") + "\n" : "";
    const out = outputs[i] ?? "";
    parts.push(`${head}${c.command}\n----\n${out === "" ? "ok" : out}\n`);
  });
  return parts.join("\n");
}

const dec = new TextDecoder();
const enc = new TextEncoder();

function fmtData(e: Entry): string {
  if (e.type === "confChange") {
    const cc = decodeConfChange(e.data);
    return `conf:${cc.type}(${cc.nodeId})`;
  }
  return e.data.byteLength === 0 ? "empty" : JSON.stringify(dec.decode(e.data));
}

function decodeImage(data: Uint8Array): { index: number; data: string }[] {
  return data.byteLength === 0 ? [] : JSON.parse(dec.decode(data));
}

/** `term/index data`. */
export function fmtEntry(e: Entry): string {
  return `${e.term}/${e.index} ${fmtData(e)}`;
}

function fmtConf(cs: ConfState): string {
  const l = cs.learners.length > 0 ? ` learners=(${cs.learners.join(",")})` : "";
  return `voters=(${cs.voters.join(",")})${l}`;
}

/** One-line rendering of a message. */
export function fmtMessage(m: Message): string {
  const parts = [`${m.from}->${m.to} ${m.type} Term:${m.term}`];
  switch (m.type) {
    case "MsgApp":
      parts.push(`Log:${m.logTerm}/${m.index} Commit:${m.commit}`);
      if (m.entries.length > 0) parts.push(`Entries:[${m.entries.map(fmtEntry).join(", ")}]`);
      break;
    case "MsgAppResp":
      parts.push(`Index:${m.index}`);
      if (m.reject) parts.push(`Rejected (Hint: ${m.rejectHint}, LogTerm: ${m.logTerm})`);
      break;
    case "MsgVote":
    case "MsgPreVote":
      parts.push(`Log:${m.logTerm}/${m.index}`);
      if (m.context !== undefined) parts.push("(transfer)");
      break;
    case "MsgVoteResp":
    case "MsgPreVoteResp":
      if (m.reject) parts.push("Rejected");
      break;
    case "MsgHeartbeat":
      parts.push(`Commit:${m.commit}`);
      if (m.context !== undefined) parts.push(`ctx:${JSON.stringify(dec.decode(m.context))}`);
      break;
    case "MsgHeartbeatResp":
      if (m.context !== undefined) parts.push(`ctx:${JSON.stringify(dec.decode(m.context))}`);
      break;
    case "MsgSnap": {
      const md = m.snapshot!.metadata;
      parts.push(`Snapshot: index=${md.index} term=${md.term} ${fmtConf(md.confState)}`);
      break;
    }
    case "MsgProp":
      parts.push(`Entries:[${m.entries.map(fmtData).join(", ")}]`);
      break;
    case "MsgReadIndex":
    case "MsgReadIndexResp":
      if (m.type === "MsgReadIndexResp") parts.push(`Index:${m.index}`);
      parts.push(`ctx:${JSON.stringify(dec.decode(m.context ?? new Uint8Array()))}`);
      break;
    default:
      break;
  }
  return parts.join(" ");
}

interface NodeOptions {
  preVote: boolean;
  checkQuorum: boolean;
  readOnly: "safe" | "leaseBased";
  plants: PlantName[];
  electionTick: number;
  heartbeatTick: number;
  maxSizePerMsg: number;
  maxInflightMsgs: number;
  maxInflightBytes: number;
  clockDriftRatioMax: number;
  maxUncommittedEntriesSize: number;
  random: number;
}

interface SimNode {
  id: number;
  storage: MemoryStorage;
  node: RawNode;
  opts: NodeOptions;
  /** The applied state machine: every applied non-empty normal entry. */
  applied: { index: number; data: string }[];
  appliedIndex: number;
}

type Args = Map<string, string[]>;

function parseCommand(line: string): { name: string; pos: string[]; args: Args } {
  const tokens = line.trim().split(/\s+/);
  const name = tokens.shift()!;
  const pos: string[] = [];
  const args: Args = new Map();
  for (const t of tokens) {
    const eq = t.indexOf("=");
    if (eq < 0) {
      pos.push(t);
      continue;
    }
    let v = t.slice(eq + 1);
    if (v.startsWith("(") && v.endsWith(")")) v = v.slice(1, -1);
    args.set(t.slice(0, eq), v === "" ? [] : v.split(","));
  }
  return { name, pos, args };
}

function num(s: string | undefined, what: string): number {
  const n = Number(s);
  if (s === undefined || !Number.isFinite(n)) throw new TypeError(`Bad ${what}: ${String(s)}`);
  return n;
}

/** A cluster driven by transcript commands. */
export class InteractionEnv {
  readonly nodes = new Map<number, SimNode>();
  readonly crashed = new Set<number>();
  /** Messages sent and not yet delivered, in send order. */
  queue: Message[] = [];
  /** Partition groups; messages between different groups are dropped at delivery. */
  groups: number[][] = [];
  #out: string[] = [];

  /** Runs one command; returns its output. */
  run(line: string): string {
    this.#out = [];
    const { name, pos, args } = parseCommand(line);
    const ids = pos.filter((p) => /^\d+$/.test(p)).map((p) => num(p, "node id"));
    switch (name) {
      case "add-nodes":
        this.#addNodes(ids[0] ?? 1, args);
        break;
      case "campaign":
        this.#each(ids, (n) => n.node.campaign());
        break;
      case "tick":
        this.#tick(ids, num(args.get("n")?.[0] ?? "1", "n"));
        break;
      case "tick-election":
        for (const id of ids) this.#tick([id], this.#get(id).opts.electionTick);
        break;
      case "tick-heartbeat":
        for (const id of ids) this.#tick([id], this.#get(id).opts.heartbeatTick);
        break;
      case "process-ready":
        for (const id of this.#ids(ids)) this.#processReady(this.#get(id));
        break;
      case "deliver-msgs":
        this.#deliver(ids, args, false);
        break;
      case "drop-msgs":
        this.#deliver(ids, args, true);
        break;
      case "stabilize":
        this.#stabilize(ids);
        break;
      case "propose":
        this.#propose(ids[0]!, pos[1] ?? "");
        break;
      case "propose-conf-change":
        this.#proposeConfChange(ids[0]!, args);
        break;
      case "transfer-leadership":
        this.#get(num(args.get("from")?.[0], "from")).node.transferLeader(
          num(args.get("to")?.[0], "to"),
        );
        this.#noteChanges();
        break;
      case "read-index":
        this.#readIndex(ids[0]!, pos[1] ?? "");
        break;
      case "partition":
        this.groups = pos.map((g) => g.replace(/[()]/g, "").split(",").map((x) => num(x, "id")));
        this.#out.push(`partitioned: ${pos.join(" ")}`);
        break;
      case "heal":
        this.groups = [];
        break;
      case "crash":
        for (const id of ids) this.#crash(id);
        break;
      case "restart":
        for (const id of ids) this.#restart(id);
        break;
      case "compact":
        this.#compact(ids[0]!, num(pos[1], "index"));
        break;
      case "status":
        for (const id of this.#ids(ids)) this.#status(this.#get(id));
        break;
      case "raft-state":
        for (const id of ids.length > 0 ? ids : [...this.nodes.keys()].sort((a, b) => a - b)) {
          this.#raftState(this.#get(id));
        }
        break;
      case "raft-log":
        for (const id of ids.length > 0 ? ids : [...this.nodes.keys()].sort((a, b) => a - b)) {
          this.#raftLog(this.#get(id));
        }
        break;
      case "applied":
        for (const id of ids.length > 0 ? ids : [...this.nodes.keys()].sort((a, b) => a - b)) {
          const n = this.#get(id);
          const data = n.applied.map((a) => a.data).join(" ");
          this.#out.push(`${id}: applied=${n.appliedIndex} [${data}]`);
        }
        break;
      default:
        throw new TypeError(`Unknown transcript command: ${name}`);
    }
    return this.#out.join("\n");
  }

  #get(id: number): SimNode {
    const n = this.nodes.get(id);
    if (n === undefined) throw new RangeError(`No node ${id}`);
    return n;
  }

  #ids(ids: number[]): number[] {
    const all = ids.length > 0 ? ids : [...this.nodes.keys()].sort((a, b) => a - b);
    return all.filter((id) => !this.crashed.has(id));
  }

  #each(ids: number[], f: (n: SimNode) => void): void {
    for (const id of ids) {
      const n = this.#get(id);
      this.#watch(n, () => f(n));
    }
  }

  /** Runs `f` and reports role/term changes of node `n`. */
  #watch(n: SimNode, f: () => void): void {
    const before = n.node.status();
    f();
    const after = n.node.status();
    const b = before.softState;
    const a = after.softState;
    if (b.raftState !== a.raftState || before.hardState.term !== after.hardState.term) {
      this.#out.push(`  INFO ${n.id} became ${a.raftState} at term ${after.hardState.term}`);
    } else if (b.lead !== a.lead && a.lead !== 0) {
      this.#out.push(`  INFO ${n.id} learned leader ${a.lead} at term ${after.hardState.term}`);
    }
  }

  #noteChanges(): void {
    // transfer-leadership may change nothing visible until messages flow
  }

  #addNodes(count: number, args: Args): void {
    const first = Math.max(0, ...this.nodes.keys()) + 1;
    const voters = (args.get("voters") ?? []).map((v) => num(v, "voter"));
    const learners = (args.get("learners") ?? []).map((v) => num(v, "learner"));
    const index = args.has("index") ? num(args.get("index")?.[0], "index") : 0;
    const plants = (args.get("plants") ?? []) as PlantName[];
    for (const p of plants) {
      if (!PLANTS.includes(p)) throw new TypeError(`Unknown plant ${p}`);
    }
    const opts: NodeOptions = {
      preVote: args.get("pre-vote")?.[0] === "true",
      checkQuorum: args.get("check-quorum")?.[0] === "true",
      readOnly: args.get("read-only")?.[0] === "lease" ? "leaseBased" : "safe",
      plants,
      electionTick: num(args.get("election-tick")?.[0] ?? "10", "election-tick"),
      heartbeatTick: num(args.get("heartbeat-tick")?.[0] ?? "1", "heartbeat-tick"),
      maxSizePerMsg: num(args.get("max-size-per-msg")?.[0] ?? "1048576", "max-size-per-msg"),
      maxInflightMsgs: num(args.get("max-inflight")?.[0] ?? "256", "max-inflight"),
      maxInflightBytes: num(args.get("max-inflight-bytes")?.[0] ?? "0", "max-inflight-bytes"),
      clockDriftRatioMax: num(args.get("drift")?.[0] ?? "0.1", "drift"),
      maxUncommittedEntriesSize: num(
        args.get("max-uncommitted-bytes")?.[0] ?? "67108864",
        "max-uncommitted-bytes",
      ),
      random: num(args.get("random")?.[0] ?? "0", "random"),
    };
    const logTerms = (args.get("log") ?? []).map((t) => num(t, "log term"));
    const term = num(args.get("term")?.[0] ?? "1", "term");
    for (let id = first; id < first + count; id++) {
      let storage = new MemoryStorage();
      if (logTerms.length > 0) {
        // A given log from index 1 (Figure 7/8 setups); membership from the initial state.
        storage = new MemoryStorage({ voters, learners });
        storage.append(logTerms.map((t, i) => ({
          term: t,
          index: i + 1,
          type: "normal",
          data: enc.encode(`${i + 1}@${t}`),
        })));
        storage.setHardState({ term, vote: 0, commit: 0 });
      } else if (index > 0) {
        storage.applySnapshot({
          metadata: { index, term: 1, confState: { voters, learners } },
          data: new Uint8Array(),
        });
        storage.setHardState({ term: 1, vote: 0, commit: index });
      }
      const n: SimNode = {
        id,
        storage,
        opts,
        node: this.#newNode(id, storage, opts, 0),
        applied: [],
        appliedIndex: index,
      };
      this.nodes.set(id, n);
      const st = n.node.status();
      this.#out.push(
        `${id}: ${st.softState.raftState} term=${st.hardState.term} commit=${st.hardState.commit} last=${st.lastIndex} ${
          fmtConf(st.confState)
        }`,
      );
    }
  }

  #newNode(id: number, storage: MemoryStorage, o: NodeOptions, applied: number): RawNode {
    return new RawNode({
      id,
      electionTick: o.electionTick,
      heartbeatTick: o.heartbeatTick,
      storage,
      applied,
      maxSizePerMsg: o.maxSizePerMsg,
      maxInflightMsgs: o.maxInflightMsgs,
      maxInflightBytes: o.maxInflightBytes,
      clockDriftRatioMax: o.clockDriftRatioMax,
      maxUncommittedEntriesSize: o.maxUncommittedEntriesSize,
      checkQuorum: o.checkQuorum,
      preVote: o.preVote,
      readOnlyOption: o.readOnly,
      random: () => o.random,
      plants: o.plants,
    });
  }

  #tick(ids: number[], n: number): void {
    for (const id of ids) {
      const node = this.#get(id);
      for (let i = 0; i < n; i++) this.#watch(node, () => node.node.tick());
    }
  }

  #processReady(n: SimNode): boolean {
    if (!n.node.hasReady()) return false;
    const rd = n.node.ready();
    this.#out.push(`> ${n.id} handling Ready`);
    this.#printReady(rd);
    if (rd.snapshot !== undefined) {
      n.storage.applySnapshot(rd.snapshot);
      n.applied = decodeImage(rd.snapshot.data);
      n.appliedIndex = rd.snapshot.metadata.index;
    }
    n.storage.append(rd.entries);
    if (rd.hardState !== undefined) n.storage.setHardState(rd.hardState);
    for (const m of rd.messages) {
      if (this.#reachable(m.from, m.to) && this.nodes.has(m.to)) {
        this.queue.push(m);
      } else {
        this.#out.push(`dropped: ${fmtMessage(m)}`);
        this.#snapDropped(m);
      }
    }
    for (const e of rd.committedEntries) {
      if (e.type === "normal" && e.data.byteLength > 0) {
        n.applied.push({ index: e.index, data: dec.decode(e.data) });
      }
      n.appliedIndex = e.index;
    }
    this.#watch(n, () => n.node.advance(rd));
    return true;
  }

  #printReady(rd: Ready): void {
    const o = this.#out;
    o.push(`  Ready MustSync=${rd.mustSync}:`);
    if (rd.softState !== undefined) {
      o.push(`  State:${rd.softState.raftState} Lead:${rd.softState.lead}`);
    }
    if (rd.hardState !== undefined) {
      const h = rd.hardState;
      o.push(`  HardState Term:${h.term} Vote:${h.vote} Commit:${h.commit}`);
    }
    if (rd.entries.length > 0) {
      o.push("  Entries:");
      for (const e of rd.entries) o.push(`  ${fmtEntry(e)}`);
    }
    if (rd.snapshot !== undefined) {
      const md = rd.snapshot.metadata;
      o.push(`  Snapshot index=${md.index} term=${md.term} ${fmtConf(md.confState)}`);
    }
    if (rd.committedEntries.length > 0) {
      o.push("  CommittedEntries:");
      for (const e of rd.committedEntries) o.push(`  ${fmtEntry(e)}`);
    }
    if (rd.messages.length > 0) {
      o.push("  Messages:");
      for (const m of rd.messages) o.push(`  ${fmtMessage(m)}`);
    }
    for (const r of rd.readStates) {
      o.push(`  ReadState index=${r.index} ctx=${JSON.stringify(dec.decode(r.requestCtx))}`);
    }
  }

  #reachable(from: number, to: number): boolean {
    if (this.crashed.has(to) || this.crashed.has(from)) return false;
    if (this.groups.length === 0) return true;
    const g = this.groups.find((g) => g.includes(from));
    return g !== undefined && g.includes(to);
  }

  /** Delivers (or drops) queued messages to `ids` (all when empty), filtered by type/from. */
  #deliver(ids: number[], args: Args, drop: boolean): boolean {
    const types = args.get("type");
    const froms = args.get("from")?.map((f) => num(f, "from"));
    const match = (m: Message) =>
      (ids.length === 0 || ids.includes(m.to)) &&
      (types === undefined || types.includes(m.type)) &&
      (froms === undefined || froms.includes(m.from));
    const selected = this.queue.filter(match);
    this.queue = this.queue.filter((m) => !match(m));
    if (selected.length === 0) return false;
    if (drop) {
      for (const m of selected) {
        this.#out.push(`dropped: ${fmtMessage(m)}`);
        this.#snapDropped(m);
      }
      return true;
    }
    const byTo = new Map<number, Message[]>();
    for (const m of selected) byTo.set(m.to, [...(byTo.get(m.to) ?? []), m]);
    for (const to of [...byTo.keys()].sort((a, b) => a - b)) {
      const msgs = byTo.get(to)!;
      const n = this.nodes.get(to);
      const ok = msgs.filter((m) => n !== undefined && this.#reachable(m.from, m.to));
      for (const m of msgs) {
        if (!ok.includes(m)) {
          this.#out.push(`dropped: ${fmtMessage(m)}`);
          this.#snapDropped(m);
        }
      }
      if (ok.length === 0 || n === undefined) continue;
      this.#out.push(`> ${to} receiving messages`);
      for (const m of ok) {
        this.#out.push(`  ${fmtMessage(m)}`);
        this.#watch(n, () => n.node.step(m));
        if (m.type === "MsgSnap") {
          // The driver reports the end of a snapshot stream to the leader.
          const leader = this.nodes.get(m.from);
          if (leader !== undefined && !this.crashed.has(m.from)) {
            leader.node.reportSnapshot(m.to, "finish");
          }
        }
      }
    }
    return true;
  }

  #snapDropped(m: Message): void {
    if (m.type !== "MsgSnap") return;
    const leader = this.nodes.get(m.from);
    if (leader !== undefined && !this.crashed.has(m.from)) {
      leader.node.reportSnapshot(m.to, "failure");
    }
  }

  #stabilize(ids: number[]): void {
    for (let round = 0; round < 1000; round++) {
      let any = false;
      for (const id of this.#ids(ids)) any = this.#processReady(this.#get(id)) || any;
      const targets = this.#ids(ids);
      const before = this.queue.length;
      any = this.#deliver(targets, new Map(), false) || any;
      if (!any && this.queue.length === before) return;
    }
    throw new Error("stabilize did not converge in 1000 rounds");
  }

  #propose(id: number, data: string): void {
    const n = this.#get(id);
    try {
      n.node.propose(enc.encode(data));
    } catch (e) {
      if (!(e instanceof ProposalDroppedError)) throw e;
      this.#out.push(`error: ${e.message} (leader hint ${e.leaderHint})`);
    }
  }

  #proposeConfChange(id: number, args: Args): void {
    const n = this.#get(id);
    let cc: ConfChange;
    if (args.has("add")) cc = { type: "addNode", nodeId: num(args.get("add")?.[0], "add") };
    else if (args.has("remove")) {
      cc = { type: "removeNode", nodeId: num(args.get("remove")?.[0], "remove") };
    } else cc = { type: "addLearner", nodeId: num(args.get("learner")?.[0], "learner") };
    try {
      n.node.proposeConfChange(cc);
    } catch (e) {
      if (!(e instanceof ProposalDroppedError)) throw e;
      this.#out.push(`error: ${e.message}`);
    }
  }

  #readIndex(id: number, ctx: string): void {
    const n = this.#get(id);
    try {
      n.node.readIndex(enc.encode(ctx));
    } catch (e) {
      if (!(e instanceof ProposalDroppedError)) throw e;
      this.#out.push(`error: ${e.message}`);
    }
  }

  #crash(id: number): void {
    this.crashed.add(id);
    const before = this.queue.length;
    this.queue = this.queue.filter((m) => m.to !== id && m.from !== id);
    this.#out.push(`${id} crashed (${before - this.queue.length} queued messages lost)`);
  }

  #restart(id: number): void {
    const n = this.#get(id);
    this.crashed.delete(id);
    // Unpersisted state is lost; the state machine restarts from the snapshot and replays.
    const snap = n.storage.snapshot();
    n.applied = decodeImage(snap.data);
    n.appliedIndex = snap.metadata.index;
    n.node = this.#newNode(id, n.storage, n.opts, 0);
    const st = n.node.status();
    this.#out.push(
      `${id} restarted: term=${st.hardState.term} vote=${st.hardState.vote} commit=${st.hardState.commit} last=${st.lastIndex}`,
    );
  }

  #compact(id: number, index: number): void {
    const n = this.#get(id);
    if (index > n.appliedIndex) throw new RangeError(`Cannot compact ${id} beyond applied`);
    // The snapshot image: the applied data up to `index` (the harness applies in order).
    const st = n.node.status();
    const snap: Snapshot = n.storage.createSnapshot(
      index,
      st.confState,
      enc.encode(JSON.stringify(n.applied.filter((a) => a.index <= index))),
    );
    n.storage.compact(index);
    this.#out.push(
      `${id}: snapshot at ${snap.metadata.index}/${snap.metadata.term}, first index ${n.storage.firstIndex()}`,
    );
  }

  #status(n: SimNode): void {
    const st = n.node.status();
    this.#out.push(
      `${n.id}: ${st.softState.raftState} term=${st.hardState.term} lead=${st.softState.lead} commit=${st.hardState.commit} applied=${st.applied} last=${st.lastIndex}${
        st.leadTransferee !== 0 ? ` transferee=${st.leadTransferee}` : ""
      }`,
    );
    for (const [id, p] of st.progress) {
      this.#out.push(
        `  ${id}: ${p.state} match=${p.match} next=${p.next}${p.isLearner ? " learner" : ""}${
          p.state === "snapshot" ? ` pendingSnap=${p.pendingSnapshot}` : ""
        }${p.inflightMsgs > 0 ? ` inflight=${p.inflightMsgs}` : ""}`,
      );
    }
  }

  #raftState(n: SimNode): void {
    const st = n.node.status();
    this.#out.push(
      `${n.id}: ${st.softState.raftState} term=${st.hardState.term} lead=${st.softState.lead} ${
        fmtConf(st.confState)
      }${this.crashed.has(n.id) ? " (crashed)" : ""}`,
    );
  }

  #raftLog(n: SimNode): void {
    const st = n.node.status();
    const first = n.storage.firstIndex();
    const ents = first <= n.storage.lastIndex()
      ? n.storage.entries(first, n.storage.lastIndex() + 1, Number.MAX_SAFE_INTEGER)
      : [];
    this.#out.push(
      `${n.id}: commit=${st.hardState.commit} snapshot=${n.storage.snapshot().metadata.index} log: ${
        ents.map(fmtEntry).join(", ") || "(empty)"
      }`,
    );
  }
}

/**
 * `spire bench raft`: entries committed per second and commit latency of a
 * 3-node Raft group on the in-memory transport, first with an in-memory log,
 * then with the on-disk region log store (fsync), with 1 and 64 concurrent
 * proposers; entries per fsync; and, as the peer figure from the same run, a
 * bare fsync loop on the same disk.
 *
 * @module
 */

import type { Entry, Snapshot } from "../raft/core/mod.ts";
import {
  type LogStorage,
  MemoryLogStorage,
  RegionPeer,
  type StateMachine,
} from "../raft/driver/mod.ts";
import { DenoFileSystem, RegionLogStore } from "../raft/log_store/mod.ts";
import { MemoryNetwork } from "../raft/transport/mod.ts";

/** Applies nothing but counts; the benchmark measures Raft, not a state machine. */
class CountingStateMachine implements StateMachine<number> {
  #applied = 0;
  apply(commands: readonly Entry[], appliedIndex: number): number[] {
    this.#applied = appliedIndex;
    return commands.map((c) => c.index);
  }
  query(): number {
    return this.#applied;
  }
  snapshot(): Uint8Array {
    return new Uint8Array(8);
  }
  restore(s: Snapshot): void {
    this.#applied = s.metadata.index;
  }
  appliedIndex(): number {
    return this.#applied;
  }
}

interface RunResult {
  entriesPerSec: number;
  p50Ms: number;
  p99Ms: number;
  entriesPerFsync: number;
}

function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

const LATENCIES_MAX = 2_000_000;

async function runGroup(
  disk: string | null,
  proposers: number,
  seconds: number,
  payloadBytes: number,
): Promise<RunResult> {
  const net = new MemoryNetwork();
  const peers: RegionPeer<number>[] = [];
  const stores: LogStorage[] = [];
  for (const id of [1, 2, 3]) {
    const storage = disk === null
      ? new MemoryLogStorage()
      : await RegionLogStore.open({ fs: new DenoFileSystem(), dir: `${disk}/raft/region_${id}` });
    stores.push(storage);
    const slot: { peer?: RegionPeer<number> } = {};
    const transport = net.endpoint(id, (f) => slot.peer?.receive(f));
    const peer = await RegionPeer.start({
      id,
      peers: [1, 2, 3],
      storage,
      stateMachine: new CountingStateMachine(),
      transport,
      random: seeded(id),
      raft: { maxSizePerMsg: 1024 * 1024, maxInflightMsgs: 256 },
      compactEntriesThreshold: 50_000,
      compactKeepEntries: 1_000,
    });
    slot.peer = peer;
    peers.push(peer);
  }
  const leader = peers[0]!;
  leader.campaign();
  for (let i = 0; i < 1000 && !leader.isLeader; i++) await new Promise((r) => setTimeout(r, 1));
  if (!leader.isLeader) throw new Error("Cannot run raft bench: node 1 did not become leader");
  const payload = new Uint8Array(payloadBytes).fill(7);
  const before = leader.stats;
  const latencies = new Float64Array(LATENCIES_MAX);
  let n = 0;
  let committed = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  const proposer = async () => {
    while (performance.now() < end) {
      const s = performance.now();
      await leader.propose(payload);
      committed++;
      if (n < LATENCIES_MAX) latencies[n++] = performance.now() - s;
    }
  };
  await Promise.all(Array.from({ length: proposers }, proposer));
  const elapsed = (performance.now() - t0) / 1000;
  const after = leader.stats;
  for (const p of peers) await p.stop();
  net.close();
  const sorted = latencies.subarray(0, n).sort();
  const syncs = after.syncedReadies - before.syncedReadies;
  return {
    entriesPerSec: committed / elapsed,
    p50Ms: quantile(sorted, 0.5),
    p99Ms: quantile(sorted, 0.99),
    entriesPerFsync: syncs === 0 ? NaN : (after.entriesPersisted - before.entriesPersisted) / syncs,
  };
}

async function fsyncLoop(dir: string, seconds: number, bytes: number): Promise<number> {
  const path = `${dir}/fsync_loop.bin`;
  const file = await Deno.open(path, { create: true, append: true });
  const data = new Uint8Array(bytes).fill(1);
  let count = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  try {
    while (performance.now() < end) {
      await file.write(data);
      await file.syncData();
      count++;
    }
  } finally {
    file.close();
    await Deno.remove(path);
  }
  return count / ((performance.now() - t0) / 1000);
}

const fmt = (x: number, digits = 0) =>
  Number.isFinite(x)
    ? x.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : "n/a";

/**
 * Runs the Raft benchmark and prints Markdown tables.
 *
 * Options: `--seconds S` per run (default 2), `--runs N` (median of N, default 3),
 * `--dir DIR` for the on-disk runs (default a new temporary directory),
 * `--payload BYTES` (default 100).
 *
 * @param args command-line arguments after `raft`
 * @returns the exit code
 */
export async function main(args: string[]): Promise<number> {
  const opt = (name: string, dflt: number): number => {
    const i = args.indexOf(name);
    if (i < 0) return dflt;
    const v = Number(args[i + 1]);
    if (!(v > 0)) throw new RangeError(`Cannot parse ${name}: "${args[i + 1]}" must be > 0`);
    return v;
  };
  const seconds = opt("--seconds", 2);
  const runs = opt("--runs", 3);
  const payload = opt("--payload", 100);
  const dirIdx = args.indexOf("--dir");
  const base = dirIdx >= 0
    ? args[dirIdx + 1]!
    : await Deno.makeTempDir({ prefix: "spire_bench_raft_" });
  const ownDir = dirIdx < 0;
  console.log(
    `# spire bench raft: 3-node group, in-memory transport, ${payload}-byte entries, ` +
      `${seconds} s per run, median of ${runs} runs, disk dir ${base}\n`,
  );
  const rows: string[] = [];
  const results = new Map<string, RunResult>();
  try {
    for (const kind of ["memory", "disk"] as const) {
      for (const proposers of [1, 64]) {
        const rs: RunResult[] = [];
        for (let r = 0; r < runs; r++) {
          const dir = kind === "disk" ? await Deno.makeTempDir({ dir: base }) : null;
          try {
            rs.push(await runGroup(dir, proposers, seconds, payload));
          } finally {
            if (dir !== null) await Deno.remove(dir, { recursive: true });
          }
        }
        const m: RunResult = {
          entriesPerSec: median(rs.map((x) => x.entriesPerSec)),
          p50Ms: median(rs.map((x) => x.p50Ms)),
          p99Ms: median(rs.map((x) => x.p99Ms)),
          entriesPerFsync: median(rs.map((x) => x.entriesPerFsync)),
        };
        results.set(`${kind}/${proposers}`, m);
        rows.push(
          `| ${
            kind === "memory" ? "in-memory log" : "region log store (fsync)"
          } | ${proposers} | ` +
            `${fmt(m.entriesPerSec)} | ${fmt(m.p50Ms, 3)} | ${fmt(m.p99Ms, 3)} | ` +
            `${kind === "memory" ? "(no fsync)" : fmt(m.entriesPerFsync, 1)} |`,
        );
        console.error(`done: ${kind} x${proposers}: ${fmt(m.entriesPerSec)} entries/s`);
      }
    }
    const fsyncs = median(await Promise.all([0].map(() => fsyncLoop(base, seconds, payload))));
    const more: number[] = [];
    for (let r = 1; r < runs; r++) more.push(await fsyncLoop(base, seconds, payload));
    const peer = median([fsyncs, ...more]);
    console.log(
      "| log | proposers | entries committed/s | p50 commit ms | p99 commit ms | entries per fsync (leader) |",
    );
    console.log("|---|---:|---:|---:|---:|---:|");
    for (const r of rows) console.log(r);
    const d1 = results.get("disk/1")!, d64 = results.get("disk/64")!;
    const m64 = results.get("memory/64")!;
    console.log("\n| figure | Spire | peer: bare fsync loop | ratio |");
    console.log("|---|---:|---:|---:|");
    console.log(
      `| durable entries/s, 1 proposer vs fsyncs/s | ${fmt(d1.entriesPerSec)} | ${fmt(peer)} | ` +
        `${fmt(d1.entriesPerSec / peer, 2)} |`,
    );
    console.log(
      `| durable entries/s, 64 proposers vs fsyncs/s | ${fmt(d64.entriesPerSec)} | ${
        fmt(peer)
      } | ` +
        `${fmt(d64.entriesPerSec / peer, 2)} |`,
    );
    console.log(
      `\nGoals: in-memory ${
        fmt(m64.entriesPerSec)
      } entries/s with 64 proposers (goal >= 200,000): ` +
        `${
          m64.entriesPerSec >= 200_000 ? "met" : "NOT met"
        }; with fsync, 64 proposers / 1 proposer = ` +
        `${fmt(d64.entriesPerSec / d1.entriesPerSec, 1)}x (goal >= 20x): ` +
        `${d64.entriesPerSec / d1.entriesPerSec >= 20 ? "met" : "NOT met"}.`,
    );
  } finally {
    if (ownDir) await Deno.remove(base, { recursive: true });
  }
  return 0;
}

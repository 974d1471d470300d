/**
 * Test harness for whole-node tests: a node in a subprocess (so it can be
 * killed with SIGKILL), writers that record every write they send in a
 * {@link WriteHistory}, and a reader of the node's whole keyspace. Used by
 * the crash and fault-injection tests; also usable for longer soaks.
 *
 * @module
 */

import { DEFAULT_TUNING, type RocksDbTuning } from "../tuning/mod.ts";
import { RespClient } from "./resp/client.ts";
import type { Reply } from "./resp/reply.ts";
import { checkDurability, type DurabilityViolation, WriteHistory } from "./write_history.ts";

const dec = new TextDecoder();
/** Lines of a node's stderr quoted when it does not start. */
const STDERR_TAIL_LINES = 30;
/** Starts tried on new ports when the node finds a port taken. */
const START_ATTEMPTS = 4;
/** How long one /ready probe waits for an answer. */
const READY_PROBE_TIMEOUT_MS = 2_000;

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** A node running in a subprocess. */
export class NodeProcess {
  readonly dataDir: string;
  readonly #env: Record<string, string>;
  readonly #args: string[];
  #port: number;
  #adminPort: number;
  #child: Deno.ChildProcess | undefined;
  #stderr: Promise<string> | undefined;

  /**
   * @param options data directory, extra env (e.g. SPIRE_TEST_PLANTS) and flags
   */
  constructor(options: { dataDir: string; env?: Record<string, string>; args?: string[] }) {
    this.dataDir = options.dataDir;
    this.#port = freePort();
    this.#adminPort = freePort();
    this.#env = options.env ?? {};
    this.#args = options.args ?? [];
  }

  /** The client port (new ports are chosen when a start finds one taken). */
  get port(): number {
    return this.#port;
  }

  /** The admin HTTP port. */
  get adminPort(): number {
    return this.#adminPort;
  }

  /**
   * Starts the node and waits until /ready answers 200 (at most `timeoutMs`).
   * A free port found by binding port 0 can be taken by another test before
   * the node binds it: when the node exits because a port is in use, it is
   * started again on new ports (at most {@link START_ATTEMPTS} times).
   * @throws {Error} with the tail of the node's stderr when it exits or is not ready in time
   */
  async start(timeoutMs = 30_000): Promise<void> {
    if (this.#child !== undefined) throw new Error("Cannot start node: already running");
    for (let attempt = 1;; attempt++) {
      const outcome = await this.#startOnce(timeoutMs);
      if (outcome.ready) return;
      const tail = outcome.stderr.split("\n").slice(-STDERR_TAIL_LINES).join("\n");
      if (outcome.exited && /AddrInUse/.test(outcome.stderr) && attempt < START_ATTEMPTS) {
        this.#port = freePort();
        this.#adminPort = freePort();
        continue;
      }
      throw new Error(`Cannot start node: ${outcome.why}\nnode stderr (tail):\n${tail}`);
    }
  }

  async #startOnce(
    timeoutMs: number,
  ): Promise<{ ready: true } | { ready: false; exited: boolean; why: string; stderr: string }> {
    const entry = new URL("../cli/start.ts", import.meta.url).pathname;
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        entry,
        "--data-dir",
        this.dataDir,
        "--port",
        String(this.#port),
        "--admin-port",
        String(this.#adminPort),
        ...this.#args,
      ],
      env: this.#env,
      stdout: "null",
      stderr: "piped",
    }).spawn();
    this.#child = child;
    this.#stderr = new Response(child.stderr).text();
    let exitCode: number | undefined;
    void child.status.then((s) => (exitCode = s.code));
    const deadline = Date.now() + timeoutMs;
    let last = "";
    while (Date.now() < deadline && exitCode === undefined) {
      try {
        // Bounded: a port taken by something that is not the node may accept and never answer.
        const res = await fetch(`http://127.0.0.1:${this.#adminPort}/ready`, {
          signal: AbortSignal.timeout(READY_PROBE_TIMEOUT_MS),
        });
        last = await res.text();
        if (res.status === 200) return { ready: true };
      } catch (e) {
        last = (e as Error).message;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    const exited = exitCode !== undefined;
    const why = exited
      ? `it exited with code ${exitCode} before it was ready`
      : `not ready after ${timeoutMs} ms: ${last}`;
    return { ready: false, exited, why, stderr: await this.kill() };
  }

  /**
   * SIGKILL: no clean shutdown at all.
   * @returns what the node wrote to stderr ("" when it was not running)
   */
  async kill(): Promise<string> {
    const child = this.#child;
    if (child === undefined) return "";
    this.#child = undefined;
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    await child.status;
    return (await this.#stderr) ?? "";
  }

  /**
   * Sends SIGTERM (or `signal`) and waits for the exit.
   * @returns the exit code and what the node wrote to stderr
   */
  async stop(signal: Deno.Signal = "SIGTERM"): Promise<{ code: number; stderr: string }> {
    const child = this.#child;
    if (child === undefined) throw new Error("Cannot stop node: not running");
    this.#child = undefined;
    child.kill(signal);
    const status = await child.status;
    return { code: status.code, stderr: (await this.#stderr) ?? "" };
  }
}

/** What writers did in one run. */
export interface WriterRun {
  /** Writes sent. */
  sent: number;
  /** Writes acknowledged. */
  acked: number;
  /** Error replies and connection failures. */
  failures: number;
}

/**
 * Runs `writers` sequential clients until `stop` resolves, each alternating
 * a SET of a fresh key and an APPEND of a fresh token to its own key, and
 * records every write in `history`. Connection errors make a writer wait and
 * reconnect (the node may be restarting).
 */
export async function runWriters(options: {
  port: number;
  writers: number;
  history: WriteHistory;
  stop: Promise<unknown>;
  /** Prefix of keys and tokens, unique per run. */
  tag: string;
  /** Appends per APPEND key before the writer moves to a new key (bounds value size). */
  appendsPerKey?: number;
  /** Called after every write with its outcome (true = acknowledged). */
  onResult?: (acked: boolean) => void;
}): Promise<WriterRun> {
  let stopped = false;
  void options.stop.then(() => (stopped = true));
  const run: WriterRun = { sent: 0, acked: 0, failures: 0 };
  const perKey = options.appendsPerKey ?? 200;
  const one = async (w: number) => {
    let client: RespClient | undefined;
    for (let i = 0; !stopped; i++) {
      try {
        client ??= await RespClient.connect({ port: options.port });
      } catch {
        run.failures++;
        await new Promise((r) => setTimeout(r, 20));
        continue;
      }
      const isSet = i % 2 === 0;
      const key = isSet
        ? `s:${options.tag}:${w}:${i}`
        : `a:${options.tag}:${w}:${Math.floor(i / (2 * perKey))}`;
      const value = isSet
        ? `v${w}.${i}.${Math.random().toString(36).slice(2, 8)}`
        : `${options.tag}.${w}.${i};`;
      const done = options.history.begin(
        isSet ? { kind: "set", key, value } : { kind: "append", key, token: value },
      );
      run.sent++;
      let reply: Reply;
      try {
        reply = await client.call(isSet ? ["SET", key, value] : ["APPEND", key, value]);
      } catch {
        run.failures++;
        options.onResult?.(false);
        client.close();
        client = undefined;
        continue;
      }
      const ok = (isSet && reply.kind === "simple" && reply.value === "OK") ||
        (!isSet && reply.kind === "integer");
      done(ok);
      options.onResult?.(ok);
      if (ok) run.acked++;
      else run.failures++;
    }
    client?.close();
  };
  await Promise.all(Array.from({ length: options.writers }, (_, w) => one(w)));
  return run;
}

/**
 * Reads every key and value the node serves (SCAN, then GET of each key).
 * @param port the node's client port
 * @returns key -> value
 */
export async function readAll(port: number): Promise<Map<string, string>> {
  const client = await RespClient.connect({ port });
  try {
    const keys: string[] = [];
    const seen = new Set<string>();
    let cursor = "0";
    do {
      const r = await client.call(["SCAN", cursor, "COUNT", "1000"]);
      if (r.kind !== "array" || r.items === null) {
        throw new Error(`SCAN failed: ${JSON.stringify(r)}`);
      }
      const [c, list] = r.items;
      if (c?.kind !== "bulk" || list?.kind !== "array" || list.items === null) {
        throw new Error("SCAN reply has an unexpected shape");
      }
      cursor = dec.decode(c.value ?? new Uint8Array());
      for (const k of list.items) {
        if (k.kind !== "bulk" || !k.value) continue;
        const key = dec.decode(k.value);
        // Spire's SCAN walks the regions in key order: a key seen twice is served twice.
        if (seen.has(key)) throw new Error(`SCAN returned key ${JSON.stringify(key)} twice`);
        seen.add(key);
        keys.push(key);
      }
    } while (cursor !== "0");
    const out = new Map<string, string>();
    for (let i = 0; i < keys.length; i += 500) {
      const part = keys.slice(i, i + 500);
      const r = await client.call(["MGET", ...part]);
      if (r.kind !== "array" || r.items === null) throw new Error("MGET failed");
      r.items.forEach((v, j) => {
        if (v.kind === "bulk" && v.value !== null) out.set(part[j]!, dec.decode(v.value));
      });
    }
    return out;
  } finally {
    client.close();
  }
}

/** What a crash loop found. */
export interface CrashRun {
  /** Kills done. */
  kills: number;
  /** Highest first log index of any region at the end: > 1 when the log was compacted. */
  logFirstIndex: number;
  /** Regions the node served at the end (more than its initial ones after splits). */
  regions: number;
  /** Writes acknowledged over the run. */
  acked: number;
  /** Everything the durability checker reported. */
  violations: DurabilityViolation[];
}

/** Options of {@link crashLoop}. */
export interface CrashLoopOptions {
  /** How many times the node is killed. */
  kills: number;
  /** Environment of the node (e.g. SPIRE_TEST_PLANTS). */
  env?: Record<string, string>;
  /** Stop at the first restart whose state breaks the history. */
  stopAtFirstViolation?: boolean;
  /** The node's raft.log_compact_entries. */
  logCompactEntries: number;
  /** More YAML for the node's config file (e.g. a `regions:` section with small thresholds). */
  extraConfig?: string;
  /** Concurrent writers (default 6). */
  writers?: number;
  /** Called after each checked restart. */
  onRound?: (round: number, acked: number, violations: number) => void;
  /** Where the node's files go (default: a new temporary directory, removed at the end). */
  dir?: string;
  /** Called after each kill, before the restart (e.g. a power cut of the node's disk). */
  afterKill?: (round: number) => Promise<void>;
}

/**
 * Kills a node (SIGKILL) `kills` times while writers run, restarts it, and
 * checks after each restart that every acknowledged write is there with its
 * value, nothing was applied twice and nothing else changed.
 *
 * @param options kills, node environment and limits
 * @returns kills done, writes acknowledged and the violations found
 */
export async function crashLoop(options: CrashLoopOptions): Promise<CrashRun> {
  const tempDir = await Deno.makeTempDir({ prefix: "spire_crash_" });
  const dataDir = options.dir ?? tempDir;
  // Small log compaction threshold: kills also land during snapshots (engine flush) and
  // compactions, and restarts recover from a compacted log. The config stays off `dir` (which
  // a power cut may roll back).
  const configPath = `${tempDir}/spire.yaml`;
  await Deno.writeTextFile(
    configPath,
    `raft:\n  log_compact_entries: ${options.logCompactEntries}\n${options.extraConfig ?? ""}`,
  );
  const node = new NodeProcess({
    dataDir: `${dataDir}/node`,
    env: options.env ?? {},
    args: ["--config", configPath],
  });
  const history = new WriteHistory();
  let acked = 0;
  let kills = 0;
  let logFirstIndex = 0;
  let regionCount = 0;
  const violations: DurabilityViolation[] = [];
  try {
    await node.start();
    for (let round = 0; round < options.kills; round++) {
      const runMs = 150 + Math.floor(Math.random() * 350);
      const killAt = new Promise((r) => setTimeout(r, runMs));
      // The writers stop soon after the kill: their in-flight writes have unknown outcomes.
      const writers = runWriters({
        port: node.port,
        writers: options.writers ?? 6,
        history,
        tag: `r${round}`,
        stop: killAt.then(() => new Promise((r) => setTimeout(r, 100))),
      });
      await killAt;
      await node.kill();
      kills++;
      const run = await writers;
      acked += run.acked;
      await options.afterKill?.(round);
      await node.start();
      const state = await readAll(node.port);
      const found = checkDurability(history.records, state);
      violations.push(...found);
      options.onRound?.(round, acked, violations.length);
      if (found.length > 0 && options.stopAtFirstViolation) break;
      history.settle(state);
    }
    const regions = await (await fetch(`http://127.0.0.1:${node.adminPort}/regions`)).json();
    logFirstIndex = Math.max(...regions.map((r: { logFirstIndex: number }) => r.logFirstIndex));
    regionCount = regions.length;
  } finally {
    await node.kill();
    await Deno.remove(tempDir, { recursive: true }).catch(() => {});
  }
  return { kills, logFirstIndex, regions: regionCount, acked, violations };
}

/**
 * The RocksDB tuning of in-process test nodes: a small cache and memtables, and `syncWrites`
 * off as `spire start` defaults it (the fsynced Raft log is the write-ahead log).
 */
export const TEST_NODE_TUNING: Readonly<RocksDbTuning> = Object.freeze({
  ...DEFAULT_TUNING,
  blockCacheSizeBytes: 8 << 20,
  writeBufferSizeBytes: 4 << 20,
  syncWrites: false,
});

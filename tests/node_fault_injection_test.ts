/**
 * Fault injection through the supervision tree: while clients write, the
 * engine process, the Raft log journal's process, a region peer, the PD and the client
 * server are killed in turn. Each must be restarted by its supervisor, clients may see errors only
 * within the restart window, and no acknowledged write may be lost.
 */

import { TEST_NODE_TUNING } from "../node/testing.ts";

import assert from "node:assert/strict";
import { SpireNode } from "../node/app.ts";
import { resolveNodeConfig } from "../node/config.ts";
import { NAMES } from "../node/services.ts";
import { readAll, runWriters } from "../node/testing.ts";
import { checkDurability, WriteHistory } from "../node/write_history.ts";
import { DynamicSupervisor, type Pid } from "../supervisor/mod.ts";
import { RespClient } from "../node/resp/client.ts";
import { type AppendFile, DenoFileSystem } from "../raft/log_store/mod.ts";

const RESTART_WINDOW_MS_MAX = 5_000;

async function waitFor<T>(what: string, fn: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

Deno.test("fault injection: engine, raft logs, region peer, PD, listener and a connection crash and recover without losing acknowledged writes", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "spire_faults_" });
  const { config } = resolveNodeConfig({
    overrides: { dataDir, port: 0, adminPort: 0, raftTickMs: 20, regionHeartbeatIntervalMs: 100 },
  });
  const reports: string[] = [];
  const node = await SpireNode.start({
    config,
    tuning: TEST_NODE_TUNING,
    report: (line) => reports.push(line),
  });
  const rt = node.runtime;
  const history = new WriteHistory();
  let lastAckMs = Date.now();
  const failedAt: number[] = [];
  /** [killed, writes resumed] of each fault: errors are allowed inside these only. */
  const windows: [number, number][] = [];
  let stopWriters!: () => void;
  const writers = runWriters({
    port: node.clientPort,
    writers: 4,
    history,
    tag: "f",
    stop: new Promise<void>((r) => (stopWriters = r)),
    onResult: (ok) => {
      if (ok) lastAckMs = Date.now();
      else failedAt.push(Date.now());
    },
  });
  try {
    const regionId = node.services.regions()[0]!.id;
    const targets = [NAMES.engine, NAMES.raftLogs, NAMES.region(regionId), NAMES.pd, NAMES.clients];
    for (const name of targets) {
      await waitFor("writes before the fault", () => history.ackedCount > 50 ? true : undefined);
      const before: Pid = rt.whereis(name)!;
      assert.ok(before !== undefined, `${name} is not running`);
      const ackedBefore = history.ackedCount;
      const killedAt = Date.now();
      rt.exit(before, "kill");
      const after = await waitFor(`${name} to restart`, () => {
        const p = rt.whereis(name);
        return p !== undefined && p !== before ? p : undefined;
      });
      assert.notEqual(String(after), String(before));
      await waitFor(
        `writes to resume after ${name} restarted`,
        () => history.ackedCount > ackedBefore + 100 && lastAckMs > killedAt ? true : undefined,
      );
      const windowMs = lastAckMs - killedAt;
      windows.push([killedAt, Date.now()]);
      const errors = failedAt.filter((t) => t >= killedAt).length;
      console.log(
        `${name}: killed, restarted, writes acknowledged again after ${windowMs} ms, ` +
          `${errors} write errors`,
      );
      assert.ok(
        windowMs < RESTART_WINDOW_MS_MAX,
        `writes resumed ${windowMs} ms after ${name} was killed`,
      );
    }
    const tree = node.tree()!;
    const restarts = (id: string): number => {
      let n = -1;
      const walk = (t: typeof tree) => {
        if (t.id === id) n = t.restartCount;
        t.children.forEach(walk);
      };
      walk(tree);
      return n;
    };
    assert.ok(restarts("engine") >= 1, "engine restart not recorded");
    assert.ok(restarts("pd") >= 1, "pd restart not recorded");
    assert.ok(restarts("listener") >= 1, "listener restart not recorded");

    // A connection process: temporary (its socket cannot be restarted). Its client sees the
    // connection close, reconnects and is served by a new connection process.
    const conns = await DynamicSupervisor.whichChildren(rt, NAMES.connections);
    const victim = conns.find((c) => c.pid !== null)?.pid;
    assert.ok(victim !== undefined && victim !== null, "no connection process");
    const ackedBefore = history.ackedCount;
    const killedAt = Date.now();
    rt.exit(victim, "kill");
    await waitFor(
      "writes after a connection process was killed",
      () => history.ackedCount > ackedBefore + 100 && lastAckMs > killedAt ? true : undefined,
    );
    const connected = () =>
      (node.stats() as { clients: { connectedClients: number } }).clients.connectedClients;
    await waitFor("all 4 writers connected again", () => connected() === 4 ? true : undefined);
    console.log(
      `connection process killed; writes acknowledged again after ${lastAckMs - killedAt} ms`,
    );
    windows.push([killedAt, Date.now()]);
    const after = await DynamicSupervisor.whichChildren(rt, NAMES.connections);
    assert.ok(
      !after.some((c) => String(c.pid) === String(victim)),
      "the killed connection is listed",
    );
  } finally {
    stopWriters();
    await writers;
  }
  const outside = failedAt.filter((t) => !windows.some(([from, to]) => t >= from && t <= to));
  assert.deepEqual(outside, [], "write errors outside the restart windows");
  for (const [from] of windows) {
    const last = Math.max(from, ...failedAt.filter((t) => t >= from && t - from < 60_000));
    assert.ok(last - from < RESTART_WINDOW_MS_MAX, `write errors ${last - from} ms after a fault`);
  }
  try {
    const state = await readAll(node.clientPort);
    const violations = checkDurability(history.records, state);
    assert.deepEqual(violations.slice(0, 5), [], `${violations.length} violations`);
    assert.ok(history.ackedCount > 200, `only ${history.ackedCount} writes acknowledged`);
  } finally {
    await node.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("fault injection: crashes beyond the root's restart intensity stop the node, and `exited` says so", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "spire_intensity_" });
  const { config } = resolveNodeConfig({ overrides: { dataDir, port: 0, adminPort: 0 } });
  const node = await SpireNode.start({
    config,
    tuning: TEST_NODE_TUNING,
    report: () => {},
  });
  const rt = node.runtime;
  let stopped = false;
  void node.exited.then(() => (stopped = true));
  try {
    // The root allows 10 restarts in 10 s: the 11th crash of PD stops the whole tree.
    for (let i = 0; i < 11 && !stopped; i++) {
      const pd = await waitFor("PD", () => rt.whereis(NAMES.pd));
      rt.exit(pd, "kill");
      await waitFor(
        "PD to restart or the node to stop",
        () =>
          stopped || (rt.whereis(NAMES.pd) !== undefined && rt.whereis(NAMES.pd) !== pd)
            ? true
            : undefined,
      );
    }
    const reason = await node.exited;
    assert.equal(reason, "shutdown");
    assert.equal(node.tree(), undefined);
  } finally {
    await node.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("fault injection: a store crash restarts the store alone; the region peers and the engine keep running", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "spire_store_crash_" });
  const { config } = resolveNodeConfig({
    overrides: { dataDir, port: 0, adminPort: 0, initialRegionCount: 2 },
  });
  const reports: string[] = [];
  const node = await SpireNode.start({
    config,
    tuning: TEST_NODE_TUNING,
    report: (line) => reports.push(line),
  });
  const rt = node.runtime;
  try {
    const peers = () => node.services.regions().map((r) => String(rt.whereis(NAMES.region(r.id))));
    const peersBefore = peers();
    const engineBefore = String(rt.whereis(NAMES.engine));
    const store = rt.whereis(NAMES.store)!;
    rt.exit(store, "kill");
    await waitFor("the store to restart", () => {
      const p = rt.whereis(NAMES.store);
      return p !== undefined && p !== store ? p : undefined;
    });
    await new Promise((r) => setTimeout(r, 300)); // a failing init would be retried meanwhile
    const storage = node.tree()!.children.find((c) => c.id === "storage")!;
    const restarts = Object.fromEntries(storage.children.map((c) => [c.id, c.restartCount]));
    assert.deepEqual(
      restarts,
      { engine: 0, raftlogs: 0, regions: 0, store: 1 },
      reports.join("\n"),
    );
    assert.equal(String(rt.whereis(NAMES.engine)), engineBefore);
    assert.deepEqual(peers(), peersBefore);
    const c = await RespClient.connect({ port: node.clientPort });
    try {
      assert.deepEqual(await c.call(["SET", "after", "store-crash"]), {
        kind: "simple",
        value: "OK",
      });
    } finally {
      c.close();
    }
  } finally {
    await node.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
});

/** The real disk, except that the next `failSyncs` fsyncs of the Raft log journal fail. */
class FailingJournalDisk extends DenoFileSystem {
  failSyncs = 0;
  failed = 0;

  override async openAppend(path: string, create: boolean): Promise<AppendFile> {
    const file = await super.openAppend(path, create);
    if (!path.includes("/raft/journal/")) return file;
    return {
      get size() {
        return file.size;
      },
      append: (data) => file.append(data),
      sync: () => {
        if (this.failSyncs === 0) return file.sync();
        this.failSyncs--;
        this.failed++;
        return Promise.reject(new Error("EIO: injected fsync failure of the journal"));
      },
      close: () => file.close(),
    };
  }
}

Deno.test("fault injection: a failed fsync of the Raft log journal restarts the journal and the region peers; nothing acknowledged is lost", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "spire_journal_fault_" });
  const { config } = resolveNodeConfig({
    overrides: { dataDir, port: 0, adminPort: 0, raftTickMs: 20, initialRegionCount: 3 },
  });
  const disk = new FailingJournalDisk();
  const reports: string[] = [];
  const node = await SpireNode.start({
    config,
    tuning: TEST_NODE_TUNING,
    report: (line) => reports.push(line),
    raftDisk: () => disk,
  });
  const rt = node.runtime;
  const history = new WriteHistory();
  let stopWriters!: () => void;
  const writers = runWriters({
    port: node.clientPort,
    writers: 4,
    history,
    tag: "j",
    stop: new Promise<void>((r) => (stopWriters = r)),
  });
  try {
    await waitFor("writes before the fault", () => history.ackedCount > 100 ? true : undefined);
    const before = rt.whereis(NAMES.raftLogs)!;
    const ackedBefore = history.ackedCount;
    disk.failSyncs = 1;
    await waitFor("the raftlogs process to restart", () => {
      const p = rt.whereis(NAMES.raftLogs);
      return p !== undefined && p !== before ? p : undefined;
    });
    await waitFor(
      "writes to resume",
      () => history.ackedCount > ackedBefore + 200 ? true : undefined,
    );
    assert.equal(disk.failed, 1);
    // The new incarnation replayed what the failed one had journaled.
    const journal = (node.stats() as { raftJournal: { replayed: { journals: number } } })
      .raftJournal;
    assert.ok(journal.replayed.journals >= 1, JSON.stringify(journal));
    assert.ok(
      reports.some((r) => r.includes("injected fsync failure")),
      `the failure is not reported:\n${reports.join("\n")}`,
    );
  } finally {
    stopWriters();
    await writers;
  }
  try {
    const state = await readAll(node.clientPort);
    const violations = checkDurability(history.records, state);
    assert.deepEqual(violations.slice(0, 5), [], `${violations.length} violations`);
  } finally {
    await node.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
});

import assert from "node:assert/strict";
import { CallExitError, Runtime, Supervisor } from "../supervisor/mod.ts";
import { StaleEpochError } from "./errors.ts";
import { MemoryFileSystem, type PdFileSystem } from "./fs.ts";
import { pdChildSpec, PdClient } from "./pd_server.ts";

const k = (s: string) => new TextEncoder().encode(s);

/** MemoryFileSystem with hooks: fail the next fsync, or hold fsyncs until released. */
class HookedFs implements PdFileSystem {
  readonly inner = new MemoryFileSystem();
  failNextSync = false;
  gate: Promise<void> | undefined;
  mkdir(p: string) {
    return this.inner.mkdir(p);
  }
  readFile(p: string) {
    return this.inner.readFile(p);
  }
  writeFile(p: string, d: Uint8Array) {
    return this.inner.writeFile(p, d);
  }
  async syncFile(p: string) {
    if (this.gate !== undefined) await this.gate;
    if (this.failNextSync) {
      this.failNextSync = false;
      throw new Deno.errors.Interrupted(`fsync ${p}: input/output error`);
    }
    return this.inner.syncFile(p);
  }
  rename(a: string, b: string) {
    return this.inner.rename(a, b);
  }
  syncDir(p: string) {
    return this.inner.syncDir(p);
  }
  remove(p: string) {
    return this.inner.remove(p);
  }
  readDir(p: string) {
    return this.inner.readDir(p);
  }
}

async function withPd(
  fn: (
    ctx: { rt: Runtime; client: PdClient; fs: HookedFs; clock: { now: number } },
  ) => Promise<void>,
): Promise<void> {
  const fs = new HookedFs();
  const clock = { now: 5_000_000 };
  const rt = new Runtime({ report: () => {} });
  const spec = pdChildSpec({
    dir: "/d/pd",
    fs,
    clock: () => clock.now,
    idStep: 10,
    schedule: { replicas: 1 },
  });
  const root = await Supervisor.start(rt, [spec]);
  try {
    await fn({ rt, client: new PdClient(rt, "pd"), fs, clock });
  } finally {
    await rt.stop(root, "shutdown");
    rt.close();
  }
}

Deno.test("the PD process serves registration, bootstrap, routing, heartbeats, ids and timestamps", async () => {
  await withPd(async ({ client }) => {
    assert.equal(await client.isBootstrapped(), false);
    const store = await client.allocId();
    await client.registerStore({ id: store, address: "127.0.0.1:20160" });
    const regions = await client.bootstrap({ storeIds: [store], splitKeys: [k("m")] });
    assert.equal(regions.length, 2);
    const r = await client.getRegionByKey(k("x"));
    assert.equal(r.id, regions[1]!.id);
    const leader = r.peers[0]!;
    const hb = await client.regionHeartbeat({
      region: { ...r, leader },
      approximateSizeBytes: 200 * 2 ** 20,
      approximateKeys: 10,
    });
    assert.equal(hb.operators[0]?.kind, "split");
    assert.equal((await client.getRegionById(r.id))?.leader?.id, leader.id);
    const a = await client.getTs(10);
    const b = await client.getTs();
    assert.ok(b.first > a.last);
    assert.equal((await client.listStores())[0]?.state, "up");
    assert.equal(
      (await client.storeHeartbeat(store, { capacityBytes: 1, availableBytes: 1, regionCount: 2 }))
        .state,
      "up",
    );
    const stats = await client.stats();
    assert.equal(stats.regions, 2);
    assert.equal(stats.regionsWithLeader, 1);
  });
});

Deno.test("PD returns a stale epoch to the caller and keeps running", async () => {
  await withPd(async ({ rt, client }) => {
    const store = await client.allocId();
    await client.registerStore({ id: store, address: "a:1" });
    const [r] = await client.bootstrap({ storeIds: [store] });
    const pid = rt.whereis("pd");
    const stale = { ...r!, epoch: { confVer: 0, version: 0 }, leader: r!.peers[0]! };
    await assert.rejects(
      client.regionHeartbeat({ region: stale, approximateSizeBytes: 0, approximateKeys: 0 }),
      (e: unknown) => e instanceof StaleEpochError && e.current.id === r!.id,
    );
    await assert.rejects(client.getTs(0), RangeError);
    await assert.rejects(client.registerStore({ id: 999, address: "a:1" }), /belongs to store/);
    assert.equal(rt.whereis("pd"), pid, "caller errors do not crash PD");
  });
});

Deno.test("an fsync error crashes PD; its supervisor restarts it and nothing is reused", async () => {
  await withPd(async ({ rt, client, fs, clock }) => {
    const before: number[] = [];
    for (let i = 0; i < 25; i++) before.push(await client.allocId());
    const ts = await client.getTs();
    const pid = rt.whereis("pd");
    fs.failNextSync = true;
    clock.now += 10_000; // the next timestamp needs a new window: an fsync
    await assert.rejects(client.getTs(), (e: unknown) => e instanceof CallExitError);
    let newPid = rt.whereis("pd");
    for (let i = 0; i < 100 && (newPid === undefined || newPid === pid); i++) {
      await new Promise((r) => setTimeout(r, 5));
      newPid = rt.whereis("pd");
    }
    assert.ok(newPid !== undefined && newPid !== pid, "restarted under a new pid");
    clock.now -= 60_000; // and the clock stepped back
    const after = await client.allocId();
    assert.ok(after > Math.max(...before));
    assert.ok((await client.getTs()).first > ts.last);
  });
});

Deno.test("a routing lookup is answered while a timestamp waits for its fsync", async () => {
  await withPd(async ({ client, fs }) => {
    const store = await client.allocId();
    await client.registerStore({ id: store, address: "a:1" });
    await client.bootstrap({ storeIds: [store] });
    let release!: () => void;
    fs.gate = new Promise((r) => (release = r));
    let tsDone = false;
    const pending = client.getTs().then((r) => ((tsDone = true), r));
    const region = await client.getRegionByKey(k("q"));
    assert.equal(tsDone, false, "getTs still waits for the disk");
    assert.ok(region.id > 0);
    fs.gate = undefined;
    release();
    assert.ok((await pending).count === 1);
  });
});

Deno.test("a restarted PD waits for the killed instance's writes before it reads the directory", async () => {
  await withPd(async ({ rt, client, fs }) => {
    const first = await client.allocId(); // ids 1..10 reserved, bound 11 durable
    assert.equal(first, 1);
    for (let i = 0; i < 9; i++) await client.allocId();
    let release!: () => void;
    fs.gate = new Promise((r) => (release = r));
    const doomed = client.allocId(20); // reserves up to 31; its fsync is held
    const doomedResult = doomed.then(() => "ok", (e) => e);
    await new Promise((r) => setTimeout(r, 5));
    rt.exit(rt.whereis("pd")!, "kill"); // no terminate: nothing closes the old instance
    assert.ok((await doomedResult) instanceof CallExitError);
    fs.gate = undefined; // new fsyncs go through; only the old one is held
    let answered = false;
    const next = (async () => {
      for (let i = 0; i < 200; i++) {
        try {
          return await client.allocId();
        } catch {
          await new Promise((r) => setTimeout(r, 2));
        }
      }
      throw new Error("PD did not come back");
    })().then((id) => ((answered = true), id));
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(answered, false, "the new PD waits for the old write");
    release();
    assert.ok((await next) >= 31, "and then starts above the bound the old instance saved");
  });
});

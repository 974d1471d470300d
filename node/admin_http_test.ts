import assert from "node:assert/strict";
import { Registry } from "prom-client";
import { Engine, type EngineStats } from "../engine/mod.ts";
import { AdminServer } from "./admin_http.ts";
import { registerEngineMetrics } from "./metrics.ts";

const MiB = 1024 * 1024;
const enc = new TextEncoder();

/** The value of one sample line `name{labels} value` in Prometheus text, or undefined. */
function sample(text: string, nameAndLabels: string): number | undefined {
  for (const line of text.split("\n")) {
    if (line.startsWith(nameAndLabels + " ")) return Number(line.slice(nameAndLabels.length + 1));
  }
  return undefined;
}

async function withEngine(fn: (engine: Engine) => Promise<void>): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "spire_admin_test_" });
  const engine = await Engine.open({
    dataDir: `${root}/data`,
    tuning: { blockCacheSizeBytes: 8 * MiB, writeBufferSizeBytes: 4 * MiB, syncWrites: false },
  });
  try {
    await fn(engine);
  } finally {
    await engine.close();
    await Deno.remove(root, { recursive: true });
  }
}

Deno.test("admin HTTP serves /health, /stats and /metrics from a real engine on an ephemeral port", async () => {
  await withEngine(async (engine) => {
    for (let i = 0; i < 100; i++) await engine.put(enc.encode(`k${i}`), enc.encode(`v${i}`));
    await engine.flush();
    for (let i = 0; i < 10; i++) await engine.get(enc.encode(`k${i}`));

    const registry = new Registry();
    registerEngineMetrics(registry, () => engine.getStats());
    const server = AdminServer.start({
      port: 0,
      registry,
      stats: () => ({ stats: engine.getStats(), cache: engine.getCacheInfo() }),
    });
    try {
      assert.ok(server.port > 0);
      assert.equal(server.hostname, "127.0.0.1");

      const health = await fetch(`${server.url}/health`);
      assert.equal(health.status, 200);
      assert.deepEqual(await health.json(), { ok: true });

      const statsRes = await fetch(`${server.url}/stats`);
      assert.equal(statsRes.status, 200);
      assert.match(statsRes.headers.get("content-type") ?? "", /application\/json/);
      const body = await statsRes.json() as {
        stats: EngineStats;
        cache: { capacityBytes: number };
      };
      assert.equal(body.cache.capacityBytes, 8 * MiB);
      assert.equal(body.stats.keysWritten, 100);
      assert.equal(body.stats.options.writeBufferSizeBytes, 4 * MiB);

      const metricsRes = await fetch(`${server.url}/metrics`);
      assert.equal(metricsRes.status, 200);
      assert.match(metricsRes.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
      const text = await metricsRes.text();
      assert.equal(sample(text, "spire_engine_block_cache_capacity_bytes"), 8 * MiB);
      assert.equal(sample(text, "spire_engine_keys_written_total"), 100);
      // RocksDB counts a block-cache-tier attempt and its disk retry separately: >= 10.
      assert.equal(sample(text, "spire_engine_keys_read_total"), body.stats.keysRead);
      assert.ok(body.stats.keysRead >= 10);
      assert.equal(sample(text, 'spire_engine_option{option="writeBufferSizeBytes"}'), 4 * MiB);
      assert.equal(sample(text, 'spire_engine_compression_info{compression="lz4"}'), 1);
      assert.equal(sample(text, 'spire_engine_level_files{level="0"}'), 1, "one SST after flush");
      assert.equal(
        sample(text, 'spire_engine_rocksdb_ticker_total{ticker="rocksdb.number.keys.written"}'),
        100,
      );
      assert.match(text, /# TYPE spire_engine_wal_syncs_total counter/);
      assert.match(text, /# TYPE spire_engine_miss_reads_sync_total counter/);
      assert.match(text, /spire_engine_miss_read_sync_max_seconds \d/);
      assert.match(text, /# HELP spire_engine_memtable_bytes Bytes of all memtables\./);

      // Metrics are collected at scrape time: new writes show on the next scrape.
      await engine.put(enc.encode("one-more"), enc.encode("x"));
      const again = await (await fetch(`${server.url}/metrics`)).text();
      assert.equal(sample(again, "spire_engine_keys_written_total"), 101);
    } finally {
      await server.close();
    }
  });
});

Deno.test("a scrape reads the stats source once, not once per metric", async () => {
  await withEngine(async (engine) => {
    let calls = 0;
    const registry = new Registry();
    registerEngineMetrics(registry, () => {
      calls++;
      return engine.getStats();
    });
    await registry.metrics();
    assert.equal(calls, 1);
    await registry.metrics();
    assert.equal(calls, 2);
  });
});

Deno.test("admin HTTP answers 404 for unknown paths, 405 for writes, 503 when unhealthy", async () => {
  let healthy = true;
  const server = AdminServer.start({
    port: 0,
    health: () => ({ ok: healthy, engine: healthy ? "open" : "closed" }),
  });
  try {
    const missing = await fetch(`${server.url}/nope`);
    assert.equal(missing.status, 404);
    assert.deepEqual((await missing.json()).routes, ["/health"]);
    const post = await fetch(`${server.url}/health`, { method: "POST", body: "x" });
    assert.equal(post.status, 405);
    await post.body?.cancel();
    healthy = false;
    const sick = await fetch(`${server.url}/health`);
    assert.equal(sick.status, 503);
    assert.deepEqual(await sick.json(), { ok: false, engine: "closed" });
    // Without a stats source or registry, those routes do not exist.
    const stats = await fetch(`${server.url}/stats`);
    assert.equal(stats.status, 404);
    await stats.body?.cancel();
  } finally {
    await server.close();
  }
});

Deno.test("routes can be added later; a failing handler gives 500 and is reported", async () => {
  const errors: unknown[] = [];
  const server = AdminServer.start({
    port: 0,
    routes: { "/regions": () => Response.json([{ id: 1 }]) },
    onError: (error) => errors.push(error),
  });
  try {
    assert.deepEqual(await (await fetch(`${server.url}/regions`)).json(), [{ id: 1 }]);
    server.addRoute("/boom", () => {
      throw new Error("disk on fire");
    });
    const boom = await fetch(`${server.url}/boom`);
    assert.equal(boom.status, 500);
    assert.match((await boom.json()).error, /\/boom failed: disk on fire/);
    assert.equal(errors.length, 1);
    assert.throws(() => server.addRoute("regions", () => new Response()), TypeError);
  } finally {
    await server.close();
    await server.close(); // safe twice
  }
});

Deno.test("requests past concurrentRequestsMax are refused with 503", async () => {
  const { promise: gate, resolve: open } = Promise.withResolvers<void>();
  const { promise: entered, resolve: enter } = Promise.withResolvers<void>();
  const server = AdminServer.start({
    port: 0,
    concurrentRequestsMax: 1,
    routes: {
      "/slow": async () => {
        enter();
        await gate;
        return new Response("done");
      },
    },
  });
  try {
    const slow = fetch(`${server.url}/slow`);
    await entered;
    const refused = await fetch(`${server.url}/slow`);
    assert.equal(refused.status, 503);
    await refused.body?.cancel();
    open();
    assert.equal(await (await slow).text(), "done");
  } finally {
    await server.close();
  }
});

Deno.test("a taken port is an AddrInUse error and a bad port a RangeError", async () => {
  const first = AdminServer.start({ port: 0 });
  try {
    assert.throws(() => AdminServer.start({ port: first.port }), Deno.errors.AddrInUse);
    assert.throws(() => AdminServer.start({ port: 70000 }), RangeError);
    assert.throws(() => AdminServer.start({ port: 0, concurrentRequestsMax: 0 }), RangeError);
  } finally {
    await first.close();
  }
});

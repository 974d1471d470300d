import assert from "node:assert/strict";
import { runSpire, spawnSpire } from "./_run_spire.ts";

const LISTENING =
  /listening on 127\.0\.0\.1:(\d+) \(RESP\), admin on (http:\/\/127\.0\.0\.1:(\d+))/;

Deno.test("spire start listens, answers /health, /stats and /metrics, and exits 0 on SIGTERM", async () => {
  const root = await Deno.makeTempDir({ prefix: "spire_cli_start_" });
  const child = spawnSpire(["start", "--data-dir", root, "--port", "0", "--admin-port", "0"], {
    SPIRE_ROCKSDB_BLOCK_CACHE_SIZE: "32MiB",
  });
  try {
    const line = await child.firstLine;
    const match = LISTENING.exec(line);
    assert.ok(match, `unexpected first line: ${line}`);
    const url = match[2];

    const health = await fetch(`${url}/health`);
    assert.equal(health.status, 200);
    assert.equal((await health.json()).ok, true);
    const stats = await (await fetch(`${url}/stats`)).json();
    assert.equal(stats.cache.capacityBytes, 32 * 1024 * 1024);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    assert.match(metrics, /^spire_engine_block_cache_capacity_bytes 33554432$/m);
    // The node's default: the Raft log is the WAL, the engine's WAL is not synced again.
    const config = await (await fetch(`${url}/config`)).json();
    assert.equal(config.rocksdb.syncWrites, false);

    // The node holds its data directory: a second opener is refused, not corrupted.
    const second = await runSpire(["stats", "--data-dir", root]);
    assert.equal(second.code, 1);
    assert.match(second.stderr, /lock/i);

    child.process.kill("SIGTERM");
    const status = await child.process.status;
    assert.equal(status.code, 0);
    assert.match(await child.stderr, /SIGTERM: stopping/);
    await child.stdout;
    // A clean stop released the lock.
    assert.equal((await runSpire(["stats", "--data-dir", root])).code, 0);
  } finally {
    try {
      child.process.kill("SIGKILL");
    } catch { /* already exited */ }
    await child.process.status;
    await child.stdout.catch(() => {});
    await child.stderr;
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("spire start also stops cleanly on SIGINT", async () => {
  const root = await Deno.makeTempDir({ prefix: "spire_cli_start_" });
  const child = spawnSpire(["start", "--data-dir", root, "--port", "0", "--admin-port", "0"]);
  try {
    assert.match(await child.firstLine, LISTENING);
    child.process.kill("SIGINT");
    assert.equal((await child.process.status).code, 0);
  } finally {
    await child.process.status;
    await child.stdout.catch(() => {});
    await child.stderr;
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a bad SPIRE_ROCKSDB_* variable stops spire start before anything opens", async () => {
  const root = await Deno.makeTempDir({ prefix: "spire_cli_start_" });
  try {
    const r = await runSpire(["start", "--data-dir", `${root}/d`, "--port", "0"], {
      SPIRE_ROCKSDB_BLOOM_BITS: "12",
    });
    assert.notEqual(r.code, 0);
    assert.equal(r.stdout, "");
    assert.match(
      r.stderr,
      /SPIRE_ROCKSDB_BLOOM_BITS: did you mean SPIRE_ROCKSDB_BLOOM_BITS_PER_KEY/,
    );
    await assert.rejects(() => Deno.stat(`${root}/d`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("spire start reports a taken port and a bad flag without a stack trace", async () => {
  const root = await Deno.makeTempDir({ prefix: "spire_cli_start_" });
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const port = (listener.addr as Deno.NetAddr).port;
    const taken = await runSpire(
      ["start", "--data-dir", root, "--port", "0", "--admin-port", String(port)],
    );
    assert.equal(taken.code, 1);
    assert.match(taken.stderr, new RegExp(`${port}`));
    assert.match(taken.stderr, /in use/i);
    const bad = await runSpire(["start", "--admin-port", "http"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--admin-port.*http/);
    assert.doesNotMatch(taken.stderr + bad.stderr, /\n\s+at /);
  } finally {
    listener.close();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("an explicit SPIRE_ROCKSDB_SYNC_WRITES=true reaches the node's engine", async () => {
  const root = await Deno.makeTempDir({ prefix: "spire_cli_start_" });
  const child = spawnSpire(["start", "--data-dir", root, "--port", "0", "--admin-port", "0"], {
    SPIRE_ROCKSDB_SYNC_WRITES: "true",
  });
  try {
    const match = LISTENING.exec(await child.firstLine);
    assert.ok(match);
    const config = await (await fetch(`${match[2]}/config`)).json();
    assert.equal(config.rocksdb.syncWrites, true);
    child.process.kill("SIGTERM");
    assert.equal((await child.process.status).code, 0);
  } finally {
    try {
      child.process.kill("SIGKILL");
    } catch { /* already exited */ }
    await child.process.status;
    await child.stdout.catch(() => {});
    await child.stderr;
    await Deno.remove(root, { recursive: true });
  }
});

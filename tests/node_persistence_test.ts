/**
 * `spire start` as a subprocess: it serves RESP and admin HTTP, SIGTERM and
 * SIGINT stop it in order with exit code 0, and everything written is there
 * after a clean restart (values, counters, expiry times). Also: a bad flag or
 * variable stops start-up with a message naming it.
 */

import assert from "node:assert/strict";
import { NodeProcess } from "../node/testing.ts";
import { RespClient } from "../node/resp/client.ts";
import { NIL, type Reply } from "../node/resp/reply.ts";

const dec = new TextDecoder();
const text = (r: Reply): string | null =>
  r.kind === "bulk" ? (r.value === null ? null : dec.decode(r.value)) : JSON.stringify(r);

Deno.test({
  name: "persistence: data survives a clean restart; SIGTERM and SIGINT exit 0",
  sanitizeResources: false,
  async fn() {
    const dataDir = await Deno.makeTempDir({ prefix: "spire_persist_" });
    const node = new NodeProcess({ dataDir, args: ["--regions", "3"] });
    try {
      await node.start();
      let c = await RespClient.connect({ port: node.port });
      for (let i = 0; i < 300; i++) {
        assert.deepEqual(await c.call(["SET", `k${i}`, `v${i}`]), { kind: "simple", value: "OK" });
      }
      await c.call(["INCRBY", "counter", "41"]);
      await c.call(["INCR", "counter"]);
      await c.call(["SET", "ttl", "x", "EX", "1000"]);
      await c.call(["DEL", "k7"]);
      assert.equal((await c.call(["INCR", "k1"])).kind, "error"); // "v1" is not an integer
      assert.deepEqual(await c.call(["MGET", "k1", "k7", "nothing"]), {
        kind: "array",
        items: [{ kind: "bulk", value: new TextEncoder().encode("v1") }, NIL, NIL],
      });
      // INFO keyspace in Redis's form, counted across the three regions: 300 keys - k7 + counter
      // + ttl, one of them with a TTL of about 1000 s.
      const info = text(await c.call(["INFO", "keyspace"])) ?? "";
      const line = info.match(/^db0:keys=(\d+),expires=(\d+),avg_ttl=(\d+)\r$/m);
      assert.ok(line !== null, info);
      assert.deepEqual([line[1], line[2]], ["301", "1"]);
      assert.ok(Number(line[3]) > 990_000 && Number(line[3]) <= 1_000_000, `avg_ttl ${line[3]}`);
      // INFO memory: the process's resident size and the parts Spire can name.
      const memory = text(await c.call(["INFO", "memory"])) ?? "";
      assert.match(memory, /^# Memory\r$/m);
      assert.match(memory, /^used_memory:[1-9]\d{6,}\r$/m, "at least a megabyte resident");
      assert.match(memory, /^used_memory_human:\d+\.\d\d[MG]\r$/m);
      assert.match(memory, /^rocksdb_memtable_bytes:[1-9]\d*\r$/m);
      assert.match(memory, /^value_cache_capacity_bytes:67108864\r$/m);
      assert.match(memory, /^maxmemory_policy:noeviction\r$/m);
      // CONFIG GET answers the node's durability as Redis's parameters say it.
      const config = await c.call(["CONFIG", "GET", "append*", "save", "dir", "maxmemory*"]);
      assert.ok(config.kind === "array" && config.items !== null, JSON.stringify(config));
      const pairs = new Map<string, string>();
      for (let i = 0; i < config.items.length; i += 2) {
        pairs.set(text(config.items[i]!) ?? "", text(config.items[i + 1]!) ?? "");
      }
      assert.deepEqual(Object.fromEntries(pairs), {
        appendonly: "yes",
        appendfsync: "always",
        save: "",
        dir: await Deno.realPath(dataDir),
        maxmemory: "0",
        "maxmemory-policy": "noeviction",
      });
      c.close();
      const regions = await (await fetch(`http://127.0.0.1:${node.adminPort}/regions`)).json();
      assert.equal(regions.length, 3);
      const metrics = await (await fetch(`http://127.0.0.1:${node.adminPort}/metrics`)).text();
      assert.match(metrics, /spire_raft_applied_index\{region="\d+"\} \d+/);
      assert.match(metrics, /spire_raft_commit_latency_seconds_count\{region="\d+"\} \d+/);
      const logBytes = [...metrics.matchAll(/^spire_raft_log_bytes\{region="(\d+)"\} (\d+)$/gm)];
      assert.equal(logBytes.length, 3, "one log size per region");
      for (const [, id, bytes] of logBytes) {
        let onDisk = 0;
        for await (const e of Deno.readDir(`${dataDir}/raft/region_${id}`)) {
          if (e.isFile) onDisk += (await Deno.stat(`${dataDir}/raft/region_${id}/${e.name}`)).size;
        }
        assert.ok(
          Number(bytes) > 0 && Number(bytes) <= onDisk,
          `region ${id}: ${bytes} of ${onDisk}`,
        );
      }
      // The three region logs' syncs went to one journal, which fsyncs once for those asked together.
      const journal = (name: string) =>
        Number(new RegExp(`^spire_raft_journal_${name}_total (\\d+)$`, "m").exec(metrics)?.[1]);
      assert.ok(journal("fsyncs") > 0, metrics);
      assert.ok(journal("sync_requests") >= journal("fsyncs"));
      assert.ok(journal("bytes") > 0);
      // Every journal fsync is timed, in the same process as the counter.
      const timed = /^spire_raft_journal_sync_duration_seconds_count (\d+)$/m.exec(metrics)?.[1];
      assert.equal(Number(timed), journal("fsyncs"), metrics);
      assert.match(metrics, /spire_client_commands_total\{command="set",outcome="ok"\} [1-9]/);
      assert.match(metrics, /spire_client_command_duration_seconds_count\{command="set"\} [1-9]/);
      assert.match(metrics, /spire_client_commands_total\{command="incr",outcome="error"\} 1\n/);
      assert.match(metrics, /spire_client_commands_total\{command="incr",outcome="ok"\} 1\n/);
      assert.match(metrics, /spire_actor_mailbox_length\{path="root\/storage\/engine"\} 0/);
      assert.match(metrics, /spire_pd_tso_limit_ms \d+/);
      assert.match(metrics, /^spire_value_cache_capacity_bytes 67108864$/m);
      assert.match(metrics, /^spire_value_cache_entries [1-9]/m);
      // The MGET above: one key found, two not (k7 was deleted); nothing else read a key.
      assert.match(metrics, /^spire_keyspace_hits_total 1$/m);
      assert.match(metrics, /^spire_keyspace_misses_total 2$/m);
      assert.match(metrics, /^spire_client_connections_received [1-9]/m);
      // The node's native GET path is loaded (./spire built it) and says so.
      assert.match(metrics, /^spire_native_get_path 1$/m);
      assert.match(metrics, /^spire_native_commands_total \d+$/m);
      assert.match(metrics, /spire_engine_/);
      const stopped = await node.stop();
      assert.equal(stopped.code, 0, stopped.stderr);
      assert.match(stopped.stderr, /SIGTERM: stopping/);

      await node.start();
      c = await RespClient.connect({ port: node.port });
      assert.equal(text(await c.call(["GET", "k0"])), "v0");
      assert.equal(text(await c.call(["GET", "k299"])), "v299");
      assert.equal(text(await c.call(["GET", "k7"])), null);
      assert.equal(text(await c.call(["GET", "counter"])), "42");
      const ttl = await c.call(["TTL", "ttl"]);
      assert.ok(ttl.kind === "integer" && Number(ttl.value) > 900, JSON.stringify(ttl));
      assert.deepEqual(await c.call(["DBSIZE"]), { kind: "integer", value: 301 });
      c.close();
      const tree = await (await fetch(`http://127.0.0.1:${node.adminPort}/tree`)).json();
      assert.deepEqual(tree.children.map((x: { id: string }) => x.id), [
        "config",
        "pd",
        "storage",
        "clients",
        "admin",
      ]);
      const cfg = await (await fetch(`http://127.0.0.1:${node.adminPort}/config`)).json();
      assert.equal(cfg.node.port, node.port);
      assert.equal(cfg.node.dataDir, dataDir);
      assert.equal(cfg.node.initialRegionCount, 3);
      assert.equal(cfg.node.password, null);
      assert.equal(cfg.rocksdb.syncWrites, false, "the engine's WAL is not synced in the node");
      assert.equal(cfg.rocksdb.bloomBitsPerKey, 10);
      const interrupted = await node.stop("SIGINT");
      assert.equal(interrupted.code, 0, interrupted.stderr);
      assert.match(interrupted.stderr, /SIGINT: stopping/);
    } finally {
      await node.kill();
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test("start: a bad flag or variable stops start-up with a message naming it", async () => {
  const beyondMemory = `${Math.ceil(Deno.systemMemoryInfo().total / 2 ** 30) + 1}GiB`;
  const entry = new URL("../cli/start.ts", import.meta.url).pathname;
  for (
    const [args, env, pattern] of [
      [["--port", "99999"], {}, /flag --port: "99999" is out of range/],
      [["--bogus", "1"], {}, /unknown flag "--bogus"/],
      [[], { SPIRE_ROCKSDB_BLOOM_BITS: "8" }, /SPIRE_ROCKSDB_BLOOM_BITS_PER_KEY/],
      // More than this host's memory, for the engine and for the value cache.
      [
        [],
        { SPIRE_ROCKSDB_BLOCK_CACHE_SIZE: beyondMemory },
        /tuning: the block cache .*SPIRE_ROCKSDB_BLOCK_CACHE_SIZE/,
      ],
      [[], { SPIRE_VALUE_CACHE_SIZE: beyondMemory }, /value_cache_size .*SPIRE_VALUE_CACHE_SIZE/],
    ] as const
  ) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", entry, "--data-dir", "/nonexistent/never", ...args],
      env,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 2);
    assert.match(dec.decode(out.stderr), pattern);
  }
});

Deno.test({
  name: "start: requirepass from the YAML config makes AUTH mandatory; SPIRE_PASSWORD overrides it",
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "spire_auth_" });
    const configPath = `${dir}/spire.yaml`;
    await Deno.writeTextFile(configPath, "node:\n  requirepass: from-file\n");
    for (
      const [env, password] of [[{}, "from-file"], [
        { SPIRE_PASSWORD: "from-env" },
        "from-env",
      ]] as const
    ) {
      const node = new NodeProcess({ dataDir: `${dir}/data`, env, args: ["--config", configPath] });
      try {
        await node.start();
        const c = await RespClient.connect({ port: node.port });
        const denied = await c.call(["GET", "x"]);
        assert.ok(
          denied.kind === "error" && denied.message.startsWith("NOAUTH"),
          JSON.stringify(denied),
        );
        assert.deepEqual(await c.call(["AUTH", password]), { kind: "simple", value: "OK" });
        assert.equal(text(await c.call(["GET", "x"])), null);
        c.close();
        const cfg = await (await fetch(`http://127.0.0.1:${node.adminPort}/config`)).json();
        assert.equal(cfg.node.password, "(set)");
        assert.ok(!JSON.stringify(cfg).includes(password), "/config shows the password");
        assert.equal((await node.stop()).code, 0);
      } finally {
        await node.kill();
      }
    }
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test({
  name: "start: a second node on the same data directory stops before touching it",
  sanitizeResources: false,
  async fn() {
    const dataDir = await Deno.makeTempDir({ prefix: "spire_lock_" });
    const first = new NodeProcess({ dataDir });
    try {
      await first.start();
      const second = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          new URL("../cli/start.ts", import.meta.url).pathname,
          "--data-dir",
          dataDir,
          "--port",
          "0",
          "--admin-port",
          "0",
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(second.code, 1);
      assert.match(dec.decode(second.stderr), /is in use by another Spire node/);
      const c = await RespClient.connect({ port: first.port });
      assert.deepEqual(await c.call(["PING"]), { kind: "simple", value: "PONG" });
      c.close();
      assert.equal((await first.stop()).code, 0);
    } finally {
      await first.kill();
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});

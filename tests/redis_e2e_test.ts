/**
 * End to end against the started node (`spire start` in a subprocess: the supervision tree,
 * Raft regions, the native paths) over TCP with real clients: npm:ioredis and redis-cli (RESP2
 * and RESP3, AUTH, --pipe pipelining, --scan).
 */
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { NodeProcess } from "../node/testing.ts";

/** What the tests need of the node: its client port. */
interface StartedNode {
  readonly port: number;
}

/** Starts a node on a fresh directory (with `password` as SPIRE_PASSWORD), runs `fn`, stops it. */
async function withServer(
  options: { password?: string },
  fn: (t: StartedNode) => Promise<void>,
): Promise<void> {
  const dataDir = await Deno.makeTempDir({ prefix: "spire_e2e_" });
  const node = new NodeProcess({
    dataDir,
    env: options.password === undefined ? {} : { SPIRE_PASSWORD: options.password },
  });
  try {
    await node.start();
    await fn(node);
    const { code, stderr } = await node.stop();
    assert.equal(code, 0, stderr);
  } finally {
    await node.kill();
    await Deno.remove(dataDir, { recursive: true });
  }
}

async function withIoredis(
  port: number,
  extra: Record<string, unknown>,
  fn: (r: Redis) => Promise<void>,
) {
  const r = new Redis({
    host: "127.0.0.1",
    port,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    ...extra,
  });
  await r.connect();
  try {
    await fn(r);
  } finally {
    await r.quit();
  }
}

Deno.test("ioredis: every supported command", async () => {
  await withServer({}, async (t) => {
    await withIoredis(t.port, {}, async (r) => {
      assert.equal(await r.ping(), "PONG");
      assert.equal(await r.echo("hi"), "hi");
      assert.equal(await r.select(0), "OK");
      assert.equal(await r.set("k", "v"), "OK");
      assert.equal(await r.get("k"), "v");
      assert.equal(await r.set("k", "v2", "NX"), null);
      assert.equal(await r.set("k", "v2", "XX", "GET"), "v");
      assert.equal(await r.set("t", "1", "EX", 100), "OK");
      assert.equal(await r.ttl("t"), 100);
      assert.equal(await r.set("t", "2", "KEEPTTL"), "OK");
      assert.ok((await r.pttl("t")) > 99_000);
      assert.equal(await r.set("t2", "1", "PX", 5000), "OK");
      assert.equal(await r.set("t3", "1", "EXAT", Math.floor(Date.now() / 1000) + 100), "OK");
      assert.equal(await r.set("t4", "1", "PXAT", Date.now() + 100_000), "OK");
      assert.ok((await r.ttl("t4")) >= 99);
      await assert.rejects(r.call("SET", "x", "1", "NX", "XX"), /ERR syntax error/);
      await assert.rejects(r.set("x", "1", "EX", 0), /ERR invalid expire time in 'set' command/);
      assert.equal(await r.getdel("k"), "v2");
      assert.equal(await r.getdel("k"), null);
      assert.equal(await r.getex("t", "PERSIST"), "2");
      assert.equal(await r.ttl("t"), -1);
      assert.equal(await r.getex("t", "EX", 50), "2");
      assert.equal(await r.ttl("t"), 50);
      assert.equal(await r.mset("a", "1", "b", "2"), "OK");
      assert.deepEqual(await r.mget("a", "b", "nope"), ["1", "2", null]);
      assert.equal(await r.msetnx("a", "x", "c", "3"), 0);
      assert.equal(await r.msetnx("c", "3", "d", "4"), 1);
      assert.equal(await r.exists("a", "b", "nope", "a"), 3);
      assert.equal(await r.del("a", "nope"), 1);
      assert.equal(await r.unlink("b"), 1);
      assert.equal(await r.incr("n"), 1);
      assert.equal(await r.incrby("n", 10), 11);
      assert.equal(await r.decr("n"), 10);
      assert.equal(await r.decrby("n", 4), 6);
      await r.set("max", "9223372036854775807");
      await assert.rejects(r.incr("max"), /ERR increment or decrement would overflow/);
      await r.set("word", "abc");
      await assert.rejects(r.incr("word"), /ERR value is not an integer or out of range/);
      assert.equal(await r.append("s", "ab"), 2);
      assert.equal(await r.append("s", "cd"), 4);
      assert.equal(await r.strlen("s"), 4);
      assert.equal(await r.expire("s", 100), 1);
      assert.equal(await r.pexpire("s", 200_000), 1);
      assert.equal(await r.ttl("s"), 200);
      assert.equal(await r.expireat("s", Math.floor(Date.now() / 1000) + 300), 1);
      assert.ok((await r.ttl("s")) >= 299);
      assert.equal(await r.persist("s"), 1);
      assert.equal(await r.ttl("s"), -1);
      assert.equal(await r.ttl("nope"), -2);
      assert.equal(await r.pttl("nope"), -2);
      assert.equal(await r.type("s"), "string");
      assert.equal(await r.type("nope"), "none");
      assert.equal(await r.setbit("bits", 9, 1), 0);
      assert.equal(await r.setbit("bits", 9, 1), 1);
      assert.equal(await r.getbit("bits", 9), 1);
      assert.equal(await r.bitcount("bits"), 1);
      assert.equal(await r.bitpos("bits", 1), 9);
      assert.equal(await r.del("bits"), 1);
      assert.equal(await r.config("RESETSTAT"), "OK");
      assert.match(await r.info("commandstats"), /^cmdstat_config\|resetstat:calls=1,/m);
      assert.equal(await r.client("SETNAME", "e2e"), "OK");
      assert.equal(await r.client("GETNAME"), "e2e");
      assert.equal(typeof (await r.client("ID")), "number");
      const dbsize = await r.dbsize();
      assert.equal(dbsize, 10);
      assert.match(await r.info("keyspace"), /db0:keys=10/);
      assert.match(await r.info(), /# Server\r\nredis_version:/);
      const cmds = (await r.call("COMMAND")) as unknown[][];
      assert.ok(cmds.some((c) => c[0] === "get" && c[1] === 2));
      const keys: string[] = [];
      await new Promise<void>((resolve, reject) => {
        const stream = r.scanStream({ match: "t*", count: 2 });
        stream.on("data", (batch: string[]) => keys.push(...batch));
        stream.on("end", () => resolve());
        stream.on("error", reject);
      });
      assert.deepEqual(keys.sort(), ["t", "t2", "t3", "t4"]);
      const range = (await r.call("SPIRE.SCANRANGE", "a", "e", "LIMIT", "10")) as unknown[];
      assert.deepEqual(range.slice(0, 2), ["rows", [["c", "3"], ["d", "4"]]]);
      assert.ok(Array.isArray(await r.call("SPIRE.STATS")));
      // A node answers with its regions (the command layer alone has none to show).
      const regions = (await r.call("SPIRE.REGIONS")) as unknown[];
      assert.ok(Array.isArray(regions) && regions.length >= 1, JSON.stringify(regions));
      assert.equal(await r.flushdb(), "OK");
      assert.equal(await r.dbsize(), 0);
    });
  });
});

Deno.test("ioredis: pipelining and concurrent clients", async () => {
  await withServer({}, async (t) => {
    await withIoredis(t.port, {}, async (r) => {
      const p = r.pipeline();
      for (let i = 0; i < 1000; i++) p.set(`p${i}`, String(i)).incr("counter");
      const results = await p.exec();
      assert.equal(results!.length, 2000);
      assert.ok(results!.every(([err]: [Error | null, unknown]) => err === null));
      assert.equal(await r.get("counter"), "1000");
      const others = Array.from(
        { length: 5 },
        () => new Redis({ host: "127.0.0.1", port: t.port }),
      );
      await Promise.all(others.map(async (o) => {
        for (let i = 0; i < 100; i++) await o.incr("shared");
      }));
      await Promise.all(others.map((o) => o.quit()));
      assert.equal(await r.get("shared"), "500");
    });
  });
});

Deno.test("ioredis: MULTI/EXEC transactions and WATCH", async () => {
  await withServer({}, async (t) => {
    await withIoredis(t.port, {}, async (r) => {
      const results = await r.multi().set("tk", "v").incr("tn").get("tk").incr("tk").exec();
      assert.deepEqual(results!.slice(0, 3), [[null, "OK"], [null, 1], [null, "v"]]);
      assert.match(String(results![3]![0]), /ERR value is not an integer or out of range/);
      // WATCH: a write from another client in between makes EXEC return null.
      const other = new Redis({ host: "127.0.0.1", port: t.port });
      try {
        assert.equal(await r.watch("tn"), "OK");
        await other.incr("tn");
        assert.equal(await r.multi().set("tn", "100").exec(), null);
        assert.equal(await r.get("tn"), "2");
        assert.equal(await r.watch("tn"), "OK");
        assert.deepEqual(await r.multi().set("tn", "100").exec(), [[null, "OK"]]);
        assert.equal(await other.get("tn"), "100");
      } finally {
        await other.quit();
      }
      // A command that cannot be queued discards the whole transaction.
      await assert.rejects(
        r.multi().set("tk", "never").call("NOSUCH").exec(),
        /EXECABORT Transaction discarded because of previous errors/,
      );
      assert.equal(await r.get("tk"), "v");
    });
  });
});

Deno.test("ioredis: AUTH with a configured password", async () => {
  await withServer({ password: "pw-123" }, async (t) => {
    await withIoredis(t.port, { password: "pw-123" }, async (r) => {
      assert.equal(await r.set("k", "v"), "OK");
      assert.equal(await r.get("k"), "v");
    });
    const bad = new Redis({
      host: "127.0.0.1",
      port: t.port,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      enableReadyCheck: false,
    });
    await bad.connect();
    await assert.rejects(bad.get("k"), /NOAUTH Authentication required/);
    bad.disconnect();
  });
});

async function cli(port: number, args: string[], stdin?: string): Promise<string> {
  const child = new Deno.Command("redis-cli", {
    args: ["-h", "127.0.0.1", "-p", String(port), ...args],
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  const out = await child.output();
  clearTimeout(timer);
  return new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
}

Deno.test("redis-cli: every supported command, RESP2 and RESP3", async () => {
  await withServer({}, async (t) => {
    const p = t.port;
    const expectations: [string[], string][] = [
      [["PING"], "PONG"],
      [["ECHO", "hello"], "hello"],
      [["SET", "k", "v", "EX", "100"], "OK"],
      [["GET", "k"], "v"],
      [["TTL", "k"], "100"],
      [["PTTL", "missing"], "-2"],
      [["SET", "k", "w", "XX", "GET", "KEEPTTL"], "v"],
      [["GETEX", "k", "PX", "5000"], "w"],
      [["PEXPIRE", "k", "9000"], "1"],
      [["PERSIST", "k"], "1"],
      [["EXPIREAT", "k", "99999999999"], "1"],
      [["GETDEL", "k"], "w"],
      [["MSET", "a", "1", "b", "2"], "OK"],
      [["MGET", "a", "b"], "1\n2"],
      [["MSETNX", "a", "1"], "0"],
      [["EXISTS", "a", "b"], "2"],
      [["INCR", "a"], "2"],
      [["INCRBY", "a", "3"], "5"],
      [["DECR", "a"], "4"],
      [["DECRBY", "a", "4"], "0"],
      [["APPEND", "b", "x"], "2"],
      [["STRLEN", "b"], "2"],
      [["EXPIRE", "b", "10"], "1"],
      [["TYPE", "b"], "string"],
      [["DBSIZE"], "2"],
      [["UNLINK", "a"], "1"],
      [["DEL", "b"], "1"],
      [["SETNX", "n", "1"], "1"],
      [["SETNX", "n", "2"], "0"],
      [["GETSET", "n", "3"], "1"],
      [["SETEX", "n", "100", "4"], "OK"],
      [["PSETEX", "n", "100000", "5"], "OK"],
      [["EXPIREAT", "n", "4000000000"], "1"],
      [["EXPIRETIME", "n"], "4000000000"],
      [["PEXPIRETIME", "n"], "4000000000000"],
      [["TOUCH", "n", "zz"], "1"],
      [["KEYS", "n*"], "n"],
      [["SETRANGE", "n", "1", "ab"], "3"],
      [["GETRANGE", "n", "0", "-1"], "5ab"],
      [["SET", "fl", "10.5"], "OK"],
      [["INCRBYFLOAT", "fl", "0.1"], "10.6"],
      [["COPY", "n", "n2"], "1"],
      [["GET", "n2"], "5ab"],
      [["OBJECT", "ENCODING", "n2"], "embstr"],
      [["OBJECT", "ENCODING", "fl"], "embstr"],
      [["OBJECT", "REFCOUNT", "n2"], "1"],
      [["DEL", "n", "n2"], "2"],
      [["SELECT", "0"], "OK"],
      [["SELECT", "1"], "ERR DB index is out of range"],
      [["CLIENT", "SETNAME", "cli"], "OK"],
      [["COMMAND", "COUNT"], "69"],
      [["SET", "old", "1"], "OK"],
      [["RENAME", "old", "new"], "OK"],
      [["RENAMENX", "new", "old"], "1"],
      [["GET", "old"], "1"],
      [["DEL", "old"], "1"],
      [["CONFIG", "GET", "maxclients"], "maxclients\n10000"],
      [["CONFIG", "GET", "MAXCL*", "maxclients", "nothing-*"], "maxclients\n10000"],
      [["CONFIG", "GET", "databases"], "databases\n1"],
      [["CONFIG", "GET", "nothing"], ""],
      [
        ["CONFIG", "SET", "timeout", "5"],
        "ERR CONFIG SET is not supported: Spire reads its settings at start-up from the YAML config, flags and SPIRE_* variables (the admin port's /config shows them)",
      ],
      [["CONFIG", "GET"], "ERR wrong number of arguments for 'config|get' command"],
      [["CLIENT", "SETINFO", "LIB-NAME", "mylib"], "OK"],
      [["CLIENT", "SETINFO", "BOGUS", "x"], "ERR Unrecognized option 'BOGUS'"],
      [["INCRBY", "a", "x"], "ERR value is not an integer or out of range"],
      [["GET"], "ERR wrong number of arguments for 'get' command"],
      [["FLUSHDB"], "OK"],
      [["QUIT"], "OK"],
    ];
    for (const [args, want] of expectations) {
      assert.equal((await cli(p, args)).trim(), want, args.join(" "));
    }
    assert.match(await cli(p, ["CLIENT", "ID"]), /^\d+\n$/);
    assert.match(await cli(p, ["INFO", "stats"]), /total_commands_processed:\d+/);
    // RESP3: HELLO's map and a null.
    assert.match(await cli(p, ["-3", "HELLO", "3"]), /proto 3/);
    assert.equal((await cli(p, ["--no-raw", "-3", "GET", "nothing"])).trim(), "(nil)");
    assert.match(await cli(p, ["--no-raw", "-3", "HELLO", "3"]), /"proto" => \(integer\) 3/);
    assert.match(
      await cli(p, ["--no-raw", "-3", "SPIRE.STATS"]),
      /1# "server" => \n\s+1# "redis_version" => "7.0.0"/,
    );
    // Pipelining through --pipe: 5000 commands in raw protocol.
    let raw = "";
    for (let i = 0; i < 5000; i++) {
      raw += `*3\r\n$3\r\nSET\r\n$${String(i).length + 1}\r\nk${i}\r\n$1\r\nv\r\n`;
    }
    assert.match(await cli(p, ["--pipe"], raw), /errors: 0, replies: 5000/);
    assert.equal((await cli(p, ["DBSIZE"])).trim(), "5000");
    const scanned = (await cli(p, ["--scan", "--pattern", "k49*"])).trim().split("\n").sort();
    const want = Array.from({ length: 5000 }, (_, i) => `k${i}`).filter((k) => k.startsWith("k49"));
    assert.deepEqual(scanned, want.sort());
    assert.equal(scanned.length, 111);
  });
});

Deno.test("redis-cli: AUTH with -a and with HELLO", async () => {
  await withServer({ password: "cli-pw" }, async (t) => {
    assert.equal((await cli(t.port, ["GET", "k"])).trim(), "NOAUTH Authentication required.");
    assert.equal(
      (await cli(t.port, ["-a", "cli-pw", "--no-auth-warning", "SET", "k", "v"])).trim(),
      "OK",
    );
    assert.equal(
      (await cli(t.port, ["-a", "wrong", "--no-auth-warning", "GET", "k"])).includes("WRONGPASS"),
      true,
    );
    assert.match(
      await cli(t.port, ["-3", "-a", "cli-pw", "--no-auth-warning", "HELLO", "3"]),
      /proto 3/,
    );
    assert.equal(
      (await cli(t.port, [
        "--user",
        "default",
        "--pass",
        "cli-pw",
        "--no-auth-warning",
        "GET",
        "k",
      ])).trim(),
      "v",
    );
  });
});

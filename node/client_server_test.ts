import assert from "node:assert/strict";
import fc from "fast-check";
import { startTestServer } from "./commands/testing.ts";
import { encodeCommand, RespClient } from "./resp/client.ts";
import { showReply } from "./resp/reply_parser.ts";
import { ClientPort } from "./client_server.ts";
import { LocalBackend } from "./commands/backend.ts";
import { MemoryEngine } from "./commands/memory_engine.ts";

const te = new TextEncoder();

Deno.test("client server refuses connections beyond connectionsMax and recovers", async () => {
  const t = startTestServer({ connectionsMax: 2 });
  const a = await RespClient.connect({ port: t.port });
  const b = await RespClient.connect({ port: t.port });
  assert.equal(showReply(await a.call(["PING"])), "+PONG");
  assert.equal(showReply(await b.call(["PING"])), "+PONG");
  const c = await RespClient.connect({ port: t.port });
  assert.equal(showReply(await c.read()), "-ERR max number of clients reached");
  assert.ok(await c.waitClosed());
  c.close();
  a.close();
  // The slot frees once the server sees the close.
  let d: RespClient | undefined;
  for (let i = 0; i < 50 && d === undefined; i++) {
    const x = await RespClient.connect({ port: t.port });
    const r = await x.call(["PING"]);
    if (r.kind === "simple") d = x;
    else {
      x.close();
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  assert.ok(d !== undefined);
  assert.equal(t.server.stats.rejectedConnections >= 1, true);
  b.close();
  d.close();
  await t.stop();
});

Deno.test("client server closes idle connections by the injected clock", async () => {
  let now = 1_000_000;
  const t = startTestServer({ now: () => now, idleTimeoutMs: 5000, tickMs: 1_000_000 });
  const idle = await RespClient.connect({ port: t.port });
  const active = await RespClient.connect({ port: t.port });
  assert.equal(showReply(await idle.call(["PING"])), "+PONG");
  now += 4000;
  assert.equal(showReply(await active.call(["PING"])), "+PONG");
  now += 2000;
  await t.server.tick();
  assert.ok(await idle.waitClosed());
  assert.equal(showReply(await active.call(["PING"])), "+PONG");
  assert.equal(t.server.stats.idleDisconnects, 1);
  idle.close();
  active.close();
  await t.stop();
});

Deno.test("oversized requests get a protocol error and close only their connection", async () => {
  const t = startTestServer({
    requestLimits: { bulkBytesMax: 1024, requestBytesMax: 3000, argsMax: 10, inlineBytesMax: 512 },
  });
  const healthy = await RespClient.connect({ port: t.port });
  await healthy.call(["SET", "k", "v"]);
  const cases: [Uint8Array, string][] = [
    [encodeCommand(["SET", "big", "x".repeat(2000)]), "-ERR Protocol error: invalid bulk length"],
    [
      encodeCommand(["MSET", ...Array(11).fill("a")]),
      "-ERR Protocol error: invalid multibulk length",
    ],
    [
      encodeCommand([
        "MSET",
        "a",
        "x".repeat(1000),
        "b",
        "x".repeat(1000),
        "c",
        "x".repeat(1000),
        "d",
        "x".repeat(1000),
      ]),
      "-ERR Protocol error: request too large: more than 3000 bytes (requestBytesMax)",
    ],
    [te.encode("GET " + "k".repeat(600)), "-ERR Protocol error: too big inline request"],
  ];
  for (const [bytes, message] of cases) {
    const c = await RespClient.connect({ port: t.port });
    await c.sendRaw(bytes);
    assert.equal(showReply(await c.read()), message);
    assert.ok(await c.waitClosed());
    c.close();
    assert.equal(showReply(await healthy.call(["GET", "k"])), '"v"');
  }
  assert.equal(t.server.stats.protocolErrors, 4);
  healthy.close();
  await t.stop();
});

Deno.test("malformed input (random bytes, lying lengths, cut frames) never disturbs other clients", async () => {
  const t = startTestServer({
    requestLimits: { bulkBytesMax: 4096, requestBytesMax: 8192, argsMax: 64, inlineBytesMax: 1024 },
  });
  const healthy = await RespClient.connect({ port: t.port });
  let expected = 0;
  const send = async (bytes: Uint8Array) => {
    const c = await RespClient.connect({ port: t.port });
    await c.sendRaw(bytes).catch(() => {});
    c.close();
    expected++;
    assert.equal(showReply(await healthy.call(["INCR", "n"])), `:${expected}`);
  };
  await send(te.encode("*3\r\n$3\r\nSET\r\n$100\r\nabc")); // bulk length lies
  await send(encodeCommand(["SET", "k", "value"]).subarray(0, 17)); // cut in the middle
  await send(te.encode("*99999999999\r\n"));
  await send(te.encode("$-1\r\n*-1\r\n:5\r\n"));
  await fc.assert(
    fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 300 }), async (bytes) => {
      await send(bytes);
    }),
    { numRuns: 150 },
  );
  assert.equal(showReply(await healthy.call(["GET", "n"])), `"${expected}"`);
  healthy.close();
  await t.stop();
});

Deno.test("AUTH is required when a password is set, and the password is never logged", async () => {
  const logs: string[] = [];
  const t = startTestServer({ password: "s3cret", log: (m) => logs.push(m) });
  const c = await RespClient.connect({ port: t.port });
  assert.equal(showReply(await c.call(["GET", "k"])), "-NOAUTH Authentication required.");
  assert.equal(showReply(await c.call(["PING"])), "-NOAUTH Authentication required.");
  assert.match(showReply(await c.call(["HELLO", "3"])), /^-NOAUTH HELLO must be called/);
  assert.equal(
    showReply(await c.call(["AUTH", "wrong"])),
    "-WRONGPASS invalid username-password pair or user is disabled.",
  );
  assert.equal(
    showReply(await c.call(["AUTH", "other", "s3cret"])),
    "-WRONGPASS invalid username-password pair or user is disabled.",
  );
  assert.equal(showReply(await c.call(["AUTH", "s3cret"])), "+OK");
  assert.equal(showReply(await c.call(["SET", "k", "v"])), "+OK");
  const d = await RespClient.connect({ port: t.port });
  const hello = await d.call(["HELLO", "3", "AUTH", "default", "s3cret", "SETNAME", "app"]);
  assert.equal(hello.kind, "map");
  assert.equal(showReply(await d.call(["CLIENT", "GETNAME"])), '"app"');
  assert.equal(showReply(await d.call(["GET", "k"])), '"v"');
  assert.ok(!logs.some((l) => l.includes("s3cret")));
  c.close();
  d.close();
  await t.stop();
});

Deno.test("RESP3 after HELLO 3: nulls, maps and verbatim INFO", async () => {
  const t = startTestServer();
  const c = await RespClient.connect({ port: t.port });
  await c.call(["HELLO", "3"]);
  await c.sendRaw(encodeCommand(["GET", "missing"]));
  assert.equal(showReply(await c.read()), "null");
  const info = await c.call(["INFO", "server"]);
  assert.equal(info.kind, "verbatim");
  const stats = await c.call(["SPIRE.STATS"]);
  assert.equal(stats.kind, "map");
  assert.equal(showReply(await c.call(["HELLO", "2"])).startsWith("["), true);
  assert.equal(showReply(await c.call(["GET", "missing"])), "nil");
  c.close();
  await t.stop();
});

Deno.test("pipelined commands are answered in order, large replies flushed in parts", async () => {
  const t = startTestServer({ replyFlushBytes: 1024 });
  const c = await RespClient.connect({ port: t.port });
  const cmds: string[][] = [];
  for (let i = 0; i < 2000; i++) {
    cmds.push(i % 2 === 0 ? ["SET", `k${i}`, "x".repeat(100)] : ["GET", `k${i - 1}`]);
  }
  cmds.push(["QUIT"]);
  const replies = await c.pipeline(cmds);
  for (let i = 0; i < 2000; i++) {
    assert.equal(showReply(replies[i]!), i % 2 === 0 ? "+OK" : JSON.stringify("x".repeat(100)));
  }
  assert.equal(showReply(replies[2000]!), "+OK");
  assert.ok(await c.waitClosed());
  c.close();
  await t.stop();
});

Deno.test("a pipeline's reads and writes are grouped without reordering them", async () => {
  for (const pipelinedWrites of [false, true]) {
    const t = startTestServer({ pipelinedWrites });
    const c = await RespClient.connect({ port: t.port });
    const replies = await c.pipeline([
      ["SET", "k", "a"],
      ["GET", "k"],
      ["STRLEN", "k"],
      ["APPEND", "k", "bc"],
      ["INCR", "n"],
      ["GET", "k"],
      ["GET", "n"],
      ["SET", "k", "d"],
      ["TYPE", "k"],
      ["GET", "k"],
      ["DEL", "k"],
      ["GET", "k"],
      ["TTL", "k"],
    ]);
    assert.deepEqual(replies.map(showReply), [
      "+OK",
      '"a"',
      ":1",
      ":3",
      ":1",
      '"abc"',
      '"1"',
      "+OK",
      "+string",
      '"d"',
      ":1",
      "nil",
      ":-2",
    ], `pipelinedWrites ${pipelinedWrites}`);
    c.close();
    await t.stop();
  }
});

Deno.test("background expiry removes expired keys in bounded batches", async () => {
  let now = 1_000_000;
  const t = startTestServer({ now: () => now, tickMs: 1_000_000, expireScanKeysMax: 10 });
  const c = await RespClient.connect({ port: t.port });
  const cmds = Array.from({ length: 25 }, (_, i) => ["SET", `t${i}`, "v", "PX", "100"]);
  await c.pipeline([...cmds, ["SET", "keep", "v"]]);
  assert.equal(t.engine.size, 26);
  now += 50;
  await t.server.tick();
  assert.equal(t.engine.size, 26);
  now += 100;
  assert.equal(showReply(await c.call(["GET", "t0"])), "nil");
  await t.server.tick(); // 10 keys examined
  assert.ok(t.engine.size >= 16 && t.engine.size < 26, `size ${t.engine.size}`);
  for (let i = 0; i < 5; i++) await t.server.tick();
  assert.equal(t.engine.size, 1);
  assert.equal(t.server.stats.expiredKeys, 25);
  assert.equal(showReply(await c.call(["GET", "keep"])), '"v"');
  c.close();
  await t.stop();
});

Deno.test("the command hook sees every command with its name and outcome", async () => {
  const events: string[] = [];
  const t = startTestServer({ onCommand: (e) => events.push(`${e.name}:${e.failed}`) });
  const c = await RespClient.connect({ port: t.port });
  await c.pipeline([["SET", "a", "1"], ["INCR", "a"], ["CLIENT", "SETNAME", "x"], ["NOPE"], [
    "SET",
    "a",
  ]]);
  assert.deepEqual(events, [
    "set:false",
    "incr:false",
    "client|setname:false",
    "unknown:true",
    "set:true",
  ]);
  c.close();
  await t.stop();
});

Deno.test("keys and values beyond the storage limits get errors, and the connection stays usable", async () => {
  const t = startTestServer();
  const c = await RespClient.connect({ port: t.port });
  const bigKey = "k".repeat(64 * 1024);
  assert.equal(
    showReply(await c.call(["SET", bigKey, "v"])),
    "-ERR key is too large: 65536 bytes; at most 65535 bytes",
  );
  assert.match(showReply(await c.call(["MGET", "a", bigKey])), /^-ERR key is too large/);
  const bigValue = new Uint8Array(32 * 1024 * 1024 - 9);
  assert.match(
    showReply(await c.call(["MSET", "a", "1", "b", bigValue])),
    /^-ERR string exceeds maximum allowed size/,
  );
  assert.equal(showReply(await c.call(["SET", "k".repeat(65535), "v"])), "+OK");
  assert.equal(showReply(await c.call(["DBSIZE"])), ":1");
  c.close();
  await t.stop();
});

Deno.test("a write larger than one engine batch is refused without failing its neighbours", async () => {
  const t = startTestServer();
  const c = await RespClient.connect({ port: t.port });
  const pairs: string[] = [];
  for (let i = 0; i < 100_001; i++) pairs.push(`k${i}`, "v");
  const [small, big, after] = await c.pipeline([["SET", "x", "1"], ["MSET", ...pairs], [
    "INCR",
    "x",
  ]]);
  assert.equal(showReply(small!), "+OK");
  assert.match(showReply(big!), /^-ERR write too large: 100001 operations/);
  assert.equal(showReply(after!), ":2");
  c.close();
  await t.stop();
});

Deno.test("INFO rocksdb, SPIRE.STATS and SPIRE.REGIONS come from the injected sources", async () => {
  let hits = 5;
  const t = startTestServer({
    engineStats: () => ({
      blockCache: { hits: hits++, misses: 2 },
      l0Files: 1,
      levels: [{ level: 0, files: 2, bytes: 10 }, { level: 1, files: 0, bytes: 0 }],
      syncMaxUs: 172.5420000000213,
      nativeHelpers: true,
      tickers: { "rocksdb.block.cache.miss": 7 },
    }),
    regions: () => [{ id: 1, startKey: "", endKey: "", leader: true }],
  });
  const c = await RespClient.connect({ port: t.port });
  const info = await c.call(["INFO", "rocksdb"]);
  assert.equal(
    showReply(info),
    JSON.stringify(
      "# RocksDB\r\nblock_cache_hits:5\r\nblock_cache_misses:2\r\nl0_files:1\r\n" +
        "level0_files:2\r\nlevel0_bytes:10\r\nlevel1_files:0\r\nlevel1_bytes:0\r\n" +
        "sync_max_us:172.542\r\nnative_helpers:1\r\ntickers_rocksdb_block_cache_miss:7\r\n",
    ),
  );
  const stats = showReply(await c.call(["SPIRE.STATS"]));
  assert.match(stats, /"engine", \["blockCache", \["hits", :6, "misses", :2\], "l0Files", :1,/);
  assert.equal(
    showReply(await c.call(["SPIRE.REGIONS"])),
    '[["id", :1, "startKey", "", "endKey", "", "leader", :1]]',
  );
  const bare = startTestServer();
  const d = await RespClient.connect({ port: bare.port });
  assert.equal(
    showReply(await d.call(["SPIRE.REGIONS"])),
    "-ERR SPIRE.REGIONS: this node has no region source configured",
  );
  assert.doesNotMatch(showReply(await d.call(["INFO"])), /RocksDB/);
  d.close();
  await bare.stop();
  c.close();
  await t.stop();
});

Deno.test("MGET, KEYS and SPIRE.SCANRANGE replies are bounded by replyBytesMax", async () => {
  const t = startTestServer({ replyBytesMax: 1000 });
  const c = await RespClient.connect({ port: t.port });
  await c.call(["MSET", "a", "x".repeat(600), "b", "y".repeat(600)]);
  assert.equal(showReply(await c.call(["MGET", "a"])), `["${"x".repeat(600)}"]`);
  assert.equal(
    showReply(await c.call(["MGET", "a", "b"])),
    "-ERR reply too large: 1200 bytes; at most 1000 (replyBytesMax)",
  );
  assert.match(
    showReply(await c.call(["SPIRE.SCANRANGE", "a", ""])),
    /^-ERR reply too large: 1202 bytes/,
  );
  // KEYS reads page by page (scanCountMax keys each) and stops once the keys pass the bound.
  await c.call([
    "MSET",
    ...Array.from({ length: 30 }, (_, i) => [`key${"k".repeat(40)}${i}`, "v"]).flat(),
  ]);
  assert.equal(showReply(await c.call(["KEYS", "a"])), `["a"]`);
  assert.match(
    showReply(await c.call(["KEYS", "key*"])),
    /^-ERR reply too large: \d+ bytes; at most 1000/,
  );
  assert.equal(showReply(await c.call(["PING"])), "+PONG");
  c.close();
  await t.stop();
});

Deno.test("accepted sockets get TCP_NODELAY, as redis-server sets it (Deno leaves Nagle on)", async () => {
  const backend = new LocalBackend({ engine: new MemoryEngine(), now: Date.now });
  const port = new ClientPort({ backend });
  const noDelay: boolean[] = [];
  const conn = {
    remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 1 },
    localAddr: { transport: "tcp", hostname: "127.0.0.1", port: 6379 },
    setNoDelay: (on = true) => void noDelay.push(on),
    close: () => {},
  } as unknown as Deno.Conn;
  port.open("1", conn);
  assert.deepEqual(noDelay, [true]);
  port.forget("1");
  await backend.close();
});

Deno.test("OBJECT answers for live keys only, and refuses what Spire does not record", async () => {
  let nowMs = 1_700_000_000_000;
  const t = startTestServer({ now: () => nowMs });
  const c = await RespClient.connect({ port: t.port });
  try {
    const [set, setex, enc, ref] = await c.pipeline([
      ["SET", "n", "5"],
      ["SET", "soon", "v", "PX", "100"],
      ["OBJECT", "ENCODING", "n"],
      ["OBJECT", "REFCOUNT", "n"], // Redis answers 2147483647 (a shared integer); Spire shares none
    ]);
    assert.deepEqual([showReply(set!), showReply(setex!)], ["+OK", "+OK"]);
    assert.equal(showReply(enc!), '"int"');
    assert.equal(showReply(ref!), ":1");
    assert.match(
      showReply(await c.call(["OBJECT", "IDLETIME", "n"])),
      /^-ERR OBJECT IDLETIME is not supported: Spire does not track when a key was last read$/,
    );
    assert.match(showReply(await c.call(["OBJECT", "FREQ", "n"])), /^-ERR OBJECT FREQ is not/);
    assert.equal(showReply(await c.call(["OBJECT", "ENCODING", "soon"])), '"embstr"');
    nowMs += 101; // expired: gone for OBJECT as for GET
    assert.equal(showReply(await c.call(["OBJECT", "ENCODING", "soon"])), "nil");
    assert.equal(showReply(await c.call(["OBJECT", "IDLETIME", "soon"])), "nil");
    assert.equal(showReply(await c.call(["GET", "n"])), '"5"', "the connection still serves");
  } finally {
    c.close();
    await t.stop();
  }
});

import assert from "node:assert/strict";
import fc from "fast-check";
import { Engine } from "../engine/mod.ts";
import { startTestServerOn, type TestServer } from "./commands/testing.ts";
import { encodeCommand, RespClient } from "./resp/client.ts";
import { showReply } from "./resp/reply_parser.ts";
import { encodeValue, engineKeyOf } from "./commands/kv_model.ts";
import { NATIVE_KEY_BYTES_MAX, NativeGets, NativeStop } from "./native_gets.ts";
import { NativeValueCache } from "./native_value_cache.ts";

const te = new TextEncoder();
const native = NativeGets.open();

Deno.test("the native GET path is built (./spire builds it)", () => {
  assert.ok(native !== undefined, "the library is missing: run ./spire to build .build/");
});

async function withEngine<T>(fn: (engine: Engine, dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "spire-native-gets-" });
  const engine = await Engine.open({ dataDir: `${dir}/data` });
  try {
    return await fn(engine, dir);
  } finally {
    await engine.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** One call of the native path over `input`, with room for `outBytes` of replies. */
function answer(
  engine: Engine,
  input: string | Uint8Array,
  options: {
    outBytes?: number;
    resp?: 2 | 3;
    nowMs?: number;
    keyBytesMax?: number;
    cache?: Deno.PointerObject | null;
  } = {},
) {
  const bytes = typeof input === "string" ? te.encode(input) : input;
  const output = new Uint8Array(options.outBytes ?? 4096);
  const r = native!.answer({
    access: engine.nativeReadAccess()!,
    cache: options.cache ?? null,
    input: bytes,
    inStart: 0,
    inEnd: bytes.length,
    output,
    outStart: 0,
    outBytes: output.length,
    keyBytesMax: options.keyBytesMax ?? NATIVE_KEY_BYTES_MAX,
    commandsMax: 256,
    resp: options.resp ?? 2,
    nowMs: options.nowMs ?? 1000,
  });
  return { ...r, text: new TextDecoder().decode(output.subarray(0, r.written)) };
}

async function put(engine: Engine, key: string, value: string, expireAtMs?: number) {
  await engine.put(
    engineKeyOf(te.encode(key)),
    encodeValue({ type: "string", value: te.encode(value), expireAtMs }),
  );
}

const GET = (k: string) => `*2\r\n$3\r\nGET\r\n$${te.encode(k).length}\r\n${k}\r\n`;

Deno.test("native GETs: replies, expiry by the given clock, RESP3 nulls, counts", async () => {
  await withEngine(async (engine) => {
    await put(engine, "a", "one");
    await put(engine, "t", "ttl", 2000);
    await put(engine, "", "empty key");
    const input = GET("a") + "*2\r\n$3\r\nget\r\n$1\r\nt\r\n" + GET("missing") + GET("");
    let r = answer(engine, input, { nowMs: 1999 });
    assert.equal(r.commands, 4);
    assert.equal(r.consumed, te.encode(input).length);
    assert.equal(r.text, "$3\r\none\r\n$3\r\nttl\r\n$-1\r\n$9\r\nempty key\r\n");
    assert.deepEqual([r.hits, r.misses, r.stop], [3, 1, NativeStop.END]);
    // Expired once the clock is past the deadline (Redis: now > expireAt), not at it.
    r = answer(engine, GET("t"), { nowMs: 2000 });
    assert.equal(r.text, "$3\r\nttl\r\n");
    r = answer(engine, GET("t"), { nowMs: 2001, resp: 3 });
    assert.deepEqual([r.text, r.hits, r.misses], ["_\r\n", 0, 1]);
  });
});

Deno.test("native GETs read the node's value cache first and fill it from RocksDB", async () => {
  await withEngine(async (engine) => {
    const cache = new NativeValueCache(native!, 1 << 20);
    try {
      cache.use(engine);
      await put(engine, "disk", "from rocksdb");
      // Only in the cache (as between an applied write's cache update and a read): served.
      const stored = encodeValue({ type: "string", value: te.encode("cached"), expireAtMs: 5 });
      cache.fill(cache.generation, engineKeyOf(te.encode("c")), stored);
      let r = answer(engine, GET("c") + GET("disk"), { cache: cache.nativeHandle, nowMs: 5 });
      assert.equal(r.text, "$6\r\ncached\r\n$12\r\nfrom rocksdb\r\n");
      // The expiry of a cached value counts too.
      r = answer(engine, GET("c"), { cache: cache.nativeHandle, nowMs: 6 });
      assert.deepEqual([r.text, r.misses], ["$-1\r\n", 1]);
      // The RocksDB read filled the cache with the stored bytes.
      assert.equal(
        new TextDecoder().decode(cache.get(engineKeyOf(te.encode("disk")))?.subarray(2)),
        "from rocksdb",
      );
      assert.equal(cache.stats.hits, 3); // c twice, and the get just above
    } finally {
      cache.close();
    }
  });
});

Deno.test("native GETs count a cache lookup once, when the GET is answered", async () => {
  await withEngine(async (engine) => {
    const cache = new NativeValueCache(native!, 1 << 20);
    try {
      cache.use(engine);
      const stored = encodeValue({
        type: "string",
        value: te.encode("cached"),
        expireAtMs: undefined,
      });
      cache.fill(cache.generation, engineKeyOf(te.encode("c")), stored);
      await put(engine, "disk", "from rocksdb");
      // The second reply does not fit: that GET is given up and redone with more room.
      const input = GET("c") + GET("c");
      let r = answer(engine, input, { cache: cache.nativeHandle, outBytes: 14 });
      assert.deepEqual([r.commands, r.stop], [1, NativeStop.FULL]);
      r = answer(engine, GET("c"), { cache: cache.nativeHandle });
      assert.equal(r.commands, 1);
      assert.deepEqual([cache.stats.hits, cache.stats.misses], [2, 0]);
      // A cache miss read from RocksDB (which fills the cache), given up for room: not
      // counted; the GET redone finds the cached value: one hit.
      r = answer(engine, GET("disk"), { cache: cache.nativeHandle, outBytes: 8 });
      assert.deepEqual([r.commands, r.stop], [0, NativeStop.FULL]);
      r = answer(engine, GET("disk"), { cache: cache.nativeHandle });
      assert.equal(r.text, "$12\r\nfrom rocksdb\r\n");
      assert.deepEqual([cache.stats.hits, cache.stats.misses], [3, 0]);
    } finally {
      cache.close();
    }
  });
});

Deno.test("native GETs stop before anything they do not take, and say why", async () => {
  await withEngine(async (engine) => {
    await put(engine, "a", "one");
    const stopAt = (input: string, options = {}) => {
      const r = answer(engine, GET("a") + input, options);
      return [r.commands, r.consumed === te.encode(GET("a")).length, r.stop];
    };
    // Cut short anywhere: the part stays for the next read.
    const full = GET("abc");
    for (let cut = 1; cut < full.length; cut++) {
      assert.deepEqual(stopAt(full.slice(0, cut)), [1, true, NativeStop.END], `cut at ${cut}`);
    }
    for (
      const other of [
        "*1\r\n$4\r\nPING\r\n",
        "*3\r\n$3\r\nGET\r\n$1\r\na\r\n$1\r\nb\r\n", // wrong arity: the executor's error
        "*2\r\n$3\r\nGEX\r\n$1\r\na\r\n",
        "*2\r\n$3\r\nGET\r\n$01\r\na\r\n", // a leading zero
        "*2\r\n$3\r\nGET\r\n$-1\r\n",
        "*2\r\n$3\r\nGET\r\n$1\r\naX\r\n", // the length lies
        "GET a\r\n", // inline
      ]
    ) {
      assert.deepEqual(stopAt(other), [1, true, NativeStop.OTHER], JSON.stringify(other));
    }
    // Keys longer than the limit given (the parser's, or the path's own) go to the executor.
    assert.deepEqual(stopAt(GET("abcd"), { keyBytesMax: 3 }), [1, true, NativeStop.OTHER]);
    assert.deepEqual(stopAt(GET("x".repeat(NATIVE_KEY_BYTES_MAX + 1))), [
      1,
      true,
      NativeStop.OTHER,
    ]);
    // A reply that does not fit.
    assert.deepEqual(stopAt(GET("a"), { outBytes: 12 }), [1, true, NativeStop.FULL]);
    // A stored value of another layout: the executor answers it (with its error).
    await engine.put(engineKeyOf(te.encode("bad")), Uint8Array.of(9, 9));
    assert.deepEqual(stopAt(GET("bad")), [1, true, NativeStop.BAD_VALUE]);
    assert.equal(answer(engine, GET("a").repeat(300)).stop, NativeStop.COUNT);
    assert.equal(answer(engine, GET("a").repeat(300)).commands, 256);
  });
});

Deno.test("native GETs stop before a key that is only in a file, which the engine then reads", async () => {
  const dir = await Deno.makeTempDir({ prefix: "spire-native-gets-" });
  try {
    let engine = await Engine.open({ dataDir: `${dir}/data` });
    for (let i = 0; i < 100; i++) await put(engine, `k${i}`, `v${i}`);
    await engine.flush();
    await engine.close();
    engine = await Engine.open({ dataDir: `${dir}/data` }); // an empty block cache
    const t = startTestServerOn(engine, { nativeGets: native!, tickMs: 1_000_000 });
    const c = await RespClient.connect({ port: t.port });
    const replies = await c.pipeline([["GET", "k1"], ["GET", "k2"], ["GET", "k3"]]);
    assert.deepEqual(replies.map(showReply), ['"v1"', '"v2"', '"v3"']);
    const firstPass = t.server.stats.nativeCommandsProcessed;
    assert.ok(firstPass < 3, `the cold key went to the engine (${firstPass} natively)`);
    // Now in the block cache: answered natively.
    assert.equal(showReply(await c.call(["GET", "k1"])), '"v1"');
    assert.equal(t.server.stats.nativeCommandsProcessed, firstPass + 1);
    c.close();
    await t.stop();
    await engine.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---- the whole port, native path on and off, over the same commands ---------------

/** One command of a generated pipeline, as the bytes a client sends. */
const keyArb = fc.constantFrom("a", "b", "", "k\u00e9", "x".repeat(1100));
const commandArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(fc.constantFrom("GET", "get", "GeT"), keyArb) },
  { weight: 2, arbitrary: fc.tuple(fc.constant("SET"), keyArb, fc.constantFrom("v", "vv")) },
  {
    weight: 1,
    arbitrary: fc.tuple(
      fc.constant("SET"),
      keyArb,
      fc.constant("big".repeat(30_000)), // a reply larger than the native path's room
    ),
  },
  {
    weight: 2,
    arbitrary: fc.tuple(
      fc.constant("SET"),
      keyArb,
      fc.constant("t"),
      fc.constant("PX"),
      fc.constantFrom("5", "50"),
    ),
  },
  // Plain SETs (the SET lane takes them), in any case, and writes it does not take.
  {
    weight: 3,
    arbitrary: fc.tuple(fc.constantFrom("SET", "set"), keyArb, fc.constantFrom("1", "")),
  },
  { weight: 1, arbitrary: fc.tuple(fc.constant("INCR"), keyArb) },
  { weight: 1, arbitrary: fc.tuple(fc.constant("APPEND"), keyArb, fc.constant("+")) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom("MULTI", "EXEC", "DISCARD")) },
  { weight: 1, arbitrary: fc.tuple(fc.constant("DEL"), keyArb) },
  { weight: 1, arbitrary: fc.tuple(fc.constant("PING")) },
  // The protocol switches mid-script: nulls are `$-1` or `_` from there on.
  { weight: 1, arbitrary: fc.tuple(fc.constant("HELLO"), fc.constantFrom("2", "3")) },
  { weight: 1, arbitrary: fc.tuple(fc.constant("GET"), keyArb, keyArb) },
  { weight: 1, arbitrary: fc.tuple(fc.constant("MGET"), keyArb, keyArb) },
).map((args) => encodeCommand(args as string[]));
const rawArb = fc.oneof(
  { weight: 8, arbitrary: commandArb },
  { weight: 1, arbitrary: fc.constant(te.encode("GET a\r\n")) },
  { weight: 1, arbitrary: fc.constant(te.encode("*2\r\n$3\r\nGET\r\n$01\r\nb\r\n")) },
);
/** Pipelines sent as chunks cut anywhere, with the clock moving between them. */
const scriptArb = fc.array(
  fc.record({
    commands: fc.array(rawArb, { minLength: 1, maxLength: 12 }),
    cuts: fc.array(fc.nat(), { maxLength: 3 }),
    advanceMs: fc.constantFrom(0, 3, 20, 60),
  }),
  { minLength: 1, maxLength: 6 },
);

interface Port {
  readonly t: TestServer<Engine>;
  clock: number;
}

interface Step {
  readonly commands: Uint8Array[];
  readonly cuts: number[];
  readonly advanceMs: number;
}

async function runScript(port: Port, script: readonly Step[]) {
  const c = await RespClient.connect({ port: port.t.port });
  const out: string[] = [];
  try {
    await c.call(["FLUSHDB"]);
    for (const step of script) {
      const bytes = new Uint8Array(step.commands.reduce((n, b) => n + b.length, 0));
      let off = 0;
      for (const b of step.commands) {
        bytes.set(b, off);
        off += b.length;
      }
      const cuts = [...new Set(step.cuts.map((x) => x % bytes.length))].sort((a, b) => a - b);
      let from = 0;
      for (const cut of [...cuts, bytes.length]) {
        if (cut <= from) continue;
        await c.sendRaw(bytes.subarray(from, cut));
        from = cut;
        await new Promise((r) => setTimeout(r, 1)); // arrive as separate reads
      }
      for (let i = 0; i < step.commands.length; i++) out.push(showReply(await c.read()));
      port.clock += step.advanceMs;
    }
  } finally {
    c.close();
  }
  const s = port.t.server.stats;
  return {
    out,
    hits: s.keyspaceHits,
    misses: s.keyspaceMisses,
    commands: s.totalCommandsProcessed,
    calls: callsOf(port),
  };
}

/** INFO commandstats' calls and failed calls of GET and SET on a port. */
function callsOf(port: Port): string {
  const stats = port.t.server.commandStats;
  return ["get", "set"].map((n) => {
    const c = stats.command(n);
    return `${n} ${c?.calls ?? 0} ${c?.failedCalls ?? 0}`;
  }).join(", ");
}

Deno.test("a port with the native GET and SET paths answers every pipeline as the executor alone does", async () => {
  const dir = await Deno.makeTempDir({ prefix: "spire-native-gets-" });
  const ports: Port[] = [];
  try {
    for (const nativeGets of [native!, false as const]) {
      const engine = await Engine.open({ dataDir: `${dir}/${ports.length}` });
      const port: Port = { clock: 1_000_000, t: undefined as unknown as TestServer<Engine> };
      (port as { t: TestServer<Engine> }).t = startTestServerOn(engine, {
        nativeGets,
        now: () => port.clock,
        tickMs: 1_000_000,
      });
      ports.push(port);
    }
    const [on, off] = ports as [Port, Port];
    await fc.assert(
      fc.asyncProperty(scriptArb, async (script) => {
        on.clock = off.clock = 1_000_000;
        on.t.server.commandStats.reset();
        off.t.server.commandStats.reset();
        const before = [on.t.server.stats, off.t.server.stats];
        const a = await runScript(on, script);
        const b = await runScript(off, script);
        assert.deepEqual(a.out, b.out);
        assert.equal(a.hits - before[0]!.keyspaceHits, b.hits - before[1]!.keyspaceHits);
        assert.equal(a.misses - before[0]!.keyspaceMisses, b.misses - before[1]!.keyspaceMisses);
        assert.equal(
          a.commands - before[0]!.totalCommandsProcessed,
          b.commands - before[1]!.totalCommandsProcessed,
        );
        // INFO commandstats counts the GETs and SETs the native paths took as the executor's.
        assert.equal(a.calls, b.calls);
      }),
      { numRuns: 40 },
    );
    // The property exercised the native path, and only where it was on. How many GETs it
    // answered depends on the scripts drawn (a GET behind a write goes to the executor), so a
    // fixed script checks the count exactly: a pipeline of GETs alone is answered natively.
    assert.ok(on.t.server.stats.nativeCommandsProcessed > 0);
    const gets: Step = {
      commands: Array.from({ length: 50 }, (_, i) => encodeCommand(["GET", i % 2 ? "a" : "b"])),
      cuts: [],
      advanceMs: 0,
    };
    const before = on.t.server.stats.nativeCommandsProcessed;
    const getsBefore = on.t.server.commandStats.command("get")?.calls ?? 0;
    assert.deepEqual((await runScript(on, [gets])).out, (await runScript(off, [gets])).out);
    assert.equal(on.t.server.stats.nativeCommandsProcessed - before, 50);
    assert.equal(on.t.server.commandStats.command("get")!.calls - getsBefore, 50);
    // And a pipeline of plain SETs is taken by the SET lane, then read back natively.
    const sets: Step = {
      commands: Array.from({ length: 50 }, (_, i) => encodeCommand(["SET", `s${i % 7}`, `${i}`])),
      cuts: [],
      advanceMs: 0,
    };
    const readBack: Step = {
      commands: Array.from({ length: 7 }, (_, i) => encodeCommand(["GET", `s${i}`])),
      cuts: [],
      advanceMs: 0,
    };
    const setsBefore = on.t.server.stats.nativeCommandsProcessed;
    assert.deepEqual(
      (await runScript(on, [sets, readBack])).out,
      (await runScript(off, [sets, readBack])).out,
    );
    assert.equal(on.t.server.stats.nativeCommandsProcessed - setsBefore, 57);
    assert.equal(off.t.server.stats.nativeCommandsProcessed, 0);
  } finally {
    for (const p of ports) {
      await p.t.stop();
      await p.t.engine.close();
    }
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("with a password, GETs before AUTH get NOAUTH from the executor, and after it go native", async () => {
  await withEngine(async (engine) => {
    await put(engine, "a", "one");
    const t = startTestServerOn(engine, { nativeGets: native!, password: "pw", tickMs: 1_000_000 });
    const c = await RespClient.connect({ port: t.port });
    try {
      const before = await c.pipeline([["GET", "a"], ["GET", "a"]]);
      assert.ok(before.every((r) => r.kind === "error" && r.message.startsWith("NOAUTH")));
      assert.equal(t.server.stats.nativeCommandsProcessed, 0);
      assert.equal(showReply(await c.call(["AUTH", "pw"])), "+OK");
      assert.deepEqual((await c.pipeline([["GET", "a"], ["GET", "a"]])).map(showReply), [
        '"one"',
        '"one"',
      ]);
      assert.equal(t.server.stats.nativeCommandsProcessed, 2);
    } finally {
      c.close();
      await t.stop();
    }
  });
});

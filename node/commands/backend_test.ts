import assert from "node:assert/strict";
import { showReply } from "../resp/reply_parser.ts";
import { LocalBackend } from "./backend.ts";
import { globMatch } from "./glob.ts";
import { MemoryEngine } from "./memory_engine.ts";

const te = new TextEncoder();
const td = new TextDecoder();
const k = (s: string) => te.encode(s);

Deno.test("LocalBackend group-commits concurrent writes with the same outcome as one by one", async () => {
  const engine = new MemoryEngine();
  const b = new LocalBackend({ engine, now: () => 0 });
  const replies = await Promise.all(
    Array.from({ length: 500 }, () => b.execute({ op: "incrby", key: k("n"), delta: "1" })),
  );
  // Each INCR saw the previous one's result, even inside one engine batch.
  assert.deepEqual(replies.map(showReply), Array.from({ length: 500 }, (_, i) => `:${i + 1}`));
  assert.ok(engine.writeBatches < 50, `expected grouped batches, got ${engine.writeBatches}`);
  assert.equal(td.decode((await b.read([k("n")]))[0]!.value), "500");
  await b.close();
});

Deno.test("LocalBackend sees a FLUSHDB earlier in the same group", async () => {
  const b = new LocalBackend({ engine: new MemoryEngine(), now: () => 0 });
  await b.execute({ op: "set", key: k("a"), value: k("1") });
  const [, , get, n] = await Promise.all([
    b.execute({ op: "set", key: k("b"), value: k("2") }),
    b.execute({ op: "flushdb" }),
    b.execute({ op: "getdel", key: k("a") }),
    b.execute({ op: "msetnx", entries: [k("b"), k("3")] }),
  ]);
  assert.equal(showReply(get!), "nil");
  assert.equal(showReply(n!), ":1");
  assert.equal(await b.dbsize(), 1);
  await b.close();
});

Deno.test("LocalBackend refuses writes beyond writeQueueMax with BUSY and stays usable", async () => {
  const b = new LocalBackend({ engine: new MemoryEngine(), now: () => 0, writeQueueMax: 4 });
  const replies = await Promise.all(
    Array.from({ length: 10 }, (_, i) => b.execute({ op: "set", key: k(`k${i}`), value: k("v") })),
  );
  const busy = replies.filter((r) => r.kind === "error");
  assert.ok(busy.length > 0);
  assert.match(showReply(busy[0]!), /^-BUSY write queue is full/);
  assert.equal(showReply(await b.execute({ op: "del", keys: [k("k0")] })), ":1");
  await b.close();
  await assert.rejects(b.execute({ op: "flushdb" }));
});

Deno.test("scanKeys pages through the keyspace in order without gaps", async () => {
  const b = new LocalBackend({ engine: new MemoryEngine(), now: () => 0 });
  const keys = Array.from({ length: 57 }, (_, i) => `key:${String(i).padStart(3, "0")}`);
  await b.execute({ op: "mset", entries: keys.flatMap((x) => [k(x), k("v")]) });
  const seen: string[] = [];
  let after: Uint8Array | undefined;
  for (;;) {
    const page = await b.scanKeys(after, 10);
    seen.push(...page.entries.map((e) => td.decode(e.key)));
    if (page.done) break;
    after = page.entries.at(-1)!.key;
  }
  assert.deepEqual(seen, keys);
  const r = await b.scanRange(k("key:010"), k("key:020"), { batchSize: 3, limit: 5, nowMs: 0 });
  assert.deepEqual(r.rows.map(([x]) => td.decode(x)), keys.slice(10, 15));
  assert.equal(r.batches, 2);
  await b.close();
});

Deno.test("globMatch follows Redis's stringmatch rules", () => {
  const m = (p: string, s: string) => globMatch(k(p), k(s));
  assert.ok(m("*", ""));
  assert.ok(m("h?llo", "hello"));
  assert.ok(!m("h?llo", "hllo"));
  assert.ok(m("h[ae]llo", "hallo"));
  assert.ok(!m("h[^e]llo", "hello"));
  assert.ok(m("h[a-b]llo", "hbllo"));
  assert.ok(m("h[b-a]llo", "hallo"));
  assert.ok(m("a\\*b", "a*b"));
  assert.ok(!m("a\\*b", "axb"));
  assert.ok(m("*:*:end", "a:b:c:end"));
  assert.ok(!m("abc", "abcd"));
  // A pathological pattern is cut off rather than hanging the server.
  const started = performance.now();
  assert.equal(m("*a*a*a*a*a*a*a*a*a*a*a*b", "a".repeat(200)), false);
  assert.ok(performance.now() - started < 2000);
});

Deno.test("SCAN cursors are bounded: the oldest is forgotten and then refused", async () => {
  const { CommandExecutor } = await import("./executor.ts");
  const b = new LocalBackend({ engine: new MemoryEngine(), now: () => 0 });
  await b.execute({ op: "mset", entries: ["a", "1", "b", "2", "c", "3"].map(k) });
  const ex = new CommandExecutor({ backend: b, now: () => 0, scanCursorsMax: 2 });
  const s = ex.newSession(1, "t");
  const scan = async (cursor: string) => {
    const r = await ex.execute(s, ["SCAN", cursor, "COUNT", "1"].map(k));
    assert.ok(r.kind === "array" && r.items?.[0]?.kind === "bulk");
    return td.decode(r.items[0].value!);
  };
  const first = await scan("0");
  await scan("0");
  await scan("0");
  assert.equal(
    showReply(await ex.execute(s, ["SCAN", first, "COUNT", "1"].map(k))),
    "-ERR invalid cursor: unknown or expired SCAN cursor, start again from 0",
  );
  const byBytes = new CommandExecutor({ backend: b, now: () => 0, scanCursorsBytesMax: 1 });
  const s2 = byBytes.newSession(2, "t");
  const c1 = await (async () => {
    const r = await byBytes.execute(s2, ["SCAN", "0", "COUNT", "1"].map(k));
    assert.ok(r.kind === "array" && r.items?.[0]?.kind === "bulk");
    return td.decode(r.items[0].value!);
  })();
  await byBytes.execute(s2, ["SCAN", "0", "COUNT", "1"].map(k));
  assert.match(showReply(await byBytes.execute(s2, ["SCAN", c1].map(k))), /^-ERR invalid cursor/);
  await b.close();
});

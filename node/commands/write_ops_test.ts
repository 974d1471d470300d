import assert from "node:assert/strict";
import fc from "fast-check";
import { bulk, error, integer, NIL, OK, type Reply } from "../resp/reply.ts";
import { showReply } from "../resp/reply_parser.ts";
import { decodeValue, USER_KEY_RANGE, userKeyOf, VALUE_BYTES_MAX } from "./kv_model.ts";
import { MemoryEngine } from "./memory_engine.ts";
import {
  applyWrite,
  decodeWriteCommand,
  encodeWriteCommand,
  type Expiry,
  keyId,
  type WriteCommand,
  WriteCommandDecodeError,
} from "./write_ops.ts";
import { INT64_MAX, INT64_MIN, int64Bytes, parseInt64 } from "./_int.ts";

const te = new TextEncoder();
const td = new TextDecoder();

/** A deliberately simple Redis string model, written independently of applyWrite. */
class Model {
  data = new Map<string, { v: string; exp: number | undefined }>();

  live(k: string, now: number) {
    const e = this.data.get(k);
    return e !== undefined && (e.exp === undefined || now <= e.exp) ? e : undefined;
  }

  at(e: Expiry, now: number) {
    return "in" in e ? now + e.in : e.at;
  }

  apply(c: ModelCmd, now: number): Reply {
    switch (c.op) {
      case "set": {
        const old = this.live(c.key, now);
        const ret = c.get ? (old ? bulk(old.v) : NIL) : undefined;
        if (c.cond === "nx" && old) return ret ?? NIL;
        if (c.cond === "xx" && !old) return ret ?? NIL;
        const exp = c.expire ? this.at(c.expire, now) : c.keepTtl ? old?.exp : undefined;
        this.data.set(c.key, { v: c.value, exp });
        return ret ?? OK;
      }
      case "getdel": {
        const old = this.live(c.key, now);
        this.data.delete(c.key);
        return old ? bulk(old.v) : NIL;
      }
      case "getex": {
        const old = this.live(c.key, now);
        if (!old) return NIL;
        if (c.expire) {
          const at = this.at(c.expire, now);
          if (at <= now) this.data.delete(c.key);
          else old.exp = at;
        } else if (c.persist) old.exp = undefined;
        return bulk(old.v);
      }
      case "mset":
        for (const [k, v] of c.pairs) this.data.set(k, { v, exp: undefined });
        return OK;
      case "msetnx":
        if (c.pairs.some(([k]) => this.live(k, now))) return integer(0);
        for (const [k, v] of c.pairs) this.data.set(k, { v, exp: undefined });
        return integer(1);
      case "del": {
        let n = 0;
        for (const k of c.keys) {
          if (this.live(k, now)) n++;
          this.data.delete(k);
        }
        return integer(n);
      }
      case "incrby": {
        const old = this.live(c.key, now);
        let base = 0n;
        if (old) {
          if (!/^(0|-?[1-9][0-9]{0,18})$/.test(old.v)) {
            return error("ERR value is not an integer or out of range");
          }
          base = BigInt(old.v);
          if (base > 2n ** 63n - 1n || base < -(2n ** 63n)) {
            return error("ERR value is not an integer or out of range");
          }
        }
        const r = base + BigInt(c.delta);
        if (r > 2n ** 63n - 1n || r < -(2n ** 63n)) {
          return error("ERR increment or decrement would overflow");
        }
        this.data.set(c.key, { v: String(r), exp: old?.exp });
        return integer(r);
      }
      case "append": {
        const old = this.live(c.key, now);
        const v = (old?.v ?? "") + c.value;
        this.data.set(c.key, { v, exp: old?.exp });
        return integer(te.encode(v).length);
      }
      case "expire": {
        const old = this.live(c.key, now);
        if (!old) return integer(0);
        const at = this.at(c.expire, now);
        if (c.cond === "nx" && old.exp !== undefined) return integer(0);
        if (c.cond === "xx" && old.exp === undefined) return integer(0);
        if (c.cond === "gt" && (old.exp === undefined || at <= old.exp)) return integer(0);
        if (c.cond === "lt" && old.exp !== undefined && at >= old.exp) return integer(0);
        if (at <= now) this.data.delete(c.key);
        else old.exp = at;
        return integer(1);
      }
      case "persist": {
        const old = this.live(c.key, now);
        if (!old || old.exp === undefined) return integer(0);
        old.exp = undefined;
        return integer(1);
      }
      case "rename": {
        const old = this.live(c.key, now);
        if (!old) return error("ERR no such key");
        if (c.key === c.newKey) return c.nx ? integer(0) : OK;
        if (c.nx && this.live(c.newKey, now)) return integer(0);
        this.data.delete(c.key);
        this.data.set(c.newKey, { ...old });
        return c.nx ? integer(1) : OK;
      }
      case "copy": {
        const old = this.live(c.key, now);
        if (!old || (!c.replace && this.live(c.newKey, now))) return integer(0);
        this.data.set(c.newKey, { ...old });
        return integer(1);
      }
      case "flushdb":
        this.data.clear();
        return OK;
      case "sweep": {
        let n = 0;
        for (const k of c.keys) {
          if (this.data.has(k) && !this.live(k, now)) {
            this.data.delete(k);
            n++;
          }
        }
        return integer(n);
      }
    }
  }
}

type ModelCmd =
  | {
    op: "set";
    key: string;
    value: string;
    cond?: "nx" | "xx" | undefined;
    get: boolean;
    expire?: Expiry | undefined;
    keepTtl: boolean;
  }
  | { op: "getdel" | "persist"; key: string }
  | { op: "getex"; key: string; expire?: Expiry | undefined; persist: boolean }
  | { op: "mset" | "msetnx"; pairs: [string, string][] }
  | { op: "del" | "sweep"; keys: string[] }
  | { op: "incrby"; key: string; delta: string }
  | { op: "append"; key: string; value: string }
  | { op: "expire"; key: string; expire: Expiry; cond?: "nx" | "xx" | "gt" | "lt" | undefined }
  | { op: "rename"; key: string; newKey: string; nx: boolean }
  | { op: "copy"; key: string; newKey: string; replace: boolean }
  | { op: "flushdb" };

function toWrite(c: ModelCmd): WriteCommand {
  const k = (s: string) => te.encode(s);
  switch (c.op) {
    case "set":
      return {
        op: "set",
        key: k(c.key),
        value: k(c.value),
        get: c.get,
        keepTtl: c.keepTtl,
        ...(c.cond ? { cond: c.cond } : {}),
        ...(c.expire ? { expire: c.expire } : {}),
      };
    case "getdel":
    case "persist":
      return { op: c.op, key: k(c.key) };
    case "getex":
      return {
        op: "getex",
        key: k(c.key),
        persist: c.persist,
        ...(c.expire ? { expire: c.expire } : {}),
      };
    case "mset":
    case "msetnx":
      return { op: c.op, entries: c.pairs.flatMap(([a, b]) => [k(a), k(b)]) };
    case "del":
    case "sweep":
      return { op: c.op, keys: c.keys.map(k) };
    case "incrby":
      return { op: "incrby", key: k(c.key), delta: c.delta };
    case "append":
      return { op: "append", key: k(c.key), value: k(c.value) };
    case "expire":
      return { op: "expire", key: k(c.key), expire: c.expire, ...(c.cond ? { cond: c.cond } : {}) };
    case "rename":
      return { op: "rename", key: k(c.key), newKey: k(c.newKey), ...(c.nx ? { nx: true } : {}) };
    case "copy":
      return {
        op: "copy",
        key: k(c.key),
        newKey: k(c.newKey),
        ...(c.replace ? { replace: true } : {}),
      };
    case "flushdb":
      return { op: "flushdb" };
  }
}

const key = fc.constantFrom("a", "b", "c", "");
const value = fc.constantFrom(
  "1",
  "-5",
  "0",
  "x",
  "",
  "9223372036854775807",
  "-9223372036854775808",
  "01",
  "é",
);
const expiry: fc.Arbitrary<Expiry> = fc.oneof(
  fc.integer({ min: -2, max: 6 }).map((n) => ({ in: n * 500 })),
  fc.integer({ min: 0, max: 40 }).map((n) => ({ at: n * 500 })),
);
const cmd: fc.Arbitrary<ModelCmd> = fc.oneof(
  fc.record({
    op: fc.constant("set" as const),
    key,
    value,
    cond: fc.option(fc.constantFrom("nx" as const, "xx" as const), { nil: undefined }),
    get: fc.boolean(),
    expire: fc.option(expiry, { nil: undefined }),
    keepTtl: fc.boolean(),
  }, { requiredKeys: ["op", "key", "value", "get", "keepTtl"] }),
  fc.record({ op: fc.constantFrom("getdel" as const, "persist" as const), key }),
  fc.record({
    op: fc.constant("getex" as const),
    key,
    expire: fc.option(expiry, { nil: undefined }),
    persist: fc.boolean(),
  }, {
    requiredKeys: ["op", "key", "persist"],
  }),
  fc.record({
    op: fc.constantFrom("mset" as const, "msetnx" as const),
    pairs: fc.array(fc.tuple(key, value), { minLength: 1, maxLength: 3 }),
  }),
  fc.record({
    op: fc.constantFrom("del" as const, "sweep" as const),
    keys: fc.array(key, { minLength: 1, maxLength: 3 }),
  }),
  fc.record({
    op: fc.constant("incrby" as const),
    key,
    delta: fc.oneof(
      fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
      fc.bigInt({ min: -3n, max: 3n }),
    ).map(String),
  }),
  fc.record({ op: fc.constant("append" as const), key, value }),
  fc.record({
    op: fc.constant("expire" as const),
    key,
    expire: expiry,
    cond: fc.option(fc.constantFrom("nx" as const, "xx" as const, "gt" as const, "lt" as const), {
      nil: undefined,
    }),
  }, { requiredKeys: ["op", "key", "expire"] }),
  fc.record({ op: fc.constant("rename" as const), key, newKey: key, nx: fc.boolean() }),
  fc.record({ op: fc.constant("copy" as const), key, newKey: key, replace: fc.boolean() })
    .filter((c) => c.key !== c.newKey), // the executor refuses a copy onto itself
  fc.constant({ op: "flushdb" as const }),
);

async function engineState(
  engine: MemoryEngine,
): Promise<Map<string, { v: string; exp: number | undefined }>> {
  const out = new Map<string, { v: string; exp: number | undefined }>();
  for await (const batch of engine.scanRange(USER_KEY_RANGE.start, USER_KEY_RANGE.end)) {
    for (const { key, value } of batch.entries) {
      const d = decodeValue(value);
      out.set(td.decode(userKeyOf(key)), { v: td.decode(d.value), exp: d.expireAtMs });
    }
  }
  return out;
}

async function replay(
  steps: [ModelCmd, number][],
  check: (i: number, got: Reply) => void,
): Promise<MemoryEngine> {
  const engine = new MemoryEngine();
  let now = 1000;
  for (const [i, [c, dt]] of steps.entries()) {
    now += dt;
    const r = await applyWrite(toWrite(c), now, engine);
    await engine.writeBatch(r.ops);
    check(i, r.reply);
  }
  return engine;
}

Deno.test("int64Bytes: Redis's decimal text of any 64-bit integer, read back by parseInt64", () => {
  fc.assert(
    fc.property(fc.bigInt({ min: INT64_MIN, max: INT64_MAX }), (v) => {
      const bytes = int64Bytes(v);
      assert.deepEqual(bytes, te.encode(v.toString()));
      assert.equal(parseInt64(bytes), v);
    }),
    { numRuns: 500 },
  );
});

Deno.test("keyId: one character a byte, whatever the bytes and however long", () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.uint8Array({ maxLength: 64 }),
        fc.integer({ min: 4090, max: 8200 }).map((n) => new Uint8Array(n).map((_, i) => i * 31)),
      ),
      (bytes) => {
        const id = keyId(bytes);
        assert.equal(id.length, bytes.length);
        for (let i = 0; i < bytes.length; i++) assert.equal(id.charCodeAt(i), bytes[i]);
      },
    ),
    { numRuns: 200 },
  );
});

Deno.test("applyWrite matches a simple Redis model on random command sequences", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(cmd, fc.constantFrom(0, 0, 250, 500, 1500)), {
        minLength: 5,
        maxLength: 60,
      }),
      async (steps) => {
        const model = new Model();
        let now = 1000;
        const engine = await replay(steps, (i, got) => {
          const [c, dt] = steps[i]!;
          now += dt;
          const want = model.apply(c, now);
          assert.equal(showReply(got), showReply(want), `step ${i}: ${JSON.stringify(c)}`);
        });
        // Stored state equals the model's, expired-but-present keys included.
        const state = await engineState(engine);
        assert.deepEqual(
          [...state].sort(([a], [b]) => a.localeCompare(b)),
          [...model.data].map(([k, e]) => [k, { v: e.v, exp: e.exp }]).sort(([a], [b]) =>
            String(a).localeCompare(String(b))
          ),
        );
      },
    ),
    { numRuns: 1500 },
  );
});

Deno.test("applyWrite is deterministic: replaying a log rebuilds the same state and replies", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(cmd, fc.constantFrom(0, 0, 250, 500, 1500)), { maxLength: 30 }),
      async (steps) => {
        const first: string[] = [];
        const second: string[] = [];
        const a = await replay(steps, (_, r) => first.push(showReply(r)));
        // The second run goes through the msgpack log encoding, as a Raft follower would.
        const logged = steps.map(([c, dt]) =>
          [decodeWriteCommand(encodeWriteCommand(toWrite(c))), dt] as const
        );
        const b = new MemoryEngine();
        let now = 1000;
        for (const [c, dt] of logged) {
          now += dt;
          const r = await applyWrite(c, now, b);
          await b.writeBatch(r.ops);
          second.push(showReply(r.reply));
        }
        assert.deepEqual(second, first);
        assert.deepEqual(await engineState(b), await engineState(a));
      },
    ),
    { numRuns: 100 },
  );
});

Deno.test("applyWrite handles repeated keys within one command", async () => {
  const e = new MemoryEngine();
  const k = te.encode("k");
  const run = async (c: WriteCommand) => {
    const r = await applyWrite(c, 0, e);
    await e.writeBatch(r.ops);
    return showReply(r.reply);
  };
  assert.equal(await run({ op: "mset", entries: [k, te.encode("1"), k, te.encode("2")] }), "+OK");
  assert.equal(td.decode(decodeValue((await e.get(Uint8Array.of(0x75, 107)))!).value), "2");
  assert.equal(await run({ op: "del", keys: [k, k] }), ":1");
  assert.equal(await run({ op: "msetnx", entries: [k, te.encode("1"), k, te.encode("2")] }), ":1");
});

Deno.test("SETRANGE pads with zero bytes, keeps the expiry and refuses values past the size limit", async () => {
  const e = new MemoryEngine();
  const k = te.encode("k");
  const run = async (c: WriteCommand, now = 0) => {
    const r = await applyWrite(c, now, e);
    await e.writeBatch(r.ops);
    return showReply(r.reply);
  };
  const stored = async () => decodeValue((await e.get(Uint8Array.of(0x75, 107)))!);
  assert.equal(await run({ op: "setrange", key: k, offset: 2, value: te.encode("ab") }), ":4");
  assert.deepEqual([...(await stored()).value], [0, 0, 97, 98]);
  assert.equal(
    await run({ op: "set", key: k, value: te.encode("xyz"), expire: { at: 5000 } }),
    "+OK",
  );
  assert.equal(await run({ op: "setrange", key: k, offset: 1, value: te.encode("Q") }), ":3");
  assert.equal((await stored()).expireAtMs, 5000);
  assert.equal(
    await run({ op: "setrange", key: k, offset: VALUE_BYTES_MAX, value: te.encode("x") }),
    "-ERR string exceeds maximum allowed size (proto-max-bulk-len)",
  );
  assert.equal(td.decode((await stored()).value), "xQz", "a refused SETRANGE changes nothing");
  const negative = encodeWriteCommand(
    { op: "setrange", key: k, offset: -1, value: te.encode("x") } as WriteCommand,
  );
  assert.throws(() => decodeWriteCommand(negative), WriteCommandDecodeError);
});

Deno.test("decodeWriteCommand rejects malformed log entries", () => {
  const bad = [
    new Uint8Array([0xc1]),
    encodeWriteCommand({ op: "flushdb" }).map((b) => b ^ 0xff),
    encodeWriteCommand({ op: "incrby", key: te.encode("k"), delta: "1" }).slice(0, 5),
  ];
  for (const b of bad) assert.throws(() => decodeWriteCommand(b), WriteCommandDecodeError);
  // A valid shape with a bad field.
  const tampered = encodeWriteCommand(
    { op: "incrby", key: te.encode("k"), delta: "99999999999999999999" } as WriteCommand,
  );
  assert.throws(() => decodeWriteCommand(tampered), WriteCommandDecodeError);
  const notAFloat = encodeWriteCommand(
    { op: "incrbyfloat", key: te.encode("k"), delta: "1.5x" } as WriteCommand,
  );
  assert.throws(() => decodeWriteCommand(notAFloat), WriteCommandDecodeError);
  assert.throws(
    () => encodeWriteCommand({ op: "append", key: te.encode("k"), value: new Uint8Array(100) }, 50),
    RangeError,
  );
});

Deno.test("a batch write equals its writes applied one by one, through the log encoding", async () => {
  const batchable = cmd.filter((c) =>
    c.op === "set" || c.op === "getdel" || c.op === "persist" || c.op === "incrby" ||
    c.op === "append"
  );
  await fc.assert(
    fc.asyncProperty(
      fc.array(cmd, { maxLength: 10 }),
      fc.array(batchable, { minLength: 1, maxLength: 20 }),
      async (before, batch) => {
        const one = new MemoryEngine();
        const many = new MemoryEngine();
        for (const c of before) {
          for (const e of [one, many]) {
            await e.writeBatch((await applyWrite(toWrite(c), 1000, e)).ops);
          }
        }
        const singly: string[] = [];
        for (const c of batch) {
          const r = await applyWrite(toWrite(c), 2000, one);
          await one.writeBatch(r.ops);
          singly.push(showReply(r.reply));
        }
        const logged = decodeWriteCommand(
          encodeWriteCommand({ op: "batch", cmds: batch.map(toWrite) }),
        );
        const r = await applyWrite(logged, 2000, many);
        await many.writeBatch(r.ops);
        assert.equal(r.reply.kind, "array");
        assert.deepEqual(
          r.reply.kind === "array" ? r.reply.items?.map(showReply) : undefined,
          singly,
        );
        assert.deepEqual(await engineState(many), await engineState(one));
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("decodeWriteCommand refuses batches that are empty, nested or hold other writes", () => {
  const k = te.encode("k");
  const set: WriteCommand = { op: "set", key: k, value: k };
  for (
    const cmds of [
      [],
      [{ op: "batch", cmds: [set] }],
      [set, { op: "flushdb" }],
      [set, { op: "mset", entries: [k, k] }],
    ]
  ) {
    const bytes = encodeWriteCommand({ op: "batch", cmds } as unknown as WriteCommand);
    assert.throws(() => decodeWriteCommand(bytes), WriteCommandDecodeError, JSON.stringify(cmds));
  }
  const ok = decodeWriteCommand(encodeWriteCommand({ op: "batch", cmds: [set, set] }));
  assert.equal(ok.op === "batch" ? ok.cmds.length : 0, 2);
});

Deno.test("an EXEC write command survives the log's encoding, and a malformed one is refused", () => {
  const exec: WriteCommand = {
    op: "exec",
    commands: [[te.encode("SET"), te.encode("k"), te.encode("v")], [te.encode("PING")]],
    watchKeys: [te.encode("w"), te.encode("gone")],
    watchSeen: [Uint8Array.of(1, 0, 0x61), null],
    watchLive: [true, false],
  };
  const back = decodeWriteCommand(encodeWriteCommand(exec));
  assert.equal(back.op, "exec");
  if (back.op !== "exec") return;
  assert.deepEqual(back.commands.map((c) => c.map((a) => td.decode(a))), [["SET", "k", "v"], [
    "PING",
  ]]);
  assert.deepEqual(back.watchSeen, [Uint8Array.of(1, 0, 0x61), null]);
  assert.deepEqual(back.watchLive, [true, false]);
  const malformed = [
    { ...exec, watchLive: [true] }, // not one per watched key
    { ...exec, watchSeen: [Uint8Array.of(9, 9), null] }, // not a stored value
    { ...exec, commands: [[]] }, // an empty command
    { ...exec, commands: [["SET"]] }, // not bytes
  ];
  for (const m of malformed) {
    assert.throws(
      () => decodeWriteCommand(encodeWriteCommand(m as WriteCommand)),
      WriteCommandDecodeError,
    );
  }
});

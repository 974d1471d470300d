import assert from "node:assert/strict";
import fc from "fast-check";
import { encodeCommand } from "./client.ts";
import { encodeReply, ReplyWriter, type RespVersion } from "./encoder.ts";
import { type ParseResult, RequestParser, splitInlineArgs } from "./parser.ts";
import { array, bulk, error, integer, map, NIL, OK, type Reply, simple } from "./reply.ts";
import { ReplyParser, showReply } from "./reply_parser.ts";

const te = new TextEncoder();
const td = new TextDecoder();

function drain(p: RequestParser): ParseResult[] {
  const out: ParseResult[] = [];
  for (;;) {
    const r = p.next();
    if (r === undefined) return out;
    out.push(r);
    if (r.kind === "error") return out;
  }
}

function texts(r: ParseResult): string[] | string {
  return r.kind === "command" ? r.args.map((a) => td.decode(a)) : `error: ${r.message}`;
}

Deno.test("parser yields pipelined multibulk and inline commands in order", () => {
  const p = new RequestParser();
  p.feed(te.encode('*2\r\n$3\r\nGET\r\n$1\r\nk\r\nSET a "b c"\r\n\r\n*0\r\n*1\r\n$4\r\nPING\r\n'));
  assert.deepEqual(drain(p).map(texts), [["GET", "k"], ["SET", "a", "b c"], ["PING"]]);
});

Deno.test("parser gives the same commands however the bytes are cut", () => {
  const frames = [
    encodeCommand(["SET", "key", "x".repeat(300)]),
    te.encode("ECHO 'it''s'\r\n".replace("''", "\\'")),
    encodeCommand(["MGET", "a", "", "c"]),
  ];
  const all = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
  let off = 0;
  for (const f of frames) {
    all.set(f, off);
    off += f.length;
  }
  const whole = new RequestParser();
  whole.feed(all);
  const expected = drain(whole).map(texts);
  assert.equal(expected.length, 3);
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 1, max: all.length }), { maxLength: 8 }), (cuts) => {
      const points = [...new Set(cuts)].sort((a, b) => a - b);
      const p = new RequestParser();
      const got: ParseResult[] = [];
      let prev = 0;
      for (const c of [...points, all.length]) {
        p.feed(all.subarray(prev, c));
        prev = c;
        got.push(...drain(p));
      }
      assert.deepEqual(got.map(texts), expected);
    }),
  );
});

Deno.test("arguments stay intact while later input moves and grows the parser's buffer", () => {
  const cmds: string[][] = [];
  for (let i = 0; i < 1500; i++) {
    const big = i % 500 === 7 ? "B".repeat(40_000 + i) : `v${i}-${"x".repeat(i % 97)}`;
    cmds.push(["SET", `key:${i}`, big]);
  }
  const all = new Uint8Array(cmds.reduce((n, c) => n + encodeCommand(c).length, 0));
  let off = 0;
  for (const c of cmds) {
    const f = encodeCommand(c);
    all.set(f, off);
    off += f.length;
  }
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 9000 }), fc.integer(), (chunk, seed) => {
      const p = new RequestParser();
      const got: ParseResult[] = [];
      let rnd = seed;
      for (let at = 0; at < all.length;) {
        rnd = (rnd * 1103515245 + 12345) & 0x7fffffff;
        const n = 1 + (rnd % chunk);
        p.feed(all.subarray(at, at + n));
        at += n;
        got.push(...drain(p)); // kept while the parser compacts and grows its buffer
      }
      assert.deepEqual(got.map(texts), cmds);
    }),
    { numRuns: 20 },
  );
});

Deno.test("parser reports Redis's protocol errors and then refuses input", () => {
  const cases: [string, string][] = [
    ["*2\r\n$3\r\nGET\r\n$-5\r\n", "ERR Protocol error: invalid bulk length"],
    ["*x\r\n", "ERR Protocol error: invalid multibulk length"],
    ["*1\r\nfoo\r\n", "ERR Protocol error: expected '$', got 'f'"],
    ['PING "abc\r\n', "ERR Protocol error: unbalanced quotes in request"],
    ["*1\r\n$4\r\nPINGxx", "ERR Protocol error: expected CRLF after bulk string"],
    ["*1\r\n$" + "1".repeat(40), "ERR Protocol error: too big bulk count string"],
    ["*" + "1".repeat(40), "ERR Protocol error: too big mbulk count string"],
  ];
  for (const [input, message] of cases) {
    const p = new RequestParser();
    p.feed(te.encode(input));
    const r = drain(p);
    assert.deepEqual(r.at(-1), { kind: "error", message }, input);
    assert.ok(p.failed);
    p.feed(te.encode("PING\r\n"));
    assert.deepEqual(p.next(), { kind: "error", message });
  }
});

Deno.test("parser enforces bulk, argument, request and inline limits", () => {
  const limits = { bulkBytesMax: 10, argsMax: 3, requestBytesMax: 16, inlineBytesMax: 20 };
  const run = (s: string) => {
    const p = new RequestParser(limits);
    p.feed(te.encode(s));
    return drain(p).map(texts);
  };
  assert.deepEqual(run("*1\r\n$11\r\n"), ["error: ERR Protocol error: invalid bulk length"]);
  assert.deepEqual(run("*1\r\n$10\r\n0123456789\r\n"), [["0123456789"]]);
  assert.deepEqual(run("*4\r\n"), ["error: ERR Protocol error: invalid multibulk length"]);
  assert.deepEqual(run("*3\r\n$8\r\n01234567\r\n$8\r\n01234567\r\n$8\r\n"), [
    "error: ERR Protocol error: request too large: more than 16 bytes (requestBytesMax)",
  ]);
  assert.deepEqual(run("A".repeat(21)), ["error: ERR Protocol error: too big inline request"]);
  assert.deepEqual(run("A".repeat(19) + "\r\n"), [["A".repeat(19)]]);
  assert.deepEqual(run("a b c d\r\n"), ["error: ERR Protocol error: invalid multibulk length"]);
});

Deno.test("parser never throws on random bytes and stays bounded", () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 10 }), (chunks) => {
      const p = new RequestParser({
        bulkBytesMax: 1024,
        argsMax: 16,
        requestBytesMax: 4096,
        inlineBytesMax: 256,
      });
      for (const c of chunks) {
        p.feed(c);
        drain(p);
        assert.ok(p.bufferedBytes <= 4096 + 64 * 10);
      }
    }),
    { numRuns: 2000 },
  );
});

Deno.test("parser survives a hundred thousand blank inline lines without recursion", () => {
  const p = new RequestParser();
  p.feed(te.encode("\r\n".repeat(100_000) + "PING\r\n"));
  assert.deepEqual(drain(p).map(texts), [["PING"]]);
});

Deno.test("inline splitting follows sdssplitargs quoting", () => {
  const s = (x: string) => splitInlineArgs(te.encode(x))?.map((a) => td.decode(a));
  assert.deepEqual(s("set \"a\\x41\\n\" 'it\\'s'"), ["set", "aA\n", "it's"]);
  assert.deepEqual(s('"a"b'), undefined);
  assert.deepEqual(s("  "), []);
  assert.deepEqual(s("'open"), undefined);
});

const samples: Reply[] = [
  OK,
  simple("PONG"),
  error("ERR x"),
  integer(-5),
  integer(9223372036854775807n),
  bulk("héllo"),
  NIL,
  array([bulk("a"), NIL, integer(1), array([])]),
  array(null),
  map([["a", integer(1)], ["b", array([bulk("x")])]]),
  { kind: "double", value: 1.5 },
  { kind: "boolean", value: true },
  { kind: "null" },
  { kind: "set", items: [bulk("s")] },
  { kind: "verbatim", format: "txt", text: "# Server\r\nx:1" },
];

Deno.test("encoder output decodes back (RESP3 exactly, RESP2 in its fallback forms)", () => {
  for (const r of samples) {
    const p3 = new ReplyParser();
    p3.feed(encodeReply(r, 3));
    const back = p3.next()!;
    // RESP3 has one null: nil bulk strings and nil arrays come back as null.
    const expect3 = showReply(r).replaceAll("nil[]", "null").replaceAll("nil", "null");
    assert.equal(showReply(back), expect3, showReply(r));
  }
  const two = (r: Reply) => td.decode(encodeReply(r, 2 as RespVersion));
  assert.equal(two(map([["a", integer(1)]])), "*2\r\n$1\r\na\r\n:1\r\n");
  assert.equal(two({ kind: "boolean", value: false }), ":0\r\n");
  assert.equal(two({ kind: "null" }), "$-1\r\n");
  assert.equal(two(array(null)), "*-1\r\n");
  assert.equal(two({ kind: "double", value: 2.5 }), "$3\r\n2.5\r\n");
  assert.equal(two({ kind: "verbatim", format: "txt", text: "hi" }), "$2\r\nhi\r\n");
  assert.equal(td.decode(encodeReply(error("ERR a\r\nb"), 2)), "-ERR a  b\r\n");
});

Deno.test("encoder lines are the text's UTF-8 whatever the text (ASCII copied, the rest encoded)", () => {
  const te = new TextEncoder();
  fc.assert(fc.property(
    fc.array(fc.oneof(fc.string({ maxLength: 80 }), fc.string({ unit: "binary", maxLength: 80 })), {
      maxLength: 12,
    }),
    (texts) => {
      const w = new ReplyWriter(16); // small: every few lines grow the buffer
      const want: number[] = [];
      for (const t of texts) {
        const clean = t.replace(/[\r\n]/g, " ");
        w.write(simple(clean), 2);
        want.push(43, ...te.encode(clean), 13, 10);
        w.write(integer(clean.length), 3);
        want.push(58, ...te.encode(String(clean.length)), 13, 10);
      }
      assert.deepEqual([...w.take()], want);
    },
  ));
});

Deno.test("reply decoder gives the same replies however the bytes are cut", () => {
  const w = samples.map((r) => encodeReply(r, 3));
  const all = new Uint8Array(w.reduce((n, b) => n + b.length, 0));
  let off = 0;
  for (const b of w) {
    all.set(b, off);
    off += b.length;
  }
  const want = samples.map((r) =>
    showReply(r).replaceAll("nil[]", "null").replaceAll("nil", "null")
  );
  fc.assert(fc.property(fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1 }), (sizes) => {
    const p = new ReplyParser();
    const got: string[] = [];
    let at = 0;
    let i = 0;
    while (at < all.length) {
      const n = sizes[i++ % sizes.length]!;
      p.feed(all.subarray(at, at + n));
      at += n;
      for (let r = p.next(); r !== undefined; r = p.next()) got.push(showReply(r));
    }
    assert.deepEqual(got, want);
  }));
});

import assert from "node:assert/strict";
import fc from "fast-check";
import { NativeGets, type NativeSetsResult, NativeStop } from "./native_gets.ts";
import { compareBytes } from "../engine/codec/mod.ts";

const te = new TextEncoder();
const native = NativeGets.open();
const EMPTY = new Uint8Array();

const SET = (k: string, v: string, name = "SET") =>
  `*3\r\n$3\r\n${name}\r\n$${te.encode(k).length}\r\n${k}\r\n$${te.encode(v).length}\r\n${v}\r\n`;

interface Call {
  outBytes?: number;
  keyBytesMax?: number;
  valueBytesMax?: number;
  commandsMax?: number;
  startKey?: string;
  endKey?: string;
}

function take(input: string | Uint8Array, c: Call = {}) {
  const bytes = typeof input === "string" ? te.encode(input) : input;
  const output = new Uint8Array(c.outBytes ?? 4096);
  const r = native!.takeSets({
    input: bytes,
    inStart: 0,
    inEnd: bytes.length,
    output,
    outStart: 0,
    outEnd: output.length,
    keyBytesMax: c.keyBytesMax ?? 1024,
    valueBytesMax: c.valueBytesMax ?? 4096,
    commandsMax: c.commandsMax ?? 256,
    startKey: te.encode(c.startKey ?? ""),
    endKey: te.encode(c.endKey ?? ""),
  });
  return { ...r, out: output.subarray(0, r.written) };
}

/** The plain-SETs layout of (key, value) pairs. */
function layout(sets: [Uint8Array, Uint8Array][]): Uint8Array {
  const parts: number[] = [];
  const u32 = (n: number) => parts.push(n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255);
  for (const [k, v] of sets) {
    u32(k.length);
    parts.push(...k);
    u32(v.length);
    parts.push(...v);
  }
  return Uint8Array.from(parts);
}

Deno.test("native SETs: canonical SETs are laid out for the log, and the stops say why", () => {
  const input = SET("a", "one") + SET("", "") + SET("key", "v", "set");
  let r = take(input);
  assert.deepEqual([r.commands, r.consumed, r.stop, r.next], [
    3,
    te.encode(input).length,
    NativeStop.END,
    undefined,
  ]);
  assert.deepEqual(
    r.out,
    layout([[te.encode("a"), te.encode("one")], [EMPTY, EMPTY], [
      te.encode("key"),
      te.encode("v"),
    ]]),
  );
  // Anything but the canonical plain SET stays for the executor.
  for (
    const other of [
      "*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n$2\r\nNX\r\n$0\r\n\r\n", // options
      "*3\r\n$3\r\nSET\r\n$01\r\nk\r\n$1\r\nv\r\n", // a leading zero
      "*3\r\n$3\r\nSAT\r\n$1\r\nk\r\n$1\r\nv\r\n",
      "*3\r\n$3\r\nSET\r\n$1\r\nkk\r\n$1\r\nv\r\n", // a length that lies
      "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
      "SET k v\r\n", // inline
    ]
  ) {
    r = take(SET("a", "1") + other);
    assert.deepEqual([r.commands, r.stop, r.next], [1, NativeStop.OTHER, undefined], other);
    assert.equal(r.consumed, te.encode(SET("a", "1")).length);
  }
  // A key or value over its limit too (the executor answers with Redis's error).
  assert.equal(take(SET("long", "v"), { keyBytesMax: 3 }).stop, NativeStop.OTHER);
  assert.equal(take(SET("k", "long"), { valueBytesMax: 3 }).stop, NativeStop.OTHER);
  // A frame cut short: END, nothing of it taken.
  const whole = te.encode(SET("k", "value"));
  for (let cut = 1; cut < whole.length; cut++) {
    r = take(whole.subarray(0, cut));
    assert.deepEqual([r.commands, r.consumed, r.stop], [0, 0, NativeStop.END], `cut ${cut}`);
  }
});

Deno.test("native SETs stop before a key outside the range, a SET that does not fit, and at the count", () => {
  const input = SET("b", "1") + SET("m", "2") + SET("c", "3");
  let r = take(input, { startKey: "b", endKey: "m" });
  assert.deepEqual([r.commands, r.stop], [1, NativeStop.REGION]);
  assert.deepEqual(r.next?.key, te.encode("m"));
  assert.equal(r.next?.bytes, 8 + 1 + 1);
  r = take(input, { startKey: "c" });
  assert.deepEqual([r.commands, r.stop, r.next?.key], [0, NativeStop.REGION, te.encode("b")]);
  r = take(input, { outBytes: 10 + 9 }); // room for one SET of 10 bytes, not two
  assert.deepEqual([r.commands, r.written, r.stop], [1, 10, NativeStop.FULL]);
  assert.deepEqual(r.next, { key: te.encode("m"), bytes: 10 });
  r = take(input, { commandsMax: 2 });
  assert.deepEqual([r.commands, r.stop, r.next?.key], [2, NativeStop.COUNT, te.encode("c")]);
  r = take(input, { commandsMax: 0 }); // what the port does to learn the first key
  assert.deepEqual([r.commands, r.consumed, r.next?.key], [0, 0, te.encode("b")]);
});

/** What spire_resp_sets must do, written plainly. */
function reference(bytes: Uint8Array, c: Required<Call>): NativeSetsResult & { out: Uint8Array } {
  const lo = te.encode(c.startKey);
  const hi = te.encode(c.endKey);
  const sets: [Uint8Array, Uint8Array][] = [];
  let pos = 0;
  let used = 0;
  const bulk = (at: number, max: number): [number, number, number] | "cut" | "other" => {
    if (at >= bytes.length) return "cut";
    if (bytes[at] !== 36) return "other";
    let i = at + 1;
    let digits = "";
    while (i < bytes.length && bytes[i]! >= 48 && bytes[i]! <= 57) {
      digits += String.fromCharCode(bytes[i]!);
      if (digits.length > 1 && digits[0] === "0") return "other";
      if (Number(digits) > max) return "other";
      i++;
    }
    if (i === bytes.length) return "cut";
    if (digits === "" || bytes[i] !== 13) return "other";
    if (i + 1 === bytes.length) return "cut";
    if (bytes[i + 1] !== 10) return "other";
    const n = Number(digits);
    const start = i + 2;
    if (bytes.length - start < n + 2) return "cut";
    if (bytes[start + n] !== 13 || bytes[start + n + 1] !== 10) return "other";
    return [start, n, start + n + 2];
  };
  const result = (stop: number, next?: { key: Uint8Array; bytes: number }) => ({
    commands: sets.length,
    consumed: pos,
    written: used,
    stop,
    next,
    out: layout(sets),
  });
  while (pos < bytes.length) {
    const head = te.encode("*3\r\n$3\r\nset\r\n");
    for (let i = 0; i < head.length; i++) {
      if (pos + i >= bytes.length) return result(NativeStop.END);
      const b = i >= 8 && i < 11 ? bytes[pos + i]! | 0x20 : bytes[pos + i]!;
      if (b !== head[i]) return result(NativeStop.OTHER);
    }
    const k = bulk(pos + 13, c.keyBytesMax);
    if (k === "other") return result(NativeStop.OTHER);
    if (k === "cut") return result(NativeStop.END);
    const v = bulk(k[2], c.valueBytesMax);
    if (v === "other") return result(NativeStop.OTHER);
    if (v === "cut") return result(NativeStop.END);
    const key = bytes.subarray(k[0], k[0] + k[1]);
    const need = 8 + k[1] + v[1];
    const next = { key, bytes: need };
    if (sets.length === c.commandsMax) return result(NativeStop.COUNT, next);
    if (compareBytes(key, lo) < 0 || (hi.length > 0 && compareBytes(key, hi) >= 0)) {
      return result(NativeStop.REGION, next);
    }
    if (need > c.outBytes - used) return result(NativeStop.FULL, next);
    sets.push([key, bytes.subarray(v[0], v[0] + v[1])]);
    used += need;
    pos = v[2];
  }
  return result(NativeStop.END);
}

Deno.test("native SETs take exactly what the plain reference takes, over random frames and cuts", () => {
  const keyArb = fc.constantFrom("", "a", "b", "k1", "m", "z", "\u00e9");
  const frameArb = fc.oneof(
    {
      weight: 6,
      arbitrary: fc.tuple(keyArb, fc.string({ maxLength: 12 })).map(([k, v]) => SET(k, v)),
    },
    fc.tuple(keyArb, fc.constantFrom("set", "SeT")).map(([k, n]) => SET(k, "x", n)),
    fc.constantFrom(
      "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
      "*3\r\n$3\r\nSET\r\n$00\r\n\r\n$0\r\n\r\n",
      "*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n$3\r\nGET\r\n",
      "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nv\r\n",
    ),
  );
  fc.assert(
    fc.property(
      fc.array(frameArb, { maxLength: 8 }),
      fc.nat(400),
      fc.record({
        outBytes: fc.integer({ min: 0, max: 120 }),
        keyBytesMax: fc.integer({ min: 0, max: 3 }),
        valueBytesMax: fc.integer({ min: 0, max: 12 }),
        commandsMax: fc.integer({ min: 0, max: 8 }),
        startKey: fc.constantFrom("", "a", "k"),
        endKey: fc.constantFrom("", "m", "z"),
      }),
      (frames, cutAt, c) => {
        const all = te.encode(frames.join(""));
        const bytes = all.subarray(0, Math.min(all.length, cutAt));
        const got = take(bytes, c);
        const want = reference(bytes, c);
        assert.deepEqual(
          { ...got, next: got.next && { key: [...got.next.key], bytes: got.next.bytes } },
          { ...want, next: want.next && { key: [...want.next.key], bytes: want.next.bytes } },
        );
      },
    ),
    { numRuns: 2000 },
  );
});

import assert from "node:assert/strict";
import fc from "fast-check";
import { checkLinearizable } from "./checker.ts";
import {
  type HistoryEvent,
  type Operation,
  pairOperations,
  type RegisterValue,
} from "./history.ts";

/**
 * Parses a history written one event per line: `P invoke put K V`,
 * `P invoke get K`, `P invoke cas K EXPECTED NEW`, `P ok [RESULT]`, `P fail`,
 * `P info`. `nil` is the null value; the time of an event is its line number.
 */
function hist(text: string): HistoryEvent[] {
  const val = (s: string | undefined): RegisterValue => (s === undefined || s === "nil" ? null : s);
  return text.trim().split("\n").map((line, time) => {
    const [p, type, f, key, a, b] = line.trim().split(/\s+/);
    const process = Number(p);
    if (type === "invoke") {
      if (f === "put") return { type, process, time, op: { f, key: key!, value: val(a) } };
      if (f === "get") return { type, process, time, op: { f, key: key! } };
      return {
        type: "invoke",
        process,
        time,
        op: { f: "cas", key: key!, expected: val(a), value: b! },
      };
    }
    if (type === "ok") {
      if (f === undefined) return { type, process, time };
      if (f === "true" || f === "false") return { type, process, time, result: f === "true" };
      return { type, process, time, result: val(f) };
    }
    return { type: type as "fail" | "info", process, time };
  });
}

Deno.test("checker: a put of nil deletes; a read of the old value after an acknowledged delete is refused", () => {
  const ok = checkLinearizable(hist(`
    1 invoke put x a
    1 ok
    1 invoke put x nil
    1 ok
    2 invoke get x
    2 ok nil
    1 invoke put x nil
    2 invoke get x
    2 ok a
    1 ok`));
  assert.equal(ok.valid, false, "a read of a after both deletes were invoked, one acknowledged");
  const concurrent = checkLinearizable(hist(`
    1 invoke put x a
    1 ok
    1 invoke put x nil
    2 invoke get x
    2 ok a
    1 ok
    2 invoke get x
    2 ok nil`));
  assert.equal(concurrent.valid, true);
});

Deno.test("checker accepts sequential put/get/cas", () => {
  const r = checkLinearizable(hist(`
    0 invoke put x a
    0 ok
    1 invoke get x
    1 ok a
    1 invoke cas x a b
    1 ok true
    0 invoke cas x a c
    0 ok false
    0 invoke get x
    0 ok b`));
  assert.equal(r.valid, true);
});

Deno.test("checker accepts a read concurrent with a write seeing either value", () => {
  for (const seen of ["nil", "a"]) {
    const r = checkLinearizable(hist(`
      0 invoke put x a
      1 invoke get x
      1 ok ${seen}
      0 ok`));
    assert.equal(r.valid, true, seen);
  }
});

Deno.test("checker catches a stale read and explains it with a minimal set of operations", () => {
  const r = checkLinearizable(hist(`
    0 invoke put x a
    0 ok
    2 invoke put y q
    2 ok
    0 invoke put x b
    0 ok
    1 invoke get x
    1 ok a`));
  assert.equal(r.valid, false);
  if (r.valid !== false) return;
  assert.equal(r.key, "x");
  // put a is needed (its value is read), put b makes the read stale.
  assert.deepEqual(r.minimal.map((o) => o.op.f), ["put", "put", "get"]);
  assert.match(r.explanation, /get\(x\) = "a"/);
  assert.match(r.explanation, /t 6 \.\. 7/);
});

Deno.test("checker catches a lost acknowledged write", () => {
  const r = checkLinearizable(hist(`
    0 invoke put x a
    0 ok
    1 invoke get x
    1 ok nil`));
  assert.equal(r.valid, false);
});

Deno.test("checker catches two successful cas from the same value", () => {
  const r = checkLinearizable(hist(`
    0 invoke put x a
    0 ok
    1 invoke cas x a b
    2 invoke cas x a c
    1 ok true
    2 ok true`));
  assert.equal(r.valid, false);
  if (r.valid === false) assert.equal(r.minimal.length, 3);
});

Deno.test("checker catches a read that goes back in time across two readers", () => {
  const r = checkLinearizable(hist(`
    0 invoke put x a
    0 ok
    0 invoke put x b
    1 invoke get x
    1 ok b
    2 invoke get x
    2 ok a
    0 ok`));
  assert.equal(r.valid, false);
});

Deno.test("checker lets an unknown-outcome write take effect late or never", () => {
  const late = checkLinearizable(hist(`
    0 invoke put x a
    0 info
    1 invoke get x
    1 ok nil
    1 invoke get x
    1 ok a`));
  assert.equal(late.valid, true);
  const never = checkLinearizable(hist(`
    0 invoke put x a
    0 info
    1 invoke get x
    1 ok nil`));
  assert.equal(never.valid, true);
  const failed = checkLinearizable(hist(`
    0 invoke put x a
    0 fail
    1 invoke get x
    1 ok a`));
  assert.equal(failed.valid, false, "a failed write must not be visible");
});

Deno.test("checker treats a cas that did not match as a read", () => {
  const r = checkLinearizable(hist(`
    0 invoke put x a
    0 ok
    1 invoke cas x a b
    1 ok false`));
  assert.equal(r.valid, false);
});

Deno.test("checker partitions by key: independent keys do not interfere", () => {
  const lines: string[] = [];
  for (let k = 0; k < 50; k++) {
    lines.push(`0 invoke put k${k} v${k}`, `1 invoke get k${k}`, `1 ok v${k}`, `0 ok`);
  }
  assert.equal(checkLinearizable(hist(lines.join("\n"))).valid, true);
});

Deno.test("checker rejects a malformed history", () => {
  assert.throws(() => checkLinearizable(hist(`0 ok`)), RangeError);
  assert.throws(
    () => checkLinearizable(hist(`0 invoke get x\n0 invoke get x`)),
    /still open/,
  );
});

Deno.test("checker refuses malformed operations and results instead of judging them", () => {
  const ev = (op: unknown, result?: unknown): HistoryEvent[] =>
    [
      { type: "invoke", process: 0, op, time: 0 },
      { type: "ok", process: 0, time: 1, result },
    ] as HistoryEvent[];
  assert.throws(() => checkLinearizable(ev({ f: "del", key: "x" })), /del" is not one of/);
  assert.throws(() => checkLinearizable(ev({ f: "put", key: "x" })), /put needs a string value/);
  assert.throws(() => checkLinearizable(ev({ f: "cas", key: "x", expected: null })), /cas needs/);
  assert.throws(() => checkLinearizable(ev({ f: "get" }, null)), /no string key/);
  assert.throws(
    () => checkLinearizable(ev({ f: "cas", key: "x", expected: 1, value: "b" }, true)),
    /expected value/,
  );
  assert.throws(() => checkLinearizable(ev({ f: "get", key: "x" })), /get returned undefined/);
  assert.throws(
    () => checkLinearizable(ev({ f: "cas", key: "x", expected: null, value: "b" })),
    /cas returned undefined/,
  );
  assert.throws(
    () =>
      checkLinearizable(
        [{ type: "done", process: 0, time: 0 }] as unknown as HistoryEvent[],
      ),
    TypeError,
  );
  // Well-formed: a put's result is ignored, a cas result is a boolean.
  assert.equal(checkLinearizable(ev({ f: "put", key: "x", value: "a" }, true)).valid, true);
  assert.equal(
    checkLinearizable(ev({ f: "cas", key: "x", expected: null, value: "b" }, true)).valid,
    true,
  );
});

Deno.test("checker shrinks a long history to the three operations of its stale read", () => {
  const lines: string[] = [];
  // 800 linearizable operations on one key, then a read of an overwritten value.
  for (let i = 0; i < 400; i++) {
    lines.push(`0 invoke put x v${i}`, `0 ok`, `1 invoke get x`, `1 ok v${i}`);
  }
  lines.push(`2 invoke get x`, `2 ok v398`);
  const r = checkLinearizable(hist(lines.join("\n")));
  assert.equal(r.valid, false);
  if (r.valid !== false) return;
  assert.deepEqual(
    r.minimal.map((o) => `${o.op.f} ${"value" in o.op ? o.op.value : String(o.result)}`),
    ["put v398", "put v399", "get v398"],
  );
});

Deno.test("checker keeps a write in front of a cas from nil that failed", () => {
  // The cas saw "b" (not nil); the explanation must show a write it could have seen.
  const r = checkLinearizable(hist(`
    0 invoke put x a
    0 ok
    0 invoke put x b
    0 ok
    1 invoke get x
    1 ok a
    2 invoke cas x nil c
    2 ok false
  `));
  assert.equal(r.valid, false);
  if (r.valid !== false) return;
  assert.ok(r.minimal.some((o) => o.op.f === "put"), r.explanation);
});

Deno.test("checker reports unknown when the state budget is exceeded", () => {
  const lines: string[] = [];
  for (let p = 0; p < 12; p++) lines.push(`${p} invoke put x v${p}`);
  for (let p = 0; p < 12; p++) lines.push(`${p} ok`);
  lines.push(`99 invoke get x`, `99 ok zzz`);
  const r = checkLinearizable(hist(lines.join("\n")), { statesMax: 50 });
  assert.equal(r.valid, "unknown");
});

/** Brute force: try every subset of unknown-outcome ops and every real-time-respecting order. */
function bruteForce(events: HistoryEvent[]): boolean {
  const ops = pairOperations(events).filter((o) => !(o.op.f === "get" && o.outcome === "info"));
  const info = ops.filter((o) => o.outcome === "info");
  for (let mask = 0; mask < 1 << info.length; mask++) {
    const chosen = ops.filter((o) => o.outcome === "ok" || (mask & (1 << info.indexOf(o))) !== 0);
    if (orders(chosen, [], null)) return true;
  }
  return false;
}

function orders(left: Operation[], done: Operation[], state: RegisterValue): boolean {
  if (left.length === 0) return true;
  for (const o of left) {
    // o may go next only if no other remaining op completed before o was invoked.
    if (left.some((p) => p !== o && p.completeSeq < o.invokeSeq)) continue;
    let after: RegisterValue | undefined;
    if (o.op.f === "put") after = o.op.value;
    else if (o.op.f === "get") after = state === o.result ? state : undefined;
    else if (o.outcome === "ok" && o.result === false) {
      after = state !== o.op.expected ? state : undefined;
    } else after = state === o.op.expected ? o.op.value : undefined;
    if (after === undefined) continue;
    if (orders(left.filter((p) => p !== o), [...done, o], after)) return true;
  }
  return false;
}

const tinyHistory = fc.array(
  fc.record({
    start: fc.nat(20),
    length: fc.nat(8),
    kind: fc.constantFrom("put", "get", "cas"),
    pick: fc.nat(5),
    pick2: fc.nat(5),
    bool: fc.boolean(),
    outcome: fc.constantFrom("ok", "ok", "ok", "info", "fail"),
  }),
  { minLength: 1, maxLength: 6 },
).map((specs) => {
  const values = specs.map((_, i) => `v${i}`);
  const choose = (n: number): RegisterValue => (n === 0 ? null : values[(n - 1) % values.length]!);
  const timeline: { at: number; order: number; event: HistoryEvent }[] = [];
  specs.forEach((s, i) => {
    const op = s.kind === "put"
      ? { f: "put" as const, key: "x", value: values[i]! }
      : s.kind === "get"
      ? { f: "get" as const, key: "x" }
      : { f: "cas" as const, key: "x", expected: choose(s.pick), value: values[i]! };
    timeline.push({
      at: s.start,
      order: 2 * i,
      event: { type: "invoke", process: i, op, time: 0 },
    });
    const end = s.start + s.length + 0.5;
    const done: HistoryEvent = s.outcome !== "ok"
      ? { type: s.outcome as "info" | "fail", process: i, time: 0 }
      : s.kind === "get"
      ? { type: "ok", process: i, time: 0, result: choose(s.pick2) }
      : s.kind === "cas"
      ? { type: "ok", process: i, time: 0, result: s.bool }
      : { type: "ok", process: i, time: 0 };
    timeline.push({ at: end, order: 2 * i + 1, event: done });
  });
  timeline.sort((a, b) => a.at - b.at || a.order - b.order);
  return timeline.map((t, time) => ({ ...t.event, time }));
});

Deno.test("checker agrees with brute force on tiny histories", () => {
  let invalid = 0;
  fc.assert(
    fc.property(tinyHistory, (events) => {
      const expected = bruteForce(events);
      if (!expected) invalid++;
      assert.equal(checkLinearizable(events).valid, expected);
    }),
    { numRuns: 3000, seed: 42 },
  );
  // The generator must produce both kinds, or the property proves little.
  assert.ok(invalid > 300, `only ${invalid} invalid histories generated`);
});

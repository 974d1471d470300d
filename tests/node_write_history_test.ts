import assert from "node:assert/strict";
import { checkDurability, WriteHistory } from "../node/write_history.ts";

function history(): WriteHistory {
  const h = new WriteHistory();
  h.begin({ kind: "set", key: "s1", value: "v1" })(true);
  h.begin({ kind: "set", key: "s2", value: "v2" })(false);
  h.begin({ kind: "append", key: "a", token: "w0.0;" })(true);
  h.begin({ kind: "append", key: "a", token: "w0.1;" })(true);
  h.begin({ kind: "append", key: "a", token: "w0.2;" })(false);
  return h;
}

Deno.test("durability checker accepts a state that holds every acknowledged write", () => {
  const h = history();
  assert.deepEqual(checkDurability(h.records, new Map([["s1", "v1"], ["a", "w0.0;w0.1;"]])), []);
  // An unacknowledged write may have been applied.
  assert.deepEqual(
    checkDurability(h.records, new Map([["s1", "v1"], ["s2", "v2"], ["a", "w0.0;w0.1;w0.2;"]])),
    [],
  );
});

Deno.test("durability checker reports a lost acknowledged SET", () => {
  const v = checkDurability(history().records, new Map([["a", "w0.0;w0.1;"]]));
  assert.equal(v.length, 1);
  assert.match(v[0]!.problem, /acknowledged SET of "v1" is lost/);
});

Deno.test("durability checker reports a lost acknowledged APPEND", () => {
  const v = checkDurability(history().records, new Map([["s1", "v1"], ["a", "w0.0;"]]));
  assert.equal(v.length, 1);
  assert.match(v[0]!.problem, /acknowledged APPEND of "w0.1" is lost/);
});

Deno.test("durability checker reports a write applied twice", () => {
  const v = checkDurability(
    history().records,
    new Map([["s1", "v1"], ["a", "w0.0;w0.1;w0.0;w0.1;"]]),
  );
  assert.equal(v.length, 1);
  assert.match(v[0]!.problem, /applied twice/);
});

Deno.test("durability checker reports a changed value and a key nobody wrote", () => {
  const v = checkDurability(
    history().records,
    new Map([["s1", "other"], ["a", "w0.0;w0.1;"], ["stray", "x"]]),
  );
  assert.deepEqual(v.map((x) => x.key).sort(), ["s1", "stray"]);
});

Deno.test("settling a history keeps found writes as facts for the next crash", () => {
  const h = history();
  const state = new Map([["s1", "v1"], ["s2", "v2"], ["a", "w0.0;w0.1;"]]);
  assert.deepEqual(checkDurability(h.records, state), []);
  h.settle(state);
  assert.equal(h.ackedCount, 4);
  // After the next restart, s2 (applied though unacknowledged before) must still be there.
  const v = checkDurability(h.records, new Map([["s1", "v1"], ["a", "w0.0;w0.1;"]]));
  assert.match(v[0]!.problem, /acknowledged SET of "v2" is lost/);
});

Deno.test("durability checker allows an unacknowledged APPEND to be missing in the middle", () => {
  const h = new WriteHistory();
  h.begin({ kind: "append", key: "a", token: "t0;" })(true);
  h.begin({ kind: "append", key: "a", token: "t1;" })(false);
  h.begin({ kind: "append", key: "a", token: "t2;" })(true);
  assert.deepEqual(checkDurability(h.records, new Map([["a", "t0;t2;"]])), []);
  // ... but not an acknowledged one.
  const v = checkDurability(h.records, new Map([["a", "t1;t2;"]]));
  assert.match(v[0]!.problem, /acknowledged APPEND of "t0" is lost/);
  // ... and not out of order.
  assert.match(
    checkDurability(h.records, new Map([["a", "t0;t2;t1;"]]))[0]!.problem,
    /applied twice or out of order/,
  );
});

/** `commandKeys`: where a transaction's keys come from (and so the region it must go to). */
import assert from "node:assert/strict";
import { commandKeys } from "./command_table.ts";

const enc = (args: string[]) => args.map((a) => new TextEncoder().encode(a));
const dec = (keys: Uint8Array[]) => keys.map((k) => new TextDecoder().decode(k));

Deno.test("commandKeys reads key positions from the table, a container's from its subcommand", () => {
  assert.deepEqual(dec(commandKeys(enc(["GET", "a"]))), ["a"]);
  assert.deepEqual(dec(commandKeys(enc(["mset", "a", "1", "b", "2"]))), ["a", "b"]);
  assert.deepEqual(dec(commandKeys(enc(["DEL", "a", "b", "c"]))), ["a", "b", "c"]);
  assert.deepEqual(dec(commandKeys(enc(["OBJECT", "ENCODING", "k"]))), ["k"]);
  assert.deepEqual(dec(commandKeys(enc(["object", "refcount", "k"]))), ["k"]);
  assert.deepEqual(commandKeys(enc(["OBJECT", "HELP"])), []);
  assert.deepEqual(commandKeys(enc(["OBJECT", "NOPE", "k"])), []);
  assert.deepEqual(commandKeys(enc(["OBJECT"])), []);
  assert.deepEqual(commandKeys(enc(["CLIENT", "SETNAME", "x"])), []);
  assert.deepEqual(commandKeys(enc(["PING"])), []);
  assert.deepEqual(commandKeys(enc(["NO-SUCH-COMMAND", "k"])), []);
});

import assert from "node:assert/strict";
import type { Message } from "../core/mod.ts";
import { MemoryNetwork } from "./memory_transport.ts";
import type { Frame } from "./transport.ts";

const msg = (from: number, to: number, index: number): Frame => ({
  kind: "message",
  message: {
    type: "MsgApp",
    to,
    from,
    term: 1,
    logTerm: 1,
    index,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    leaseTick: 0,
  } satisfies Message,
});

Deno.test("memory network delivers in order, honours one-way cuts and refuses unknown peers", async () => {
  const net = new MemoryNetwork();
  const got: number[] = [];
  const t1 = net.endpoint(1, () => {});
  net.endpoint(2, (f) => got.push(f.kind === "message" ? f.message.index : -1));
  const t2 = net.endpoint(3, () => {});
  for (let i = 0; i < 5; i++) assert.equal(t1.send(2, msg(1, 2, i)), true);
  await Promise.resolve();
  assert.deepEqual(got, [0, 1, 2, 3, 4]);
  net.cut(1, 2);
  t1.send(2, msg(1, 2, 9));
  t2.send(2, msg(3, 2, 10));
  await Promise.resolve();
  assert.deepEqual(got.slice(5), [10], "the cut link drops, the other delivers");
  net.heal();
  t1.send(2, msg(1, 2, 11));
  await Promise.resolve();
  assert.equal(got.at(-1), 11);
  assert.equal(t1.send(99, msg(1, 99, 0)), false);
  assert.throws(() => net.endpoint(2, () => {}), RangeError);
  net.close();
});

Deno.test("memory network refuses frames past its queue limit", () => {
  const net = new MemoryNetwork({ queueFramesMax: 3 });
  const t1 = net.endpoint(1, () => {});
  net.endpoint(2, () => {});
  const sent = [0, 1, 2, 3].map((i) => t1.send(2, msg(1, 2, i)));
  assert.deepEqual(sent, [true, true, true, false]);
  net.close();
});

/**
 * The order of a connection's writes across regions (`regions.write_order`): regions apply their
 * entries independently, so a pipeline's write to one region may become visible before an earlier
 * write of the same pipeline to another region. With `sent`, as from redis-server, it must not:
 * the left region's proposals are held here, and a later write of the pipeline, to the right
 * region, must stay invisible to another client until the held one is released. With `region`
 * (the default) it goes out at once.
 */

import assert from "node:assert/strict";
import { hookCalls, withTestNode } from "../node/_test_node.ts";
import type { WriteOrderMode } from "../node/config.ts";
import { RespClient } from "../node/resp/client.ts";
import { showReply } from "../node/resp/reply_parser.ts";
import { NAMES } from "../node/services.ts";

const enc = new TextEncoder();

/** How long a write to the free region would take at most to be applied, were it proposed. */
const SETTLE_MS = 300;

/** A node of two regions ("a..." left, "\x90...", 0xC2 0x90 in UTF-8, right) and two clients. */
interface TwoRegions {
  readonly writer: RespClient;
  readonly reader: RespClient;
  /** Holds the left region's proposals until the returned function is called. */
  holdLeft(): () => void;
}

async function withTwoRegions(
  writeOrder: WriteOrderMode | undefined,
  fn: (t: TwoRegions) => Promise<void>,
): Promise<void> {
  const regions = writeOrder === undefined
    ? { initial_count: 2 }
    : { initial_count: 2, write_order: writeOrder };
  await withTestNode(
    { prefix: "spire_write_order_", sections: { regions } },
    async (node, config) => {
      assert.equal(config.writeOrder, writeOrder ?? "region");
      const writer = await RespClient.connect({ port: node.clientPort });
      const reader = await RespClient.connect({ port: node.clientPort });
      try {
        const left = node.services.route(enc.encode("a")).id;
        assert.notEqual(left, node.services.route(enc.encode("\x90")).id);
        let held: Promise<void> | undefined;
        hookCalls(
          node,
          ({ name, req }, next) =>
            held !== undefined && name === NAMES.region(left) && req.op === "propose"
              ? held.then(next)
              : next(),
        );
        const holdLeft = () => {
          let release!: () => void;
          held = new Promise<void>((r) => (release = r));
          return () => {
            release();
            held = undefined;
          };
        };
        await fn({ writer, reader, holdLeft });
      } finally {
        writer.close();
        reader.close();
      }
    },
  );
}

/** Sends a pipeline without waiting; its replies, awaited later, may fail with the test. */
function send(client: RespClient, pipeline: string[][]): Promise<string[]> {
  const replies = client.pipeline(pipeline).then((r) => r.map(showReply));
  replies.catch(() => {});
  return replies;
}

Deno.test("client port: with regions.write_order 'sent', a pipeline's writes to two regions take effect in the order sent", async () => {
  await withTwoRegions("sent", async ({ writer, reader, holdLeft }) => {
    const cases: { pipeline: string[][]; later: string; value: string }[] = [
      // Plain SETs: the SET lane.
      { pipeline: [["SET", "a1", "x"], ["SET", "\x90b1", "y"]], later: "\x90b1", value: '"y"' },
      // Other single-key writes: started together by the executor.
      { pipeline: [["INCR", "a2"], ["INCR", "\x90b2"]], later: "\x90b2", value: '"1"' },
      // Back and forth between the regions: every switch waits for the writes before it.
      {
        pipeline: [["SET", "a3", "x"], ["SET", "\x90b3", "y"], ["SET", "a4", "x"], [
          "APPEND",
          "\x90b3",
          "z",
        ]],
        later: "\x90b3",
        value: '"yz"',
      },
    ];
    for (const { pipeline, later, value } of cases) {
      const release = holdLeft();
      const replies = send(writer, pipeline);
      await new Promise((r) => setTimeout(r, SETTLE_MS));
      assert.equal(
        showReply(await reader.call(["GET", later])),
        "nil",
        `${later} became visible while an earlier write of its pipeline was held`,
      );
      release();
      const answered = await replies;
      assert.ok(answered.every((r) => !r.startsWith("-")), answered.join(" "));
      assert.equal(showReply(await reader.call(["GET", later])), value);
    }
  });
});

Deno.test("client port: by default (regions.write_order 'region'), a write to a free region does not wait for one held elsewhere", async () => {
  await withTwoRegions(undefined, async ({ writer, reader, holdLeft }) => {
    const release = holdLeft();
    const replies = send(writer, [["SET", "a1", "x"], ["SET", "\x90b1", "y"]]);
    const deadline = Date.now() + 10_000;
    let seen = "nil";
    while (seen === "nil" && Date.now() < deadline) {
      seen = showReply(await reader.call(["GET", "\x90b1"]));
      if (seen === "nil") await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(seen, '"y"', "the right region's write waited for the held left region");
    assert.equal(showReply(await reader.call(["GET", "a1"])), "nil");
    release();
    assert.deepEqual(await replies, ["+OK", "+OK"]);
    assert.equal(showReply(await reader.call(["GET", "a1"])), '"x"');
  });
});

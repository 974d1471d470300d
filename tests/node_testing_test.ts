/**
 * The whole-node test harness itself: a start that finds its port taken by
 * someone else tries new ports, and a node that exits during start-up is
 * reported at once with what it printed, not after the ready timeout.
 */

import assert from "node:assert/strict";
import { NodeProcess } from "../node/testing.ts";

Deno.test({
  name: "harness: a node whose admin port was taken meanwhile starts on new ports",
  sanitizeResources: false,
  async fn() {
    const dataDir = await Deno.makeTempDir({ prefix: "spire_harness_" });
    const node = new NodeProcess({ dataDir });
    // Another test binding the port between the harness's probe and the node's bind.
    const squatter = Deno.listen({ hostname: "127.0.0.1", port: node.adminPort });
    try {
      await node.start();
      assert.notEqual(node.adminPort, (squatter.addr as Deno.NetAddr).port);
      const res = await fetch(`http://127.0.0.1:${node.adminPort}/ready`);
      assert.equal(res.status, 200);
      await res.body?.cancel();
      assert.equal((await node.stop()).code, 0);
    } finally {
      squatter.close();
      await node.kill();
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});

Deno.test({
  name: "harness: a node that exits during start-up is reported at once with its stderr",
  sanitizeResources: false,
  async fn() {
    const dataDir = await Deno.makeTempDir({ prefix: "spire_harness_" });
    const node = new NodeProcess({
      dataDir,
      env: { SPIRE_ROCKSDB_COMPRESSION: "bogus" },
    });
    const started = Date.now();
    try {
      await assert.rejects(node.start(), (e: Error) => {
        assert.match(e.message, /exited with code 2 before it was ready/);
        assert.match(e.message, /SPIRE_ROCKSDB_COMPRESSION/);
        return true;
      });
      // Well inside the 30 s ready timeout: the exit itself ends the wait.
      assert.ok(Date.now() - started < 20_000, `took ${Date.now() - started} ms`);
    } finally {
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});

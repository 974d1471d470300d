/**
 * The Raft-backed storage across regions: multi-key commands split per region
 * and merged, MSETNX refused across regions, SCAN/DBSIZE/SCANRANGE over all
 * regions in key order, FLUSHDB on every region — with reads both from the
 * engine directly (single-voter regions) and through ReadIndex.
 */

import { TEST_NODE_TUNING } from "../node/testing.ts";

import assert from "node:assert/strict";
import { SpireNode } from "../node/app.ts";
import { resolveNodeConfig } from "../node/config.ts";
import { RaftBackend } from "../node/raft_backend.ts";
import { compareBytes } from "../engine/codec/mod.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const b = (s: string) => enc.encode(s);
const OK = { kind: "simple", value: "OK" };

for (const readMode of ["auto", "readIndex"] as const) {
  Deno.test(`raft backend (${readMode} reads): multi-key commands across four regions`, async () => {
    const dataDir = await Deno.makeTempDir({ prefix: "spire_backend_" });
    const { config } = resolveNodeConfig({
      overrides: { dataDir, port: 0, adminPort: 0, initialRegionCount: 4 },
    });
    const node = await SpireNode.start({
      config,
      tuning: TEST_NODE_TUNING,
      report: () => {},
    });
    try {
      const backend = new RaftBackend({ services: node.services, readMode });
      // Keys in different regions (cut at first bytes 0x40, 0x80, 0xc0).
      const keys = ["!a", "Ab", "\x90c", "\xd0d"].map((k) =>
        Uint8Array.from(k, (c) => c.charCodeAt(0))
      );
      const ids = new Set(keys.map((k) => node.services.route(k).id));
      assert.equal(ids.size, 4);
      const entries = keys.flatMap((k, i) => [k, b(`v${i}`)]);
      assert.deepEqual(await backend.execute({ op: "mset", entries }), {
        kind: "simple",
        value: "OK",
      });
      const values = await backend.read([...keys, b("missing")]);
      assert.deepEqual(values.map((v) => v && dec.decode(v.value)), [
        "v0",
        "v1",
        "v2",
        "v3",
        undefined,
      ]);

      // Native code may read the engine itself only where reads skip the ReadIndex round (in
      // "auto" mode once every region's peer has published an applied entry of its term).
      for (let i = 0; i < 100 && backend.directReads() === undefined; i++) {
        if (readMode === "readIndex") break;
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(backend.directReads() !== undefined, readMode === "auto");
      const refused = await backend.execute({ op: "msetnx", entries });
      assert.ok(refused.kind === "error" && /lie in 4 regions/.test(refused.message));
      const oneRegion = await backend.execute({
        op: "msetnx",
        entries: [b("Ax"), b("1"), b("Ay"), b("2")],
      });
      assert.deepEqual(oneRegion, { kind: "integer", value: 1 });

      // RENAME: atomic within a region, refused across regions (as MSETNX).
      const across = await backend.execute({ op: "rename", key: keys[0]!, newKey: keys[2]! });
      assert.ok(across.kind === "error" && /RENAME keys lie in 2 regions/.test(across.message));
      assert.deepEqual(await backend.execute({ op: "rename", key: b("Ay"), newKey: b("Az") }), OK);
      assert.deepEqual(
        (await backend.read([b("Ay"), b("Az")])).map((v) => v && dec.decode(v.value)),
        [undefined, "2"],
      );
      assert.deepEqual(await backend.execute({ op: "rename", key: b("Az"), newKey: b("Ay") }), OK);
      // COPY: the same rule; within a region the value is copied and the source stays.
      const copyAcross = await backend.execute({ op: "copy", key: keys[0]!, newKey: keys[2]! });
      assert.ok(
        copyAcross.kind === "error" && /COPY keys lie in 2 regions/.test(copyAcross.message),
      );
      assert.deepEqual(await backend.execute({ op: "copy", key: b("Ay"), newKey: b("Aw") }), {
        kind: "integer",
        value: 1,
      });
      assert.deepEqual(
        (await backend.read([b("Ay"), b("Aw")])).map((v) => v && dec.decode(v.value)),
        ["2", "2"],
      );
      assert.deepEqual(await backend.execute({ op: "del", keys: [b("Aw")] }), {
        kind: "integer",
        value: 1,
      });

      assert.equal(await backend.dbsize(), 6);
      const page = await backend.scanKeys(undefined, 100);
      assert.ok(page.done);
      const scanned = page.entries.map((e) => e.key);
      const sorted = [...scanned].sort(compareBytes);
      assert.deepEqual(scanned, sorted, "SCAN walks the regions in key order");
      assert.equal(scanned.length, 6);
      const range = await backend.scanRange(b("A"), b("B"), {
        batchSize: 2,
        limit: 10,
        nowMs: Date.now(),
      });
      assert.deepEqual(range.rows.map(([k]) => dec.decode(k)), ["Ab", "Ax", "Ay"]);

      const del = await backend.execute({ op: "del", keys: [keys[0]!, keys[2]!, b("missing")] });
      assert.equal(del.kind === "integer" ? Number(del.value) : -1, 2);
      assert.equal(await backend.dbsize(), 4);
      assert.deepEqual(await backend.execute({ op: "flushdb" }), { kind: "simple", value: "OK" });
      assert.equal(await backend.dbsize(), 0);
    } finally {
      await node.stop();
      await Deno.remove(dataDir, { recursive: true });
    }
  });
}

Deno.test("raft backend: the expiry scan walks four regions in key order and finds exactly the expired keys", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "spire_backend_expiry_" });
  const { config } = resolveNodeConfig({
    overrides: { dataDir, port: 0, adminPort: 0, initialRegionCount: 4 },
  });
  const node = await SpireNode.start({ config, tuning: TEST_NODE_TUNING, report: () => {} });
  try {
    const backend = new RaftBackend({ services: node.services });
    const now = Date.now();
    const expiring: Uint8Array[] = [];
    for (let i = 0; i < 40; i++) {
      // First bytes spread over the four regions (cut at 0x40, 0x80, 0xc0).
      const key = Uint8Array.of((i * 37) % 256, i);
      const expire = i % 3 === 0 ? undefined : { at: now + (i % 3 === 1 ? 10_000 : 60_000) };
      const reply = await backend.execute({
        op: "set",
        key,
        value: b(`v${i}`),
        ...(expire === undefined ? {} : { expire }),
      });
      assert.equal(reply.kind, "simple");
      if (i % 3 === 1) expiring.push(key);
    }
    expiring.sort(compareBytes);
    for (const rowsMax of [1, 3, 7, 40, 1000]) {
      const found: Uint8Array[] = [];
      let from: Uint8Array | undefined;
      let steps = 0;
      do {
        const page = await backend.scanExpired(from, rowsMax, now + 20_000);
        found.push(...page.keys);
        from = page.next;
        steps++;
      } while (from !== undefined && steps < 100);
      assert.deepEqual(found, expiring, `rowsMax ${rowsMax}: 10 s keys only, in key order`);
      assert.ok(steps >= Math.ceil(40 / rowsMax), `rowsMax ${rowsMax}: ${steps} steps`);
    }
    assert.deepEqual((await backend.scanExpired(undefined, 1000, now)).keys, []);
  } finally {
    await node.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
});

import assert from "node:assert/strict";
import { runSpire } from "./_run_spire.ts";

Deno.test("spire stats creates DIR/data and opens it with the effective tuning", async () => {
  const root = await Deno.makeTempDir({ prefix: "spire_cli_stats_" });
  try {
    const dir = `${root}/fresh/node1`;
    const r = await runSpire(["stats", "--data-dir", dir, "--json"], {
      SPIRE_ROCKSDB_BLOCK_CACHE_SIZE: "16MiB",
      SPIRE_ROCKSDB_WRITE_BUFFER_SIZE: "8MiB",
      SPIRE_ROCKSDB_SYNC_WRITES: "false",
    });
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.equal(report.dataDir, `${dir}/data`);
    // Capacity as RocksDB's cache reports it, not our echo of the setting.
    assert.equal(report.cache.capacityBytes, 16 * 1024 * 1024);
    assert.equal(report.stats.blockCache.capacityBytes, 16 * 1024 * 1024);
    assert.equal(typeof report.stats.tickers["rocksdb.block.cache.hit"], "number");
    // RocksDB's own OPTIONS file shows the write buffer size the CLI passed on.
    const names = [...Deno.readDirSync(`${dir}/data`)].map((e) => e.name);
    const optionsFile = names.filter((n) => n.startsWith("OPTIONS-")).sort().at(-1);
    assert.ok(optionsFile !== undefined, `no OPTIONS file in ${names}`);
    const options = await Deno.readTextFile(`${dir}/data/${optionsFile}`);
    assert.match(options, /^\s*write_buffer_size=8388608$/m);

    const text = await runSpire(["stats", "--data-dir", dir]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^blockCache\.capacityBytes\s+536870912$/m);
    assert.match(text.stdout, /^ {2}L0 {2}files +0 {2}bytes 0B$/m);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("spire stats needs --data-dir and refuses bad tuning before touching the disk", async () => {
  const noDir = await runSpire(["stats"]);
  assert.equal(noDir.code, 2);
  assert.match(noDir.stderr, /--data-dir DIR is required/);

  const root = await Deno.makeTempDir({ prefix: "spire_cli_stats_" });
  try {
    const r = await runSpire(["stats", "--data-dir", `${root}/x`], {
      SPIRE_ROCKSDB_MAX_BACKGROUND_JOBS: "-2",
    });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Cannot parse SPIRE_ROCKSDB_MAX_BACKGROUND_JOBS: "-2" is negative/);
    await assert.rejects(() => Deno.stat(`${root}/x`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

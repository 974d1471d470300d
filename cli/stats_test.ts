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

/** RocksDB's own record of how it was opened: the newest OPTIONS file and the info LOG. */
async function rocksDbRecord(dataDir: string): Promise<{ options: string; log: string }> {
  const names = [...Deno.readDirSync(dataDir)].map((e) => e.name);
  const optionsFile = names.filter((n) => n.startsWith("OPTIONS-")).sort().at(-1);
  assert.ok(optionsFile !== undefined, `no OPTIONS file in ${dataDir}`);
  return {
    options: await Deno.readTextFile(`${dataDir}/${optionsFile}`),
    log: await Deno.readTextFile(`${dataDir}/LOG`),
  };
}

/** Asserts what RocksDB wrote for the knobs it records in OPTIONS and LOG. */
function assertApplied(
  record: { options: string; log: string },
  expected: {
    cacheBytes: number;
    compression: string;
    writeBufferBytes: number;
    writeBufferNumber: number;
    backgroundJobs: number;
    rateBytesPerSec: number;
  },
): void {
  const { options, log } = record;
  assert.match(options, new RegExp(`^\\s*write_buffer_size=${expected.writeBufferBytes}$`, "m"));
  assert.match(
    options,
    new RegExp(`^\\s*max_write_buffer_number=${expected.writeBufferNumber}$`, "m"),
  );
  assert.match(options, new RegExp(`^\\s*max_background_jobs=${expected.backgroundJobs}$`, "m"));
  assert.match(options, new RegExp(`^\\s*compression=${expected.compression}$`, "m"));
  // RocksDB derives the delayed write rate from the rate limiter it was given.
  assert.match(options, new RegExp(`^\\s*delayed_write_rate=${expected.rateBytesPerSec}$`, "m"));
  assert.match(log, new RegExp(`^\\s*capacity : ${expected.cacheBytes}$`, "m"));
}

Deno.test("every SPIRE_ROCKSDB_* variable set through the CLI reaches RocksDB's OPTIONS and LOG", async () => {
  const root = await Deno.makeTempDir({ prefix: "spire_cli_stats_" });
  try {
    const r = await runSpire(["stats", "--data-dir", root, "--json"], {
      SPIRE_ROCKSDB_BLOCK_CACHE_SIZE: "48MiB",
      SPIRE_ROCKSDB_BLOOM_BITS_PER_KEY: "14",
      SPIRE_ROCKSDB_COMPRESSION: "zstd",
      SPIRE_ROCKSDB_WRITE_BUFFER_SIZE: "24MiB",
      SPIRE_ROCKSDB_MAX_WRITE_BUFFER_NUMBER: "5",
      SPIRE_ROCKSDB_MAX_BACKGROUND_JOBS: "3",
      SPIRE_ROCKSDB_RATE_LIMIT_BYTES_PER_SEC: "20MiB",
      SPIRE_ROCKSDB_SYNC_WRITES: "false",
    });
    assert.equal(r.code, 0, r.stderr);
    assertApplied(await rocksDbRecord(`${root}/data`), {
      cacheBytes: 48 * 1024 ** 2,
      compression: "kZSTD",
      writeBufferBytes: 24 * 1024 ** 2,
      writeBufferNumber: 5,
      backgroundJobs: 3,
      rateBytesPerSec: 20 * 1024 ** 2,
    });
    // Bloom bits and sync writes leave no trace in OPTIONS: the engine's own tests prove
    // them from SST properties and WAL syncs; here, the options the engine opened with.
    const report = JSON.parse(r.stdout);
    assert.equal(report.stats.options.bloomBitsPerKey, 14);
    assert.equal(report.stats.options.syncWrites, false);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("each profile, picked by env or by the YAML file, reaches RocksDB", async () => {
  const MiB = 1024 ** 2;
  const base = { rateBytesPerSec: 100 * MiB, writeBufferNumber: 4, backgroundJobs: 2 };
  const cases = [
    {
      profile: "write-heavy",
      expected: {
        ...base,
        cacheBytes: 512 * MiB,
        compression: "kLZ4Compression",
        writeBufferBytes: 256 * MiB,
        writeBufferNumber: 6,
        backgroundJobs: 8,
      },
    },
    {
      profile: "read-heavy",
      expected: {
        ...base,
        cacheBytes: 2048 * MiB,
        compression: "kLZ4Compression",
        writeBufferBytes: 128 * MiB,
      },
    },
    {
      profile: "mixed",
      expected: {
        ...base,
        cacheBytes: 1024 * MiB,
        compression: "kLZ4Compression",
        writeBufferBytes: 128 * MiB,
      },
    },
  ];
  const root = await Deno.makeTempDir({ prefix: "spire_cli_stats_" });
  try {
    for (const [i, { profile, expected }] of cases.entries()) {
      const dir = `${root}/${profile}`;
      const viaYaml = i % 2 === 1;
      const args = ["stats", "--data-dir", dir];
      const env: Record<string, string> = {};
      if (viaYaml) {
        await Deno.writeTextFile(`${root}/${profile}.yaml`, `rocksdb:\n  profile: ${profile}\n`);
        args.push("--config", `${root}/${profile}.yaml`);
      } else {
        env.SPIRE_ROCKSDB_PROFILE = profile;
      }
      const r = await runSpire(args, env);
      assert.equal(r.code, 0, r.stderr);
      assertApplied(await rocksDbRecord(`${dir}/data`), expected);
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

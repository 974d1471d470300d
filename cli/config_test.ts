import assert from "node:assert/strict";
import { runSpire } from "./_run_spire.ts";

Deno.test("spire config prints every knob with its value and source", async () => {
  const r = await runSpire(["config"], {
    SPIRE_ROCKSDB_PROFILE: "write-heavy",
    SPIRE_ROCKSDB_COMPRESSION: "zstd",
  });
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  const row = (variable: string) =>
    lines.find((l) => l.startsWith(variable + " "))?.split(/\s{2,}/);
  assert.deepEqual(row("SPIRE_ROCKSDB_PROFILE"), [
    "SPIRE_ROCKSDB_PROFILE",
    "write-heavy",
    "env SPIRE_ROCKSDB_PROFILE",
  ]);
  assert.deepEqual(row("SPIRE_ROCKSDB_WRITE_BUFFER_SIZE"), [
    "SPIRE_ROCKSDB_WRITE_BUFFER_SIZE",
    "256MiB (268435456)",
    "profile write-heavy",
  ]);
  assert.deepEqual(row("SPIRE_ROCKSDB_COMPRESSION"), [
    "SPIRE_ROCKSDB_COMPRESSION",
    "zstd",
    "env SPIRE_ROCKSDB_COMPRESSION",
  ]);
  assert.deepEqual(row("SPIRE_ROCKSDB_BLOCK_CACHE_SIZE"), [
    "SPIRE_ROCKSDB_BLOCK_CACHE_SIZE",
    "512MiB (536870912)",
    "default",
  ]);
  assert.equal(lines.length, 9);
});

Deno.test("spire config --json --config FILE names the file and line of each value it set", async () => {
  const dir = await Deno.makeTempDir({ prefix: "spire_cli_config_" });
  try {
    const path = `${dir}/spire.yaml`;
    await Deno.writeTextFile(path, "rocksdb:\n  profile: read-heavy\n  bloom_bits_per_key: 14\n");
    const r = await runSpire(["config", "--json", "--config", path], {
      SPIRE_ROCKSDB_SYNC_WRITES: "false",
    });
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.deepEqual(report.profile, { value: "read-heavy", source: `config ${path}:2` });
    const byKey = Object.fromEntries(
      report.settings.map((s: { key: string; value: unknown; source: string }) => [s.key, s]),
    );
    assert.equal(byKey.bloomBitsPerKey.value, 14);
    assert.equal(byKey.bloomBitsPerKey.source, `config ${path}:3`);
    assert.equal(byKey.blockCacheSizeBytes.value, 2147483648);
    assert.equal(byKey.blockCacheSizeBytes.source, "profile read-heavy");
    assert.equal(byKey.syncWrites.value, false);
    assert.equal(byKey.syncWrites.source, "env SPIRE_ROCKSDB_SYNC_WRITES");
    assert.equal(byKey.bloomBitsPerKey.variable, "SPIRE_ROCKSDB_BLOOM_BITS_PER_KEY");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("spire config refuses a typo'd variable, a bad value and a bad flag with their names", async () => {
  const typo = await runSpire(["config"], { SPIRE_ROCKSDB_BLOOM_BITS: "12" });
  assert.equal(typo.code, 1);
  assert.equal(typo.stdout, "");
  assert.match(
    typo.stderr,
    /Unknown variable SPIRE_ROCKSDB_BLOOM_BITS: did you mean SPIRE_ROCKSDB_BLOOM_BITS_PER_KEY\?/,
  );
  const bad = await runSpire(["config"], { SPIRE_ROCKSDB_COMPRESSION: "lz5" });
  assert.equal(bad.code, 1);
  assert.match(
    bad.stderr,
    /Cannot parse SPIRE_ROCKSDB_COMPRESSION: "lz5" is not a known compression; allowed: one of none, lz4, zstd/,
  );
  const missing = await runSpire(["config", "--config", "/nonexistent/spire.yaml"]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /Cannot read config file \/nonexistent\/spire\.yaml: no such file/);
  const flag = await runSpire(["config", "--jsn"]);
  assert.equal(flag.code, 2);
  assert.match(flag.stderr, /unknown option --jsn; allowed: --json, --config FILE/);
});

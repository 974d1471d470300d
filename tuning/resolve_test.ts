import assert from "node:assert/strict";
import {
  DEFAULT_TUNING,
  loadTuning,
  resolveTuning,
  type RocksDbTuning,
  TuningError,
} from "./mod.ts";

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

/** Runs `fn`, expects a TuningError, returns its problems. */
function problemsOf(fn: () => unknown): readonly string[] {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof TuningError, `expected TuningError, got ${error}`);
    return error.problems;
  }
  assert.fail("expected a TuningError, but the tuning resolved");
}

Deno.test("resolveTuning with nothing set yields the DESIGN defaults, all from 'default'", () => {
  const r = resolveTuning({ env: { HOME: "/root", PATH: "/bin" } });
  assert.deepEqual(r.tuning, {
    blockCacheSizeBytes: 536870912,
    bloomBitsPerKey: 10,
    compression: "lz4",
    writeBufferSizeBytes: 134217728,
    maxWriteBufferNumber: 4,
    maxBackgroundJobs: 2,
    rateLimitBytesPerSec: 104857600,
    syncWrites: true,
  });
  assert.deepEqual(r.tuning, { ...DEFAULT_TUNING });
  for (const source of Object.values(r.provenance)) assert.equal(source, "default");
  assert.equal(r.profile, undefined);
});

Deno.test("each SPIRE_ROCKSDB_* variable sets its knob and names itself as the source", () => {
  const cases: [string, string, keyof RocksDbTuning, unknown][] = [
    ["SPIRE_ROCKSDB_BLOCK_CACHE_SIZE", "2GiB", "blockCacheSizeBytes", 2 * GiB],
    ["SPIRE_ROCKSDB_BLOCK_CACHE_SIZE", "3145728", "blockCacheSizeBytes", 3 * MiB],
    ["SPIRE_ROCKSDB_BLOOM_BITS_PER_KEY", "16", "bloomBitsPerKey", 16],
    ["SPIRE_ROCKSDB_BLOOM_BITS_PER_KEY", "0", "bloomBitsPerKey", 0],
    ["SPIRE_ROCKSDB_COMPRESSION", "zstd", "compression", "zstd"],
    ["SPIRE_ROCKSDB_COMPRESSION", "none", "compression", "none"],
    ["SPIRE_ROCKSDB_COMPRESSION", "LZ4", "compression", "lz4"],
    ["SPIRE_ROCKSDB_WRITE_BUFFER_SIZE", "64MiB", "writeBufferSizeBytes", 64 * MiB],
    ["SPIRE_ROCKSDB_MAX_WRITE_BUFFER_NUMBER", "3", "maxWriteBufferNumber", 3],
    ["SPIRE_ROCKSDB_MAX_BACKGROUND_JOBS", "6", "maxBackgroundJobs", 6],
    ["SPIRE_ROCKSDB_RATE_LIMIT_BYTES_PER_SEC", "50MiB", "rateLimitBytesPerSec", 50 * MiB],
    ["SPIRE_ROCKSDB_SYNC_WRITES", "false", "syncWrites", false],
    ["SPIRE_ROCKSDB_SYNC_WRITES", "TRUE", "syncWrites", true],
  ];
  for (const [variable, text, key, expected] of cases) {
    const r = resolveTuning({ env: { [variable]: text } });
    assert.equal(r.tuning[key], expected, `${variable}=${text}`);
    assert.equal(r.provenance[key], `env ${variable}`);
    for (const other of Object.keys(r.provenance)) {
      if (other !== key) assert.equal(r.provenance[other as keyof RocksDbTuning], "default");
    }
  }
});

Deno.test("each profile sets exactly the DESIGN §4 table and leaves the rest at defaults", () => {
  const table: Record<string, Partial<RocksDbTuning>> = {
    "write-heavy": {
      writeBufferSizeBytes: 268435456,
      maxWriteBufferNumber: 6,
      maxBackgroundJobs: 8,
    },
    "read-heavy": { blockCacheSizeBytes: 2147483648, compression: "lz4" },
    "mixed": {
      blockCacheSizeBytes: 1073741824,
      compression: "lz4",
      writeBufferSizeBytes: 134217728,
    },
  };
  for (const [profile, settings] of Object.entries(table)) {
    const r = resolveTuning({ env: { SPIRE_ROCKSDB_PROFILE: profile } });
    assert.equal(r.profile, profile);
    assert.equal(r.provenance.profile, "env SPIRE_ROCKSDB_PROFILE");
    assert.deepEqual(r.tuning, { ...DEFAULT_TUNING, ...settings }, profile);
    for (const key of Object.keys(DEFAULT_TUNING) as (keyof RocksDbTuning)[]) {
      const expected = key in settings ? `profile ${profile}` : "default";
      assert.equal(r.provenance[key], expected, `${profile} ${key}`);
    }
  }
});

Deno.test("precedence is defaults < profile < YAML < env < option, each layer named", () => {
  const yaml = "rocksdb:\n  profile: write-heavy\n  max_background_jobs: 4\n";
  const env = { SPIRE_ROCKSDB_MAX_BACKGROUND_JOBS: "5" };
  const path = "/etc/spire.yaml";
  const key = "maxBackgroundJobs";

  assert.equal(resolveTuning({}).tuning[key], 2);
  const withProfile = resolveTuning({ env: { SPIRE_ROCKSDB_PROFILE: "write-heavy" } });
  assert.deepEqual([withProfile.tuning[key], withProfile.provenance[key]], [
    8,
    "profile write-heavy",
  ]);
  const withYaml = resolveTuning({ configText: yaml, configPath: path });
  assert.deepEqual([withYaml.tuning[key], withYaml.provenance[key]], [4, `config ${path}:3`]);
  assert.equal(withYaml.provenance.maxWriteBufferNumber, "profile write-heavy");
  const withEnv = resolveTuning({ configText: yaml, configPath: path, env });
  assert.deepEqual([withEnv.tuning[key], withEnv.provenance[key]], [
    5,
    "env SPIRE_ROCKSDB_MAX_BACKGROUND_JOBS",
  ]);
  const withOption = resolveTuning({
    configText: yaml,
    configPath: path,
    env,
    overrides: { maxBackgroundJobs: 7 },
  });
  assert.deepEqual([withOption.tuning[key], withOption.provenance[key]], [7, "option"]);
});

Deno.test("a profile picked by env still loses to a value set in YAML (profile is the lower layer)", () => {
  const r = resolveTuning({
    configText: "rocksdb:\n  block_cache_size: 256MiB\n",
    configPath: "c.yaml",
    env: { SPIRE_ROCKSDB_PROFILE: "read-heavy" },
  });
  assert.equal(r.tuning.blockCacheSizeBytes, 256 * MiB);
  assert.equal(r.provenance.blockCacheSizeBytes, "config c.yaml:2");
  assert.equal(r.provenance.compression, "profile read-heavy");
});

Deno.test("the profile itself is picked by option over env over YAML", () => {
  const configText = "rocksdb:\n  profile: mixed\n";
  const fromYaml = resolveTuning({ configText, configPath: "c.yaml" });
  assert.deepEqual([fromYaml.profile, fromYaml.provenance.profile], ["mixed", "config c.yaml:2"]);
  const fromEnv = resolveTuning({
    configText,
    configPath: "c.yaml",
    env: { SPIRE_ROCKSDB_PROFILE: "read-heavy" },
  });
  assert.deepEqual([fromEnv.profile, fromEnv.provenance.profile], [
    "read-heavy",
    "env SPIRE_ROCKSDB_PROFILE",
  ]);
  const fromOption = resolveTuning({
    configText,
    configPath: "c.yaml",
    env: { SPIRE_ROCKSDB_PROFILE: "read-heavy" },
    profile: "write-heavy",
  });
  assert.deepEqual([fromOption.profile, fromOption.provenance.profile], ["write-heavy", "option"]);
  assert.equal(fromOption.tuning.maxBackgroundJobs, 8);
});

Deno.test("every bad value is refused with the variable, the value and what is allowed", () => {
  const cases: [string, string, RegExp][] = [
    ["SPIRE_ROCKSDB_BLOCK_CACHE_SIZE", "lots", /"lots" is not a size; allowed: a size from 1MiB/],
    ["SPIRE_ROCKSDB_BLOCK_CACHE_SIZE", "-1", /"-1" is negative/],
    ["SPIRE_ROCKSDB_BLOCK_CACHE_SIZE", "0", /"0" is zero/],
    ["SPIRE_ROCKSDB_BLOCK_CACHE_SIZE", "4TiB", /"4TiB" is above the maximum; allowed: .* to 1TiB/],
    ["SPIRE_ROCKSDB_BLOCK_CACHE_SIZE", "512MB", /ambiguous unit "MB": write 512MiB/],
    ["SPIRE_ROCKSDB_BLOCK_CACHE_SIZE", "", /"" is empty/],
    [
      "SPIRE_ROCKSDB_BLOOM_BITS_PER_KEY",
      "ten",
      /"ten" is not a number; allowed: a whole number from 0 to 40/,
    ],
    ["SPIRE_ROCKSDB_BLOOM_BITS_PER_KEY", "-3", /"-3" is negative/],
    ["SPIRE_ROCKSDB_BLOOM_BITS_PER_KEY", "9.5", /"9.5" is not a whole number/],
    ["SPIRE_ROCKSDB_BLOOM_BITS_PER_KEY", "41", /"41" is above the maximum/],
    [
      "SPIRE_ROCKSDB_COMPRESSION",
      "lz5",
      /"lz5" is not a known compression; allowed: one of none, lz4, zstd/,
    ],
    ["SPIRE_ROCKSDB_COMPRESSION", "snappy", /allowed: one of none, lz4, zstd/],
    [
      "SPIRE_ROCKSDB_WRITE_BUFFER_SIZE",
      "1KiB",
      /"1KiB" is below the minimum; allowed: a size from 64KiB/,
    ],
    ["SPIRE_ROCKSDB_WRITE_BUFFER_SIZE", "0", /is zero/],
    [
      "SPIRE_ROCKSDB_MAX_WRITE_BUFFER_NUMBER",
      "1",
      /"1" is below the minimum; allowed: a whole number from 2 to 64/,
    ],
    ["SPIRE_ROCKSDB_MAX_WRITE_BUFFER_NUMBER", "1000", /is above the maximum/],
    ["SPIRE_ROCKSDB_MAX_BACKGROUND_JOBS", "0", /"0" is zero/],
    ["SPIRE_ROCKSDB_MAX_BACKGROUND_JOBS", "4x", /"4x" is not a number/],
    ["SPIRE_ROCKSDB_RATE_LIMIT_BYTES_PER_SEC", "0", /"0" is zero/],
    ["SPIRE_ROCKSDB_RATE_LIMIT_BYTES_PER_SEC", "-100MiB", /is negative/],
    ["SPIRE_ROCKSDB_RATE_LIMIT_BYTES_PER_SEC", "1PiB", /unknown unit "PiB"/],
    ["SPIRE_ROCKSDB_SYNC_WRITES", "yes", /"yes" is not true or false; allowed: true or false/],
    ["SPIRE_ROCKSDB_SYNC_WRITES", "1", /allowed: true or false/],
    [
      "SPIRE_ROCKSDB_PROFILE",
      "fast",
      /"fast" is not a known profile.*allowed: one of write-heavy, read-heavy, mixed/,
    ],
  ];
  for (const [variable, text, pattern] of cases) {
    const problems = problemsOf(() => resolveTuning({ env: { [variable]: text } }));
    assert.equal(problems.length, 1, `${variable}=${text}`);
    assert.ok(problems[0]?.startsWith(`Cannot parse ${variable}: `), problems[0]);
    assert.match(problems[0] ?? "", pattern);
  }
});

Deno.test("an unknown SPIRE_ROCKSDB_* variable stops start-up and names the closest known one", () => {
  const cases: [string, string][] = [
    ["SPIRE_ROCKSDB_BLOOM_BITS", "SPIRE_ROCKSDB_BLOOM_BITS_PER_KEY"],
    ["SPIRE_ROCKSDB_COMPRESION", "SPIRE_ROCKSDB_COMPRESSION"],
    ["SPIRE_ROCKSDB_BLOCK_CACHE", "SPIRE_ROCKSDB_BLOCK_CACHE_SIZE"],
    ["SPIRE_ROCKSDB_MAX_BACKGROUND_THREADS", "SPIRE_ROCKSDB_MAX_BACKGROUND_JOBS"],
    ["SPIRE_ROCKSDB_RATE_LIMIT", "SPIRE_ROCKSDB_RATE_LIMIT_BYTES_PER_SEC"],
    ["SPIRE_ROCKSDB_PROFILES", "SPIRE_ROCKSDB_PROFILE"],
    ["SPIRE_ROCKSDB_LIBRARY", "SPIRE_ROCKSDB_LIB"],
    ["SPIRE_ROCKSDB_LIB_PATH", "SPIRE_ROCKSDB_LIB"],
  ];
  for (const [typo, closest] of cases) {
    const problems = problemsOf(() => resolveTuning({ env: { [typo]: "1" } }));
    assert.match(
      problems[0] ?? "",
      new RegExp(`^Unknown variable ${typo}: did you mean ${closest}\\?`),
    );
  }
});

Deno.test("variables outside the tuning set are left alone: SPIRE_ROCKSDB_LIB and other prefixes", () => {
  const r = resolveTuning({
    env: { SPIRE_ROCKSDB_LIB: "/opt/librocksdb.so", SPIRE_PORT: "1", ROCKSDB_X: "y" },
  });
  assert.deepEqual(r.tuning, { ...DEFAULT_TUNING });
});

Deno.test("all problems are reported at once", () => {
  const problems = problemsOf(() =>
    resolveTuning({
      env: {
        SPIRE_ROCKSDB_COMPRESSION: "lz5",
        SPIRE_ROCKSDB_BLOOM_BITS: "1",
        SPIRE_ROCKSDB_MAX_BACKGROUND_JOBS: "0",
      },
    })
  );
  assert.equal(problems.length, 3);
  const error = new TuningError(problems);
  assert.match(error.message, /^Cannot use the tuning: 3 problems:\n {2}- /);
});

Deno.test("YAML accepts every knob, with units, plain numbers and booleans, and names the line", () => {
  const text = [
    "# Spire config",
    "rocksdb:",
    "  block_cache_size: 1GiB",
    "  bloom_bits_per_key: 12",
    "  compression: zstd",
    "  write_buffer_size: 33554432",
    "  max_write_buffer_number: 5",
    "  max_background_jobs: 3",
    "  rate_limit_bytes_per_sec: 200MiB",
    "  sync_writes: false",
    "node:",
    "  port: 6380",
    "",
  ].join("\n");
  const r = resolveTuning({ configText: text, configPath: "/etc/spire.yaml" });
  assert.deepEqual(r.tuning, {
    blockCacheSizeBytes: GiB,
    bloomBitsPerKey: 12,
    compression: "zstd",
    writeBufferSizeBytes: 32 * MiB,
    maxWriteBufferNumber: 5,
    maxBackgroundJobs: 3,
    rateLimitBytesPerSec: 200 * MiB,
    syncWrites: false,
  });
  assert.equal(r.provenance.blockCacheSizeBytes, "config /etc/spire.yaml:3");
  assert.equal(r.provenance.syncWrites, "config /etc/spire.yaml:10");
  assert.deepEqual(r.sections, { node: { port: 6380 } });
});

Deno.test("YAML errors name the file, the line and the key", () => {
  const cases: [string, RegExp][] = [
    [
      "rocksdb:\n  bloom_bits: 4\n",
      /^Unknown key rocksdb\.bloom_bits at c\.yaml:2: did you mean bloom_bits_per_key\?/,
    ],
    [
      "rocksdb:\n  compression: lz5\n",
      /^Cannot parse rocksdb\.compression at c\.yaml:2: "lz5" is not a known compression/,
    ],
    [
      "rocksdb:\n\n  block_cache_size: -1\n",
      /^Cannot parse rocksdb\.block_cache_size at c\.yaml:3: -1 is negative/,
    ],
    ["rocksdb:\n  block_cache_size: 1.5\n", /not a whole number of bytes/],
    ["rocksdb:\n  block_cache_size: 1e30\n", /1e\+30 is too large; allowed: a size from 1MiB/],
    ["rocksdb:\n  max_background_jobs: 1e20\n", /100000000000000000000 is too large/],
    ["rocksdb:\n  sync_writes: yes\n", /"yes" is not true or false/],
    ["rocksdb:\n  max_background_jobs: [1, 2]\n", /\[1,2\] is not a number/],
    [
      "rocksdb:\n  profile: heavy\n",
      /rocksdb\.profile at c\.yaml:2: "heavy" is not a known profile/,
    ],
    ["rocksdb: 5\n", /^Cannot parse rocksdb at c\.yaml:1: must be a mapping/],
    ["- a\n- b\n", /^Cannot parse config c\.yaml:1: the top level must be a mapping/],
    ["rocksdb:\n  compression: [lz4\n", /^Cannot parse config c\.yaml:\d+: /],
    [
      "rocksdb:\n  compression: lz4\n  compression: zstd\n",
      /^Cannot parse config c\.yaml:3: .*[Uu]nique/,
    ],
    [
      "rocksbd:\n  compression: lz4\n",
      /^Unknown section rocksbd at c\.yaml:1: did you mean rocksdb\?/,
    ],
  ];
  for (const [text, pattern] of cases) {
    const problems = problemsOf(() => resolveTuning({ configText: text, configPath: "c.yaml" }));
    assert.match(problems[0] ?? "", pattern, text);
  }
});

Deno.test("an empty YAML file or an empty rocksdb section changes nothing", () => {
  for (const text of ["", "# nothing\n", "rocksdb:\n", "node: {}\n"]) {
    const r = resolveTuning({ configText: text, configPath: "c.yaml" });
    assert.deepEqual(r.tuning, { ...DEFAULT_TUNING }, JSON.stringify(text));
  }
});

Deno.test("code overrides are checked: unknown fields are TypeErrors, bad values RangeErrors", () => {
  assert.throws(
    () => resolveTuning({ overrides: { blockCacheSize: 5 } as unknown as Partial<RocksDbTuning> }),
    (e) => e instanceof TypeError && /option blockCacheSize: unknown/.test(e.message),
  );
  assert.throws(
    () => resolveTuning({ overrides: { compression: 4 } as unknown as Partial<RocksDbTuning> }),
    (e) => e instanceof TypeError && /4 is not a string/.test(e.message),
  );
  assert.throws(
    () => resolveTuning({ overrides: { compression: "lz5" as "lz4" } }),
    (e) => e instanceof RangeError && /"lz5" is not a known compression/.test(e.message),
  );
  assert.throws(
    () => resolveTuning({ overrides: { maxBackgroundJobs: 0 } }),
    (e) => e instanceof RangeError && /option maxBackgroundJobs: 0 is zero/.test(e.message),
  );
  assert.throws(
    () => resolveTuning({ profile: "fast" as "mixed" }),
    (e) => e instanceof RangeError && /"fast" is not a known profile/.test(e.message),
  );
});

Deno.test("a block cache plus memtables larger than the host's memory stops start-up", () => {
  const problems = problemsOf(() =>
    resolveTuning({ env: { SPIRE_ROCKSDB_PROFILE: "read-heavy" }, memoryBytes: 2 * GiB })
  );
  assert.match(
    problems[0] ?? "",
    /block cache \(2GiB, profile read-heavy\) plus full memtables \(4 x 128MiB, default\) need 2560MiB, more than this host's memory \(2GiB\)/,
  );
  const fits = resolveTuning({
    env: { SPIRE_ROCKSDB_PROFILE: "read-heavy" },
    memoryBytes: 3 * GiB,
  });
  assert.equal(fits.tuning.blockCacheSizeBytes, 2 * GiB);
});

Deno.test("a rate limit too low to flush a memtable in 30 s is a warning", () => {
  const slow = resolveTuning({ env: { SPIRE_ROCKSDB_RATE_LIMIT_BYTES_PER_SEC: "1MiB" } });
  assert.equal(slow.warnings.length, 1);
  assert.match(slow.warnings[0] ?? "", /128MiB memtable at the rate limit of 1MiB\/s takes 128 s/);
  assert.deepEqual(resolveTuning({}).warnings, []);
});

Deno.test("loadTuning reads the config file and reports a missing one by name", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/spire.yaml`;
    await Deno.writeTextFile(path, "rocksdb:\n  compression: none\n");
    const r = await loadTuning({ configPath: path, env: { SPIRE_ROCKSDB_SYNC_WRITES: "false" } });
    assert.equal(r.tuning.compression, "none");
    assert.equal(r.provenance.compression, `config ${path}:2`);
    assert.equal(r.tuning.syncWrites, false);
    await assert.rejects(
      () => loadTuning({ configPath: `${dir}/missing.yaml` }),
      (e) =>
        e instanceof TuningError &&
        e.message === `Cannot read config file ${dir}/missing.yaml: no such file`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

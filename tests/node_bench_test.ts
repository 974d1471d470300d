import assert from "node:assert/strict";
import {
  type BenchRow,
  benchTuning,
  ceilingArgs,
  parseBenchmarkCsv,
  parseFillrandom,
  parseNodeBenchArgs,
  parseProcStatCpuSeconds,
  renderFloor,
  renderResults,
} from "../bench/node.ts";

Deno.test("bench node: parses redis-benchmark CSV by column name", () => {
  const rows = parseBenchmarkCsv(
    '"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"\n' +
      '"SET","63897.77","0.414","0.120","0.399","0.503","1.055","2.575"\n' +
      "WARNING: Could not fetch server CONFIG\n",
  );
  assert.deepEqual(rows, [{
    test: "SET",
    rps: 63897.77,
    avgMs: 0.414,
    p50Ms: 0.399,
    p99Ms: 1.055,
  }]);
  assert.throws(() => parseBenchmarkCsv('"test","rps"\n"SET","1"\n'), /no "avg_latency_ms" column/);
});

Deno.test("bench node: flags are checked and the goals are judged from the same run", () => {
  assert.equal(parseNodeBenchArgs(["--requests", "5000", "--pipelines", "1,4"]).requests, 5000);
  assert.deepEqual(parseNodeBenchArgs(["--pipelines", "1,4"]).pipelines, [1, 4]);
  assert.throws(() => parseNodeBenchArgs(["--clients", "0"]), /--clients: "0" is not an integer/);
  assert.throws(() => parseNodeBenchArgs(["--fast"]), /unknown flag "--fast"/);
  const multi = parseNodeBenchArgs(["--config", "regions.yaml", "--warmup", "600000"]);
  assert.deepEqual([multi.config, multi.warmup], ["regions.yaml", 600000]);
  assert.deepEqual([parseNodeBenchArgs([]).config, parseNodeBenchArgs([]).warmup], [undefined, 0]);
  assert.throws(() => parseNodeBenchArgs(["--warmup", "0"]), /--warmup: "0" is not an integer/);
  assert.throws(() => parseNodeBenchArgs(["--config"]), /--config: missing file/);
  const soak = parseNodeBenchArgs(["--crash", "5", "--power-cut", "--config", "r.yaml"]);
  assert.deepEqual([soak.crashKills, soak.powerCut, soak.config], [5, true, "r.yaml"]);
  assert.equal(parseNodeBenchArgs([]).powerCut, false);
  const partial = parseNodeBenchArgs(["--crash", "5", "--cut-seed", "42"]);
  assert.deepEqual([partial.powerCut, partial.cutSeed], [true, 42]);
  const row = (rps: number): BenchRow => ({
    test: "",
    rps,
    avgMs: 1,
    p50Ms: 1,
    p99Ms: 2,
    cpuUsPerRequest: 1000 / rps,
  });
  const results = new Map([
    ["spire/GET/1", row(60)],
    ["redis (appendonly no)/GET/1", row(100)],
    ["spire/SET/1", { ...row(9), mainThreadUsPerRequest: 100 }],
    ["redis (appendfsync always)/SET/1", row(10)],
  ]);
  const md = renderResults(
    results,
    ["spire", "redis (appendonly no)", "redis (appendfsync always)"],
    [1],
    "cmd",
  );
  assert.match(md, /GET >= 50% of redis-server: met \(60%\)/);
  assert.match(md, /durable SET >= redis-server appendfsync always: MISSED \(0\.90x\)/);
  assert.match(md, /\| GET \| 1 \| spire \| 60 \| 1\.000 \| 2\.000 \| 16\.7 \| 1\.00 \|/);
  assert.match(
    md,
    /\| SET \| 1 \| spire \| 9 \| 1\.000 \| 2\.000 \| 111\.1 \(100\.0\) \| 1\.00 \|/,
  );
  assert.doesNotMatch(md, /RocksDB alone/);
  const withCeiling = renderResults(
    results,
    ["spire", "redis (appendonly no)", "redis (appendfsync always)"],
    [1],
    "cmd",
    { opsPerSec: 8, usPerOp: 125000, writes: 1200 },
  );
  assert.match(
    withCeiling,
    /RocksDB alone .*, 1,200 puts: as many as the node's SETs\): 8 puts\/s, 125000\.00 µs a put; redis-server appendfsync always SET: -P 1 10\/s \(1\.25x of it: above what the engine alone takes\)/,
  );
});

Deno.test("bench node: the floor adds the bare server's request to RocksDB's put", () => {
  const row = (rps: number, cpu: number): BenchRow => ({
    test: "",
    rps,
    avgMs: 1,
    p50Ms: 0.5,
    p99Ms: 2,
    cpuUsPerRequest: cpu,
  });
  const results = new Map([
    ["spire/PING_MBULK/1", row(50_000, 12)],
    ["redis (appendonly no)/PING_MBULK/1", row(80_000, 8.5)],
    ["bare Deno server/PING_MBULK/1", row(58_000, 10.5)],
    ["redis (appendfsync always)/SET/1", row(50_000, 13.7)],
  ]);
  const md = renderFloor(results, [1], { opsPerSec: 212_549, usPerOp: 4.705 });
  assert.match(md, /\| 1 \| bare Deno server \| 58,000 \| 0\.500 \| 2\.000 \| 10\.5 \|/);
  assert.match(
    md,
    /pipeline 1: a durable SET on this runtime and engine costs at least 10\.5 µs \(the bare server's request\) \+ 4\.7 µs \(RocksDB's put alone\) = 15\.2 µs of CPU, .*appendfsync always spends 13\.7 µs a SET in all \(1\.11x of it\)/,
  );
  // No floor line without the engine-alone run; nothing at all without PING runs.
  assert.doesNotMatch(renderFloor(results, [1]), /costs at least/);
  assert.equal(renderFloor(new Map(), [1, 16]), "");
});

Deno.test("bench node: the engine-alone run uses the node's tuning and reads db_bench's line", async () => {
  const { resolveTuning } = await import("../tuning/mod.ts");
  const { tuning } = resolveTuning({
    env: { SPIRE_ROCKSDB_WRITE_BUFFER_SIZE: "8MiB", SPIRE_ROCKSDB_COMPRESSION: "zstd" },
  });
  const args = ceilingArgs(
    tuning,
    parseNodeBenchArgs(["--requests", "5000", "--repeats", "3", "--warmup", "1000"]),
    "/tmp/x",
  );
  assert.ok(args.includes("--write_buffer_size=8388608"), args.join(" "));
  assert.ok(args.includes("--compression_type=zstd"), args.join(" "));
  // As many puts as the node's SETs: 3 repeats of 2 pipelines of 5,000, after 1,000 warm-up SETs.
  assert.ok(args.includes("--writes=31000") && args.includes("--num=100000"), args.join(" "));
  assert.deepEqual(
    parseFillrandom(
      "Keys:       16 bytes each\nfillrandom   :       4.977 micros/op 200936 ops/sec 4.977 seconds\n",
    ),
    { usPerOp: 4.977, opsPerSec: 200936 },
  );
  assert.throws(() => parseFillrandom("readrandom : 1 micros/op 2 ops/sec"), /no fillrandom line/);
});

Deno.test("bench node: CPU time is read from /proc stat past a command name with spaces", () => {
  const line = "4242 (deno (main) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 1234 567 0 0 20 0 " +
    "22 0 9999 1000000 100 18446744073709551615 1 1 0 0 0 0 0 4096 17922 0 0 0 17 1 0 0 0 0 0";
  assert.equal(parseProcStatCpuSeconds(line), (1234 + 567) / 100);
  assert.throws(() => parseProcStatCpuSeconds("4242 (x) S 1"), /no utime and stime/);
  const own = parseProcStatCpuSeconds(Deno.readTextFileSync(`/proc/${Deno.pid}/stat`));
  assert.ok(own > 0 && own < 3600, `this test process used ${own} s of CPU`);
});

Deno.test("bench node: the report names the tuning the node ran with, and the command repeats it", () => {
  const plain = benchTuning({ PATH: "/usr/bin", SPIRE_PASSWORD: "" });
  assert.deepEqual(plain.assignments, []);
  assert.match(plain.line, /tuning: the defaults/);
  const tuned = benchTuning({
    PATH: "/usr/bin",
    SPIRE_ROCKSDB_WRITE_BUFFER_SIZE: "8MiB",
    SPIRE_ROCKSDB_PROFILE: "read-heavy",
  });
  assert.deepEqual(tuned.assignments, [
    "SPIRE_ROCKSDB_PROFILE=read-heavy",
    "SPIRE_ROCKSDB_WRITE_BUFFER_SIZE=8MiB",
  ]);
  assert.match(tuned.line, /SPIRE_ROCKSDB_PROFILE read-heavy/);
  assert.match(
    tuned.line,
    /SPIRE_ROCKSDB_WRITE_BUFFER_SIZE 8MiB \(env SPIRE_ROCKSDB_WRITE_BUFFER_SIZE\)/,
  );
  assert.match(tuned.line, /SPIRE_ROCKSDB_BLOCK_CACHE_SIZE 2GiB \(profile read-heavy\)/);
  assert.throws(
    () => benchTuning({ SPIRE_ROCKSDB_WRITE_BUFFER_SIZE: "lots" }),
    /SPIRE_ROCKSDB_WRITE_BUFFER_SIZE/,
  );
});

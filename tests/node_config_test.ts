import assert from "node:assert/strict";
import { NodeConfigError, resolveNodeConfig } from "../node/config.ts";

Deno.test("node config: flags override the file and the environment overrides both", () => {
  const { config, provenance } = resolveNodeConfig({
    sections: { node: { port: 7000, admin_port: 7001, requirepass: "file" } },
    configPath: "spire.yaml",
    flags: { "--port": "7100", "--admin-port": "7101" },
    env: { SPIRE_PORT: "7200", SPIRE_PASSWORD: "env" },
  });
  assert.equal(config.port, 7200);
  assert.equal(provenance.port, "env SPIRE_PORT");
  assert.equal(config.adminPort, 7101);
  assert.equal(provenance.adminPort, "flag --admin-port");
  assert.equal(config.password, "env");
  assert.equal(config.host, "127.0.0.1");
  assert.equal(provenance.host, "default");
});

Deno.test("node config: region thresholds take sizes with units from the file", () => {
  const { config, provenance } = resolveNodeConfig({
    sections: { regions: { split_size: "1MiB", max_size: "2MiB", initial_count: 4 } },
    configPath: "spire.yaml",
  });
  assert.equal(config.regionSplitSizeBytes, 1 << 20);
  assert.equal(config.regionMaxSizeBytes, 2 << 20);
  assert.equal(config.initialRegionCount, 4);
  assert.equal(provenance.regionMaxSizeBytes, "config spire.yaml regions.max_size");
});

Deno.test("node config: every bad value is reported at once with what is allowed", () => {
  assert.throws(
    () =>
      resolveNodeConfig({
        sections: { node: { port: 70000, colour: "blue" }, regions: { max_size: "lots" } },
        env: { SPIRE_ADMIN_PORT: "-1" },
      }),
    (e: unknown) => {
      assert.ok(e instanceof NodeConfigError);
      assert.equal(e.problems.length, 4);
      assert.match(
        e.message,
        /node\.port: 70000 is out of range; allowed: an integer from 0 to 65535/,
      );
      assert.match(e.message, /unknown key node\.colour; allowed: data_dir, host, port/);
      assert.match(e.message, /env SPIRE_ADMIN_PORT/);
      return true;
    },
  );
});

Deno.test("node config: split thresholds must not exceed the maxima", () => {
  assert.throws(
    () => resolveNodeConfig({ sections: { regions: { split_keys: 10, max_keys: 5 } } }),
    /split_keys 10: it must not exceed regions\.max_keys 5/,
  );
});

Deno.test("node config: the initial region count is refused past 256, which the store can cut", () => {
  assert.equal(resolveNodeConfig({ flags: { "--regions": "256" } }).config.initialRegionCount, 256);
  assert.throws(
    () => resolveNodeConfig({ flags: { "--regions": "300" } }),
    /flag --regions: "300" is out of range; allowed: an integer from 1 to 256/,
  );
});

Deno.test("node config: the value cache size comes from the file or SPIRE_VALUE_CACHE_SIZE; 0 turns it off", () => {
  assert.equal(resolveNodeConfig({}).config.valueCacheBytes, 64 << 20);
  const fromFile = resolveNodeConfig({
    sections: { node: { value_cache_size: "8MiB" } },
    configPath: "spire.yaml",
  });
  assert.equal(fromFile.config.valueCacheBytes, 8 << 20);
  const off = resolveNodeConfig({
    sections: { node: { value_cache_size: "8MiB" } },
    env: { SPIRE_VALUE_CACHE_SIZE: "0" },
  });
  assert.equal(off.config.valueCacheBytes, 0);
  assert.equal(off.provenance.valueCacheBytes, "env SPIRE_VALUE_CACHE_SIZE");
  assert.throws(
    () => resolveNodeConfig({ env: { SPIRE_VALUE_CACHE_SIZE: "lots" } }),
    /env SPIRE_VALUE_CACHE_SIZE: "lots" is not a size; allowed: bytes/,
  );
});

Deno.test("node config: the value cache must fit in the memory the engine's tuning leaves", () => {
  const memory = { hostBytes: 1 << 30, engineBytes: 900 << 20 };
  // 900 MiB + 64 MiB (the default) fit in 1 GiB; 900 MiB + 200 MiB do not.
  assert.equal(resolveNodeConfig({ memory }).config.valueCacheBytes, 64 << 20);
  assert.throws(
    () => resolveNodeConfig({ memory, env: { SPIRE_VALUE_CACHE_SIZE: "200MiB" } }),
    /Cannot use node.value_cache_size 200MiB \(env SPIRE_VALUE_CACHE_SIZE\): with the engine's block cache and full memtables \(900MiB\) it needs 1100MiB, more than this host.s memory \(1GiB\)/,
  );
  const off = resolveNodeConfig({ memory, env: { SPIRE_VALUE_CACHE_SIZE: "0" } });
  assert.equal(off.config.valueCacheBytes, 0);
});

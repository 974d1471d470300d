/**
 * The node's own configuration (everything but the RocksDB knobs, which
 * `tuning/` resolves): data directory, ports, password, region thresholds and
 * Raft settings. Sources, lowest first: built-in defaults < YAML config file
 * sections `node:`, `regions:` and `raft:` < command-line flags < environment
 * variables (`SPIRE_DATA_DIR`, `SPIRE_HOST`, `SPIRE_PORT`, `SPIRE_ADMIN_PORT`,
 * `SPIRE_PASSWORD`). Every value carries its source.
 *
 * ```yaml
 * node:
 *   data_dir: ./data
 *   host: 127.0.0.1
 *   port: 6379
 *   admin_port: 9180
 *   requirepass: secret        # AUTH becomes mandatory
 * regions:
 *   initial_count: 1           # regions the keyspace starts as
 *   split_size: 96MiB          # TiKV's defaults
 *   max_size: 144MiB
 *   split_keys: 960000
 *   max_keys: 1440000
 *   heartbeat_interval_ms: 1000
 * raft:
 *   tick_ms: 100
 *   log_compact_entries: 100000 # compact a region's log once this many entries were applied
 * ```
 *
 * @module
 */

import { formatSize, trySize } from "../tuning/mod.ts";

/** The node's effective settings. */
export interface NodeConfig {
  /** Root of the node's files: `data/` (RocksDB), `raft/`, `pd/`. */
  dataDir: string;
  /** Address the client and admin servers bind to. */
  host: string;
  /** Client (RESP) port; 0 picks a free one. */
  port: number;
  /** Admin HTTP port; 0 picks a free one. */
  adminPort: number;
  /** requirepass: when set, clients must AUTH. */
  password: string | undefined;
  /** Regions the keyspace starts as on a fresh data directory. */
  initialRegionCount: number;
  /** A region is split at its middle key once its approximate size reaches this. */
  regionMaxSizeBytes: number;
  /** Size each half aims at (PD's split-size). */
  regionSplitSizeBytes: number;
  /** A region is split once its approximate key count reaches this. */
  regionMaxKeys: number;
  /** Key count each half aims at. */
  regionSplitKeys: number;
  /** How often each region peer reports its size and keys to PD. */
  regionHeartbeatIntervalMs: number;
  /** Raft tick interval. */
  raftTickMs: number;
  /** A region's log is compacted when applied - first index passes this. */
  raftLogCompactEntries: number;
  /** Bytes of recently written and read values kept in memory (node/value_cache.ts); 0: off. */
  valueCacheBytes: number;
  /**
   * "region" (the default): a connection's pipelined writes keep their order within each region,
   * while writes to different regions go out together and may become visible in either order
   * (as Redis Cluster orders nothing across nodes); "sent": every client sees a connection's
   * writes take effect in the order sent, as from redis-server, because a pipelined write to
   * another region first waits for the writes before it (much slower for pipelines of writes
   * spread over several regions: docs/node.md).
   */
  writeOrder: WriteOrderMode;
}

/** The values of `regions.write_order` (see {@link NodeConfig.writeOrder}). */
export const WRITE_ORDER_MODES = ["region", "sent"] as const;
/** One of {@link WRITE_ORDER_MODES}. */
export type WriteOrderMode = typeof WRITE_ORDER_MODES[number];

/** Where each value came from: "default", "config <path>", "flag --x" or "env X". */
export type NodeConfigProvenance = Readonly<Record<keyof NodeConfig, string>>;

/** Defaults: Redis's port, TiKV's region thresholds. */
export const DEFAULT_NODE_CONFIG: Readonly<NodeConfig> = Object.freeze({
  dataDir: "./data",
  host: "127.0.0.1",
  port: 6379,
  adminPort: 9180,
  password: undefined,
  initialRegionCount: 1,
  regionMaxSizeBytes: 144 * 1024 * 1024,
  regionSplitSizeBytes: 96 * 1024 * 1024,
  regionMaxKeys: 1_440_000,
  regionSplitKeys: 960_000,
  regionHeartbeatIntervalMs: 1000,
  raftTickMs: 100,
  raftLogCompactEntries: 100_000,
  valueCacheBytes: 64 * 1024 * 1024,
  writeOrder: "region",
});

/** Raised when flags, the config file or the environment hold unusable node settings. */
export class NodeConfigError extends Error {
  /** Every problem found. */
  readonly problems: readonly string[];
  /**
   * Creates the error.
   * @param problems complete messages, one per problem
   */
  constructor(problems: readonly string[]) {
    super(
      problems.length === 1
        ? problems[0]!
        : `Cannot use the node configuration: ${problems.length} problems:\n` +
          problems.map((p) => `  - ${p}`).join("\n"),
    );
    this.name = "NodeConfigError";
    this.problems = problems;
  }
}

type Kind = "string" | "port" | "size" | "count" | "ms" | "choice";
interface Field {
  key: keyof NodeConfig;
  kind: Kind;
  /** The values a "choice" takes. */
  choices?: readonly string[];
  yaml?: [section: string, key: string];
  flag?: string;
  env?: string;
  min?: number;
  max?: number;
}

const FIELDS: readonly Field[] = [
  {
    key: "dataDir",
    kind: "string",
    yaml: ["node", "data_dir"],
    flag: "--data-dir",
    env: "SPIRE_DATA_DIR",
  },
  { key: "host", kind: "string", yaml: ["node", "host"], flag: "--host", env: "SPIRE_HOST" },
  { key: "port", kind: "port", yaml: ["node", "port"], flag: "--port", env: "SPIRE_PORT" },
  {
    key: "adminPort",
    kind: "port",
    yaml: ["node", "admin_port"],
    flag: "--admin-port",
    env: "SPIRE_ADMIN_PORT",
  },
  { key: "password", kind: "string", yaml: ["node", "requirepass"], env: "SPIRE_PASSWORD" },
  {
    key: "initialRegionCount",
    kind: "count",
    yaml: ["regions", "initial_count"],
    flag: "--regions",
    min: 1,
    max: 256, // the initial regions cut the first key byte (see store.ts initialSplitKeys)
  },
  { key: "regionMaxSizeBytes", kind: "size", yaml: ["regions", "max_size"], min: 1 },
  { key: "regionSplitSizeBytes", kind: "size", yaml: ["regions", "split_size"], min: 1 },
  { key: "regionMaxKeys", kind: "count", yaml: ["regions", "max_keys"], min: 2 },
  { key: "regionSplitKeys", kind: "count", yaml: ["regions", "split_keys"], min: 1 },
  {
    key: "regionHeartbeatIntervalMs",
    kind: "ms",
    yaml: ["regions", "heartbeat_interval_ms"],
    min: 10,
    max: 3_600_000,
  },
  { key: "raftTickMs", kind: "ms", yaml: ["raft", "tick_ms"], min: 1, max: 10_000 },
  {
    key: "raftLogCompactEntries",
    kind: "count",
    yaml: ["raft", "log_compact_entries"],
    min: 1,
    max: 100_000_000,
  },
  {
    key: "valueCacheBytes",
    kind: "size",
    yaml: ["node", "value_cache_size"],
    env: "SPIRE_VALUE_CACHE_SIZE",
    min: 0,
  },
  {
    key: "writeOrder",
    kind: "choice",
    yaml: ["regions", "write_order"],
    choices: WRITE_ORDER_MODES,
  },
];

/** The YAML sections this module reads. */
export const NODE_YAML_SECTIONS: readonly string[] = ["node", "regions", "raft"];

/** Flags {@link resolveNodeConfig} understands (each takes a value). */
export const NODE_FLAGS: readonly string[] = FIELDS.flatMap((f) => f.flag ? [f.flag] : []);

function parseValue(field: Field, raw: unknown): { value: unknown } | { problem: string } {
  const allowed = (): string => {
    switch (field.kind) {
      case "string":
        return "a non-empty string";
      case "port":
        return "an integer from 0 to 65535";
      case "size":
        return "bytes, or a number with B, KiB, MiB, GiB or TiB";
      case "choice":
        return `one of ${field.choices!.join(", ")}`;
      default:
        return `an integer from ${field.min ?? 0} to ${field.max ?? Number.MAX_SAFE_INTEGER}`;
    }
  };
  const bad = (detail: string) => ({
    problem: `${JSON.stringify(raw)} ${detail}; allowed: ${allowed()}`,
  });
  if (field.kind === "choice") {
    return typeof raw === "string" && field.choices!.includes(raw)
      ? { value: raw }
      : bad("is not a known value");
  }
  if (field.kind === "string") {
    if (typeof raw !== "string" && typeof raw !== "number") return bad("is not a string");
    const s = String(raw);
    return s === "" ? bad("is empty") : { value: s };
  }
  let n: number;
  if (field.kind === "size") {
    const parsed = typeof raw === "number"
      ? { ok: true as const, bytes: raw }
      : trySize(String(raw));
    if (!parsed.ok) return bad(parsed.detail);
    n = parsed.bytes;
  } else {
    n = typeof raw === "number" ? raw : String(raw).trim() === "" ? NaN : Number(raw);
  }
  const min = field.kind === "port" ? 0 : field.min ?? 0;
  const max = field.kind === "port" ? 65535 : field.max ?? Number.MAX_SAFE_INTEGER;
  if (!Number.isSafeInteger(n) || n < min || n > max) return bad("is out of range");
  return { value: n };
}

/** Inputs of {@link resolveNodeConfig}; nothing is read from the process. */
export interface ResolveNodeConfigOptions {
  /** Top-level YAML sections (from `resolveTuning(...).sections`). */
  sections?: Readonly<Record<string, unknown>>;
  /** Name of the config file, for provenance. */
  configPath?: string;
  /** Flag values by flag name, e.g. `{"--port": "7000"}`. */
  flags?: Readonly<Record<string, string>>;
  /** The environment. */
  env?: Readonly<Record<string, string>>;
  /** Values set in code (highest precedence), e.g. by tests. */
  overrides?: Partial<NodeConfig>;
  /**
   * This host's memory and what the engine's tuning already takes of it (block cache plus full
   * memtables, see `engineMemoryBytes`): the value cache must fit in the rest.
   */
  memory?: { readonly hostBytes: number; readonly engineBytes: number };
}

/**
 * Resolves the node's configuration from its layers.
 *
 * @param options the layers
 * @returns the effective configuration and each value's source
 * @throws {NodeConfigError} listing every bad value, unknown key or broken relationship
 */
export function resolveNodeConfig(
  options: ResolveNodeConfigOptions = {},
): { config: NodeConfig; provenance: NodeConfigProvenance } {
  const config: NodeConfig = { ...DEFAULT_NODE_CONFIG };
  const provenance = Object.fromEntries(
    Object.keys(DEFAULT_NODE_CONFIG).map((k) => [k, "default"]),
  ) as Record<keyof NodeConfig, string>;
  const problems: string[] = [];
  const set = (field: Field, raw: unknown, source: string) => {
    const r = parseValue(field, raw);
    if ("problem" in r) problems.push(`Cannot parse ${source}: ${r.problem}`);
    else {
      (config as unknown as Record<string, unknown>)[field.key] = r.value;
      provenance[field.key] = source;
    }
  };
  const sections = options.sections ?? {};
  const cfg = options.configPath ?? "config";
  for (const name of NODE_YAML_SECTIONS) {
    const section = sections[name];
    if (section === undefined || section === null) continue;
    if (typeof section !== "object" || Array.isArray(section)) {
      problems.push(`Cannot parse ${cfg} section ${name}: it must be a mapping of keys to values`);
      continue;
    }
    for (const [key, raw] of Object.entries(section)) {
      const field = FIELDS.find((f) => f.yaml?.[0] === name && f.yaml[1] === key);
      if (field === undefined) {
        const known = FIELDS.filter((f) => f.yaml?.[0] === name).map((f) => f.yaml![1]);
        problems.push(
          `Cannot parse ${cfg}: unknown key ${name}.${key}; allowed: ${known.join(", ")}`,
        );
        continue;
      }
      set(field, raw, `config ${cfg} ${name}.${key}`);
    }
  }
  for (const [flag, raw] of Object.entries(options.flags ?? {})) {
    const field = FIELDS.find((f) => f.flag === flag);
    if (field === undefined) {
      problems.push(`Cannot parse flag ${flag}: unknown; allowed: ${NODE_FLAGS.join(", ")}`);
      continue;
    }
    set(field, raw, `flag ${flag}`);
  }
  const env = options.env ?? {};
  for (const field of FIELDS) {
    if (field.env !== undefined && env[field.env] !== undefined && env[field.env] !== "") {
      set(field, env[field.env], `env ${field.env}`);
    }
  }
  for (const [key, value] of Object.entries(options.overrides ?? {})) {
    (config as unknown as Record<string, unknown>)[key] = value;
    provenance[key as keyof NodeConfig] = "option";
  }
  if (config.regionSplitSizeBytes > config.regionMaxSizeBytes) {
    problems.push(
      `Cannot use regions.split_size ${config.regionSplitSizeBytes}: it must not exceed ` +
        `regions.max_size ${config.regionMaxSizeBytes}`,
    );
  }
  if (config.regionSplitKeys > config.regionMaxKeys) {
    problems.push(
      `Cannot use regions.split_keys ${config.regionSplitKeys}: it must not exceed ` +
        `regions.max_keys ${config.regionMaxKeys}`,
    );
  }
  const memory = options.memory;
  if (memory !== undefined && memory.engineBytes + config.valueCacheBytes > memory.hostBytes) {
    problems.push(
      `Cannot use node.value_cache_size ${formatSize(config.valueCacheBytes)} ` +
        `(${provenance.valueCacheBytes}): with the engine's block cache and full memtables ` +
        `(${formatSize(memory.engineBytes)}) it needs ` +
        `${
          formatSize(memory.engineBytes + config.valueCacheBytes)
        }, more than this host's memory ` +
        `(${formatSize(memory.hostBytes)}); allowed: a total that fits in memory ` +
        `(SPIRE_VALUE_CACHE_SIZE=0 turns the value cache off)`,
    );
  }
  if (config.port !== 0 && config.port === config.adminPort) {
    problems.push(`Cannot use port ${config.port} for both the client and the admin server`);
  }
  if (problems.length > 0) throw new NodeConfigError(problems);
  return { config, provenance };
}

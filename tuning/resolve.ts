/**
 * Resolves the effective RocksDB tuning from its layers, in precedence order:
 * built-in defaults < profile < YAML config file < SPIRE_ROCKSDB_* environment
 * variables < explicit options in code. Every effective value carries the
 * layer it came from.
 *
 * @module
 */

import { isMap, isScalar, LineCounter, parseDocument } from "yaml";
import type { Node as YamlNode, Pair, YAMLMap } from "yaml";
import { closestName, editDistance } from "./_suggest.ts";
import { allowedText, parseKnobValue, showRaw } from "./_values.ts";
import {
  ENV_PREFIX,
  KNOBS,
  type KnobSpec,
  OTHER_KNOWN_VARIABLES,
  PROFILE_SETTINGS,
  PROFILE_VARIABLE,
} from "./knobs.ts";
import { DEFAULT_TUNING, type Profile, PROFILES, type RocksDbTuning } from "./types.ts";
import { formatSize } from "./units.ts";

/** The YAML section that holds the RocksDB knobs. */
export const YAML_SECTION = "rocksdb";

/** Raised when the environment or the config file holds values Spire cannot use. */
export class TuningError extends Error {
  /** Every problem found, one message each (all are reported at once). */
  readonly problems: readonly string[];

  /**
   * @param problems The problems, each a complete message naming the variable
   *   or key, the value and what is allowed.
   */
  constructor(problems: readonly string[]) {
    const message = problems.length === 1
      ? problems[0] ?? ""
      : `Cannot use the tuning: ${problems.length} problems:\n` +
        problems.map((p) => `  - ${p}`).join("\n");
    super(message);
    this.name = "TuningError";
    this.problems = problems;
  }
}

/** Where each effective value came from, e.g. `"env SPIRE_ROCKSDB_COMPRESSION"`. */
export type TuningProvenance = Readonly<Record<keyof RocksDbTuning | "profile", string>>;

/** The effective tuning and where every value came from. */
export interface ResolvedTuning {
  /** The values the engine should open with. */
  readonly tuning: Readonly<RocksDbTuning>;
  /** The chosen profile, if any. */
  readonly profile: Profile | undefined;
  /**
   * Source of every value: `"default"`, `"profile <name>"`, `"config <path>:<line>"`,
   * `"env <VARIABLE>"` or `"option"`. `profile` is `"default"` when none was picked.
   */
  readonly provenance: TuningProvenance;
  /** Top-level sections of the YAML file other than `rocksdb:`, for the caller. */
  readonly sections: Readonly<Record<string, unknown>>;
  /** Combinations that work but probably hurt, for the operator to read. */
  readonly warnings: readonly string[];
}

/** Inputs of {@link resolveTuning}. Nothing is read from the process: all is passed in. */
export interface ResolveTuningOptions {
  /** The environment, e.g. `Deno.env.toObject()`; only SPIRE_ROCKSDB_* names are read. */
  env?: Readonly<Record<string, string>>;
  /** The text of a YAML config file. */
  configText?: string;
  /** The file name `configText` came from, used in sources and messages. */
  configPath?: string;
  /** A profile picked in code; wins over SPIRE_ROCKSDB_PROFILE and the YAML `profile`. */
  profile?: Profile;
  /** Values set in code: the highest layer. Bad values throw TypeError or RangeError. */
  overrides?: Partial<RocksDbTuning>;
  /**
   * The host's memory in bytes (e.g. `Deno.systemMemoryInfo().total`). When given,
   * a block cache plus full memtables that would not fit is an error.
   */
  memoryBytes?: number;
}

type Layer = { source: string; values: Partial<Record<keyof RocksDbTuning, unknown>> };

interface YamlResult {
  profile?: { value: Profile; source: string };
  layer: Layer;
  sourceOf: Partial<Record<keyof RocksDbTuning, string>>;
  sections: Record<string, unknown>;
}

const KNOB_BY_VARIABLE = new Map(KNOBS.map((k) => [k.variable, k]));
const KNOB_BY_YAML_KEY = new Map(KNOBS.map((k) => [k.yamlKey, k]));
const KNOB_BY_KEY = new Map(KNOBS.map((k) => [k.key, k]));
const KNOWN_VARIABLES = [
  ...KNOBS.map((k) => k.variable),
  PROFILE_VARIABLE,
  ...OTHER_KNOWN_VARIABLES,
];
const YAML_KEYS = [...KNOBS.map((k) => k.yamlKey), "profile"];

function valueProblem(where: string, raw: unknown, detail: string, allowed: string): string {
  return `Cannot parse ${where}: ${showRaw(raw)} ${detail}; allowed: ${allowed}`;
}

function parseProfile(
  raw: unknown,
  where: string,
  problems: string[],
): Profile | undefined {
  const text = typeof raw === "string" ? raw.trim().toLowerCase() : undefined;
  const found = PROFILES.find((p) => p === text);
  if (found === undefined) {
    const hint = typeof raw === "string" && raw.trim() !== ""
      ? ` (did you mean ${closestName(raw.trim(), PROFILES)}?)`
      : "";
    problems.push(
      valueProblem(where, raw, `is not a known profile${hint}`, `one of ${PROFILES.join(", ")}`),
    );
  }
  return found;
}

function readEnv(
  env: Readonly<Record<string, string>>,
  problems: string[],
): { layer: Layer; profile?: Profile } {
  const layer: Layer = { source: "env", values: {} };
  let profile: Profile | undefined;
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith(ENV_PREFIX) || OTHER_KNOWN_VARIABLES.includes(name)) continue;
    const text = env[name] ?? "";
    if (name === PROFILE_VARIABLE) {
      profile = parseProfile(text, name, problems);
      continue;
    }
    const spec = KNOB_BY_VARIABLE.get(name);
    if (spec === undefined) {
      problems.push(
        `Unknown variable ${name}: did you mean ${closestName(name, KNOWN_VARIABLES)}? ` +
          `Known: ${KNOWN_VARIABLES.join(", ")}`,
      );
      continue;
    }
    const r = parseKnobValue(spec, text);
    if (r.ok) layer.values[spec.key] = r.value;
    else problems.push(valueProblem(name, text, r.detail, allowedText(spec)));
  }
  return profile === undefined ? { layer } : { layer, profile };
}

function lineOf(node: YamlNode | Pair | null | undefined, lines: LineCounter): number {
  const range = node !== null && node !== undefined && "range" in node ? node.range : undefined;
  return range ? lines.linePos(range[0]).line : 0;
}

function keyText(pair: Pair): string | undefined {
  const key = pair.key;
  if (isScalar(key) && (typeof key.value === "string" || typeof key.value === "number")) {
    return String(key.value);
  }
  return undefined;
}

function readYamlSection(
  section: YAMLMap,
  at: (node: YamlNode | null | undefined) => string,
  problems: string[],
  result: YamlResult,
): void {
  for (const pair of section.items) {
    const key = keyText(pair);
    const keyNode = pair.key as YamlNode | null;
    const valueNode = (pair.value ?? null) as YamlNode | null;
    const where = `${YAML_SECTION}.${key ?? "?"} at ${at(valueNode ?? keyNode)}`;
    if (key === undefined) {
      problems.push(`Cannot parse ${YAML_SECTION} at ${at(keyNode)}: keys must be plain names`);
      continue;
    }
    const raw = isScalar(valueNode) ? valueNode.value : valueNode?.toJSON();
    if (key === "profile") {
      const p = parseProfile(raw, where, problems);
      if (p !== undefined) result.profile = { value: p, source: `config ${at(valueNode)}` };
      continue;
    }
    const spec = KNOB_BY_YAML_KEY.get(key);
    if (spec === undefined) {
      problems.push(
        `Unknown key ${YAML_SECTION}.${key} at ${at(keyNode)}: did you mean ` +
          `${closestName(key, YAML_KEYS)}? Known: ${YAML_KEYS.join(", ")}`,
      );
      continue;
    }
    const r = parseKnobValue(spec, raw);
    if (r.ok) {
      result.layer.values[spec.key] = r.value;
      result.sourceOf[spec.key] = `config ${at(valueNode)}`;
    } else {
      problems.push(valueProblem(where, raw, r.detail, allowedText(spec)));
    }
  }
}

function readYaml(text: string, path: string, problems: string[]): YamlResult {
  const result: YamlResult = {
    layer: { source: "config", values: {} },
    sourceOf: {},
    sections: {},
  };
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    for (const e of doc.errors) {
      const line = lines.linePos(e.pos[0]).line;
      problems.push(`Cannot parse config ${path}:${line}: ${e.message.split("\n")[0]}`);
    }
    return result;
  }
  const at = (node: YamlNode | null | undefined) => `${path}:${lineOf(node, lines)}`;
  const root = doc.contents;
  if (root === null || (isScalar(root) && root.value === null)) return result;
  if (!isMap(root)) {
    problems.push(`Cannot parse config ${at(root)}: the top level must be a mapping of sections`);
    return result;
  }
  for (const pair of root.items) {
    const key = keyText(pair);
    const valueNode = (pair.value ?? null) as YamlNode | null;
    if (key === YAML_SECTION) {
      if (isMap(valueNode)) readYamlSection(valueNode, at, problems, result);
      else if (!(valueNode === null || (isScalar(valueNode) && valueNode.value === null))) {
        problems.push(
          `Cannot parse ${YAML_SECTION} at ${at(valueNode)}: must be a mapping of knobs`,
        );
      }
    } else if (key !== undefined && editDistance(key.toLowerCase(), YAML_SECTION) <= 2) {
      problems.push(
        `Unknown section ${key} at ${at(pair.key as YamlNode)}: did you mean ${YAML_SECTION}?`,
      );
    } else if (key !== undefined) {
      result.sections[key] = valueNode?.toJSON() ?? null;
    }
  }
  return result;
}

function checkOverrides(overrides: Partial<RocksDbTuning>): void {
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) continue;
    const spec: KnobSpec | undefined = KNOB_BY_KEY.get(key as keyof RocksDbTuning);
    if (spec === undefined) {
      throw new TypeError(
        `Cannot apply tuning option ${key}: unknown; allowed: ${
          KNOBS.map((k) => k.key).join(", ")
        }`,
      );
    }
    const wantType = spec.kind === "boolean"
      ? "boolean"
      : spec.kind === "compression"
      ? "string"
      : "number";
    if (typeof value as string !== wantType) {
      throw new TypeError(
        `Cannot apply tuning option ${key}: ${showRaw(value)} is not a ${wantType}; ` +
          `allowed: ${allowedText(spec)}`,
      );
    }
    const r = parseKnobValue(spec, value);
    if (!r.ok || (spec.kind === "compression" && r.value !== value)) {
      throw new RangeError(
        `Cannot apply tuning option ${key}: ${showRaw(value)} ${
          r.ok ? "is not a known compression" : r.detail
        }; allowed: ${allowedText(spec)}`,
      );
    }
  }
}

/**
 * The memory a tuning takes at most: the block cache plus every memtable full.
 * @param tuning the tuning
 * @returns bytes
 */
export function engineMemoryBytes(
  tuning: Pick<
    RocksDbTuning,
    "blockCacheSizeBytes" | "writeBufferSizeBytes" | "maxWriteBufferNumber"
  >,
): number {
  return tuning.blockCacheSizeBytes + tuning.writeBufferSizeBytes * tuning.maxWriteBufferNumber;
}

function checkRelationships(
  tuning: RocksDbTuning,
  sourceOf: Record<string, string>,
  memoryBytes: number | undefined,
  problems: string[],
  warnings: string[],
): void {
  if (memoryBytes !== undefined && engineMemoryBytes(tuning) > memoryBytes) {
    problems.push(
      `Cannot use this tuning: the block cache (${formatSize(tuning.blockCacheSizeBytes)}, ` +
        `${sourceOf.blockCacheSizeBytes}) plus full memtables (${tuning.maxWriteBufferNumber} x ` +
        `${formatSize(tuning.writeBufferSizeBytes)}, ${sourceOf.writeBufferSizeBytes}) need ` +
        `${formatSize(engineMemoryBytes(tuning))}, more than this host's memory ` +
        `(${formatSize(memoryBytes)}); allowed: a total that fits in memory`,
    );
  }
  const flushSeconds = tuning.writeBufferSizeBytes / tuning.rateLimitBytesPerSec;
  if (flushSeconds > 30) {
    warnings.push(
      `Flushing one ${formatSize(tuning.writeBufferSizeBytes)} memtable at the rate limit of ` +
        `${formatSize(tuning.rateLimitBytesPerSec)}/s takes ${Math.round(flushSeconds)} s; ` +
        `writes will stall under load (raise SPIRE_ROCKSDB_RATE_LIMIT_BYTES_PER_SEC)`,
    );
  }
}

/**
 * Resolves the effective tuning from defaults, the profile, a YAML config
 * text, the environment and code options, checking every input.
 *
 * The YAML shape (every key optional; other top-level sections are returned
 * in `sections`):
 *
 * ```yaml
 * rocksdb:
 *   profile: read-heavy
 *   block_cache_size: 2GiB
 *   compression: zstd
 * ```
 *
 * @param options The inputs; see {@link ResolveTuningOptions}.
 * @returns The tuning, the profile and the source of every value.
 * @throws {TuningError} When any environment variable or config value is bad or
 *   unknown, or the combination cannot work; every problem is listed.
 * @throws {TypeError} When `overrides` names an unknown field or has a wrong type.
 * @throws {RangeError} When an `overrides` value is out of range.
 *
 * @example
 * ```ts
 * import { resolveTuning } from "./resolve.ts";
 * const { tuning, provenance } = resolveTuning({
 *   env: { SPIRE_ROCKSDB_PROFILE: "write-heavy", SPIRE_ROCKSDB_COMPRESSION: "zstd" },
 * });
 * console.assert(tuning.maxBackgroundJobs === 8);
 * console.assert(provenance.maxBackgroundJobs === "profile write-heavy");
 * console.assert(provenance.compression === "env SPIRE_ROCKSDB_COMPRESSION");
 * ```
 */
export function resolveTuning(options: ResolveTuningOptions = {}): ResolvedTuning {
  const overrides = options.overrides ?? {};
  checkOverrides(overrides);
  if (options.profile !== undefined && !PROFILES.includes(options.profile)) {
    throw new RangeError(
      `Cannot apply tuning profile: ${showRaw(options.profile)} is not a known profile; ` +
        `allowed: one of ${PROFILES.join(", ")}`,
    );
  }
  const problems: string[] = [];
  const configPath = options.configPath ?? "<config>";
  const yaml = options.configText === undefined
    ? { layer: { source: "config", values: {} }, sourceOf: {}, sections: {} } as YamlResult
    : readYaml(options.configText, configPath, problems);
  const env = readEnv(options.env ?? {}, problems);
  if (problems.length > 0) throw new TuningError(problems);

  let profile: { value: Profile; source: string } | undefined = yaml.profile;
  if (env.profile !== undefined) {
    profile = { value: env.profile, source: `env ${PROFILE_VARIABLE}` };
  }
  if (options.profile !== undefined) profile = { value: options.profile, source: "option" };

  const tuning: RocksDbTuning = { ...DEFAULT_TUNING };
  const sourceOf: Record<string, string> = {};
  for (const spec of KNOBS) sourceOf[spec.key] = "default";
  const apply = (
    values: Partial<Record<keyof RocksDbTuning, unknown>>,
    source: (k: string) => string,
  ) => {
    for (const [key, value] of Object.entries(values)) {
      if (value === undefined) continue;
      (tuning as unknown as Record<string, unknown>)[key] = value;
      sourceOf[key] = source(key);
    }
  };
  if (profile !== undefined) {
    const name = profile.value;
    apply(PROFILE_SETTINGS[name], () => `profile ${name}`);
  }
  apply(yaml.layer.values, (k) => yaml.sourceOf[k as keyof RocksDbTuning] ?? "config");
  apply(env.layer.values, (k) => `env ${KNOB_BY_KEY.get(k as keyof RocksDbTuning)?.variable}`);
  apply(overrides, () => "option");

  const warnings: string[] = [];
  checkRelationships(tuning, sourceOf, options.memoryBytes, problems, warnings);
  if (problems.length > 0) throw new TuningError(problems);

  return {
    tuning: Object.freeze(tuning),
    profile: profile?.value,
    provenance: Object.freeze({
      ...sourceOf,
      profile: profile?.source ?? "default",
    }) as TuningProvenance,
    sections: yaml.sections,
    warnings,
  };
}

/** Inputs of {@link loadTuning}: those of {@link resolveTuning}, with a file path to read. */
export interface LoadTuningOptions extends Omit<ResolveTuningOptions, "configText"> {
  /** Reads the config file; defaults to `Deno.readTextFile`. */
  readTextFile?: (path: string) => Promise<string>;
}

/**
 * Like {@link resolveTuning}, but reads the YAML config from `configPath` when given.
 *
 * @param options The inputs; `configPath` names the file to read.
 * @returns The resolved tuning.
 * @throws {TuningError} When the file cannot be read, or as {@link resolveTuning}.
 *
 * @example
 * ```ts
 * import { loadTuning } from "./resolve.ts";
 * const { tuning, provenance } = await loadTuning({
 *   configPath: "spire.yaml",
 *   readTextFile: () => Promise.resolve("rocksdb:\n  bloom_bits_per_key: 16\n"),
 * });
 * console.assert(tuning.bloomBitsPerKey === 16);
 * console.assert(provenance.bloomBitsPerKey === "config spire.yaml:2");
 * ```
 */
export async function loadTuning(options: LoadTuningOptions = {}): Promise<ResolvedTuning> {
  const { readTextFile = Deno.readTextFile, ...rest } = options;
  if (rest.configPath === undefined) return resolveTuning(rest);
  let configText: string;
  try {
    configText = await readTextFile(rest.configPath);
  } catch (error) {
    const detail = error instanceof Deno.errors.NotFound
      ? "no such file"
      : error instanceof Error
      ? error.message
      : String(error);
    throw new TuningError([`Cannot read config file ${rest.configPath}: ${detail}`]);
  }
  return resolveTuning({ ...rest, configText });
}

/**
 * `spire config [--json] [--config FILE]`: prints the effective RocksDB tuning
 * and where each value came from (default, profile, config file line,
 * environment variable). Exits 1 with every problem listed when the
 * environment or the file holds a bad or unknown setting.
 *
 * @module
 */

import { formatSize, KNOBS, loadTuning, type ResolvedTuning, TuningError } from "../tuning/mod.ts";
import { parseFlags, UsageError } from "./flags.ts";

const USAGE = "usage: spire config [--json] [--config FILE]";

/**
 * Loads the tuning the way `spire start` does: the process environment, the
 * optional YAML file and this host's memory.
 *
 * @param configPath The `--config` file, if any.
 * @returns The resolved tuning.
 * @throws {TuningError} When any input is bad.
 */
export function loadCliTuning(configPath: string | undefined): Promise<ResolvedTuning> {
  return loadTuning({
    env: Deno.env.toObject(),
    memoryBytes: Deno.systemMemoryInfo().total,
    ...(configPath === undefined ? {} : { configPath }),
  });
}

/**
 * The effective tuning as JSON-ready data: the profile and, per knob, the
 * variable, YAML key, value and source.
 *
 * @param resolved The resolved tuning.
 * @returns A plain object for `--json`.
 */
export function tuningReport(resolved: ResolvedTuning): Record<string, unknown> {
  return {
    profile: { value: resolved.profile ?? null, source: resolved.provenance.profile },
    settings: KNOBS.map((k) => ({
      key: k.key,
      variable: k.variable,
      yamlKey: k.yamlKey,
      value: resolved.tuning[k.key],
      source: resolved.provenance[k.key],
    })),
    warnings: resolved.warnings,
  };
}

/**
 * The effective tuning as aligned text lines: variable, value, source.
 *
 * @param resolved The resolved tuning.
 * @returns The lines to print.
 */
export function tuningLines(resolved: ResolvedTuning): string[] {
  const rows: [string, string, string][] = [[
    "SPIRE_ROCKSDB_PROFILE",
    resolved.profile ?? "(none)",
    resolved.provenance.profile,
  ]];
  for (const k of KNOBS) {
    const value = resolved.tuning[k.key];
    const shown = k.kind === "size" && typeof value === "number"
      ? `${formatSize(value)} (${value})`
      : String(value);
    rows.push([k.variable, shown, resolved.provenance[k.key]]);
  }
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.max(...rows.map((r) => r[1].length));
  const lines = rows.map(([a, b, c]) => `${a.padEnd(w0)}  ${b.padEnd(w1)}  ${c}`);
  for (const warning of resolved.warnings) lines.push(`warning: ${warning}`);
  return lines;
}

/**
 * Runs `spire config`.
 *
 * @param args Arguments after `config`.
 * @returns 0 on success, 1 for a bad setting, 2 for a bad command line.
 */
export async function main(args: string[]): Promise<number> {
  try {
    const flags = parseFlags("spire config", args, { json: "boolean", config: "FILE" });
    const configPath = typeof flags.config === "string" ? flags.config : undefined;
    const resolved = await loadCliTuning(configPath);
    if (flags.json === true) console.log(JSON.stringify(tuningReport(resolved), null, 2));
    else console.log(tuningLines(resolved).join("\n"));
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`${error.message}\n${USAGE}`);
      return 2;
    }
    if (error instanceof TuningError) {
      console.error(error.message);
      return 1;
    }
    throw error;
  }
}

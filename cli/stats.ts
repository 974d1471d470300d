/**
 * `spire stats --data-dir DIR [--json] [--config FILE]`: opens the engine on
 * `DIR/data` (creating it when missing) with the effective tuning, prints
 * getStats and getCacheInfo, and closes it.
 *
 * @module
 */

import { Engine, type EngineStats } from "../engine/mod.ts";
import { formatSize, TuningError } from "../tuning/mod.ts";
import { parseFlags, UsageError } from "./flags.ts";
import { loadCliTuning } from "./config.ts";

const USAGE = "usage: spire stats --data-dir DIR [--json] [--config FILE]";

function flatten(prefix: string, value: unknown, out: [string, string][]): void {
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(prefix ? `${prefix}.${k}` : k, v, out);
  } else {
    out.push([prefix, String(value)]);
  }
}

/**
 * The statistics as aligned text: every field except the raw tickers (which
 * `--json` shows), levels as one line each.
 *
 * @param stats From `engine.getStats()`.
 * @returns Lines to print.
 */
export function statsLines(stats: EngineStats): string[] {
  const { levels, tickers, ...rest } = stats;
  const rows: [string, string][] = [];
  flatten("", rest, rows);
  const width = Math.max(...rows.map(([k]) => k.length));
  const lines = rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`);
  lines.push("levels:");
  for (const l of levels) {
    lines.push(`  L${l.level}  files ${String(l.files).padStart(5)}  bytes ${formatSize(l.bytes)}`);
  }
  lines.push(`tickers: ${Object.keys(tickers).length} RocksDB counters (all of them with --json)`);
  return lines;
}

/**
 * Runs `spire stats`.
 *
 * @param args Arguments after `stats`.
 * @returns 0 on success, 1 when the tuning is bad or the engine cannot open, 2 for a bad command line.
 */
export async function main(args: string[]): Promise<number> {
  let dataDir: string;
  let json: boolean;
  let configPath: string | undefined;
  try {
    const flags = parseFlags("spire stats", args, {
      "data-dir": "DIR",
      json: "boolean",
      config: "FILE",
    });
    if (typeof flags["data-dir"] !== "string") {
      throw new UsageError("Cannot parse spire stats arguments: --data-dir DIR is required");
    }
    dataDir = `${flags["data-dir"]}/data`;
    json = flags.json === true;
    configPath = typeof flags.config === "string" ? flags.config : undefined;
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`${error.message}\n${USAGE}`);
    return 2;
  }

  let engine: Engine;
  try {
    const { tuning } = await loadCliTuning(configPath);
    await Deno.mkdir(dataDir, { recursive: true });
    engine = await Engine.open({ dataDir, tuning });
  } catch (error) {
    console.error(error instanceof TuningError ? error.message : `spire stats: ${String(error)}`);
    return 1;
  }
  try {
    const stats = engine.getStats();
    const cache = engine.getCacheInfo();
    if (json) {
      console.log(JSON.stringify({ dataDir, stats, cache }, null, 2));
    } else {
      console.log(`engine at ${dataDir}`);
      console.log(statsLines(stats).join("\n"));
      console.log("cache:");
      for (const [k, v] of Object.entries(cache)) console.log(`  ${k.padEnd(16)}  ${v}`);
    }
  } finally {
    await engine.close();
  }
  return 0;
}

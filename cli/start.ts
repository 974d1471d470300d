/**
 * `spire start [--data-dir DIR] [--port N] [--admin-port N] [--host H]
 * [--regions N] [--config FILE]`: runs a standalone Spire node (the full
 * supervision tree) until SIGINT or SIGTERM, then stops it in order and exits
 * 0. The YAML config carries the RocksDB tuning (`rocksdb:`, `profile:`), the
 * node's ports and password (`node:`), region thresholds (`regions:`) and Raft
 * settings (`raft:`); flags override the file, environment variables
 * (`SPIRE_ROCKSDB_*`, `SPIRE_DATA_DIR`, `SPIRE_PORT`, `SPIRE_ADMIN_PORT`,
 * `SPIRE_HOST`, `SPIRE_PASSWORD`) override both.
 *
 * `SPIRE_TEST_PLANTS` (comma-separated) switches on test-only planted bugs
 * (`skip-applied-index`) so that the crash tests can show their checker
 * catches them. Never set it in production.
 *
 * @module
 */

import {
  engineMemoryBytes,
  loadTuning,
  type ResolvedTuning,
  type RocksDbTuning,
  TuningError,
} from "../tuning/mod.ts";
import { NODE_FLAGS, NodeConfigError, resolveNodeConfig } from "../node/config.ts";
import { SpireNode } from "../node/app.ts";
import { nodeTuningDefaults } from "../node/engine_process.ts";
import type { NodePlant } from "../node/services.ts";
import { formatReason } from "../supervisor/mod.ts";

const USAGE = "usage: spire start [--data-dir DIR] [--port N] [--admin-port N] [--host H] " +
  "[--regions N] [--config FILE]";

/** Options of {@link main} for tests: environment and signal source. */
export interface NodeStartHooks {
  /** The environment (default: the process's). */
  readonly env?: Record<string, string>;
  /** Resolves when the node should stop (default: SIGINT or SIGTERM). */
  readonly stopSignal?: Promise<string>;
  /** This host's memory in bytes, for the memory checks (default: `Deno.systemMemoryInfo()`). */
  readonly memoryBytes?: number;
}

function parseFlags(args: string[]): { flags: Record<string, string>; config?: string } {
  const flags: Record<string, string> = {};
  let config: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const raw = args[i]!;
    const eq = raw.indexOf("=");
    const name = eq > 0 ? raw.slice(0, eq) : raw;
    const value = eq > 0 ? raw.slice(eq + 1) : args[++i];
    if (name !== "--config" && !NODE_FLAGS.includes(name)) {
      throw new RangeError(`Cannot parse arguments: unknown flag "${name}"\n${USAGE}`);
    }
    if (value === undefined) {
      throw new RangeError(`Cannot parse ${name}: a value is required\n${USAGE}`);
    }
    if (name === "--config") config = value;
    else flags[name] = value;
  }
  return config === undefined ? { flags } : { flags, config };
}

const PLANTS: readonly NodePlant[] = ["skip-applied-index", "journal-skip-fsync"];

function parsePlants(raw: string | undefined): NodePlant[] {
  if (raw === undefined || raw.trim() === "") return [];
  return raw.split(",").map((p) => {
    const name = PLANTS.find((k) => k === p.trim());
    if (name === undefined) {
      throw new RangeError(
        `Cannot parse SPIRE_TEST_PLANTS: "${p}" is not a plant; allowed: ${PLANTS.join(", ")}`,
      );
    }
    return name;
  });
}

/** The tuning with the node's defaults in place of built-in defaults; explicit settings win. */
function withNodeDefaults(resolved: ResolvedTuning): RocksDbTuning {
  const tuning: RocksDbTuning = { ...resolved.tuning };
  for (const [key, value] of Object.entries(nodeTuningDefaults)) {
    const knob = key as keyof RocksDbTuning;
    if (resolved.provenance[knob] === "default") Object.assign(tuning, { [knob]: value });
  }
  return tuning;
}

/** SIGINT or SIGTERM, listened for from the moment of the call; `dispose` stops listening. */
function signalOnce(): { signal: Promise<string>; dispose: () => void } {
  const handlers: [Deno.Signal, () => void][] = [];
  const dispose = () => {
    for (const [s, f] of handlers) Deno.removeSignalListener(s, f);
    handlers.length = 0;
  };
  const signal = new Promise<string>((resolve) => {
    for (const sig of ["SIGINT", "SIGTERM"] as const) {
      const h = () => {
        dispose();
        resolve(sig);
      };
      handlers.push([sig, h]);
      Deno.addSignalListener(sig, h);
    }
  });
  return { signal, dispose };
}

/**
 * Runs the node until a stop signal.
 *
 * @param args the arguments after `start`
 * @param hooks environment and stop signal (tests)
 * @returns 0 after a clean stop, 1 when the node cannot start, 2 on bad arguments
 */
export async function main(args: string[], hooks: NodeStartHooks = {}): Promise<number> {
  const env = hooks.env ?? Deno.env.toObject();
  // Listen before starting: a signal that arrives while the tree starts (or right after the
  // "listening" line) must stop the node cleanly, not kill the process.
  const signals = hooks.stopSignal === undefined ? signalOnce() : undefined;
  const stopSignal = hooks.stopSignal ?? signals!.signal;
  let node: SpireNode;
  try {
    const { flags, config } = parseFlags(args);
    const memoryBytes = hooks.memoryBytes ?? Deno.systemMemoryInfo().total;
    const tuning = await loadTuning({
      env,
      memoryBytes,
      ...(config === undefined ? {} : { configPath: config }),
    });
    for (const w of tuning.warnings) console.error(`spire: warning: ${w}`);
    const engineTuning = withNodeDefaults(tuning);
    const { config: nodeConfig } = resolveNodeConfig({
      sections: tuning.sections,
      ...(config === undefined ? {} : { configPath: config }),
      flags,
      env,
      memory: { hostBytes: memoryBytes, engineBytes: engineMemoryBytes(engineTuning) },
    });
    const plants = parsePlants(env.SPIRE_TEST_PLANTS);
    if (plants.length > 0) console.error(`spire: TEST-ONLY planted bugs on: ${plants.join(", ")}`);
    node = await SpireNode.start({ config: nodeConfig, tuning: engineTuning, plants });
    console.log(
      `spire: listening on ${nodeConfig.host}:${node.clientPort} (RESP), admin on ` +
        `http://${nodeConfig.host}:${node.adminPort}, data in ${nodeConfig.dataDir}`,
    );
  } catch (e) {
    if (e instanceof RangeError || e instanceof TuningError || e instanceof NodeConfigError) {
      signals?.dispose();
      console.error(e.message);
      return 2;
    }
    signals?.dispose();
    console.error(`spire: cannot start: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
  const outcome = await Promise.race([
    stopSignal.then((signal) => ({ signal })),
    node.exited.then((reason) => ({ reason })),
  ]);
  signals?.dispose();
  if ("reason" in outcome) {
    // Restarts exceeded the root's intensity: the node is down.
    console.error(`spire: the supervision tree stopped: ${formatReason(outcome.reason)}`);
    await node.stop();
    return 1;
  }
  console.error(`spire: ${outcome.signal}: stopping`);
  await node.stop();
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));

/**
 * `spire start [--data-dir DIR] [--admin-port N] [--config FILE]`: the minimal
 * node until the supervision tree lands. Resolves the tuning (a bad or unknown
 * SPIRE_ROCKSDB_* setting stops it before anything opens), opens the engine on
 * `DIR/data`, serves admin HTTP on 127.0.0.1, prints one line saying where it
 * listens, and on SIGINT or SIGTERM closes the server and the engine and exits 0.
 *
 * @module
 */

import { Engine } from "../engine/mod.ts";
import { AdminServer, DEFAULT_ADMIN_PORT } from "../node/admin_http.ts";
import { registerEngineMetrics } from "../node/metrics.ts";
import { TuningError } from "../tuning/mod.ts";
import { Registry } from "prom-client";
import { parseFlags, parsePort, UsageError } from "./_flags.ts";
import { loadCliTuning } from "./config.ts";

const USAGE = "usage: spire start [--data-dir DIR] [--admin-port N] [--config FILE]";

/** The default data directory of `spire start`. */
export const DEFAULT_DATA_DIR = "./data";

interface StartArgs {
  dataDir: string;
  adminPort: number;
  configPath: string | undefined;
}

function parseStartArgs(args: string[]): StartArgs {
  const flags = parseFlags("spire start", args, {
    "data-dir": "DIR",
    "admin-port": "N",
    config: "FILE",
  });
  const adminPort = typeof flags["admin-port"] === "string"
    ? parsePort("spire start", "admin-port", flags["admin-port"])
    : DEFAULT_ADMIN_PORT;
  return {
    dataDir: typeof flags["data-dir"] === "string" ? flags["data-dir"] : DEFAULT_DATA_DIR,
    adminPort,
    configPath: typeof flags.config === "string" ? flags.config : undefined,
  };
}

/** Resolves on the first SIGINT or SIGTERM, then stops listening for them. */
function nextStopSignal(): Promise<Deno.Signal> {
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  return new Promise((resolve) => {
    const handlers = signals.map((signal) => {
      const handler = () => {
        signals.forEach((s, i) => Deno.removeSignalListener(s, handlers[i] ?? handler));
        resolve(signal);
      };
      Deno.addSignalListener(signal, handler);
      return handler;
    });
  });
}

/**
 * Runs `spire start` until SIGINT or SIGTERM.
 *
 * @param args Arguments after `start`.
 * @returns 0 after a clean stop, 1 when the tuning is bad or the engine or the
 *   port cannot be opened, 2 for a bad command line.
 */
export async function main(args: string[]): Promise<number> {
  let parsed: StartArgs;
  try {
    parsed = parseStartArgs(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`${error.message}\n${USAGE}`);
    return 2;
  }

  const engineDir = `${parsed.dataDir}/data`;
  let engine: Engine;
  try {
    const resolved = await loadCliTuning(parsed.configPath);
    for (const warning of resolved.warnings) console.error(`spire start: warning: ${warning}`);
    await Deno.mkdir(engineDir, { recursive: true });
    engine = await Engine.open({ dataDir: engineDir, tuning: resolved.tuning });
  } catch (error) {
    const message = error instanceof TuningError ? error.message : String(error);
    console.error(`spire start: ${message}`);
    return 1;
  }

  let server: AdminServer;
  try {
    const registry = new Registry();
    registerEngineMetrics(registry, () => engine.getStats());
    server = AdminServer.start({
      port: parsed.adminPort,
      registry,
      health: () => ({ ok: !engine.closed, engine: engine.closed ? "closed" : "open" }),
      stats: () => ({ stats: engine.getStats(), cache: engine.getCacheInfo() }),
    });
  } catch (error) {
    await engine.close();
    const detail = error instanceof Deno.errors.AddrInUse ? "the port is in use" : String(error);
    console.error(`spire start: Cannot listen on 127.0.0.1:${parsed.adminPort}: ${detail}`);
    return 1;
  }

  const stopped = nextStopSignal();
  console.log(
    `spire: engine open at ${engineDir}; admin HTTP listening on ${server.url} ` +
      `(/health /stats /metrics); stop with Ctrl-C or SIGTERM`,
  );
  const signal = await stopped;
  console.error(`spire: ${signal} received, closing`);
  await server.close();
  await engine.close();
  return 0;
}

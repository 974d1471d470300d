/**
 * Spire's command-line interface. Each command lives in its own module under
 * `cli/` or `bench/` and is loaded only when called, so that `spire config`
 * does not load RocksDB and `spire sim` does not open a port.
 *
 * @module
 */

/** A CLI command: receives the arguments after its name, returns the exit code. */
export type CommandMain = (args: string[]) => Promise<number>;

interface CommandEntry {
  summary: string;
  load: () => Promise<{ main: CommandMain }>;
}

const COMMANDS: Record<string, CommandEntry> = {
  start: {
    summary: "run a node: start [--data-dir DIR] [--port N] [--admin-port N] [--config FILE]",
    load: () => import("./cli/start.ts"),
  },
  config: {
    summary: "print the effective tuning and where each value came from: config [--json]",
    load: () => import("./cli/config.ts"),
  },
  stats: {
    summary:
      "open the engine on a data directory and print its statistics: stats --data-dir DIR [--json]",
    load: () => import("./cli/stats.ts"),
  },
  bench: {
    summary: "run a benchmark against its peers: bench engine|misses|supervisor|raft|node|keyspace",
    load: () => import("./bench/main.ts"),
  },
  sim: {
    summary:
      "deterministic Raft simulation: sim --seeds N [--nodes 5] [--faults ...] [--plant NAME]",
    load: () => import("./cli/sim.ts"),
  },
};

function usage(): string {
  const lines = ["usage: spire <command> [options]", "", "commands:"];
  for (const [name, entry] of Object.entries(COMMANDS)) {
    lines.push(`  ${name.padEnd(8)} ${entry.summary}`);
  }
  lines.push("  test     run the test suite (through ./spire test)");
  return lines.join("\n");
}

if (import.meta.main) {
  const [name, ...rest] = Deno.args;
  if (name === undefined || name === "help" || name === "--help" || name === "-h") {
    console.log(usage());
    Deno.exit(0);
  }
  const entry = COMMANDS[name];
  if (entry === undefined) {
    console.error(`Unknown command: "${name}"\n\n${usage()}`);
    Deno.exit(2);
  }
  const module = await entry.load();
  Deno.exit(await module.main(rest));
}

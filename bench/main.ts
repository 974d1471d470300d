/**
 * `spire bench <name>`: runs one benchmark suite. Each suite compares Spire
 * with its peer in the same run and prints a Markdown table for
 * bench/RESULTS.md.
 *
 * @module
 */

type SuiteMain = (args: string[]) => Promise<number>;

const SUITES: Record<string, () => Promise<{ main: SuiteMain }>> = {
  engine: () => import("./engine.ts"),
  misses: () => import("./misses.ts"),
  supervisor: () => import("./supervisor.ts"),
  raft: () => import("./raft.ts"),
  node: () => import("./node.ts"),
  keyspace: () => import("./keyspace.ts"),
};

/** Runs the suite named by `args[0]` with the rest of the arguments. */
export async function main(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  const load = name === undefined ? undefined : SUITES[name];
  if (load === undefined) {
    console.error(
      `Cannot run benchmark: ${name === undefined ? "no suite named" : `"${name}" is unknown`}; ` +
        `choose one of ${Object.keys(SUITES).join(", ")}`,
    );
    return 2;
  }
  return await (await load()).main(rest);
}

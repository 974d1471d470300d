/**
 * `spire sim`: runs the deterministic Raft simulation over many seeds, or
 * replays one seed, and exits non-zero with the failing seed and the command
 * that replays it when any check fails.
 *
 * @module
 */

import { type PlantName, PLANTS } from "../raft/core/mod.ts";
import { type Fault, FAULTS, runSimulation, type SimConfig } from "../raft/sim/mod.ts";

const PLANT_NOTES: Record<PlantName, string> = {
  "commit-old-term-by-count":
    "a leader commits an entry of an earlier term by counting replicas (Raft §5.4.2, Figure 8)",
  "vote-without-log-check":
    "a node grants its vote without checking the candidate's log is up to date",
  "no-conflict-truncate": "a follower keeps a conflicting suffix instead of truncating it",
  "lease-read-without-check-quorum":
    "a leader serves lease reads without check-quorum, so a deposed leader answers stale reads",
};

const USAGE = `usage: spire sim --seeds N [--start S] [--nodes 3|5] [--faults LIST|all|none]
                 [--plant NAME] [--duration-ms MS] [--clients N] [--keys N] [--keep-going] [--journal]
                 [--drift-max R]   tick-rate drift with the drift fault (default 0.09;
                                   above 0.1 is outside the bound lease reads rely on)
       spire sim --seed S [same options] [--trace]     replay one seed
       spire sim --list-plants
faults: ${FAULTS.join(",")}`;

interface Args {
  seeds: number;
  start: number;
  seed: number | undefined;
  nodes: 3 | 5;
  faults: Fault[];
  plant: PlantName | undefined;
  durationMs: number | undefined;
  clients: number | undefined;
  keys: number | undefined;
  driftMax: number | undefined;
  keepGoing: boolean;
  journal: boolean;
  trace: boolean;
  listPlants: boolean;
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    seeds: 100,
    start: 1,
    seed: undefined,
    nodes: 3,
    faults: [...FAULTS],
    plant: undefined,
    durationMs: undefined,
    clients: undefined,
    keys: undefined,
    driftMax: undefined,
    keepGoing: false,
    journal: false,
    trace: false,
    listPlants: false,
  };
  const int = (name: string, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (v === undefined || !Number.isSafeInteger(n) || n < min) {
      throw new RangeError(`Cannot parse ${name}: "${v}" is not an integer >= ${min}`);
    }
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const next = () => argv[++i];
    switch (flag) {
      case "--seeds":
        a.seeds = int("--seeds", next(), 1);
        break;
      case "--start":
        a.start = int("--start", next(), 0);
        break;
      case "--seed":
        a.seed = int("--seed", next(), 0);
        break;
      case "--nodes": {
        const v = next();
        if (v !== "3" && v !== "5") {
          throw new RangeError(`Cannot parse --nodes: "${v}" is not 3 or 5`);
        }
        a.nodes = Number(v) as 3 | 5;
        break;
      }
      case "--faults": {
        const v = next() ?? "";
        if (v === "all") a.faults = [...FAULTS];
        else if (v === "none") a.faults = [];
        else {
          a.faults = v.split(",").filter((f) => f !== "").map((f) => {
            if (!(FAULTS as readonly string[]).includes(f)) {
              throw new RangeError(
                `Cannot parse --faults: "${f}" is not one of ${FAULTS.join(", ")}, all, none`,
              );
            }
            return f as Fault;
          });
        }
        break;
      }
      case "--plant": {
        const v = next();
        if (!(PLANTS as readonly (string | undefined)[]).includes(v)) {
          throw new RangeError(`Cannot parse --plant: "${v}" is not one of ${PLANTS.join(", ")}`);
        }
        a.plant = v as PlantName;
        break;
      }
      case "--duration-ms":
        a.durationMs = int("--duration-ms", next(), 200);
        break;
      case "--clients":
        a.clients = int("--clients", next(), 1);
        break;
      case "--keys":
        a.keys = int("--keys", next(), 1);
        break;
      case "--drift-max": {
        const v = next();
        const n = Number(v);
        if (v === undefined || v === "" || !(n >= 0 && n <= 10)) {
          throw new RangeError(`Cannot parse --drift-max: "${v}" is not a number in [0, 10]`);
        }
        a.driftMax = n;
        break;
      }
      case "--keep-going":
        a.keepGoing = true;
        break;
      case "--journal":
        a.journal = true;
        break;
      case "--trace":
        a.trace = true;
        break;
      case "--list-plants":
        a.listPlants = true;
        break;
      default:
        throw new RangeError(`Cannot parse arguments: unknown option "${flag}"`);
    }
  }
  return a;
}

function configFor(a: Args, seed: number): SimConfig {
  return {
    seed,
    nodes: a.nodes,
    faults: a.faults,
    ...(a.plant === undefined ? {} : { plant: a.plant }),
    ...(a.durationMs === undefined ? {} : { durationMs: a.durationMs }),
    ...(a.clients === undefined ? {} : { clients: a.clients }),
    ...(a.keys === undefined ? {} : { keys: a.keys }),
    ...(a.driftMax === undefined ? {} : { driftRatioMax: a.driftMax }),
    ...(a.journal ? { journal: true } : {}),
  };
}

/**
 * Runs `spire sim`.
 *
 * @param argv the arguments after `sim`
 * @returns 0 when every check held, 1 when a seed failed, 2 on bad arguments
 */
export async function main(argv: string[]): Promise<number> {
  let a: Args;
  try {
    a = parseArgs(argv);
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (a.listPlants) {
    for (const p of PLANTS) console.log(`${p.padEnd(34)} ${PLANT_NOTES[p]}`);
    return 0;
  }
  if (a.seed !== undefined) {
    const cfg = configFor(a, a.seed);
    const r = await runSimulation(a.trace ? { ...cfg, trace: (l) => console.log(l) } : cfg);
    console.log(`seed ${a.seed}: ${r.ok ? "ok" : "FAILED"}  ${JSON.stringify(r.stats)}`);
    for (const n of r.nodes) console.log(`  ${n}`);
    if (!r.ok) {
      console.log(r.violations.join("\n"));
      console.log(`replay: ${r.replay}`);
    }
    return r.ok ? 0 : 1;
  }
  const t0 = performance.now();
  const failed: number[] = [];
  const totals = {
    ops: 0,
    okOps: 0,
    unknownOps: 0,
    crashes: 0,
    partitions: 0,
    transfers: 0,
    leaders: 0,
    inconclusive: 0,
  };
  for (let seed = a.start; seed < a.start + a.seeds; seed++) {
    const r = await runSimulation(configFor(a, seed));
    totals.ops += r.stats.ops;
    totals.okOps += r.stats.okOps;
    totals.unknownOps += r.stats.unknownOps;
    totals.crashes += r.stats.crashes;
    totals.partitions += r.stats.partitions;
    totals.transfers += r.stats.transfers;
    totals.leaders += r.stats.leaders;
    if (r.stats.linInconclusive) totals.inconclusive++;
    if (!r.ok) {
      failed.push(seed);
      console.log(`seed ${seed} FAILED:\n${r.violations.join("\n")}\nreplay: ${r.replay}`);
      if (!a.keepGoing) break;
    }
    const done = seed - a.start + 1;
    if (done % 1000 === 0) {
      console.log(
        `${done} seeds, ${failed.length} failed, ${((performance.now() - t0) / 1000).toFixed(1)} s`,
      );
    }
  }
  const secs = (performance.now() - t0) / 1000;
  const ran = failed.length > 0 && !a.keepGoing ? failed[0]! - a.start + 1 : a.seeds;
  console.log(
    `sim: ${ran} seeds [${a.start}, ${a.start + ran - 1}], nodes ${a.nodes}, faults ` +
      `${a.faults.join(",") || "none"}${a.plant ? `, plant ${a.plant}` : ""}: ` +
      `${failed.length} violations, ${secs.toFixed(1)} s; ops ${totals.ops} (ok ${totals.okOps}, ` +
      `unknown ${totals.unknownOps}), leaders ${totals.leaders}, crashes ${totals.crashes}, ` +
      `partitions ${totals.partitions}, transfers ${totals.transfers}, lin searches inconclusive ${totals.inconclusive}`,
  );
  if (failed.length > 0) console.log(`failing seeds: ${failed.join(", ")}`);
  return failed.length === 0 ? 0 : 1;
}

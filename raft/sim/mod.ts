/**
 * Deterministic simulation of a Raft group with fault injection, safety
 * checks and linearizability checking; {@link runSimulation} runs one seed.
 *
 * @module
 */

export { Prng } from "./prng.ts";
export {
  type Fault,
  FAULTS,
  replayCommand,
  runSimulation,
  type SimConfig,
  type SimReport,
  type SimStats,
} from "./simulation.ts";

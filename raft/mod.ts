/**
 * Spire's Raft: the pure consensus core (`RawNode`), the durable region log
 * store, the region peer driver with its transport and state-machine
 * interfaces, the deterministic simulation and the linearizability checker.
 *
 * @module
 */

export * from "./core/mod.ts";
export * from "./log_store/mod.ts";
export * from "./transport/mod.ts";
export * from "./driver/mod.ts";
export * from "./lin/mod.ts";
export * from "./sim/mod.ts";

/**
 * Spire's public API: the pieces of a Spire node that can be embedded.
 *
 * ```ts ignore
 * import { Engine } from "./mod.ts";
 * const engine = await Engine.open({ dataDir: "./data" });
 * await engine.put(new TextEncoder().encode("k"), new TextEncoder().encode("v"));
 * await engine.close();
 * ```
 *
 * @module
 */

export * from "./tuning/mod.ts";
export * from "./engine/mod.ts";
export * from "./supervisor/mod.ts";
export * from "./engine/codec/mod.ts";
export * from "./pd/mod.ts";
/**
 * Raft: the pure core (RawNode), region log store, transport, region peer driver,
 * linearizability checker and simulation. Exported as a namespace because its
 * `Entry`, `Snapshot` and `DenoFileSystem` differ from the engine's and PD's.
 */
export * as raft from "./raft/mod.ts";
export * from "./node/mod.ts";

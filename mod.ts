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
export * from "./raft/mod.ts";

/**
 * The engine process: owns the node's one RocksDB instance
 * (`<data-dir>/data`). It opens the engine in `init`, publishes it in
 * {@link NodeServices.engine} for the processes started after it, and closes
 * it in `terminate` (it traps exits, so a supervisor's shutdown runs
 * `terminate`; give it a long shutdown time so RocksDB closes cleanly).
 *
 * A `kill` skips `terminate` and leaves the old instance open, holding
 * RocksDB's lock; the next incarnation therefore closes a still-open engine
 * before it opens the directory again.
 *
 * In the node, the engine is opened with `syncWrites: false`: an
 * acknowledged write is durable because its Raft log entry was fsynced before
 * it was applied, and the log is compacted only below state the engine has
 * flushed (see `RegionStateMachine.snapshot`). Syncing the engine's WAL too
 * would add a second fsync to every write without making anything safer.
 *
 * @module
 */

import { Engine } from "../engine/mod.ts";
import type { GenServer } from "../supervisor/mod.ts";
import type { RocksDbTuning } from "../tuning/mod.ts";
import type { NodeServices } from "./services.ts";

/**
 * The RocksDB options the node's engine really opens with: the tuning, with
 * `syncWrites` off (the Raft log is the write-ahead log; see the module doc).
 * @param tuning the effective tuning
 * @returns the options given to `Engine.open`
 */
export function nodeEngineTuning(tuning: RocksDbTuning): RocksDbTuning {
  return { ...tuning, syncWrites: false };
}

/** Calls the engine process answers. */
export type EngineCall = { readonly op: "dataDir" };

/** The engine process. */
export const EngineServer: GenServer<
  NodeServices,
  { engine: Engine; services: NodeServices },
  EngineCall,
  string
> = {
  label: "engine",

  async init(services, ctx) {
    ctx.trapExit(true);
    const stale = services.engine;
    services.engine = undefined;
    if (stale !== undefined) await stale.close();
    const engine = await Engine.open({
      dataDir: `${services.config.dataDir}/data`,
      tuning: nodeEngineTuning(services.tuning),
    });
    services.engine = engine;
    return { state: { engine, services } };
  },

  handleCall(msg, _from, state) {
    switch (msg.op) {
      case "dataDir":
        return { reply: state.engine.dataDir, state };
    }
  },

  async terminate(_reason, state) {
    if (state.services.engine === state.engine) state.services.engine = undefined;
    await state.engine.close();
  },
};

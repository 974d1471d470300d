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
 * The engine opens with the tuning as given. `spire start` makes
 * `syncWrites: false` the node's default (see {@link nodeTuningDefaults}): an
 * acknowledged write is durable because its Raft log entry was fsynced before
 * it was applied, and the log is compacted only below state the engine has
 * flushed (see `RegionStateMachine.snapshot`), so syncing the engine's WAL too
 * adds a second fsync to every write without making anything safer. An
 * operator who sets `SPIRE_ROCKSDB_SYNC_WRITES=true` explicitly gets it.
 *
 * @module
 */

import { Engine } from "../engine/mod.ts";
import type { GenServer } from "../supervisor/mod.ts";
import type { RocksDbTuning } from "../tuning/mod.ts";
import type { NodeServices } from "./services.ts";

/**
 * The node's own defaults for knobs whose built-in default fits an embedded
 * engine but not a node: `syncWrites` is off, because the fsynced Raft log is
 * the write-ahead log (see the module doc). Applied by `spire start` only to
 * knobs whose source is still "default", so an explicit setting always wins.
 */
export const nodeTuningDefaults: Readonly<Partial<RocksDbTuning>> = Object.freeze({
  syncWrites: false,
});

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
      tuning: services.tuning,
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

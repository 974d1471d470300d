/**
 * The raft-logs process: owns the disk the region logs are written through, a
 * {@link JournalFileSystem} whose journal (`<data-dir>/raft/journal/`) makes a
 * round of appends to any number of region logs durable with one fsync.
 *
 * It starts before the region peers under the storage supervisor's rest_for_one,
 * so its `init` replays the journal into the region logs before any peer reads
 * its log, and a restart of it restarts the peers too. It traps exits: a
 * shutdown runs `terminate`, which checkpoints (the region logs are fsynced and
 * the journal emptied) and closes. When a journal write or fsync fails, it
 * exits with the error: nothing may be acknowledged after a failed fsync, and
 * its next incarnation opens the journal again and replays it.
 *
 * @module
 */

import { JournalFileSystem, raftJournalDir } from "../raft/log_store/mod.ts";
import type { GenServer } from "../supervisor/mod.ts";
import type { NodeServices } from "./services.ts";

interface State {
  readonly services: NodeServices;
  readonly fs: JournalFileSystem;
}

type Info = { readonly type: "failed"; readonly error: Error };

/** The raft-logs process. */
export const RaftLogsServer: GenServer<NodeServices, State, never, never, never, Info> = {
  label: "raftlogs",

  async init(services, ctx) {
    ctx.trapExit(true);
    // A killed incarnation (no terminate) left its journal open: close it first.
    const stale = services.raftFs;
    services.raftFs = undefined;
    if (stale !== undefined) await stale.close();
    const fs = await JournalFileSystem.open({
      fs: services.raftDisk(),
      dir: raftJournalDir(services.config.dataDir),
      onFailure: (error) => ctx.send(ctx.self, { type: "failed", error }),
      onSynced: (ms) => services.observers.journalSync?.(ms),
      plants: services.plants.includes("journal-skip-fsync") ? ["skip-fsync"] : [],
    });
    services.raftFs = fs;
    return { state: { services, fs } };
  },

  handleInfo(msg, state) {
    if (msg.type === "failed") return { stop: msg.error, state };
    return { state }; // exits of linked processes: the supervisor handles its own
  },

  async terminate(_reason, state) {
    if (state.services.raftFs === state.fs) state.services.raftFs = undefined;
    await state.fs.close();
  },
};

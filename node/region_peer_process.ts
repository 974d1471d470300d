/**
 * A region peer as a process: wraps the Raft driver (`RegionPeer`) of one
 * region with its durable log (`<data-dir>/raft/region_<id>/`) and its
 * {@link RegionStateMachine} over the shared engine. Runs under the regions'
 * DynamicSupervisor, registered as `spire.region.<id>`.
 *
 * Proposals and reads are answered with deferred replies, so the process
 * keeps taking requests while earlier ones wait for their fsync; the driver
 * groups everything that arrives meanwhile into one fsync. Raft time comes
 * from a `tick` message every `raftTickMs`. When the driver fails (for example
 * the engine under it closed) the process exits with that error and its
 * supervisor restarts it from the log and the engine.
 *
 * Standalone mode: the group has one voter (this peer), so it elects itself
 * at once and a proposal commits as soon as it is durable here.
 *
 * @module
 */

import { ProposalDroppedError } from "../raft/core/mod.ts";
import { NotLeaderError, RegionPeer } from "../raft/driver/mod.ts";
import { regionLogDir, RegionLogStore } from "../raft/log_store/mod.ts";
import type { Context, DynamicChildSpec, From, GenServer } from "../supervisor/mod.ts";
import {
  REGION_ENTRY_BYTES_MAX,
  type RegionResult,
  RegionStateMachine,
} from "./region_state_machine.ts";
import { EngineUnavailableError, NAMES, type NodeServices } from "./services.ts";

/** Init argument of a region peer process. */
export interface RegionPeerArgs {
  /** The node's shared services. */
  readonly services: NodeServices;
  /** The region. */
  readonly regionId: number;
}

/** Requests a region peer answers. */
export type RegionRequest =
  | { readonly op: "propose"; readonly command: Uint8Array }
  | { readonly op: "read"; readonly request: Uint8Array }
  | { readonly op: "resetSizeCounters" };

/**
 * The answer: a result, or an error. `retry` is true when the request
 * certainly had no effect (not leader, dropped, storage restarting), so that
 * the caller may send it again.
 */
export type RegionReply =
  | { readonly ok: RegionResult }
  | { readonly error: Error; readonly retry: boolean };

type Info = "tick" | { readonly type: "failed" };

interface State {
  readonly services: NodeServices;
  readonly regionId: number;
  readonly peer: RegionPeer<RegionResult>;
  readonly sm: RegionStateMachine;
  readonly storage: RegionLogStore;
  readonly peerId: number;
  proposals: number;
}

function safely(fn: () => unknown): void {
  try {
    fn();
  } catch {
    // The process exited meanwhile; its callers got CallExitError.
  }
}

function retryable(e: unknown): boolean {
  return e instanceof NotLeaderError || e instanceof ProposalDroppedError ||
    e instanceof EngineUnavailableError;
}

function answer(
  ctx: Context,
  from: From<RegionReply>,
  state: State,
  work: Promise<RegionResult>,
  onOk?: () => void,
): void {
  const self = ctx.self;
  work.then(
    (ok) => {
      onOk?.();
      safely(() => ctx.reply(from, { ok }));
    },
    (error: Error) => {
      safely(() => ctx.reply(from, { error, retry: retryable(error) }));
      if (state.peer.failure !== null) safely(() => ctx.send(self, { type: "failed" }));
    },
  );
}

function publish(state: State): void {
  const st = state.peer.status();
  state.services.raftInfo.set(state.regionId, {
    region: state.sm.region,
    peerId: state.peerId,
    term: st.hardState.term,
    commit: st.hardState.commit,
    applied: state.peer.applied,
    firstIndex: state.storage.firstIndex(),
    lastIndex: state.storage.lastIndex(),
    leader: state.peer.isLeader,
    appliedOwnTerm: state.peer.appliedOwnTerm,
    proposals: state.proposals,
    logSyncs: state.peer.stats.syncedReadies,
    bytesPutSinceCount: state.sm.stats.bytesPutSinceCount,
    keysPutSinceCount: state.sm.stats.keysPutSinceCount,
  });
}

/** The region peer GenServer. */
export const RegionPeerServer: GenServer<
  RegionPeerArgs,
  State,
  RegionRequest,
  RegionReply,
  never,
  Info
> = {
  label: "region_peer",

  async init({ services, regionId }, ctx) {
    ctx.trapExit(true);
    const previous = services.regionDrivers.get(regionId);
    if (previous !== undefined) {
      services.regionDrivers.delete(regionId);
      await previous.stop(); // a killed incarnation's driver may still be applying
    }
    const engine = services.requireEngine(`start region ${regionId}`);
    const sm = await RegionStateMachine.open({
      engine,
      regionId,
      cache: services.valueCache,
      plants: services.plants.filter((p) => p !== "journal-skip-fsync"),
      onSplit: (left, right) => {
        // The store starts the new region's peer and tells PD; if it is down, it finds
        // the split in the engine's metadata when it starts again.
        safely(() => ctx.send(NAMES.store, { type: "split", left, right }));
      },
    });
    const mine = sm.region.peers.find((p) => p.storeId === services.storeId) ??
      sm.region.peers[0];
    if (mine === undefined) throw new Error(`Cannot start region ${regionId}: it has no peers`);
    const storage = await RegionLogStore.open({
      fs: services.requireRaftFs(`open the log of region ${regionId}`),
      dir: regionLogDir(services.config.dataDir, regionId),
      confState: { voters: [mine.id], learners: [] },
    });
    let peer: RegionPeer<RegionResult>;
    try {
      peer = await RegionPeer.start<RegionResult>({
        id: mine.id,
        peers: [mine.id],
        storage,
        stateMachine: sm,
        transport: { send: () => false }, // one voter: nothing to send
        random: services.random,
        // A proposal may be as large as a write command (Raft's default cap is 1 MiB).
        raft: { checkQuorum: true, preVote: true, maxSizePerMsg: REGION_ENTRY_BYTES_MAX },
        compactEntriesThreshold: services.config.raftLogCompactEntries,
        compactKeepEntries: 0,
      });
    } catch (e) {
      storage.close();
      throw e;
    }
    services.regionDrivers.set(regionId, peer);
    peer.campaign();
    ctx.sendAfter(ctx.self, "tick", services.config.raftTickMs);
    const state: State = { services, regionId, peer, sm, storage, peerId: mine.id, proposals: 0 };
    publish(state);
    return { state };
  },

  handleCall(msg, from, state, ctx) {
    switch (msg.op) {
      case "propose": {
        state.proposals++;
        const started = performance.now();
        const observers = state.services.observers;
        answer(ctx, from, state, state.peer.propose(msg.command), () => {
          observers.commitLatency?.(state.regionId, performance.now() - started);
        });
        return { noreply: true, state };
      }
      case "read":
        answer(ctx, from, state, state.peer.read(msg.request));
        return { noreply: true, state };
      case "resetSizeCounters":
        state.sm.resetSizeCounters();
        publish(state);
        return { reply: { ok: { kind: "values", values: [] } }, state };
    }
  },

  handleInfo(msg, state, ctx) {
    if (msg === "tick") {
      state.peer.tick();
      if (state.peer.failure === null) {
        publish(state);
        ctx.sendAfter(ctx.self, "tick", state.services.config.raftTickMs);
      }
    }
    if (state.peer.failure !== null) return { stop: state.peer.failure, state };
    return { state };
  },

  async terminate(_reason, state) {
    const drivers = state.services.regionDrivers;
    if (drivers.get(state.regionId) === state.peer) drivers.delete(state.regionId);
    await state.peer.stop();
  },
};

/**
 * The DynamicSupervisor child spec of a region's peer.
 * @param services the node's services
 * @param regionId the region
 * @returns a permanent worker registered as `spire.region.<id>`
 */
export function regionPeerSpec(services: NodeServices, regionId: number): DynamicChildSpec {
  return {
    id: NAMES.region(regionId),
    restart: "permanent",
    shutdown: 10_000,
    start: (ctx) =>
      ctx.startLink(RegionPeerServer, { services, regionId }, { name: NAMES.region(regionId) }),
  };
}

/**
 * The region peer driver: connects the Raft core, a region log, a transport
 * and a state machine. Includes an in-memory log and an in-memory key-value
 * state machine for tests.
 *
 * @module
 */

export { type LogStorage, MemoryLogStorage } from "./log_storage.ts";
export {
  decodeKvRequest,
  encodeKvRequest,
  type KvRequest,
  type KvResult,
  KvStateMachine,
  type StateMachine,
} from "./state_machine.ts";
export {
  NotLeaderError,
  OutcomeUnknownError,
  type PeerObserver,
  type PeerRaftConfig,
  type PeerStats,
  RegionPeer,
  type RegionPeerOptions,
} from "./region_peer.ts";

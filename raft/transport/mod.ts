/**
 * Transport between region peers: the {@link Transport} interface, the frames
 * it carries (Raft messages and snapshot chunks) and an in-memory network.
 *
 * @module
 */

export {
  type Frame,
  frameDestination,
  type FrameHandler,
  type SnapshotChunk,
  type Transport,
} from "./transport.ts";
export { MemoryNetwork, type MemoryNetworkOptions } from "./memory_transport.ts";

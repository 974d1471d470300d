/**
 * Spire's Raft core: a pure, synchronous consensus state machine in the style
 * of etcd's raft. The driver feeds it ticks, messages and proposals and carries
 * out the `Ready` batches it returns (persist, send, apply, `advance`).
 *
 * @module
 */

export * from "./types.ts";
export { MemoryStorage } from "./memory_storage.ts";
export { RawNode } from "./raw_node.ts";

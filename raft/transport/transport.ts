/**
 * What region peers send each other, and the interface that carries it.
 *
 * @module
 */

import type { Message, NodeId } from "../core/mod.ts";

/**
 * One piece of a snapshot sent to a follower. The driver splits a `MsgSnap`
 * whose image is large into chunks; the receiver reassembles them and steps
 * the message when the last piece is in.
 */
export interface SnapshotChunk {
  /** The `MsgSnap` with an empty `snapshot.data`; the image travels in the chunks. */
  readonly message: Message;
  /** Position of this chunk, from 0. */
  readonly seq: number;
  /** Number of chunks of this snapshot. */
  readonly total: number;
  /** Bytes of the image in this chunk. */
  readonly bytes: Uint8Array;
}

/** A unit of transfer between peers. */
export type Frame =
  | { readonly kind: "message"; readonly message: Message }
  | { readonly kind: "snapshotChunk"; readonly chunk: SnapshotChunk };

/** Receives frames addressed to one peer. */
export type FrameHandler = (frame: Frame) => void;

/**
 * Sends frames from one peer to others. Delivery is best effort: frames may
 * be lost, duplicated, delayed or reordered, and Raft copes with all of it.
 */
export interface Transport {
  /**
   * Sends a frame to `to`.
   * @returns false when the frame was refused at once (unknown peer, full queue), so the
   *   caller can report the peer unreachable; true does not promise delivery.
   */
  send(to: NodeId, frame: Frame): boolean;
}

/**
 * The receiver of a frame.
 *
 * @param frame the frame
 * @returns its destination peer
 */
export function frameDestination(frame: Frame): NodeId {
  return frame.kind === "message" ? frame.message.to : frame.chunk.message.to;
}

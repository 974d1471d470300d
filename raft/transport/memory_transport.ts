/**
 * An in-memory network of peers for tests and benchmarks: frames are queued
 * per destination and delivered in batches on a microtask, in order, unless a
 * link is cut.
 *
 * @module
 */

import type { NodeId } from "../core/mod.ts";
import type { Frame, FrameHandler, Transport } from "./transport.ts";

/** Options of a {@link MemoryNetwork}. */
export interface MemoryNetworkOptions {
  /** Frames queued for one destination before further sends are refused. Default 65,536. */
  readonly queueFramesMax?: number;
}

/**
 * A set of in-memory endpoints. Links can be cut and healed one way at a time.
 *
 * @example
 * ```ts
 * import { MemoryNetwork } from "./memory_transport.ts";
 * const net = new MemoryNetwork();
 * const got: unknown[] = [];
 * net.endpoint(2, (f) => got.push(f));
 * const t1 = net.endpoint(1, () => {});
 * t1.send(2, { kind: "message", message: { type: "MsgHeartbeat", to: 2, from: 1, term: 1, logTerm: 0,
 *   index: 0, entries: [], commit: 0, reject: false, rejectHint: 0, leaseTick: 0 } });
 * await Promise.resolve();
 * if (got.length !== 1) throw new Error("not delivered");
 * net.close();
 * ```
 */
export class MemoryNetwork {
  readonly #handlers = new Map<NodeId, FrameHandler>();
  readonly #queues = new Map<NodeId, Frame[]>();
  readonly #cut = new Set<string>();
  readonly #queueFramesMax: number;
  #scheduled = false;
  #closed = false;
  #delivered = 0;

  /**
   * Creates a MemoryNetwork.
   * @param options queue limit
   */
  constructor(options: MemoryNetworkOptions = {}) {
    this.#queueFramesMax = options.queueFramesMax ?? 65_536;
    if (!Number.isSafeInteger(this.#queueFramesMax) || this.#queueFramesMax < 1) {
      throw new RangeError(
        `Cannot create MemoryNetwork: queueFramesMax ${this.#queueFramesMax} must be >= 1`,
      );
    }
  }

  /** Frames delivered so far. */
  get delivered(): number {
    return this.#delivered;
  }

  /**
   * Registers peer `id` and returns its transport.
   *
   * @param id the peer
   * @param handler receives frames addressed to `id`
   * @returns a transport sending from `id`
   * @throws {RangeError} when `id` is already registered
   */
  endpoint(id: NodeId, handler: FrameHandler): Transport {
    if (this.#handlers.has(id)) {
      throw new RangeError(`Cannot register peer ${id}: already registered`);
    }
    this.#handlers.set(id, handler);
    return { send: (to, frame) => this.#send(id, to, frame) };
  }

  /** Removes peer `id`; frames to it are refused. */
  remove(id: NodeId): void {
    this.#handlers.delete(id);
    this.#queues.delete(id);
  }

  /** Drops every frame from `from` to `to` until {@link heal}. */
  cut(from: NodeId, to: NodeId): void {
    this.#cut.add(`${from}>${to}`);
  }

  /** Restores every cut link. */
  heal(): void {
    this.#cut.clear();
  }

  /** Stops delivering; queued frames are dropped. */
  close(): void {
    this.#closed = true;
    this.#queues.clear();
  }

  #send(from: NodeId, to: NodeId, frame: Frame): boolean {
    if (this.#closed || !this.#handlers.has(to)) return false;
    if (this.#cut.has(`${from}>${to}`)) return true;
    let q = this.#queues.get(to);
    if (q === undefined) this.#queues.set(to, q = []);
    if (q.length >= this.#queueFramesMax) return false;
    q.push(frame);
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(() => this.#flush());
    }
    return true;
  }

  #flush(): void {
    this.#scheduled = false;
    if (this.#closed) return;
    for (const [to, q] of [...this.#queues]) {
      this.#queues.delete(to);
      const handler = this.#handlers.get(to);
      if (handler === undefined) continue;
      for (const frame of q) {
        this.#delivered++;
        handler(frame);
      }
    }
  }
}

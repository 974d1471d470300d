/**
 * The SET lane's unit of work: plain SETs (`SET key value`, no option) bound
 * for one region, collected in place by the client port's native SET path and
 * written by the backend as one write, each SET answered from the batch's
 * outcome, in order.
 *
 * Why: a SET through the command executor costs a parsed request, a command
 * object, a promise and a reply object on the event loop, then a copy into the
 * region's log entry; here the native code copies each SET's key and value
 * straight from the received bytes into the buffer that becomes the log entry,
 * and the connection awaits one promise for all the SETs of a chunk.
 *
 * Layout of {@link SetBatch.buffer}: `headerBytes` left for the backend's
 * header, then each SET as `[key length u32 BE] [key] [value length u32 BE]
 * [value]` (the plain-SETs layout of a region's log, node/region_state_machine.ts).
 *
 * @module
 */

import { grownBytes } from "../../engine/codec/mod.ts";
import type { Reply } from "../resp/reply.ts";

const EMPTY = new Uint8Array(0);

/** Bytes a SET takes in the layout besides its key and value: two lengths. */
export const SET_OVERHEAD_BYTES = 8;

/** A new batch's buffer: a few dozen small SETs (it grows as SETs come). */
const FIRST_CAPACITY_BYTES = 4 * 1024;

/**
 * Where `count` SETs in the layout lie in `data`, from `from` on: per SET its key's offset and
 * length and its value's offset and length (the one reader of the layout: a batch's SETs, and a
 * region's plain-SETs log entries).
 * @param data the bytes holding them
 * @param from the offset of the first SET
 * @param count how many SETs to read
 * @returns the slices, four numbers a SET
 * @throws {RangeError} when the bytes cannot hold `count` SETs from there (cut, a length past
 *   the end); whether bytes follow the last one is the caller's to check
 */
export function setSlices(data: Uint8Array, from: number, count: number): Uint32Array {
  // Each SET takes at least its two lengths: a larger count cannot be right (and must not size
  // the array).
  if (count > (data.length - from) / SET_OVERHEAD_BYTES) {
    throw new RangeError(`${count} SETs cannot fit in ${data.length - from} bytes`);
  }
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const slices = new Uint32Array(4 * count);
  let at = from;
  for (let j = 0; j < 4 * count; j += 2) {
    if (at + 4 > data.length) throw new RangeError("cut inside a length");
    const len = view.getUint32(at);
    if (at + 4 + len > data.length) throw new RangeError("a length past the end");
    slices[j] = at + 4;
    slices[j + 1] = len;
    at += 4 + len;
  }
  return slices;
}

/** Options of a {@link SetBatch}. */
export interface SetBatchOptions {
  /** The region's first key and its end (empty: none): the SETs' keys lie in [startKey, endKey). */
  readonly startKey: Uint8Array;
  readonly endKey: Uint8Array;
  /** Bytes at the start of the buffer for the backend's header. */
  readonly headerBytes: number;
  /** SETs in one batch at most. */
  readonly countMax: number;
  /** Bytes of SETs (lengths, keys and values) in one batch at most. */
  readonly bytesMax: number;
  /** Called after SETs were added (the backend schedules the batch's write). */
  readonly onAdded: (batch: SetBatch) => void;
  /** A buffer to start with (one a settled batch gave back, see `release`); its bytes are overwritten. */
  readonly buffer?: Uint8Array;
  /** The region the batch goes to, when the backend has regions (see KvBackend.regionOf). */
  readonly region?: number;
  /** That region's epoch version when the batch opened (a split changes it). */
  readonly regionVersion?: number;
}

/** See the module documentation. */
export class SetBatch {
  /** The keys it takes: [startKey, endKey), an empty end meaning no upper bound. */
  readonly startKey: Uint8Array;
  readonly endKey: Uint8Array;
  /** Bytes reserved for the header. */
  readonly headerBytes: number;
  /** The region it goes to; undefined when the backend has no regions. */
  readonly region: number | undefined;
  /** The region's epoch version when it opened; undefined when the backend has no regions. */
  readonly regionVersion: number | undefined;
  /** One reply per SET, in order, once the batch's write is applied (or failed). */
  readonly done: Promise<readonly Reply[]>;
  readonly #countMax: number;
  readonly #bytesMax: number;
  readonly #onAdded: (batch: SetBatch) => void;
  #resolve: (replies: readonly Reply[]) => void;
  #buffer: Uint8Array;
  #used: number;
  #count = 0;
  #sealed = false;
  #settled = false;

  /**
   * Creates an empty batch.
   * @param options the region's range, the header's room and the limits
   */
  constructor(options: SetBatchOptions) {
    this.startKey = options.startKey;
    this.endKey = options.endKey;
    this.headerBytes = options.headerBytes;
    this.region = options.region;
    this.regionVersion = options.regionVersion;
    this.#countMax = options.countMax;
    this.#bytesMax = options.bytesMax;
    this.#onAdded = options.onAdded;
    const given = options.buffer;
    this.#buffer = given !== undefined && given.length >= this.headerBytes &&
        given.length <= this.headerBytes + this.#bytesMax
      ? given
      : new Uint8Array(this.headerBytes + Math.min(FIRST_CAPACITY_BYTES, this.#bytesMax));
    this.#used = this.headerBytes;
    const { promise, resolve } = Promise.withResolvers<readonly Reply[]>();
    this.done = promise;
    this.#resolve = resolve;
  }

  /** Where SETs go: `buffer[used, buffer.length)` is free (valid until the next makeRoom). */
  get buffer(): Uint8Array {
    return this.#buffer;
  }

  /** Bytes of the buffer in use, the header's room included. */
  get used(): number {
    return this.#used;
  }

  /** SETs in the batch. */
  get count(): number {
    return this.#count;
  }

  /** SETs it may still take (0 once sealed). */
  get countLeft(): number {
    return this.#sealed ? 0 : this.#countMax - this.#count;
  }

  /** Whether the batch has gone out (it takes no more SETs). */
  get sealed(): boolean {
    return this.#sealed;
  }

  /**
   * Makes the buffer hold `bytes` more, growing it within the byte limit.
   * @param bytes a SET's size in the layout
   * @returns false when the batch is sealed or the limit leaves no room for it
   */
  makeRoom(bytes: number): boolean {
    if (this.#sealed || this.#used - this.headerBytes + bytes > this.#bytesMax) return false;
    const max = this.headerBytes + this.#bytesMax;
    this.#buffer = grownBytes(this.#buffer, this.#used, this.#used + bytes, max);
    return true;
  }

  /**
   * Records `count` SETs of `bytes` bytes written at `used` in the layout.
   * @throws {RangeError} when they pass the limits or the buffer, or the batch is sealed
   */
  added(count: number, bytes: number): void {
    if (
      this.#sealed || count > this.#countMax - this.#count ||
      this.#used + bytes > this.#buffer.length ||
      this.#used - this.headerBytes + bytes > this.#bytesMax
    ) {
      throw new RangeError(
        `Cannot add ${count} SETs of ${bytes} bytes to a SET batch of ${this.#count} SETs ` +
          `and ${this.#used - this.headerBytes} bytes${this.#sealed ? " that went out" : ""}`,
      );
    }
    this.#count += count;
    this.#used += bytes;
    this.#onAdded(this);
  }

  /**
   * @internal The backend takes the batch: no more SETs.
   * @returns the buffer in use, header included (the header is the caller's to write)
   */
  seal(): Uint8Array {
    this.#sealed = true;
    return this.#buffer.subarray(0, this.#used);
  }

  /**
   * The first SET's key (a view of the buffer), for routing the batch.
   * @throws {RangeError} when the batch is empty
   */
  firstKey(): Uint8Array {
    if (this.#count === 0) throw new RangeError("Cannot take the first key of an empty SET batch");
    const s = setSlices(this.#buffer.subarray(0, this.#used), this.headerBytes, 1);
    return this.#buffer.subarray(s[0]!, s[0]! + s[1]!);
  }

  /**
   * The SETs, in order (for a backend that answers them one by one). Keys and values are views
   * of the buffer.
   */
  sets(): { key: Uint8Array; value: Uint8Array }[] {
    const buf = this.#buffer.subarray(0, this.#used);
    const s = setSlices(buf, this.headerBytes, this.#count);
    const out: { key: Uint8Array; value: Uint8Array }[] = [];
    for (let i = 0; i < s.length; i += 4) {
      out.push({
        key: buf.subarray(s[i]!, s[i]! + s[i + 1]!),
        value: buf.subarray(s[i + 2]!, s[i + 2]! + s[i + 3]!),
      });
    }
    return out;
  }

  /**
   * @internal Gives the buffer back once the batch is settled and nothing holds views of it (its
   * proposal was copied into the log, no SET is being sent again), for a new batch to reuse.
   * @returns the buffer, or undefined when the batch is not settled
   */
  release(): Uint8Array | undefined {
    if (!this.#settled) return undefined;
    const buffer = this.#buffer;
    this.#buffer = EMPTY;
    this.#used = this.headerBytes;
    return buffer;
  }

  /**
   * @internal Answers the batch: one reply per SET (a shorter list is an internal error, given
   * to every SET). Only the first call counts.
   */
  settle(replies: readonly Reply[]): void {
    const resolve = this.#resolve;
    this.#resolve = () => {};
    this.#sealed = true;
    this.#settled = true;
    resolve(
      replies.length === this.#count ? replies : new Array<Reply>(this.#count).fill({
        kind: "error",
        message: `ERR internal error: ${replies.length} replies for ${this.#count} SETs`,
      }),
    );
  }
}

/**
 * Values as standard MessagePack (through msgpackr), readable by any
 * MessagePack decoder: objects are maps (no msgpackr record extension),
 * bigints within 64 bits are int64/uint64 and come back as bigints, larger
 * ones use msgpackr's bigint extension, byte arrays are `bin` and come back as
 * `Uint8Array` copies (not views into the stored value).
 *
 * @module
 */

import { Packr } from "msgpackr";

/** Default largest encoded value, in bytes (the engine's own value limit may be lower). */
export const VALUE_BYTES_MAX_DEFAULT = 64 * 1024 * 1024;

/** Options of {@link ValueCodec}. */
export interface ValueCodecOptions {
  /** Largest encoded value in bytes; larger values are refused both ways. */
  valueBytesMax?: number;
}

/**
 * Encodes and decodes values as MessagePack. Each instance owns its own
 * encoder state; share one per thread of work.
 *
 * @example
 * ```ts
 * import { ValueCodec } from "./value.ts";
 * const codec = new ValueCodec();
 * const bytes = codec.encode({ name: "ada", visits: 3n, tags: ["x"] });
 * const back = codec.decode(bytes) as { visits: bigint };
 * console.assert(back.visits === 3n);
 * ```
 */
export class ValueCodec {
  readonly #packr: Packr;
  readonly #valueBytesMax: number;

  /**
   * @param options Limits; see {@link ValueCodecOptions}.
   * @throws {RangeError} When `valueBytesMax` is not a positive safe integer.
   */
  constructor(options: ValueCodecOptions = {}) {
    const max = options.valueBytesMax ?? VALUE_BYTES_MAX_DEFAULT;
    if (!Number.isSafeInteger(max) || max <= 0) {
      throw new RangeError(
        `Cannot create ValueCodec: valueBytesMax ${max} is invalid; allowed: a positive whole number`,
      );
    }
    this.#valueBytesMax = max;
    this.#packr = new Packr({
      useRecords: false,
      variableMapSize: true,
      mapsAsObjects: true,
      useBigIntExtension: true,
      copyBuffers: true,
    });
  }

  /**
   * Encodes a value.
   *
   * @param value Any value MessagePack can hold: null, booleans, numbers, bigints,
   *   strings, Uint8Array, arrays and plain objects (`undefined` is kept as msgpackr's
   *   undefined extension).
   * @returns A fresh Uint8Array the caller owns.
   * @throws {RangeError} When the encoding exceeds `valueBytesMax`.
   */
  encode(value: unknown): Uint8Array {
    const packed = this.#packr.pack(value);
    if (packed.length > this.#valueBytesMax) {
      throw new RangeError(
        `Cannot encode value: ${packed.length} bytes is too large; allowed: up to ` +
          `${this.#valueBytesMax} bytes`,
      );
    }
    // msgpackr may return a view into its reusable buffer: copy into a plain Uint8Array.
    return new Uint8Array(packed);
  }

  /**
   * Decodes a value written by {@link ValueCodec.encode} or any MessagePack encoder.
   *
   * @param bytes The encoded value.
   * @returns The value; `bin` fields come back as Uint8Array copies.
   * @throws {TypeError} When `bytes` is not a Uint8Array.
   * @throws {RangeError} When `bytes` is too large or not valid MessagePack.
   */
  decode(bytes: Uint8Array): unknown {
    if (!(bytes instanceof Uint8Array)) {
      throw new TypeError(`Cannot decode value: ${typeof bytes} is not a Uint8Array`);
    }
    if (bytes.length > this.#valueBytesMax) {
      throw new RangeError(
        `Cannot decode value: ${bytes.length} bytes is too large; allowed: up to ` +
          `${this.#valueBytesMax} bytes`,
      );
    }
    try {
      return toPlainBytes(this.#packr.unpack(bytes));
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error);
      throw new RangeError(`Cannot decode value: ${detail}; allowed: MessagePack bytes`);
    }
  }
}

/** Replaces Node Buffers (msgpackr's `bin`) with plain Uint8Arrays, recursively. */
function toPlainBytes(value: unknown): unknown {
  if (value instanceof Uint8Array) {
    return value.constructor === Uint8Array ? value : new Uint8Array(value);
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = toPlainBytes(value[i]);
    return value;
  }
  if (
    value !== null && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype
  ) {
    const record = value as Record<string, unknown>;
    for (const key of Object.keys(record)) record[key] = toPlainBytes(record[key]);
  }
  return value;
}

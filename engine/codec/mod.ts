/**
 * Key and value codecs for the engine: an order-preserving, prefix-free tuple
 * encoding for keys (null < numbers < bigints < strings < bytes) and
 * MessagePack values through msgpackr. The engine itself stores plain bytes;
 * these are for callers that want structured keys and values.
 *
 * ```ts
 * import { compareBytes, encodeTuple, ValueCodec } from "./mod.ts";
 * const key = encodeTuple(["orders", 2024, 17n]);
 * console.assert(compareBytes(key, encodeTuple(["orders", 2025])) < 0);
 * const value = new ValueCodec().encode({ total: 12.5 });
 * console.assert(value instanceof Uint8Array);
 * ```
 *
 * @module
 */

export type { Tuple, TupleElement } from "./tuple.ts";
export {
  BIGINT_BYTES_MAX,
  compareBytes,
  compareTuples,
  decodeTuple,
  encodeTuple,
  grownBytes,
  TUPLE_ELEMENTS_MAX,
  tuplePrefixRange,
} from "./tuple.ts";
export type { ValueCodecOptions } from "./value.ts";
export { VALUE_BYTES_MAX_DEFAULT, ValueCodec } from "./value.ts";

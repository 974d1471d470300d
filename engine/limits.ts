/**
 * Documented size limits of the engine and the argument checks that enforce
 * them. Keys and values are `Uint8Array`s; anything else is a TypeError, and
 * anything past a limit a RangeError, raised before RocksDB is called.
 *
 * @module
 */

/** Largest key the engine accepts, in bytes (64 KiB; RocksDB itself allows more). */
export const KEY_SIZE_MAX_BYTES = 64 * 1024;
/** Largest value the engine accepts, in bytes (32 MiB). */
export const VALUE_SIZE_MAX_BYTES = 32 * 1024 * 1024;
/** Most operations in one `writeBatch` call. */
export const WRITE_BATCH_OPS_MAX = 100_000;
/** Most key and value bytes in one `writeBatch` call (128 MiB). */
export const WRITE_BATCH_BYTES_MAX = 128 * 1024 * 1024;
/** Most keys in one `getBatch` call. */
export const GET_BATCH_KEYS_MAX = 100_000;
/** Largest `batchSize` of a scan. */
export const SCAN_BATCH_SIZE_MAX = 1_000_000;

/**
 * Checks that `key` is a Uint8Array within {@link KEY_SIZE_MAX_BYTES}.
 * @throws {TypeError} when it is not a Uint8Array
 * @throws {RangeError} when it is too long
 */
export function checkKey(key: unknown, what = "key"): asserts key is Uint8Array {
  if (!(key instanceof Uint8Array)) {
    throw new TypeError(`Invalid ${what}: got ${describe(key)}; a Uint8Array is required`);
  }
  checkKeySize(key.length, what);
}

/**
 * Checks a key's length against {@link KEY_SIZE_MAX_BYTES}.
 * @throws {RangeError} when it is too long
 */
export function checkKeySize(bytes: number, what = "key"): void {
  if (bytes > KEY_SIZE_MAX_BYTES) {
    throw new RangeError(
      `Invalid ${what}: ${bytes} bytes is above the maximum of ${KEY_SIZE_MAX_BYTES} bytes`,
    );
  }
}

/**
 * Checks that `value` is a Uint8Array within {@link VALUE_SIZE_MAX_BYTES}.
 * @throws {TypeError} when it is not a Uint8Array
 * @throws {RangeError} when it is too long
 */
export function checkValue(value: unknown): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new TypeError(`Invalid value: got ${describe(value)}; a Uint8Array is required`);
  }
  checkValueSize(value.length);
}

/**
 * Checks a value's length against {@link VALUE_SIZE_MAX_BYTES}.
 * @throws {RangeError} when it is too long
 */
export function checkValueSize(bytes: number): void {
  if (bytes > VALUE_SIZE_MAX_BYTES) {
    throw new RangeError(
      `Invalid value: ${bytes} bytes is above the maximum of ${VALUE_SIZE_MAX_BYTES} bytes`,
    );
  }
}

/**
 * Checks a positive integer option.
 * @throws {RangeError} when it is not an integer in [1, max]
 */
export function checkCount(value: number, what: string, max: number): void {
  if (!Number.isSafeInteger(value) || value < 1 || value > max) {
    throw new RangeError(`Invalid ${what}: ${value}; an integer from 1 to ${max} is allowed`);
  }
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "object") return value.constructor?.name ?? "object";
  return typeof value;
}

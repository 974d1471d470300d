/**
 * Small helpers around raw pointers: the `char** errptr` convention, C
 * strings and stable (off-heap) buffers.
 *
 * @module
 */

import { EngineError } from "../errors.ts";
import type { RocksDbSymbols } from "./symbols.ts";

const encoder = new TextEncoder();

/** Encodes a string as a NUL-terminated UTF-8 C string. */
export function cString(text: string): Uint8Array {
  const bytes = encoder.encode(text);
  const out = new Uint8Array(new ArrayBuffer(bytes.length + 1));
  out.set(bytes);
  return out;
}

/**
 * Copies bytes into a buffer whose memory V8 never moves (its own
 * ArrayBuffer), so that its address may be kept by RocksDB or used from a
 * worker thread.
 */
export function stableCopy(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(new ArrayBuffer(Math.max(bytes.length, 1)), 0, bytes.length);
  out.set(bytes);
  return out;
}

/** Address of a stable buffer as a bigint (for arrays of pointers). */
export function addressOf(buffer: Uint8Array): bigint {
  return Deno.UnsafePointer.value(Deno.UnsafePointer.of(buffer as Uint8Array<ArrayBuffer>));
}

/** A `char**` out-parameter: 8 bytes that RocksDB fills with a malloc'ed message or leaves 0. */
export class ErrSlot {
  /** The 8 bytes passed to C. */
  readonly bytes: Uint8Array<ArrayBuffer> = new Uint8Array(new ArrayBuffer(8));
  readonly #words = new Uint32Array(this.bytes.buffer);
  readonly #big = new BigUint64Array(this.bytes.buffer);

  /** Whether RocksDB left an error message. */
  isSet(): boolean {
    return this.#words[0] !== 0 || this.#words[1] !== 0;
  }

  /** Reads and frees the message, resets the slot, and returns the text (undefined if none). */
  take(sym: RocksDbSymbols): string | undefined {
    if (!this.isSet()) return undefined;
    const ptr = Deno.UnsafePointer.create(this.#big[0] ?? 0n);
    this.#big[0] = 0n;
    if (ptr === null) return undefined;
    const text = new Deno.UnsafePointerView(ptr).getCString();
    sym.rocksdb_free(ptr);
    return text;
  }

  /**
   * Throws the message as an EngineError when one is set.
   * @throws {EngineError}
   */
  check(sym: RocksDbSymbols, operation: string): void {
    if (!this.isSet()) return;
    const status = this.take(sym);
    if (status !== undefined) throw new EngineError(operation, status);
  }
}

/** A `size_t*` out-parameter. */
export class SizeSlot {
  /** The 8 bytes passed to C. */
  readonly bytes: Uint8Array<ArrayBuffer> = new Uint8Array(new ArrayBuffer(8));
  readonly #words = new Uint32Array(this.bytes.buffer);

  /** The value C wrote (sizes below 2^53). */
  get value(): number {
    return (this.#words[0] ?? 0) + (this.#words[1] ?? 0) * 0x1_0000_0000;
  }
}

/** Copies `length` bytes at `ptr` into a new Uint8Array. */
export function copyOut(
  sym: RocksDbSymbols,
  ptr: NonNullable<Deno.PointerValue>,
  length: number,
): Uint8Array {
  const out = new Uint8Array(length);
  if (length > 0) sym.memcpy(out, ptr, BigInt(length));
  return out;
}

/** Reads a malloc'ed C string, frees it and returns its text. */
export function takeCString(sym: RocksDbSymbols, ptr: Deno.PointerValue): string | undefined {
  if (ptr === null) return undefined;
  const text = new Deno.UnsafePointerView(ptr).getCString();
  sym.rocksdb_free(ptr);
  return text;
}

/**
 * The client port's native GET path (node/_native/spire_resp.c): one FFI call
 * answers a run of pipelined GET requests straight from the engine's memory
 * (memtables and block cache), parsing each request and writing its reply.
 *
 * It takes only canonical `*2 $3 GET $n key` frames with keys of up to
 * {@link NATIVE_KEY_BYTES_MAX} bytes and stops before anything else: another
 * command, a request cut short, a key not in memory, a RocksDB error, a value
 * of an unknown layout, a reply that does not fit. The connection answers what
 * is left through the command executor, with Redis's rules. The caller decides
 * when the path may run at all: the session is authenticated, nothing of the
 * connection is in flight, and the backend may serve every key from the
 * engine without a Raft round (`KvBackend.directReads`).
 *
 * `./spire` builds `.build/libspire_resp.so`; without it (no compiler) every
 * GET takes the executor's path, with the same replies.
 *
 * @module
 */

import type { NativeReadAccess } from "../engine/mod.ts";

/** The version of `spire_resp_gets`; `spire_resp_abi` returns it. */
export const NATIVE_RESP_ABI = 4;

/** The longest key the native path reads; longer ones take the executor's path. */
export const NATIVE_KEY_BYTES_MAX = 1024;

const SYMBOLS = {
  // int32_t spire_resp_abi(void);
  spire_resp_abi: { parameters: [], result: "i32" },
  // int32_t spire_resp_gets(void* const* fns, rocksdb_t* db, const rocksdb_readoptions_t* options,
  //     spire_cache* cache, const uint8_t* in, uint32_t in_offset, uint32_t in_len, uint8_t* out,
  //     uint32_t out_offset, uint32_t out_cap, uint32_t key_max, uint32_t commands_max,
  //     int32_t resp3, double now, uint32_t* result);
  spire_resp_gets: {
    parameters: [
      "buffer",
      "pointer",
      "pointer",
      "pointer",
      "buffer",
      "u32",
      "u32",
      "buffer",
      "u32",
      "u32",
      "u32",
      "u32",
      "i32",
      "f64",
      "buffer",
    ],
    result: "i32",
  },
  // int32_t spire_resp_sets(const uint8_t* in, uint32_t in_offset, uint32_t in_len, uint8_t* out,
  //     uint32_t out_offset, uint32_t out_end, uint32_t key_max, uint32_t value_max,
  //     uint32_t commands_max, const uint8_t* lo, uint32_t lo_len, const uint8_t* hi,
  //     uint32_t hi_len, uint32_t* result);
  spire_resp_sets: {
    parameters: [
      "buffer",
      "u32",
      "u32",
      "buffer",
      "u32",
      "u32",
      "u32",
      "u32",
      "u32",
      "buffer",
      "u32",
      "buffer",
      "u32",
      "buffer",
    ],
    result: "i32",
  },
  // The native value cache (node/_native/value_cache.c; see node/native_value_cache.ts).
  // spire_cache* spire_cache_create(double capacity);
  spire_cache_create: { parameters: ["f64"], result: "pointer" },
  // void spire_cache_destroy(spire_cache* c);
  spire_cache_destroy: { parameters: ["pointer"], result: "void" },
  // uint32_t spire_cache_slab_bytes(const spire_cache* c);
  spire_cache_slab_bytes: { parameters: ["pointer"], result: "u32" },
  // void spire_cache_clear(spire_cache* c);
  spire_cache_clear: { parameters: ["pointer"], result: "void" },
  // int32_t spire_cache_get(spire_cache* c, const uint8_t* key, uint32_t key_len, uint8_t* out,
  //     uint32_t out_cap, uint32_t* value_len);
  spire_cache_get: {
    parameters: ["pointer", "buffer", "u32", "buffer", "u32", "buffer"],
    result: "i32",
  },
  // void spire_cache_put(spire_cache* c, const uint8_t* key, uint32_t key_len,
  //     const uint8_t* value, uint32_t value_len);
  spire_cache_put: { parameters: ["pointer", "buffer", "u32", "buffer", "u32"], result: "void" },
  // int32_t spire_cache_apply_batch(spire_cache* c, const uint8_t* rep, uint32_t len,
  //     int32_t prefix, int32_t puts, int32_t deletes);
  spire_cache_apply_batch: {
    parameters: ["pointer", "buffer", "u32", "i32", "i32", "i32"],
    result: "i32",
  },
  // void spire_cache_stats(const spire_cache* c, double* out);
  spire_cache_stats: { parameters: ["pointer", "buffer"], result: "void" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The library's callable symbols (for node/native_value_cache.ts). */
export type NativeSymbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** Why a call stopped. */
export const NativeStop = {
  /** The input ended, or its next request is not complete yet. */
  END: 0,
  /** The next request is not a canonical GET. */
  OTHER: 1,
  /** The next reply did not fit into the room given. */
  FULL: 2,
  /** The next key is not in memory. */
  NOT_CACHED: 3,
  /** RocksDB answered an error status for the next key. */
  ERROR: 4,
  /** The next key's stored value is not a string of the node's layout. */
  BAD_VALUE: 5,
  /** The command limit of the call was reached. */
  COUNT: 6,
  /** The next SET's key lies outside the range given. */
  REGION: 7,
} as const;

/** What one call did. */
export interface NativeGetsResult {
  /** GETs answered. */
  readonly commands: number;
  /** Input bytes consumed (the answered requests). */
  readonly consumed: number;
  /** Reply bytes written. */
  readonly written: number;
  /** Keys that held a live value. */
  readonly hits: number;
  /** Keys missing or expired. */
  readonly misses: number;
  /** Why it stopped ({@link NativeStop}). */
  readonly stop: number;
}

/** One call's input, output and rules. */
export interface NativeGetsCall {
  /** The engine's handles, taken just before the call. */
  readonly access: NativeReadAccess;
  /** The node's native value cache (bound to the same engine), or null. */
  readonly cache: Deno.PointerObject | null;
  /** Received bytes; requests start at `inStart`. */
  readonly input: Uint8Array;
  readonly inStart: number;
  readonly inEnd: number;
  /** Where replies go: output[outStart, outStart + outBytes). */
  readonly output: Uint8Array;
  readonly outStart: number;
  readonly outBytes: number;
  /** Longest key to read (the parser's limits may be tighter than NATIVE_KEY_BYTES_MAX). */
  readonly keyBytesMax: number;
  /** GETs to answer at most. */
  readonly commandsMax: number;
  /** The connection's protocol (a missing key is `$-1` in RESP2, `_` in RESP3). */
  readonly resp: 2 | 3;
  /** The clock, ms since the epoch: a key whose expiry is before it is missing. */
  readonly nowMs: number;
}

/** One call of the SET path: where the SETs come from and where they go. */
export interface NativeSetsCall {
  /** Received bytes; requests start at `inStart`. */
  readonly input: Uint8Array;
  readonly inStart: number;
  readonly inEnd: number;
  /** Where the SETs go, in a region log's plain-SETs layout: output[outStart, outEnd). */
  readonly output: Uint8Array;
  readonly outStart: number;
  readonly outEnd: number;
  /** Longest key and value taken; longer ones are left to the executor. */
  readonly keyBytesMax: number;
  readonly valueBytesMax: number;
  /** SETs to take at most. */
  readonly commandsMax: number;
  /** Keys taken lie in [startKey, endKey) (an empty endKey: no upper bound). */
  readonly startKey: Uint8Array;
  readonly endKey: Uint8Array;
}

/** What one call of the SET path did. */
export interface NativeSetsResult {
  /** SETs taken. */
  readonly commands: number;
  /** Input bytes consumed (the SETs taken). */
  readonly consumed: number;
  /** Output bytes written. */
  readonly written: number;
  /** Why it stopped ({@link NativeStop}). */
  readonly stop: number;
  /**
   * When it stopped before a whole canonical SET (REGION, FULL, COUNT): that SET's key (a view
   * of the input) and the output bytes it needs; undefined otherwise.
   */
  readonly next: { readonly key: Uint8Array; readonly bytes: number } | undefined;
}

/** Where `./spire` builds the library. */
export const DEFAULT_NATIVE_GETS_PATH: string =
  new URL("../.build/libspire_resp.so", import.meta.url).pathname;

/** The loaded native GET path. See the module documentation. */
export class NativeGets {
  readonly #lib: Deno.DynamicLibrary<typeof SYMBOLS>;
  readonly #result = new Uint32Array(5);
  readonly #sets = new Uint32Array(6);

  private constructor(lib: Deno.DynamicLibrary<typeof SYMBOLS>) {
    this.#lib = lib;
  }

  /**
   * Loads the library.
   * @param path the shared library
   * @returns the path, or undefined when the file is missing or of another ABI version
   */
  static open(path: string = DEFAULT_NATIVE_GETS_PATH): NativeGets | undefined {
    let lib: Deno.DynamicLibrary<typeof SYMBOLS>;
    try {
      lib = Deno.dlopen(path, SYMBOLS);
    } catch {
      return undefined; // not built: every GET takes the executor's path
    }
    if (lib.symbols.spire_resp_abi() !== NATIVE_RESP_ABI) {
      lib.close();
      return undefined;
    }
    return new NativeGets(lib);
  }

  /**
   * Answers the GET requests at the start of the input.
   * @param call input, output, engine and rules
   * @returns what was answered and why it stopped
   * @throws {RangeError} when a range lies outside its buffer
   */
  answer(call: NativeGetsCall): NativeGetsResult {
    if (
      call.inStart < 0 || call.inEnd > call.input.length || call.inStart > call.inEnd ||
      call.outStart < 0 || call.outStart + call.outBytes > call.output.length
    ) {
      throw new RangeError("Cannot answer GETs natively: a range lies outside its buffer");
    }
    const r = this.#result;
    const commands = this.#lib.symbols.spire_resp_gets(
      call.access.functions,
      call.access.db,
      call.access.memoryReadOptions,
      call.cache,
      call.input,
      call.inStart,
      call.inEnd - call.inStart,
      call.output,
      call.outStart,
      call.outBytes,
      Math.min(call.keyBytesMax, NATIVE_KEY_BYTES_MAX),
      call.commandsMax,
      call.resp === 3 ? 1 : 0,
      call.nowMs,
      r,
    );
    return {
      commands,
      consumed: r[0]!,
      written: r[1]!,
      hits: r[2]!,
      misses: r[3]!,
      stop: r[4]!,
    };
  }

  /**
   * Takes the plain SET requests (`SET key value`, canonical frames only) at the start of the
   * input into a region's batch, without answering them (spire_resp_sets in spire_resp.c).
   * @param call input, output and rules
   * @returns what was taken and why it stopped
   * @throws {RangeError} when a range lies outside its buffer
   */
  takeSets(call: NativeSetsCall): NativeSetsResult {
    if (
      call.inStart < 0 || call.inEnd > call.input.length || call.inStart > call.inEnd ||
      call.outStart < 0 || call.outEnd > call.output.length || call.outStart > call.outEnd
    ) {
      throw new RangeError("Cannot take SETs natively: a range lies outside its buffer");
    }
    const r = this.#sets;
    const commands = this.#lib.symbols.spire_resp_sets(
      call.input,
      call.inStart,
      call.inEnd - call.inStart,
      call.output,
      call.outStart,
      call.outEnd,
      call.keyBytesMax,
      call.valueBytesMax,
      call.commandsMax,
      call.startKey,
      call.startKey.length,
      call.endKey,
      call.endKey.length,
      r,
    );
    const keyAt = call.inStart + r[2]!;
    return {
      commands,
      consumed: r[0]!,
      written: r[1]!,
      stop: r[4]!,
      next: r[3] === 0xFFFF_FFFF
        ? undefined
        : { key: call.input.subarray(keyAt, keyAt + r[3]!), bytes: r[5]! },
    };
  }

  /** @internal The symbols, for node/native_value_cache.ts. */
  get symbols(): NativeSymbols {
    return this.#lib.symbols;
  }

  /** Unloads the library; the object must not be used afterwards. */
  close(): void {
    this.#lib.close();
  }
}

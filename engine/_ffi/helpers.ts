/**
 * Spire's native helpers (engine/_native/spire_rocksdb.c): a point read, a
 * batch of scan rows, and the keys of expired rows, each copied straight into
 * the caller's buffer in one FFI call, and the size of a run of rows.
 *
 * Under Deno's FFI a call that returns a pointer (`rocksdb_get`,
 * `rocksdb_iter_key`, `rocksdb_iter_value`) or takes a `number` for a 64-bit
 * argument leaves the fast path: about 250-300 ns a call against 40 ns
 * (Deno 2.9, measured against `memcpy` with each signature). A scan row cost
 * six calls, two of them slow. The helpers only call RocksDB's C API, through
 * function addresses taken from the librocksdb that the engine loaded, so the
 * two never disagree on the library.
 *
 * `./spire` builds the helpers into `.build/libspire_rocksdb.so` with the
 * system C compiler. Without them (no compiler, `SPIRE_ROCKSDB_LIB` users who
 * build nothing, `helpers: false`) the engine makes the same calls from
 * TypeScript: same results, slower.
 *
 * @module
 */

import type { RocksDbLibrary } from "./library.ts";

/** The version of the helpers' signatures; `spire_init` returns it. */
export const HELPERS_ABI = 6;

/** The helpers' symbol table for `Deno.dlopen`. */
export const HELPER_SYMBOLS = {
  // int32_t spire_init(void* const* fns, int32_t count);
  spire_init: { parameters: ["buffer", "i32"], result: "i32" },
  // int32_t spire_get_counted(rocksdb_t* db, const rocksdb_readoptions_t* options,
  //     const char* key, uint32_t key_len, char* out, uint32_t offset, uint32_t capacity,
  //     uint32_t* value_len, char** errptr, rocksdb_perfcontext_t* perf, uint32_t* blocks_read);
  spire_get_counted: {
    parameters: [
      "pointer",
      "pointer",
      "buffer",
      "u32",
      "buffer",
      "u32",
      "u32",
      "buffer",
      "buffer",
      "pointer",
      "buffer",
    ],
    result: "i32",
  },
  // int32_t spire_iter_read(rocksdb_iterator_t* it, int32_t rows, int32_t keys_only,
  //     int32_t reverse, char* out, uint32_t offset, uint32_t capacity, uint32_t* lengths);
  spire_iter_read: {
    parameters: ["pointer", "i32", "i32", "i32", "buffer", "u32", "u32", "buffer"],
    result: "i32",
  },
  // int32_t spire_iter_expired(rocksdb_iterator_t* it, int32_t rows, uint32_t flag_offset,
  //     uint32_t flag_mask, uint32_t deadline_offset, double now, char* out, uint32_t capacity,
  //     uint32_t* lengths, uint32_t lengths_cap, uint32_t* examined);
  spire_iter_expired: {
    parameters: [
      "pointer",
      "i32",
      "u32",
      "u32",
      "u32",
      "f64",
      "buffer",
      "u32",
      "buffer",
      "u32",
      "buffer",
    ],
    result: "i32",
  },
  // int32_t spire_iter_measure(rocksdb_iterator_t* it, int32_t rows, uint32_t flag_offset,
  //     uint32_t flag_mask, uint32_t deadline_offset, double now, double* out);
  spire_iter_measure: {
    parameters: ["pointer", "i32", "u32", "u32", "u32", "f64", "buffer"],
    result: "i32",
  },
} as const satisfies Deno.ForeignLibraryInterface;

/** The loaded helpers. */
export type HelperLibrary = Deno.DynamicLibrary<typeof HELPER_SYMBOLS>;

/** `spire_get_counted`'s results: found and copied. */
export const GET_FOUND = 1;
/** The key is missing. */
export const GET_MISSING = 0;
/** Found, longer than the capacity given: nothing was copied. */
export const GET_TOO_LONG = 2;

/**
 * Function addresses as native code takes them: an array of 64-bit words.
 * @param fns the functions (symbols of type "pointer")
 * @returns the words' bytes
 */
export function addressWords(fns: readonly Deno.PointerValue[]): Uint8Array {
  const words = new BigUint64Array(fns.length);
  fns.forEach((fn, i) => words[i] = BigInt(Deno.UnsafePointer.value(fn)));
  return new Uint8Array(words.buffer);
}

/** Where `./spire` builds the helpers. */
export const DEFAULT_HELPERS_PATH: string =
  new URL("../../.build/libspire_rocksdb.so", import.meta.url).pathname;

/**
 * Loads the helpers and hands them the C API functions of `rocksdb`.
 *
 * @param rocksdb the librocksdb the engine loaded
 * @param path the helpers' shared library
 * @returns the helpers, or undefined when there is no such file, it is of
 *   another ABI version, or it already serves another librocksdb in this process
 */
export function openHelpers(
  rocksdb: RocksDbLibrary,
  path: string = DEFAULT_HELPERS_PATH,
): HelperLibrary | undefined {
  let helpers: HelperLibrary;
  try {
    helpers = Deno.dlopen(path, HELPER_SYMBOLS);
  } catch {
    return undefined; // not built: the engine makes the calls itself
  }
  const s = rocksdb.symbols;
  const fns = [
    s.rocksdb_get_pinned_fn,
    s.rocksdb_pinnableslice_value_fn,
    s.rocksdb_pinnableslice_destroy_fn,
    s.rocksdb_iter_valid_fn,
    s.rocksdb_iter_key_fn,
    s.rocksdb_iter_value_fn,
    s.rocksdb_iter_next_fn,
    s.rocksdb_iter_prev_fn,
    s.rocksdb_set_perf_level_fn,
    s.rocksdb_perfcontext_metric_fn,
  ];
  const abi = helpers.symbols.spire_init(addressWords(fns), fns.length);
  if (abi !== HELPERS_ABI) {
    helpers.close();
    return undefined;
  }
  return helpers;
}

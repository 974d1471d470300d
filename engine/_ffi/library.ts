/**
 * Loading librocksdb. Loading is an explicit call, never an import side
 * effect: `openLibrary()` tries, in order, the path it is given, the
 * `SPIRE_ROCKSDB_LIB` environment variable, then the usual names of the
 * system library (a fresh Debian machine has only `librocksdb.so.7.8`).
 *
 * @module
 */

import { SYMBOLS } from "./symbols.ts";

/** The loaded librocksdb with Spire's symbol table. */
export type RocksDbLibrary = Deno.DynamicLibrary<typeof SYMBOLS>;

/** Library names tried when neither a path nor SPIRE_ROCKSDB_LIB is given. */
export const LIBRARY_CANDIDATES: readonly string[] = [
  "librocksdb.so",
  "librocksdb.so.7.8",
  "/usr/lib/x86_64-linux-gnu/librocksdb.so",
  "/usr/lib/x86_64-linux-gnu/librocksdb.so.7.8",
  "/usr/lib/aarch64-linux-gnu/librocksdb.so.7.8",
  "/usr/local/lib/librocksdb.so",
];

/** Thrown when no librocksdb could be loaded; the message lists every attempt. */
export class LibraryLoadError extends Error {
  /** Each path tried with the loader's reason. */
  readonly attempts: readonly { path: string; reason: string }[];

  /**
   * @param attempts each path tried and why it failed
   */
  constructor(attempts: readonly { path: string; reason: string }[]) {
    super(
      "Cannot load librocksdb: " +
        attempts.map((a) => `${a.path} (${a.reason})`).join("; ") +
        ". Install it (apt-get install -y librocksdb7.8) or set SPIRE_ROCKSDB_LIB " +
        "to the path of an existing librocksdb.so",
    );
    this.name = "LibraryLoadError";
    this.attempts = attempts;
  }
}

function envPath(): string | undefined {
  try {
    const value = Deno.env.get("SPIRE_ROCKSDB_LIB");
    return value === undefined || value === "" ? undefined : value;
  } catch {
    return undefined; // no --allow-env: behave as if unset
  }
}

/**
 * Loads librocksdb with Spire's symbol table. The caller owns the library and
 * closes it with `close()` when every database opened through it is closed.
 *
 * @param path an explicit library path; when given, it is the only one tried
 * @returns the loaded library
 * @throws {LibraryLoadError} when no candidate loads
 * @example
 * ```ts ignore
 * const lib = openLibrary();
 * lib.close();
 * ```
 */
export function openLibrary(path?: string): RocksDbLibrary {
  const fromEnv = envPath();
  const candidates = path !== undefined
    ? [path]
    : fromEnv !== undefined
    ? [fromEnv]
    : LIBRARY_CANDIDATES;
  const attempts: { path: string; reason: string }[] = [];
  for (const candidate of candidates) {
    try {
      return Deno.dlopen(candidate, SYMBOLS);
    } catch (error) {
      attempts.push({
        path: candidate,
        reason: error instanceof Error ? error.message : String(error),
      });
    }
  }
  throw new LibraryLoadError(attempts);
}

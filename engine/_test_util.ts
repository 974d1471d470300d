/**
 * Helpers shared by the engine's tests (private to engine/).
 *
 * @module
 */

import type { RocksDbTuning } from "../tuning/types.ts";
import { Engine, type EngineOpenOptions } from "./engine.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** UTF-8 bytes of a string. */
export function b(text: string): Uint8Array {
  return encoder.encode(text);
}

/** A string from UTF-8 bytes (undefined stays undefined). */
export function s(bytes: Uint8Array | undefined): string | undefined {
  return bytes === undefined ? undefined : decoder.decode(bytes);
}

/** Small, fast tuning for tests: small cache and memtables, unsynced unless asked. */
export const TEST_TUNING: Partial<RocksDbTuning> = {
  blockCacheSizeBytes: 8 * 1024 * 1024,
  writeBufferSizeBytes: 4 * 1024 * 1024,
  syncWrites: false,
};

/** An engine on a fresh temporary directory, removed when disposed. */
export interface TempEngine extends AsyncDisposable {
  engine: Engine;
  dir: string;
  root: string;
}

/** Opens an engine in a fresh temporary directory; `await using` removes it. */
export async function tempEngine(
  tuning: Partial<RocksDbTuning> = {},
  extra: Omit<EngineOpenOptions, "dataDir" | "tuning"> = {},
): Promise<TempEngine> {
  const root = await Deno.makeTempDir({ prefix: "spire_engine_test_" });
  const dir = `${root}/data`;
  const engine = await Engine.open({
    ...extra,
    dataDir: dir,
    tuning: { ...TEST_TUNING, ...tuning },
  });
  return {
    engine,
    dir,
    root,
    async [Symbol.asyncDispose]() {
      await engine.close();
      await Deno.remove(root, { recursive: true });
    },
  };
}

/** Collects every batch of a scan. */
export async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

/** Zero-padded key `k00042`. */
export function key(i: number, width = 5): Uint8Array {
  return b(`k${String(i).padStart(width, "0")}`);
}

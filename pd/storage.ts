/**
 * PD's durable state under its directory (`<data-dir>/pd/`), one metadata
 * file per part so that the frequent TSO and id saves stay small:
 *
 * - `tso.meta`      `{limitMs}`: no timestamp at or above it was handed out
 * - `ids.meta`      `{limit}`: no id at or above it was handed out
 * - `stores.meta`   `{stores: [{id, address}]}`
 * - `regions.meta`  `{regions: [{id, startKey, endKey, epoch, peers}]}` (keys in hex);
 *                   absent until the cluster is bootstrapped
 *
 * Each is written with {@link writeFileAtomic}; leftover temporary files from
 * a crash are removed on open.
 *
 * @module
 */

import { fromHex, toHex } from "./_keys.ts";
import { Serial } from "./_serial.ts";
import { PdCorruptError } from "./errors.ts";
import type { PdFileSystem } from "./fs.ts";
import { decodeMeta, encodeMeta, TEMP_SUFFIX, writeFileAtomic } from "./meta_file.ts";
import { type Peer, type Region, validateRegion } from "./region.ts";
import type { StoreMeta } from "./store.ts";

/** Everything PD persists, as loaded on open. */
export interface PdPersistedState {
  /** TSO upper bound (0 when never saved). */
  readonly tsoLimitMs: number;
  /** Id allocator bound (0 when never saved). */
  readonly idLimit: number;
  /** Registered stores. */
  readonly stores: readonly StoreMeta[];
  /** Regions, or undefined before bootstrap. */
  readonly regions: readonly Region[] | undefined;
}

const FILES = {
  tso: "tso.meta",
  ids: "ids.meta",
  stores: "stores.meta",
  regions: "regions.meta",
} as const;

type Part = keyof typeof FILES;

function nonNegInt(path: string, name: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
    throw new PdCorruptError(path, `${name} is ${JSON.stringify(v)}, not an integer >= 0`);
  }
  return v;
}

function arrayField(path: string, body: Record<string, unknown>, name: string): unknown[] {
  const v = body[name];
  if (!Array.isArray(v)) throw new PdCorruptError(path, `${name} is not an array`);
  return v;
}

function regionToJson(r: Region): Record<string, unknown> {
  return {
    id: r.id,
    startKey: toHex(r.startKey),
    endKey: toHex(r.endKey),
    epoch: { confVer: r.epoch.confVer, version: r.epoch.version },
    peers: r.peers.map((p) => ({ id: p.id, storeId: p.storeId, role: p.role })),
  };
}

function regionFromJson(path: string, raw: unknown): Region {
  try {
    const o = raw as Record<string, unknown>;
    const epoch = o.epoch as Record<string, unknown>;
    const region: Region = {
      id: nonNegInt(path, "region id", o.id),
      startKey: fromHex(String(o.startKey)),
      endKey: fromHex(String(o.endKey)),
      epoch: {
        confVer: nonNegInt(path, "confVer", epoch.confVer),
        version: nonNegInt(path, "version", epoch.version),
      },
      peers: (o.peers as Record<string, unknown>[]).map((p): Peer => ({
        id: nonNegInt(path, "peer id", p.id),
        storeId: nonNegInt(path, "store id", p.storeId),
        role: p.role as Peer["role"],
      })),
    };
    validateRegion(region);
    return region;
  } catch (e) {
    if (e instanceof PdCorruptError) throw e;
    throw new PdCorruptError(path, `bad region (${(e as Error).message})`);
  }
}

/** Reads and writes PD's metadata files in one directory. */
export class PdStorage {
  readonly #fs: PdFileSystem;
  readonly #dir: string;
  readonly #serial: Record<Part, Serial>;

  private constructor(fs: PdFileSystem, dir: string) {
    this.#fs = fs;
    this.#dir = dir;
    this.#serial = {
      tso: new Serial("tso file", 100_000),
      ids: new Serial("id file", 100_000),
      stores: new Serial("stores file", 100_000),
      regions: new Serial("regions file", 100_000),
    };
  }

  /**
   * Opens (creating if needed) the directory and loads every part.
   *
   * @param fs The filesystem.
   * @param dir PD's directory, e.g. `<data-dir>/pd`.
   * @returns The storage and the loaded state.
   * @throws {PdCorruptError} When a file fails its checks.
   * @example
   * ```ts
   * import { MemoryFileSystem } from "./fs.ts";
   * import { PdStorage } from "./storage.ts";
   * const fs = new MemoryFileSystem();
   * const { storage } = await PdStorage.open(fs, "/data/pd");
   * await storage.saveIdLimit(1000);
   * const { state } = await PdStorage.open(fs, "/data/pd");
   * console.assert(state.idLimit === 1000);
   * ```
   */
  static async open(
    fs: PdFileSystem,
    dir: string,
  ): Promise<{ storage: PdStorage; state: PdPersistedState }> {
    await fs.mkdir(dir);
    for (const name of await fs.readDir(dir)) {
      // A temporary file is a save that never completed, so its contents were never used.
      if (name.endsWith(TEMP_SUFFIX)) await fs.remove(`${dir}/${name}`);
    }
    const storage = new PdStorage(fs, dir);
    const tso = await storage.#read("tso");
    const ids = await storage.#read("ids");
    const stores = await storage.#read("stores");
    const regions = await storage.#read("regions");
    const path = (p: Part) => storage.#path(p);
    const state: PdPersistedState = {
      tsoLimitMs: tso === undefined ? 0 : nonNegInt(path("tso"), "limitMs", tso.limitMs),
      idLimit: ids === undefined ? 0 : nonNegInt(path("ids"), "limit", ids.limit),
      stores: stores === undefined
        ? []
        : arrayField(path("stores"), stores, "stores").map((raw) => {
          const o = raw as Record<string, unknown>;
          if (typeof o.address !== "string") {
            throw new PdCorruptError(path("stores"), "store address is not a string");
          }
          return { id: nonNegInt(path("stores"), "store id", o.id), address: o.address };
        }),
      regions: regions === undefined
        ? undefined
        : arrayField(path("regions"), regions, "regions").map((r) =>
          regionFromJson(path("regions"), r)
        ),
    };
    return { storage, state };
  }

  #path(part: Part): string {
    return `${this.#dir}/${FILES[part]}`;
  }

  async #read(part: Part): Promise<Record<string, unknown> | undefined> {
    const bytes = await this.#fs.readFile(this.#path(part));
    return bytes === undefined ? undefined : decodeMeta(this.#path(part), part, bytes);
  }

  #save(part: Part, body: Record<string, unknown>): Promise<void> {
    const data = encodeMeta(part, body);
    return this.#serial[part].run(() => writeFileAtomic(this.#fs, this.#path(part), data));
  }

  /** Durably records the TSO upper bound. */
  saveTsoLimit(limitMs: number): Promise<void> {
    return this.#save("tso", { limitMs });
  }

  /** Durably records the id allocator bound. */
  saveIdLimit(limit: number): Promise<void> {
    return this.#save("ids", { limit });
  }

  /** Durably records the registered stores. */
  saveStores(stores: readonly StoreMeta[]): Promise<void> {
    return this.#save("stores", { stores: stores.map((s) => ({ id: s.id, address: s.address })) });
  }

  /** Durably records the regions (leaders are soft state and are not saved). */
  saveRegions(regions: readonly Region[]): Promise<void> {
    return this.#save("regions", { regions: regions.map(regionToJson) });
  }
}

/**
 * A simulated disk for deterministic tests: files live in memory, appends are
 * volatile until `sync`, and {@link SimDisk.crash} throws away a random part
 * of what was not synced (a prefix of the unsynced bytes survives, so the last
 * surviving write may be torn mid-record).
 *
 * @module
 */

import type { AppendFile, FileSystem } from "./file_system.ts";

interface SimFile {
  data: Uint8Array;
  length: number;
  /** Bytes `[0, durableLength)` survive a crash. */
  durableLength: number;
}

/** Options of a {@link SimDisk}. */
export interface SimDiskOptions {
  /**
   * Called by every `sync` before it makes data durable; the simulation
   * returns a promise that resolves after a simulated delay, during which a
   * crash loses the data. Default: resolve at once.
   */
  readonly syncDelay?: () => Promise<void>;
}

/** Thrown when a handle opened before a simulated crash is used after it. */
export class DiskCrashedError extends Error {
  /**
   * Creates a DiskCrashedError.
   * @param message what was attempted
   */
  constructor(message: string) {
    super(message);
    this.name = "DiskCrashedError";
  }
}

/**
 * An in-memory {@link FileSystem} that models a crash. Directory entries
 * (create, rename, remove, truncate) are durable at once; file contents are
 * durable only up to the last completed `sync`.
 *
 * @example
 * ```ts
 * import { SimDisk } from "./sim_disk.ts";
 * const disk = new SimDisk();
 * await disk.mkdirAll("/d");
 * const f = await disk.openAppend("/d/x", true);
 * await f.append(new Uint8Array([1, 2]));
 * disk.crash(() => 0); // keep none of the unsynced bytes
 * if ((await disk.readFile("/d/x")).length !== 0) throw new Error("unsynced write survived");
 * ```
 */
export class SimDisk implements FileSystem {
  readonly #files = new Map<string, SimFile>();
  readonly #dirs = new Set<string>(["/"]);
  readonly #syncDelay: () => Promise<void>;
  #epoch = 0;
  #syncs = 0;

  /**
   * Creates a SimDisk.
   * @param options injected sync delay
   */
  constructor(options: SimDiskOptions = {}) {
    this.#syncDelay = options.syncDelay ?? (() => Promise.resolve());
  }

  /** Number of completed `sync` calls (file data only). */
  get syncs(): number {
    return this.#syncs;
  }

  /**
   * Simulates a power loss: every file keeps its durable bytes plus a prefix
   * of its unsynced bytes of length `floor(random() * (unsynced + 1))`.
   * Handles opened before the crash throw {@link DiskCrashedError} afterwards.
   *
   * @param random uniform source in [0, 1)
   */
  crash(random: () => number): void {
    this.#epoch++;
    for (const f of this.#files.values()) {
      const unsynced = f.length - f.durableLength;
      f.length = f.durableLength + Math.floor(random() * (unsynced + 1));
      f.durableLength = f.length;
    }
  }

  #file(path: string): SimFile {
    const f = this.#files.get(path);
    if (f === undefined) throw new Deno.errors.NotFound(`Cannot open ${path}: no such file`);
    return f;
  }

  #parent(path: string): string {
    return path.slice(0, path.lastIndexOf("/")) || "/";
  }

  /** Creates a directory and its parents. */
  mkdirAll(path: string): Promise<void> {
    const parts = path.split("/").filter((p) => p !== "");
    let cur = "";
    for (const p of parts) {
      cur += `/${p}`;
      this.#dirs.add(cur);
    }
    return Promise.resolve();
  }

  /** Lists file names directly in `dir`. */
  list(dir: string): Promise<string[]> {
    if (!this.#dirs.has(dir)) {
      return Promise.reject(new Deno.errors.NotFound(`Cannot list ${dir}: no such directory`));
    }
    const names: string[] = [];
    for (const path of this.#files.keys()) {
      if (this.#parent(path) === dir) names.push(path.slice(dir.length + 1));
    }
    return Promise.resolve(names.sort());
  }

  /** Returns a copy of the current (not necessarily durable) contents. */
  readFile(path: string): Promise<Uint8Array> {
    try {
      const f = this.#file(path);
      return Promise.resolve(f.data.slice(0, f.length));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Opens a file for appending. */
  openAppend(path: string, create: boolean): Promise<AppendFile> {
    let f = this.#files.get(path);
    if (f === undefined) {
      if (!create || !this.#dirs.has(this.#parent(path))) {
        return Promise.reject(new Deno.errors.NotFound(`Cannot open ${path}: no such file`));
      }
      f = { data: new Uint8Array(256), length: 0, durableLength: 0 };
      this.#files.set(path, f);
    }
    return Promise.resolve(new SimAppendFile(this, path, f, this.#epoch));
  }

  /** Cuts a file to `size` bytes. */
  truncate(path: string, size: number): Promise<void> {
    try {
      const f = this.#file(path);
      if (size < f.length) f.length = size;
      f.durableLength = Math.min(f.durableLength, f.length);
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Moves a file. */
  rename(from: string, to: string): Promise<void> {
    try {
      const f = this.#file(from);
      this.#files.delete(from);
      this.#files.set(to, f);
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Deletes a file if present. */
  remove(path: string): Promise<void> {
    this.#files.delete(path);
    return Promise.resolve();
  }

  /** Directory entries are durable at once here, so this does nothing more. */
  syncDir(_dir: string): Promise<void> {
    return Promise.resolve();
  }

  /** @internal used by handles */
  checkEpoch(epoch: number, what: string): void {
    if (epoch !== this.#epoch) {
      throw new DiskCrashedError(`Cannot ${what}: the disk crashed after the file was opened`);
    }
  }

  /** @internal used by handles */
  async syncFile(f: SimFile, epoch: number, length: number): Promise<void> {
    await this.#syncDelay();
    this.checkEpoch(epoch, "sync");
    f.durableLength = Math.max(f.durableLength, Math.min(length, f.length));
    this.#syncs++;
  }
}

class SimAppendFile implements AppendFile {
  readonly #disk: SimDisk;
  readonly #file: SimFile;
  readonly #epoch: number;
  readonly #path: string;
  #closed = false;

  constructor(disk: SimDisk, path: string, file: SimFile, epoch: number) {
    this.#disk = disk;
    this.#path = path;
    this.#file = file;
    this.#epoch = epoch;
  }

  get size(): number {
    return this.#file.length;
  }

  #check(what: string): void {
    if (this.#closed) throw new Error(`Cannot ${what} ${this.#path}: the file is closed`);
    this.#disk.checkEpoch(this.#epoch, `${what} ${this.#path}`);
  }

  append(data: Uint8Array): Promise<void> {
    try {
      this.#check("append to");
    } catch (error) {
      return Promise.reject(error);
    }
    const f = this.#file;
    if (f.length + data.length > f.data.length) {
      const grown = new Uint8Array(Math.max(f.data.length * 2, f.length + data.length));
      grown.set(f.data.subarray(0, f.length));
      f.data = grown;
    }
    f.data.set(data, f.length);
    f.length += data.length;
    return Promise.resolve();
  }

  sync(): Promise<void> {
    try {
      this.#check("sync");
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#disk.syncFile(this.#file, this.#epoch, this.#file.length);
  }

  close(): void {
    this.#closed = true;
  }
}

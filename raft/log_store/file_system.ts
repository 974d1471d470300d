/**
 * The disk seen by the region log store. Everything the store does to files
 * goes through {@link FileSystem}, so that the simulation can hand in a disk
 * that loses unsynced writes ({@link SimDisk}) and production the real one
 * ({@link DenoFileSystem}).
 *
 * @module
 */

/** A file opened for appending. Writes land in order; `sync` makes them durable. */
export interface AppendFile {
  /** Current size in bytes, including writes not yet synced. */
  readonly size: number;
  /**
   * Appends all of `data` at the end of the file. The bytes are in the file (not yet durable)
   * when it returns; the promise only reports how it went, so a `sync` called right after it,
   * without waiting, covers them.
   */
  append(data: Uint8Array): Promise<void>;
  /** Makes every earlier append durable (fdatasync). */
  sync(): Promise<void>;
  /** Closes the handle; safe to call twice. */
  close(): void;
}

/** The file operations the region log store needs. Paths use `/`. */
export interface FileSystem {
  /**
   * Creates a directory and its parents, durably (each new one's parent fsynced); no error
   * when it exists.
   */
  mkdirAll(path: string): Promise<void>;
  /** Names (not paths) of the regular files in a directory. */
  list(dir: string): Promise<string[]>;
  /** Whole contents of a file. */
  readFile(path: string): Promise<Uint8Array>;
  /** Opens a file for appending, creating it (empty) when `create` is set and it is missing. */
  openAppend(path: string, create: boolean): Promise<AppendFile>;
  /** Cuts a file to `size` bytes, durably. */
  truncate(path: string, size: number): Promise<void>;
  /** Renames a file (atomically replacing `to`), durably with its directory. */
  rename(from: string, to: string): Promise<void>;
  /** Deletes a file; no error when it is missing. */
  remove(path: string): Promise<void>;
  /** Makes the directory's entries (creations, renames, removals) durable. */
  syncDir(dir: string): Promise<void>;
}

class DenoAppendFile implements AppendFile {
  #file: Deno.FsFile | null;
  #size: number;

  constructor(file: Deno.FsFile, size: number) {
    this.#file = file;
    this.#size = size;
  }

  get size(): number {
    return this.#size;
  }

  #open(): Deno.FsFile {
    if (this.#file === null) throw new Error("Cannot use file: it is closed");
    return this.#file;
  }

  /**
   * A synchronous write: it only copies into the page cache (the fsync that
   * follows is the slow, asynchronous part), and an asynchronous write costs a
   * round trip through Deno's thread pool and event loop (0.2-0.3 ms under
   * load, as much as the fsync itself) on every `Ready`.
   */
  append(data: Uint8Array): Promise<void> {
    try {
      const file = this.#open();
      let done = 0;
      while (done < data.length) done += file.writeSync(data.subarray(done));
      this.#size += data.length;
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async sync(): Promise<void> {
    await this.#open().syncData();
  }

  close(): void {
    this.#file?.close();
    this.#file = null;
  }
}

/**
 * The real disk through Deno's file API.
 *
 * @example
 * ```ts
 * import { DenoFileSystem } from "./file_system.ts";
 * const fs = new DenoFileSystem();
 * const dir = await Deno.makeTempDir();
 * const f = await fs.openAppend(`${dir}/a`, true);
 * await f.append(new Uint8Array([1, 2, 3]));
 * await f.sync();
 * f.close();
 * if ((await fs.readFile(`${dir}/a`)).length !== 3) throw new Error("short file");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class DenoFileSystem implements FileSystem {
  /** Creates a directory and its parents, durably (see {@link mkdirDurable}). */
  async mkdirAll(path: string): Promise<void> {
    await mkdirDurable(path);
  }

  /** Lists the regular files of `dir`. */
  async list(dir: string): Promise<string[]> {
    const names: string[] = [];
    for await (const e of Deno.readDir(dir)) if (e.isFile) names.push(e.name);
    return names;
  }

  /** Reads a whole file. */
  readFile(path: string): Promise<Uint8Array> {
    return Deno.readFile(path);
  }

  /** Opens `path` for appending. */
  async openAppend(path: string, create: boolean): Promise<AppendFile> {
    const file = await Deno.open(path, { append: true, create, read: false });
    const { size } = await file.stat();
    return new DenoAppendFile(file, size);
  }

  /** Truncates and fsyncs `path`. */
  async truncate(path: string, size: number): Promise<void> {
    const file = await Deno.open(path, { write: true });
    try {
      await file.truncate(size);
      await file.syncData();
    } finally {
      file.close();
    }
  }

  /** Renames and syncs the directory of `to`. */
  async rename(from: string, to: string): Promise<void> {
    await Deno.rename(from, to);
    await this.syncDir(to.slice(0, to.lastIndexOf("/")) || "/");
  }

  /** Removes `path` if present. */
  async remove(path: string): Promise<void> {
    try {
      await Deno.remove(path);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }

  /** Fsyncs a directory. */
  syncDir(dir: string): Promise<void> {
    return fsyncDir(dir);
  }
}

/**
 * Fsyncs a directory, so that the names created, renamed or removed in it survive a crash.
 *
 * @param dir the directory
 * @throws what `Deno.open` and `sync` throw
 */
export async function fsyncDir(dir: string): Promise<void> {
  using d = await Deno.open(dir, { read: true });
  await d.sync();
}

/** The directory a path is in ("." for a bare name, "/" for a name at the root). */
function parentDir(path: string): string {
  const slash = path.replace(/\/+$/, "").lastIndexOf("/");
  return slash < 0 ? "." : slash === 0 ? "/" : path.slice(0, slash);
}

/**
 * Creates a directory and any missing parents, and fsyncs the directory each was made in, so
 * that the new names survive a power cut: a directory's entry in its parent is not durable until
 * the parent is fsynced, and the files later fsynced inside it would be lost with it.
 *
 * @param path the directory
 * @throws {Deno.errors.NotADirectory} and the other errors of `Deno.mkdir`, `Deno.open`
 * @example
 * ```ts
 * import { mkdirDurable } from "./file_system.ts";
 * const dir = await Deno.makeTempDir();
 * await mkdirDurable(`${dir}/a/b`);
 * if (!(await Deno.stat(`${dir}/a/b`)).isDirectory) throw new Error("not made");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function mkdirDurable(path: string): Promise<void> {
  const missing: string[] = [];
  for (let p = path.replace(/\/+$/, "") || "/";; p = parentDir(p)) {
    try {
      await Deno.stat(p);
      break;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      missing.push(p);
    }
  }
  for (const p of missing.reverse()) {
    try {
      await Deno.mkdir(p);
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e; // made meanwhile: fine
    }
    await fsyncDir(parentDir(p));
  }
}

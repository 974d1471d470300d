/**
 * The filesystem PD persists through, injected so that tests can crash it
 * between any two steps: {@link DenoFileSystem} for real disks and
 * {@link MemoryFileSystem}, which keeps what has been made durable apart from
 * what has merely been written, and loses (or tears) the latter on `crash()`.
 *
 * @module
 */

import { fsyncDir, mkdirDurable } from "../raft/log_store/mod.ts";

/** The operations PD's persistence uses; paths are absolute or relative strings. */
export interface PdFileSystem {
  /**
   * Creates a directory and its parents, durably (each new one's parent fsynced); no error
   * when it exists.
   */
  mkdir(path: string): Promise<void>;
  /** The file's bytes, or undefined when it does not exist. */
  readFile(path: string): Promise<Uint8Array | undefined>;
  /** Creates or truncates the file and writes `data` (not yet durable). */
  writeFile(path: string, data: Uint8Array): Promise<void>;
  /** Makes the file's contents durable (fsync). */
  syncFile(path: string): Promise<void>;
  /** Atomically renames `from` to `to`, replacing `to` (durable after syncDir). */
  rename(from: string, to: string): Promise<void>;
  /** Makes the directory's entries durable (fsync of the directory). */
  syncDir(path: string): Promise<void>;
  /** Removes a file; no error when it does not exist. */
  remove(path: string): Promise<void>;
  /** Names of the entries of a directory. */
  readDir(path: string): Promise<string[]>;
}

/** The parent directory of a path ("." for a bare name). */
export function dirname(path: string): string {
  const i = path.lastIndexOf("/");
  if (i < 0) return ".";
  return i === 0 ? "/" : path.slice(0, i);
}

/**
 * The real filesystem through Deno's API.
 *
 * @example
 * ```ts
 * import { DenoFileSystem } from "./fs.ts";
 * const fs = new DenoFileSystem();
 * const dir = await Deno.makeTempDir();
 * await fs.writeFile(`${dir}/a`, new Uint8Array([1]));
 * await fs.syncFile(`${dir}/a`);
 * console.assert((await fs.readFile(`${dir}/a`))?.[0] === 1);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class DenoFileSystem implements PdFileSystem {
  /** Creates a directory and its parents, durably (their parents fsynced). */
  async mkdir(path: string): Promise<void> {
    await mkdirDurable(path);
  }

  /** Reads a whole file, or undefined when it does not exist. */
  async readFile(path: string): Promise<Uint8Array | undefined> {
    try {
      return await Deno.readFile(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return undefined;
      throw e;
    }
  }

  /** Creates or truncates a file and writes `data`. */
  async writeFile(path: string, data: Uint8Array): Promise<void> {
    await Deno.writeFile(path, data);
  }

  /** fsyncs a file. */
  async syncFile(path: string): Promise<void> {
    using file = await Deno.open(path, { read: true, write: true });
    await file.sync();
  }

  /** Renames a file, replacing the target. */
  async rename(from: string, to: string): Promise<void> {
    await Deno.rename(from, to);
  }

  /** fsyncs a directory, so that renames and creations in it survive a crash. */
  syncDir(path: string): Promise<void> {
    return fsyncDir(path);
  }

  /** Removes a file if it exists. */
  async remove(path: string): Promise<void> {
    try {
      await Deno.remove(path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }

  /** Lists a directory's entry names. */
  async readDir(path: string): Promise<string[]> {
    const names: string[] = [];
    for await (const entry of Deno.readDir(path)) names.push(entry.name);
    return names;
  }
}

/** Thrown by {@link MemoryFileSystem} once its planned crash point is reached. */
export class SimulatedCrashError extends Error {
  /**
   * Creates the instance.
   *
   * @param op The operation that was cut off.
   */
  constructor(op: string) {
    super(`Simulated crash: ${op} did not happen; call crash() to restart`);
    this.name = "SimulatedCrashError";
  }
}

interface Inode {
  /** What a read sees now. */
  data: Uint8Array;
  /** What survives a crash; undefined when the file was never synced (empty). */
  durable: Uint8Array | undefined;
}

/** Options of {@link MemoryFileSystem}. */
export interface MemoryFileSystemOptions {
  /** Random numbers in [0, 1) that choose torn-write lengths on crash (default: no tearing). */
  readonly random?: () => number;
}

/**
 * An in-memory filesystem with a crash model: file contents become durable on
 * `syncFile`, directory entries (creations, renames, removals) on `syncDir`
 * of their parent; `crash()` throws away everything else. With a `random`
 * source, a file written but not synced keeps a random prefix of its new
 * bytes instead (a torn write). Directories themselves are durable at once.
 * `failAfter(n)` makes the (n+1)-th mutating operation from now, and every
 * one after it, throw {@link SimulatedCrashError} until `crash()`.
 */
export class MemoryFileSystem implements PdFileSystem {
  readonly #dirs = new Set<string>(["/", "."]);
  #entries = new Map<string, Inode>();
  #durableEntries = new Map<string, Inode>();
  #opsLeft = Infinity;
  readonly #random: (() => number) | undefined;
  /** Mutating operations performed so far (for choosing crash points). */
  mutations = 0;

  /**
   * Creates the instance.
   *
   * @param options Optional random source for torn writes.
   */
  constructor(options: MemoryFileSystemOptions = {}) {
    this.#random = options.random;
  }

  /** Crash after `n` more mutating operations succeed. */
  failAfter(n: number): void {
    this.#opsLeft = n;
  }

  /** Loses everything not durable, as a power cut would, and clears the crash point. */
  crash(): void {
    const survivors = new Map<string, Inode>();
    const seen = new Map<Inode, Inode>();
    for (const [path, inode] of this.#durableEntries) {
      let after = seen.get(inode);
      if (after === undefined) {
        after = { data: this.#afterCrash(inode), durable: undefined };
        after.durable = after.data;
        seen.set(inode, after);
      }
      survivors.set(path, after);
    }
    this.#entries = survivors;
    this.#durableEntries = new Map(survivors);
    this.#opsLeft = Infinity;
  }

  #afterCrash(inode: Inode): Uint8Array {
    const durable = inode.durable ?? new Uint8Array();
    if (this.#random === undefined || inode.data === inode.durable) return durable;
    const cut = Math.floor(this.#random() * (inode.data.length + 1));
    return inode.data.slice(0, cut);
  }

  #mutate(op: string): void {
    if (this.#opsLeft <= 0) throw new SimulatedCrashError(op);
    this.#opsLeft--;
    this.mutations++;
  }

  #checkDir(path: string): void {
    if (!this.#dirs.has(dirname(path))) {
      throw new Deno.errors.NotFound(`No such directory: ${dirname(path)} (for ${path})`);
    }
  }

  /** Overwrites a file's bytes, durable at once (for planting corruption in tests). */
  corrupt(path: string, data: Uint8Array): void {
    const inode = this.#entries.get(path);
    if (inode === undefined) throw new Deno.errors.NotFound(`No such file: ${path}`);
    inode.data = data;
    inode.durable = data;
  }

  /** Creates a directory and its parents. */
  mkdir(path: string): Promise<void> {
    this.#mutate(`mkdir ${path}`);
    for (let p = path; !this.#dirs.has(p); p = dirname(p)) this.#dirs.add(p);
    return Promise.resolve();
  }

  /** A copy of the file's current bytes, or undefined. */
  readFile(path: string): Promise<Uint8Array | undefined> {
    return Promise.resolve(this.#entries.get(path)?.data.slice());
  }

  /** Creates or truncates a file and writes `data` (volatile until syncFile). */
  writeFile(path: string, data: Uint8Array): Promise<void> {
    this.#mutate(`write ${path}`);
    this.#checkDir(path);
    const inode = this.#entries.get(path);
    if (inode === undefined) this.#entries.set(path, { data: data.slice(), durable: undefined });
    else inode.data = data.slice();
    return Promise.resolve();
  }

  /** Makes a file's contents durable. */
  syncFile(path: string): Promise<void> {
    this.#mutate(`fsync ${path}`);
    const inode = this.#entries.get(path);
    if (inode === undefined) throw new Deno.errors.NotFound(`No such file: ${path}`);
    inode.durable = inode.data;
    return Promise.resolve();
  }

  /** Renames a file (volatile until syncDir of its directory). */
  rename(from: string, to: string): Promise<void> {
    this.#mutate(`rename ${from} ${to}`);
    this.#checkDir(to);
    const inode = this.#entries.get(from);
    if (inode === undefined) throw new Deno.errors.NotFound(`No such file: ${from}`);
    this.#entries.delete(from);
    this.#entries.set(to, inode);
    return Promise.resolve();
  }

  /** Makes the entries of a directory durable. */
  syncDir(path: string): Promise<void> {
    this.#mutate(`fsync dir ${path}`);
    for (const p of [...this.#durableEntries.keys()]) {
      if (dirname(p) === path && !this.#entries.has(p)) this.#durableEntries.delete(p);
    }
    for (const [p, inode] of this.#entries) {
      if (dirname(p) === path) this.#durableEntries.set(p, inode);
    }
    return Promise.resolve();
  }

  /** Removes a file (volatile until syncDir). */
  remove(path: string): Promise<void> {
    this.#mutate(`remove ${path}`);
    this.#entries.delete(path);
    return Promise.resolve();
  }

  /** Names in a directory. */
  readDir(path: string): Promise<string[]> {
    if (!this.#dirs.has(path)) throw new Deno.errors.NotFound(`No such directory: ${path}`);
    const names = [...this.#entries.keys()].filter((p) => dirname(p) === path)
      .map((p) => p.slice(path === "/" ? 1 : path.length + 1));
    return Promise.resolve(names);
  }
}

/**
 * Mounts node/_powercut/powercut_fs.c (a FUSE file system that can lose every byte written
 * since each file's last fsync) for crash tests that need more than `kill -9`. Built here with
 * libfuse3 (`./spire` installs fuse3, libfuse3-dev and pkg-config); needs root and /dev/fuse.
 *
 * @module
 */

const ROOT = new URL("..", import.meta.url).pathname;
const SOURCE = `${ROOT}node/_powercut/powercut_fs.c`;
const BINARY = `${ROOT}.build/powercut_fs`;

/** What one cut undid. */
export interface CutReport {
  /** Files that had unsynced changes. */
  files: number;
  /** Changes undone (writes and truncations). */
  records: number;
  /** Bytes put back or cut off. */
  bytes: number;
  /** Name changes undone (with `names`: creates, unlinks, renames not made durable). */
  names: number;
}

/** Options of {@link PowercutFs.mount}. */
export interface PowercutOptions {
  /**
   * Names durable only once their directory is fsynced: a cut also undoes creates, links,
   * unlinks, renames and directory changes made since (default false: names durable at once).
   */
  readonly names?: boolean;
  /**
   * Partial cuts, their choices drawn from this seed: per file, some of the oldest unsynced
   * changes are kept (they reached the disk) and the first one undone, if an append, may be
   * torn (a prefix kept). Default: every unsynced change is lost.
   */
  readonly seed?: number;
}

async function run(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(
      `Cannot run ${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}${text}`,
    );
  }
  return text;
}

/** Compiles the file system unless the binary is newer than its source. */
async function build(): Promise<string> {
  const src = await Deno.stat(SOURCE);
  const bin = await Deno.stat(BINARY).catch(() => undefined);
  if (bin?.mtime && src.mtime && bin.mtime > src.mtime) return BINARY;
  const flags = (await run("pkg-config", ["--cflags", "--libs", "fuse3"])).trim().split(/\s+/);
  await Deno.mkdir(`${ROOT}.build`, { recursive: true });
  await run(Deno.env.get("CC") ?? "cc", ["-O2", "-Wall", "-o", `${BINARY}.tmp`, SOURCE, ...flags]);
  await Deno.rename(`${BINARY}.tmp`, BINARY);
  return BINARY;
}

async function mounted(path: string): Promise<boolean> {
  const mounts = await Deno.readTextFile("/proc/mounts");
  return mounts.split("\n").some((line) => line.split(" ")[1] === path);
}

/**
 * A mounted powercut file system over a fresh backing directory.
 *
 * @example
 * ```ts ignore
 * const fs = await PowercutFs.mount();
 * await Deno.writeTextFile(`${fs.root}/a`, "lost"); // never fsynced
 * await fs.cut(); // { files: 1, records: 1, bytes: 4 }: `a` is empty again
 * await fs.unmount();
 * ```
 */
export class PowercutFs {
  /** The mount point: files under it can be cut back to their last fsync. */
  readonly root: string;
  readonly #base: string;
  readonly #child: Deno.ChildProcess;
  readonly #lines: ReadableStreamDefaultReader<string>;
  #buffered = "";

  private constructor(base: string, child: Deno.ChildProcess) {
    this.#base = base;
    this.root = `${base}/mnt`;
    this.#child = child;
    this.#lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  }

  /**
   * Builds (when needed) and mounts the file system.
   * @param options whether names are durable only after a directory fsync
   * @returns it, mounted
   * @throws {Error} when it cannot be built or mounted (no libfuse3, no /dev/fuse, not root)
   */
  static async mount(options: PowercutOptions = {}): Promise<PowercutFs> {
    const bin = await build();
    const base = await Deno.makeTempDir({ prefix: "spire_powercut_" });
    await Deno.mkdir(`${base}/back`);
    await Deno.mkdir(`${base}/mnt`);
    const child = new Deno.Command(bin, {
      args: [
        `${base}/back`,
        `${base}/mnt`,
        ...(options.names === true ? ["--names"] : []),
        ...(options.seed === undefined ? [] : ["--seed", String(options.seed)]),
      ],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const fs = new PowercutFs(base, child);
    for (let i = 0; i < 100 && !(await mounted(fs.root)); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    if (!(await mounted(fs.root))) {
      await fs.unmount();
      throw new Error(`Cannot mount powercut_fs on ${fs.root} (needs root, /dev/fuse, fuse3)`);
    }
    return fs;
  }

  /**
   * The power cut: every file under the mount back to its last fsync.
   * @returns what it undid
   */
  async cut(): Promise<CutReport> {
    try {
      await Deno.mkdir(`${this.root}/.powercut`);
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e; // the cut answers EEXIST
    }
    for (;;) {
      const nl = this.#buffered.indexOf("\n");
      if (nl >= 0) {
        const line = this.#buffered.slice(0, nl);
        this.#buffered = this.#buffered.slice(nl + 1);
        const m = /^powercut files=(\d+) records=(\d+) bytes=(\d+) names=(\d+)$/.exec(line);
        if (m === null) throw new Error(`Cannot read powercut_fs's report: "${line}"`);
        return {
          files: Number(m[1]),
          records: Number(m[2]),
          bytes: Number(m[3]),
          names: Number(m[4]),
        };
      }
      const { value, done } = await this.#lines.read();
      if (done) throw new Error("Cannot cut: powercut_fs exited");
      this.#buffered += value;
    }
  }

  /** Unmounts, waits for the file system to exit and removes its directories. */
  async unmount(): Promise<void> {
    if (await mounted(this.root)) {
      await run("umount", [this.root]).catch(() => run("umount", ["-l", this.root]));
    }
    await this.#lines.cancel().catch(() => {});
    await this.#child.status;
    await Deno.remove(this.#base, { recursive: true }).catch(() => {});
  }
}

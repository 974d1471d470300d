/** Test helper (private to cli/): runs the CLI in a child process with a controlled environment. */

const ROOT = new URL("..", import.meta.url).pathname;

/** Runs `main.ts <args>` in a fresh process with only the given SPIRE_* variables. */
export async function runSpire(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await spireCommand(args, env).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** A running `spire start` child process whose first stdout line can be awaited. */
export interface SpireChild {
  /** The child process. */
  process: Deno.ChildProcess;
  /** Resolves with the first stdout line, or rejects when stdout ends before one. */
  firstLine: Promise<string>;
  /** All of stdout, once the child closes it. */
  stdout: Promise<string>;
  /** All of stderr, once the child closes it. */
  stderr: Promise<string>;
}

/** Starts `main.ts <args>` in the background (same environment rules as runSpire). */
export function spawnSpire(args: string[], env: Record<string, string> = {}): SpireChild {
  const process = spireCommand(args, env).spawn();
  const line = Promise.withResolvers<string>();
  const stdout = (async () => {
    let text = "";
    const decoder = new TextDecoder();
    for await (const chunk of process.stdout) {
      text += decoder.decode(chunk, { stream: true });
      const nl = text.indexOf("\n");
      if (nl !== -1) line.resolve(text.slice(0, nl));
    }
    line.reject(new Error(`spire closed stdout before a full line: ${JSON.stringify(text)}`));
    return text;
  })();
  line.promise.catch(() => {}); // the caller may only look at stdout
  const stderr = new Response(process.stderr).text();
  return { process, firstLine: line.promise, stdout, stderr };
}

/** `main.ts <args>` with a clean environment: PATH, HOME, DENO_DIR, SPIRE_ROCKSDB_LIB and `env`. */
function spireCommand(args: string[], env: Record<string, string>): Deno.Command {
  const base: Record<string, string> = {};
  for (const name of ["PATH", "HOME", "DENO_DIR", "SPIRE_ROCKSDB_LIB"]) {
    const value = Deno.env.get(name);
    if (value !== undefined) base[name] = value;
  }
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", "main.ts", ...args],
    cwd: ROOT,
    env: { ...base, ...env },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  });
}

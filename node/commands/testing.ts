/**
 * Test support: a Spire client server over an in-memory engine, and a real
 * redis-server on a free loopback port for differential tests.
 *
 * @module
 */

import { ClientServer, type ClientServerOptions } from "../client_server.ts";
import { RespClient } from "../resp/client.ts";
import { LocalBackend } from "./backend.ts";
import { type EngineLike, MemoryEngine } from "./memory_engine.ts";

const dec = new TextDecoder();

/** A started Spire client server over a memory engine (or a given one). */
export interface TestServer<E extends EngineLike = MemoryEngine> {
  /** The server. */
  readonly server: ClientServer;
  /** Its backend. */
  readonly backend: LocalBackend;
  /** Its engine. */
  readonly engine: E;
  /** The bound port. */
  readonly port: number;
  /** Stops server and backend. */
  stop(): Promise<void>;
}

/**
 * Starts a client server on 127.0.0.1 with an ephemeral port, over a new
 * memory engine.
 * @param options server options (backend and port are filled in)
 * @returns the server handle
 */
export function startTestServer(
  options: Omit<ClientServerOptions, "backend" | "port"> = {},
): TestServer {
  return startTestServerOn(new MemoryEngine(), options);
}

/**
 * Starts a client server on 127.0.0.1 with an ephemeral port over the given
 * engine (which the caller closes after `stop`).
 * @param engine the engine
 * @param options server options (backend and port are filled in)
 * @returns the server handle
 */
export function startTestServerOn<E extends EngineLike>(
  engine: E,
  options: Omit<ClientServerOptions, "backend" | "port"> = {},
): TestServer<E> {
  const backend = new LocalBackend({ engine, now: options.now ?? Date.now });
  const server = new ClientServer({ ...options, backend, port: 0 });
  const { port } = server.start();
  return {
    server,
    backend,
    engine,
    port,
    async stop() {
      await server.stop();
      await backend.close();
    },
  };
}

/** A running redis-server. */
export interface RedisProcess {
  /** Its port. */
  readonly port: number;
  /** Its process id (for CPU figures). */
  readonly pid: number;
  /** Kills it and waits for it to exit. */
  stop(): Promise<void>;
}

/** redis-server starts tried on new ports when its port is found taken. */
const REDIS_START_ATTEMPTS = 4;

/**
 * Starts the installed redis-server on a free loopback port, without persistence.
 * A port found free by binding port 0 can be taken by another test before
 * redis-server binds it; the server is known to be ours only when INFO names
 * our child's process id, and it is started again on a new port otherwise.
 * @param extraArgs more redis-server arguments (e.g. ["--requirepass", "x"])
 * @returns the process handle
 * @throws {Error} when no start of redis-server answers within 5 s
 */
export async function startRedisServer(extraArgs: string[] = []): Promise<RedisProcess> {
  const pass = extraArgs.indexOf("--requirepass");
  const password = pass >= 0 ? extraArgs[pass + 1] : undefined;
  let why = "";
  for (let attempt = 1; attempt <= REDIS_START_ATTEMPTS; attempt++) {
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (probe.addr as Deno.NetAddr).port;
    probe.close();
    const child = new Deno.Command("redis-server", {
      args: [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        ...extraArgs,
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    let exited = false;
    void child.status.then(() => (exited = true));
    const stop = async () => {
      try {
        child.kill("SIGKILL");
      } catch { /* exited */ }
      await child.status;
    };
    const owner = await redisOwner(port, password, () => exited);
    if (owner === child.pid) return { port, pid: child.pid, stop };
    await stop();
    why = owner === undefined
      ? `no answer on port ${port} within 5 s`
      : `port ${port} was taken by process ${owner}`;
  }
  throw new Error(`Cannot start redis-server: ${why} (after ${REDIS_START_ATTEMPTS} tries)`);
}

/** The process id the Redis server on `port` reports, or undefined when none answers in 5 s. */
async function redisOwner(
  port: number,
  password: string | undefined,
  gone: () => boolean,
): Promise<number | undefined> {
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline && !gone()) {
    try {
      const c = await RespClient.connect({ port });
      try {
        if (password !== undefined) await c.call(["AUTH", password]);
        const info = await c.call(["INFO", "server"]);
        const text = info.kind === "bulk" && info.value !== null ? dec.decode(info.value) : "";
        const m = /process_id:(\d+)/.exec(text);
        return m === null ? -1 : Number(m[1]);
      } finally {
        c.close();
      }
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return undefined;
}

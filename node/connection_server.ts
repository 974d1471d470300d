/**
 * The client port as processes: a listener that accepts TCP connections and
 * starts one process per connection under a DynamicSupervisor, and a worker
 * that removes expired keys in the background:
 *
 * ```
 * clients (rest_for_one)
 * ├── connections   DynamicSupervisor (maxChildren = connectionsMax), temporary children
 * ├── listener      accepts; over the limit answers "-ERR max number of clients reached"
 * └── expiry        every tickMs: idle connections closed, expired keys swept in bounded batches
 * ```
 *
 * A connection process reads its socket one chunk at a time (the next read
 * starts only after the commands of the last one have been answered, so a
 * client that floods cannot fill the mailbox) and hands each chunk to its
 * `ClientConnection` (client_server.ts), which parses, executes in order
 * (pipelined commands keep their order) and writes the replies. A crash of a
 * connection process closes that connection only;
 * connection processes are temporary (a socket cannot be restarted): the
 * client reconnects and gets a new process. If a process is killed (no
 * `terminate`), the listener, which monitors every connection process, closes
 * its socket.
 *
 * The connection loop, counters, INFO fields, idle checks and expiry are
 * those of `ClientPort` (client_server.ts), shared with `ClientServer`; this
 * file only puts them into processes.
 *
 * @module
 */

import { bindOrExplain } from "./_listen.ts";
import {
  ClientConnection,
  ClientPort,
  type ClientPortOptions,
  type ClientServerStats,
  refuseConnection,
} from "./client_server.ts";
import type { CommandExecutor } from "./commands/executor.ts";
import {
  type ChildSpec,
  type Context,
  DynamicSupervisor,
  type GenServer,
  type Pid,
  SupervisorError,
  supervisorSpec,
  workerSpec,
} from "../supervisor/mod.ts";

/** Options of the client port as processes. */
export interface ConnectionServerOptions extends ClientPortOptions {
  /** Port; 0 picks a free one (kept across restarts of the listener). */
  readonly port: number;
  /** Housekeeping period in ms (default 100). */
  readonly tickMs?: number;
  /** Registered names: prefix of the processes (default "spire"). */
  readonly namePrefix?: string;
}

/** Counters of the client port. */
export type ConnectionServerStats = ClientServerStats;

/**
 * What the client port's processes share: options and the {@link ClientPort}
 * (executor, open connections, counters). One per node; survives restarts of
 * the processes. Single-key writes of a pipeline are started together unless
 * `pipelinedWrites: false`.
 */
export class ConnectionServer {
  /** The options. */
  readonly options: ConnectionServerOptions;
  /** The shared connection state. */
  readonly port: ClientPort;
  /** Registered names of the processes. */
  readonly names: { connections: string; listener: string; expiry: string };
  /** The listener a killed incarnation may have left open. */
  listener: Deno.Listener | undefined;
  /** The listener's pending accept: the port is free only once it settled after a close. */
  pendingAccept: Promise<unknown> | undefined;
  readonly #pids = new Map<string, Pid>(); // connection processes, by String(pid)

  /**
   * Creates the shared state of the client port.
   * @param options backend, address, limits and sources
   * @throws {RangeError} for invalid limits
   */
  constructor(options: ConnectionServerOptions) {
    this.options = options;
    this.port = new ClientPort({ ...options, pipelinedWrites: options.pipelinedWrites ?? true });
    const prefix = options.namePrefix ?? "spire";
    this.names = {
      connections: `${prefix}.connections`,
      listener: `${prefix}.listener`,
      expiry: `${prefix}.expiry`,
    };
  }

  /** Counters. */
  get stats(): Readonly<ConnectionServerStats> {
    return this.port.stats;
  }

  /** The command executor. */
  get executor(): CommandExecutor {
    return this.port.executor;
  }

  /** The bound port, once the listener ran. */
  get boundPort(): number {
    return this.port.boundPort;
  }

  /** Releases what the port loaded (see `ClientPort.close`): once the tree has stopped. */
  close(): void {
    this.port.close();
  }

  /** @internal A connection process started: registers its socket under its pid. */
  register(pid: Pid, conn: Deno.Conn): ClientConnection {
    this.#pids.set(String(pid), pid);
    return this.port.open(String(pid), conn);
  }

  /** @internal A connection process ended (or was killed): close its socket and forget it. */
  unregister(pid: Pid): void {
    this.#pids.delete(String(pid));
    this.port.forget(String(pid));
  }

  /** @internal The pids of every registered connection process. */
  connectionPids(): Pid[] {
    return [...this.#pids.values()];
  }

  /**
   * The `clients` supervisor's child spec: connections, listener, expiry.
   * @param id the child id
   * @returns a supervisor spec
   */
  childSpec(id = "clients"): ChildSpec {
    return supervisorSpec(id, [
      DynamicSupervisor.childSpec("connections", {
        name: this.names.connections,
        maxChildren: this.port.connectionsMax,
        label: "connections",
        // Connections are temporary: intensity only guards the supervisor itself.
        maxRestarts: 1000,
      }),
      workerSpec("listener", ListenerServer, this, { name: this.names.listener, shutdown: 5000 }),
      workerSpec("expiry", ExpiryServer, this, { name: this.names.expiry, shutdown: 5000 }),
    ], { strategy: "rest_for_one", label: "clients" });
  }
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch { /* already closed */ }
}

function safely(fn: () => unknown): void {
  try {
    fn();
  } catch { /* the process is gone */ }
}

// ---- connection process ---------------------------------------------------------

type ConnInfo =
  | { readonly type: "data"; readonly bytes: Uint8Array }
  | { readonly type: "eof" };

interface ConnState {
  readonly server: ConnectionServer;
  readonly conn: ClientConnection;
  readonly buf: Uint8Array;
}

function readNext(state: ConnState, ctx: Context): void {
  const self = ctx.self;
  state.conn.conn.read(state.buf).then(
    (n) => {
      const msg: ConnInfo = n === null
        ? { type: "eof" }
        : { type: "data", bytes: state.buf.subarray(0, n) };
      try {
        ctx.send(self, msg);
      } catch {
        state.server.unregister(self); // the process was killed: nobody serves this socket
      }
    },
    () => safely(() => ctx.send(self, { type: "eof" } satisfies ConnInfo)),
  );
}

/** One client connection. */
const ConnectionProcess: GenServer<
  { server: ConnectionServer; conn: Deno.Conn },
  ConnState,
  never,
  never,
  never,
  ConnInfo
> = {
  label: "connection",

  init({ server, conn }, ctx) {
    ctx.trapExit(true);
    const state: ConnState = {
      server,
      conn: server.register(ctx.self, conn),
      buf: new Uint8Array(64 * 1024),
    };
    readNext(state, ctx);
    return { state };
  },

  async handleInfo(msg, state, ctx) {
    if (msg.type !== "data") return msg.type === "eof" ? { stop: "normal", state } : { state };
    // The buffer is reused only after this returns: the next read starts below.
    if (!(await state.conn.handle(msg.bytes))) return { stop: "normal", state };
    readNext(state, ctx);
    return { state };
  },

  terminate(_reason, state, ctx) {
    state.server.unregister(ctx.self);
  },
};

// ---- listener ---------------------------------------------------------------------

type ListenerInfo =
  | { readonly type: "accepted"; readonly conn: Deno.Conn }
  | { readonly type: "closed" };

interface ListenerState {
  readonly server: ConnectionServer;
  readonly listener: Deno.Listener;
}

function acceptNext(state: ListenerState, ctx: Context): void {
  const self = ctx.self;
  const accepting = state.listener.accept();
  state.server.pendingAccept = accepting.catch(() => {});
  accepting.then(
    (conn) => {
      try {
        ctx.send(self, { type: "accepted", conn } satisfies ListenerInfo);
      } catch {
        closeQuietly(conn);
      }
    },
    () => safely(() => ctx.send(self, { type: "closed" } satisfies ListenerInfo)),
  );
}

const ListenerServer: GenServer<
  ConnectionServer,
  ListenerState,
  never,
  never,
  never,
  ListenerInfo
> = {
  label: "listener",

  async init(server, ctx) {
    ctx.trapExit(true);
    if (server.listener !== undefined) {
      // A killed incarnation could not close it: it still holds the port.
      try {
        server.listener.close();
      } catch { /* closed */ }
      server.listener = undefined;
    }
    // The socket is released once the last accept on it has settled.
    await server.pendingAccept;
    // Watch the connections a previous incarnation started (dead ones report DOWN at once).
    for (const pid of server.connectionPids()) ctx.monitor(pid);
    const port = server.options.port === 0 ? server.boundPort : server.options.port;
    const hostname = server.options.hostname ?? "127.0.0.1";
    const listener = bindOrExplain(
      "RESP clients",
      hostname,
      port,
      () => Deno.listen({ hostname, port }),
    );
    server.listener = listener;
    server.port.boundPort = (listener.addr as Deno.NetAddr).port;
    const state = { server, listener };
    acceptNext(state, ctx);
    return { state };
  },

  async handleInfo(msg, state, ctx) {
    if (msg.type === "DOWN") {
      // A connection process ended (killed ones included): its socket must not linger.
      if (msg.pid !== null) state.server.unregister(msg.pid);
      return { state };
    }
    if (msg.type === "closed") return { stop: new Error("the listening socket closed"), state };
    if (msg.type !== "accepted") return { state };
    const conn = msg.conn;
    try {
      const pid = await DynamicSupervisor.startChild(ctx, state.server.names.connections, {
        restart: "temporary",
        shutdown: 2000,
        start: (c) => c.startLink(ConnectionProcess, { server: state.server, conn }),
      });
      if (pid !== null) ctx.monitor(pid);
    } catch (e) {
      if (e instanceof SupervisorError) state.server.port.countRejected();
      await refuseConnection(conn);
    }
    acceptNext(state, ctx);
    return { state };
  },

  terminate(_reason, state) {
    if (state.server.listener === state.listener) state.server.listener = undefined;
    try {
      state.listener.close();
    } catch { /* closed */ }
  },
};

// ---- expiry -----------------------------------------------------------------------

interface ExpiryState {
  readonly server: ConnectionServer;
  cursor: Uint8Array | undefined;
}

const ExpiryServer: GenServer<ConnectionServer, ExpiryState, never, never, never, "tick"> = {
  label: "expiry",

  init(server, ctx) {
    ctx.sendAfter(ctx.self, "tick", server.options.tickMs ?? 100);
    return { state: { server, cursor: undefined } };
  },

  async handleInfo(msg, state, ctx) {
    if (msg !== "tick") return { state };
    const port = state.server.port;
    port.closeIdle();
    try {
      state.cursor = await port.expireStep(state.cursor);
    } catch {
      // Storage restarting: try again at the next tick.
    }
    ctx.sendAfter(ctx.self, "tick", state.server.options.tickMs ?? 100);
    return { state };
  },
};

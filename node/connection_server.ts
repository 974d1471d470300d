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
 * client that floods cannot fill the mailbox), parses RESP with
 * `RequestParser`, executes each command with the shared `CommandExecutor`
 * in order (pipelined commands keep their order) and writes the replies with
 * `ReplyWriter`. A crash of a connection process closes that connection only;
 * connection processes are temporary (a socket cannot be restarted): the
 * client reconnects and gets a new process. If a process is killed (no
 * `terminate`), the listener, which monitors every connection process, closes
 * its socket.
 *
 * This reuses the command layer of `client_server.ts` (parser, executor,
 * encoder); it exists because `ClientServer` runs its connections inside one
 * object and offers no way to hand it an accepted connection.
 *
 * @module
 */

import { bindOrExplain } from "./_listen.ts";
import type { KvBackend } from "./commands/backend.ts";
import { CommandExecutor, type PlainSource, type Session } from "./commands/executor.ts";
import { isExpired } from "./commands/kv_model.ts";
import { ReplyWriter } from "./resp/encoder.ts";
import { DEFAULT_REQUEST_LIMITS, type RequestLimits, RequestParser } from "./resp/parser.ts";
import { error, type Reply } from "./resp/reply.ts";
import type { CommandHook } from "./client_server.ts";
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

/** Options of the client port. */
export interface ConnectionServerOptions {
  /** Storage. */
  readonly backend: KvBackend;
  /** Interface to bind (default 127.0.0.1). */
  readonly hostname?: string;
  /** Port; 0 picks a free one (kept across restarts of the listener). */
  readonly port: number;
  /** When set, clients must AUTH. */
  readonly password?: string | undefined;
  /** Clock, ms since the epoch. */
  readonly now?: () => number;
  /** Open connections at most (default 10000). */
  readonly connectionsMax?: number;
  /** Connections idle this long are closed (default 3600000; 0: never). */
  readonly idleTimeoutMs?: number;
  /** Request parser limits (default: Redis's). */
  readonly requestLimits?: Partial<RequestLimits>;
  /** Housekeeping period in ms (default 100). */
  readonly tickMs?: number;
  /** Keys examined per housekeeping tick by the background expiry (default 500). */
  readonly expireScanKeysMax?: number;
  /** Engine statistics for INFO rocksdb and SPIRE.STATS. */
  readonly engineStats?: PlainSource;
  /** Regions for SPIRE.REGIONS. */
  readonly regions?: PlainSource;
  /** Called after each command. */
  readonly onCommand?: CommandHook;
  /** Registered names: prefix of the processes (default "spire"). */
  readonly namePrefix?: string;
  /**
   * Start the single-key writes of a pipeline together instead of one after
   * another (default true). Needs a backend that enqueues a write before its
   * `execute` first waits, as `RaftBackend` does.
   */
  readonly pipelinedWrites?: boolean;
}

/** Counters of the client port. */
export interface ConnectionServerStats {
  /** Open connections. */
  connectedClients: number;
  /** Connections accepted since the node started. */
  totalConnectionsReceived: number;
  /** Connections refused at connectionsMax. */
  rejectedConnections: number;
  /** Commands executed. */
  totalCommandsProcessed: number;
  /** Connections closed for a protocol error. */
  protocolErrors: number;
  /** Connections closed for idleness. */
  idleDisconnects: number;
  /** Keys removed by the background expiry. */
  expiredKeys: number;
  /** Bytes received. */
  netInputBytes: number;
  /** Bytes sent. */
  netOutputBytes: number;
}

interface Conn {
  readonly pid: Pid;
  readonly conn: Deno.Conn;
  readonly session: Session;
  lastActivityMs: number;
  busy: boolean;
}

/**
 * What the client port's processes share: options, the executor, the open
 * connections and counters. One per node; survives restarts of the processes.
 */
export class ConnectionServer {
  readonly options: ConnectionServerOptions;
  readonly executor: CommandExecutor;
  readonly limits: RequestLimits;
  readonly now: () => number;
  readonly names: { connections: string; listener: string; expiry: string };
  /** Whether single-key writes of a pipeline are started together. */
  readonly pipelinedWrites: boolean;
  readonly #conns = new Map<string, Conn>(); // by connection process pid
  readonly #stats: ConnectionServerStats = {
    connectedClients: 0,
    totalConnectionsReceived: 0,
    rejectedConnections: 0,
    totalCommandsProcessed: 0,
    protocolErrors: 0,
    idleDisconnects: 0,
    expiredKeys: 0,
    netInputBytes: 0,
    netOutputBytes: 0,
  };
  /** The bound port, once the listener ran. */
  boundPort = 0;
  /** The listener a killed incarnation may have left open. */
  listener: Deno.Listener | undefined;
  /** The listener's pending accept: the port is free only once it settled after a close. */
  pendingAccept: Promise<unknown> | undefined;
  #nextId = 1;
  readonly #startedMs: number;

  /**
   * Creates the shared state of the client port.
   * @param options backend, address, limits and sources
   */
  constructor(options: ConnectionServerOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
    this.limits = { ...DEFAULT_REQUEST_LIMITS, ...options.requestLimits };
    const prefix = options.namePrefix ?? "spire";
    this.names = {
      connections: `${prefix}.connections`,
      listener: `${prefix}.listener`,
      expiry: `${prefix}.expiry`,
    };
    this.#startedMs = this.now();
    this.pipelinedWrites = options.pipelinedWrites ?? true;
    this.executor = new CommandExecutor({
      backend: options.backend,
      now: this.now,
      password: options.password,
      serverSections: () => this.#infoSections(),
      sessions: () => [...this.#conns.values()].map((c) => c.session),
      ...(options.engineStats !== undefined ? { engineStats: options.engineStats } : {}),
      ...(options.regions !== undefined ? { regions: options.regions } : {}),
    });
  }

  /** Counters. */
  get stats(): Readonly<ConnectionServerStats> {
    return { ...this.#stats, connectedClients: this.#conns.size };
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
        maxChildren: this.options.connectionsMax ?? 10_000,
        label: "connections",
        // Connections are temporary: intensity only guards the supervisor itself.
        maxRestarts: 1000,
      }),
      workerSpec("listener", ListenerServer, this, { name: this.names.listener, shutdown: 5000 }),
      workerSpec("expiry", ExpiryServer, this, { name: this.names.expiry, shutdown: 5000 }),
    ], { strategy: "rest_for_one", label: "clients" });
  }

  /** @internal A connection process started. */
  register(pid: Pid, conn: Deno.Conn): Session {
    const remote = conn.remoteAddr as Deno.NetAddr;
    const session = this.executor.newSession(this.#nextId++, `${remote.hostname}:${remote.port}`);
    this.#conns.set(String(pid), { pid, conn, session, lastActivityMs: this.now(), busy: false });
    this.#stats.totalConnectionsReceived++;
    return session;
  }

  /** @internal A connection process ended: close its socket (again) and forget it. */
  unregister(pid: Pid | string): void {
    const c = this.#conns.get(String(pid));
    if (c === undefined) return;
    this.#conns.delete(String(pid));
    closeQuietly(c.conn);
  }

  /** @internal The pids of every registered connection process. */
  connectionPids(): Pid[] {
    return [...this.#conns.values()].map((c) => c.pid);
  }

  /** @internal */
  connOf(pid: Pid): Conn | undefined {
    return this.#conns.get(String(pid));
  }

  /** @internal */
  count(
    field:
      | "rejectedConnections"
      | "protocolErrors"
      | "netInputBytes"
      | "netOutputBytes"
      | "totalCommandsProcessed"
      | "expiredKeys"
      | "idleDisconnects",
    n = 1,
  ): void {
    this.#stats[field] += n;
  }

  /** @internal Sockets idle past the timeout, closed; returns how many. */
  closeIdle(): number {
    const timeout = this.options.idleTimeoutMs ?? 3_600_000;
    if (timeout <= 0) return 0;
    const now = this.now();
    let n = 0;
    for (const c of this.#conns.values()) {
      if (!c.busy && now - c.lastActivityMs > timeout) {
        closeQuietly(c.conn); // the connection process sees EOF and stops
        n++;
      }
    }
    this.#stats.idleDisconnects += n;
    return n;
  }

  /** @internal Runs one command with metrics. */
  async run(session: Session, args: Uint8Array[]): Promise<Reply> {
    const started = performance.now();
    let reply: Reply;
    try {
      reply = await this.executor.execute(session, args);
    } catch (e) {
      reply = error(`ERR internal error: ${e instanceof Error ? e.message : String(e)}`);
    }
    this.#stats.totalCommandsProcessed++;
    this.options.onCommand?.({
      name: this.executor.commandName(args) ?? "unknown",
      durationMs: performance.now() - started,
      failed: reply.kind === "error",
    });
    return reply;
  }

  #infoSections(): Record<string, Record<string, string | number>> {
    const s = this.stats;
    const uptime = Math.floor((this.now() - this.#startedMs) / 1000);
    return {
      server: {
        redis_version: "7.0.0",
        spire_mode: "standalone",
        redis_mode: "standalone",
        process_id: Deno.pid,
        tcp_port: this.boundPort,
        uptime_in_seconds: uptime,
        uptime_in_days: Math.floor(uptime / 86400),
      },
      clients: {
        connected_clients: s.connectedClients,
        maxclients: this.options.connectionsMax ?? 10_000,
        idle_timeout_ms: this.options.idleTimeoutMs ?? 3_600_000,
      },
      stats: {
        total_connections_received: s.totalConnectionsReceived,
        total_commands_processed: s.totalCommandsProcessed,
        rejected_connections: s.rejectedConnections,
        expired_keys: s.expiredKeys,
        total_net_input_bytes: s.netInputBytes,
        total_net_output_bytes: s.netOutputBytes,
        protocol_errors: s.protocolErrors,
        idle_disconnects: s.idleDisconnects,
      },
    };
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

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<boolean> {
  let off = 0;
  try {
    while (off < bytes.length) off += await conn.write(bytes.subarray(off));
    return true;
  } catch {
    return false;
  }
}

// ---- connection process ---------------------------------------------------------

/**
 * Commands that touch one key and reach the backend without waiting on
 * anything first: executing one of them enqueues its Raft proposal before it
 * returns, so several started back to back are proposed, and applied, in
 * pipeline order. Writes of one key keep their order; retries cannot reorder
 * them (a proposal refused without effect refuses the ones behind it too).
 */
const PIPELINED_WRITES: ReadonlySet<string> = new Set([
  "set",
  "incr",
  "decr",
  "incrby",
  "decrby",
  "append",
  "getdel",
  "persist",
]);

/** Writes of one pipeline in flight at once, at most. */
const PIPELINED_WRITES_MAX = 256;

function isPipelinableWrite(s: ConnectionServer, args: readonly Uint8Array[]): boolean {
  const name = s.executor.commandName(args);
  if (name === undefined) return false;
  if (PIPELINED_WRITES.has(name)) return true;
  return (name === "del" || name === "unlink") && args.length === 2; // one key: one region
}

type ConnInfo =
  | { readonly type: "data"; readonly bytes: Uint8Array }
  | { readonly type: "eof" };

interface ConnState {
  readonly server: ConnectionServer;
  readonly conn: Deno.Conn;
  readonly session: Session;
  readonly parser: RequestParser;
  readonly writer: ReplyWriter;
  readonly buf: Uint8Array;
}

function readNext(state: ConnState, ctx: Context): void {
  const self = ctx.self;
  state.conn.read(state.buf).then(
    (n) => {
      const msg: ConnInfo = n === null
        ? { type: "eof" }
        : { type: "data", bytes: state.buf.slice(0, n) };
      try {
        ctx.send(self, msg);
      } catch {
        state.server.unregister(self); // the process was killed: nobody serves this socket
        closeQuietly(state.conn);
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
    const session = server.register(ctx.self, conn);
    const state: ConnState = {
      server,
      conn,
      session,
      parser: new RequestParser(server.limits),
      writer: new ReplyWriter(),
      buf: new Uint8Array(64 * 1024),
    };
    readNext(state, ctx);
    return { state };
  },

  async handleInfo(msg, state, ctx) {
    if (msg.type === "eof") return { stop: "normal", state };
    if (msg.type !== "data") return { state };
    const s = state.server;
    const c = s.connOf(ctx.self);
    s.count("netInputBytes", msg.bytes.length);
    if (c !== undefined) {
      c.lastActivityMs = s.now();
      c.busy = true;
    }
    state.parser.feed(msg.bytes);
    let keepOpen = true;
    // Single-key writes of a pipeline are started together (see PIPELINED_WRITES); anything
    // else first waits for the replies before it, so reads see the writes sent before them.
    const started: Promise<Reply>[] = [];
    const drain = async (): Promise<void> => {
      for (const p of started) state.writer.write(await p, state.session.resp);
      started.length = 0;
    };
    for (;;) {
      const req = state.parser.next();
      if (req === undefined) break;
      if (req.kind === "error") {
        await drain();
        s.count("protocolErrors");
        state.writer.write(error(req.message), state.session.resp);
        keepOpen = false;
        break;
      }
      if (s.pipelinedWrites && isPipelinableWrite(s, req.args)) {
        started.push(s.run(state.session, req.args));
        if (started.length >= PIPELINED_WRITES_MAX) await drain();
        continue;
      }
      await drain();
      const reply = await s.run(state.session, req.args);
      state.writer.write(reply, state.session.resp);
      if (state.session.closeAfterReply) {
        keepOpen = false;
        break;
      }
      if (state.writer.length >= 1 << 20) {
        const bytes = state.writer.take();
        if (!(await writeAll(state.conn, bytes))) return { stop: "normal", state };
        s.count("netOutputBytes", bytes.length);
      }
    }
    await drain();
    if (c !== undefined) {
      c.busy = false;
      c.lastActivityMs = s.now();
    }
    if (state.writer.length > 0) {
      const bytes = state.writer.take();
      if (!(await writeAll(state.conn, bytes))) return { stop: "normal", state };
      s.count("netOutputBytes", bytes.length);
    }
    if (!keepOpen) return { stop: "normal", state };
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

const encoder = new TextEncoder();

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
    server.boundPort = (listener.addr as Deno.NetAddr).port;
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
      if (e instanceof SupervisorError) state.server.count("rejectedConnections");
      await writeAll(conn, encoder.encode("-ERR max number of clients reached\r\n"));
      closeQuietly(conn);
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
    const s = state.server;
    s.closeIdle();
    try {
      const now = s.now();
      const page = await s.options.backend.scanKeys(
        state.cursor,
        s.options.expireScanKeysMax ?? 500,
      );
      const expired = page.entries.filter((e) => isExpired(e.value, now)).map((e) => e.key);
      const last = page.entries[page.entries.length - 1];
      state.cursor = page.done || last === undefined ? undefined : last.key;
      if (expired.length > 0) {
        const reply = await s.options.backend.execute({ op: "sweep", keys: expired });
        if (reply.kind === "integer") s.count("expiredKeys", Number(reply.value));
      }
    } catch {
      // Storage restarting: try again at the next tick.
    }
    ctx.sendAfter(ctx.self, "tick", s.options.tickMs ?? 100);
    return { state };
  },
};

/**
 * The Redis-compatible client port: a TCP server speaking RESP2/RESP3 with
 * per-connection sessions, pipelining, AUTH, connection and request limits,
 * an idle timeout, and a background task that removes expired keys in bounded
 * batches. Command semantics live in `node/commands/`; storage is a
 * {@link KvBackend}.
 *
 * @module
 */

import { type KvBackend } from "./commands/backend.ts";
import { CommandExecutor, type PlainSource, type Session } from "./commands/executor.ts";
import { isExpired } from "./commands/kv_model.ts";
import { ReplyWriter } from "./resp/encoder.ts";
import {
  DEFAULT_REQUEST_LIMITS,
  type RequestLimits,
  RequestParser,
  validateRequestLimits,
} from "./resp/parser.ts";
import { error, type Reply } from "./resp/reply.ts";

/** A hook called after every command, for metrics. */
export type CommandHook = (event: {
  /** Command name (`get`, `client|setname`; `unknown` for unknown commands). */
  readonly name: string;
  /** Execution time in ms. */
  readonly durationMs: number;
  /** True when the reply was an error. */
  readonly failed: boolean;
}) => void;

/** Options of {@link ClientServer}. */
export interface ClientServerOptions {
  /** Storage. */
  readonly backend: KvBackend;
  /** Interface to listen on (default 127.0.0.1). */
  readonly hostname?: string;
  /** TCP port (default 6379; 0 picks a free one). */
  readonly port?: number;
  /** When set, clients must AUTH. Never logged. */
  readonly password?: string | undefined;
  /** The clock, ms since the epoch (default Date.now). */
  readonly now?: () => number;
  /** Open connections at most; more are refused with an error (default 10000). */
  readonly connectionsMax?: number;
  /** Connections without traffic for this long are closed, ms (default 3600000; 0: never). */
  readonly idleTimeoutMs?: number;
  /**
   * Request parser limits. Defaults: Redis's, except bulkBytesMax (32 MiB, the
   * engine's value limit) and requestBytesMax (128 MiB).
   */
  readonly requestLimits?: Partial<RequestLimits>;
  /** Bytes of replies buffered before they are flushed mid-pipeline (default 1 MiB). */
  readonly replyFlushBytes?: number;
  /** Housekeeping period (idle checks, expiry), ms (default 100). */
  readonly tickMs?: number;
  /** Keys examined per housekeeping tick by the background expiry (default 500). */
  readonly expireScanKeysMax?: number;
  /** Engine statistics for INFO rocksdb and SPIRE.STATS. */
  readonly engineStats?: PlainSource;
  /** Regions for SPIRE.REGIONS. */
  readonly regions?: PlainSource;
  /** Largest MGET or SPIRE.SCANRANGE reply, in value bytes (default 256 MiB). */
  readonly replyBytesMax?: number;
  /** Called after each command. */
  readonly onCommand?: CommandHook;
  /** Diagnostic log (default: none). */
  readonly log?: (message: string) => void;
}

interface Client {
  readonly conn: Deno.Conn;
  readonly session: Session;
  lastActivityMs: number;
  busy: boolean;
  closed: boolean;
}

/** Counters of the client server (INFO stats, metrics). */
export interface ClientServerStats {
  /** Currently open connections. */
  connectedClients: number;
  /** Connections accepted since start. */
  totalConnectionsReceived: number;
  /** Connections refused because of connectionsMax. */
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

const encoder = new TextEncoder();

function positive(name: string, v: number, allowZero = false): number {
  if (!Number.isSafeInteger(v) || v < 0 || (!allowZero && v === 0)) {
    throw new RangeError(
      `Invalid client server option ${name}: ${v} is not a ${
        allowZero ? "non-negative" : "positive"
      } integer`,
    );
  }
  return v;
}

/**
 * The client server.
 * @example
 * ```ts ignore
 * const server = new ClientServer({ backend, port: 0 });
 * const { port } = server.start();
 * // ... clients connect to 127.0.0.1:port
 * await server.stop();
 * ```
 */
export class ClientServer {
  readonly #backend: KvBackend;
  readonly #executor: CommandExecutor;
  readonly #now: () => number;
  readonly #hostname: string;
  readonly #port: number;
  readonly #connectionsMax: number;
  readonly #idleTimeoutMs: number;
  readonly #limits: RequestLimits;
  readonly #replyFlushBytes: number;
  readonly #tickMs: number;
  readonly #expireScanKeysMax: number;
  readonly #onCommand: CommandHook | undefined;
  readonly #log: (message: string) => void;
  readonly #clients = new Map<number, Client>();
  readonly #handlers = new Set<Promise<void>>();
  #listener: Deno.Listener | undefined;
  #acceptLoop: Promise<void> | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #tickRunning: Promise<void> | undefined;
  #expiryCursor: Uint8Array | undefined;
  #nextClientId = 1;
  #startedMs = 0;
  #boundPort = 0;
  readonly #stats: ClientServerStats = {
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

  /**
   * Creates a server; nothing listens until {@link ClientServer.start}.
   * @param options backend, address, limits and sources
   * @throws {RangeError} for invalid limits
   */
  constructor(options: ClientServerOptions) {
    this.#backend = options.backend;
    this.#now = options.now ?? Date.now;
    this.#hostname = options.hostname ?? "127.0.0.1";
    this.#port = options.port ?? 6379;
    if (!Number.isInteger(this.#port) || this.#port < 0 || this.#port > 65535) {
      throw new RangeError(`Invalid client server option port: ${this.#port} is not in 0..65535`);
    }
    this.#connectionsMax = positive("connectionsMax", options.connectionsMax ?? 10_000);
    this.#idleTimeoutMs = positive("idleTimeoutMs", options.idleTimeoutMs ?? 3_600_000, true);
    this.#limits = {
      ...DEFAULT_REQUEST_LIMITS,
      bulkBytesMax: 32 * 1024 * 1024,
      requestBytesMax: 128 * 1024 * 1024,
      ...options.requestLimits,
    };
    validateRequestLimits(this.#limits);
    if (this.#limits.bulkBytesMax > this.#limits.requestBytesMax) {
      throw new RangeError(
        `Invalid request limits: bulkBytesMax ${this.#limits.bulkBytesMax} exceeds requestBytesMax ${this.#limits.requestBytesMax}`,
      );
    }
    this.#replyFlushBytes = positive("replyFlushBytes", options.replyFlushBytes ?? 1 << 20);
    this.#tickMs = positive("tickMs", options.tickMs ?? 100);
    this.#expireScanKeysMax = positive("expireScanKeysMax", options.expireScanKeysMax ?? 500);
    this.#onCommand = options.onCommand;
    this.#log = options.log ?? (() => {});
    this.#executor = new CommandExecutor({
      backend: options.backend,
      now: this.#now,
      password: options.password,
      serverSections: () => this.#infoSections(),
      sessions: () => [...this.#clients.values()].map((c) => c.session),
      ...(options.engineStats !== undefined ? { engineStats: options.engineStats } : {}),
      ...(options.replyBytesMax !== undefined ? { replyBytesMax: options.replyBytesMax } : {}),
      ...(options.regions !== undefined ? { regions: options.regions } : {}),
    });
  }

  /** Counters since start. */
  get stats(): Readonly<ClientServerStats> {
    return { ...this.#stats, connectedClients: this.#clients.size };
  }

  /** The executor (for embedding the command layer without TCP). */
  get executor(): CommandExecutor {
    return this.#executor;
  }

  /**
   * Starts listening.
   * @returns the bound address
   * @throws {Error} when already started, or what Deno.listen throws
   */
  start(): { hostname: string; port: number } {
    if (this.#listener !== undefined) {
      throw new Error("Cannot start client server: already started");
    }
    this.#listener = Deno.listen({ hostname: this.#hostname, port: this.#port, transport: "tcp" });
    this.#boundPort = (this.#listener.addr as Deno.NetAddr).port;
    this.#startedMs = this.#now();
    this.#acceptLoop = this.#accept(this.#listener);
    this.#timer = setInterval(() => {
      this.#tickRunning ??= this.tick().finally(() => (this.#tickRunning = undefined));
    }, this.#tickMs);
    return { hostname: this.#hostname, port: this.#boundPort };
  }

  /** Stops accepting, closes every connection and waits for their handlers. Safe to call twice. */
  async stop(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    const listener = this.#listener;
    this.#listener = undefined;
    if (listener !== undefined) {
      try {
        listener.close();
      } catch { /* already closed */ }
    }
    await this.#acceptLoop;
    for (const c of this.#clients.values()) this.#close(c);
    await Promise.allSettled([...this.#handlers]);
    await this.#tickRunning;
  }

  async #accept(listener: Deno.Listener): Promise<void> {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch {
        return; // Listener closed.
      }
      this.#stats.totalConnectionsReceived++;
      if (this.#clients.size >= this.#connectionsMax) {
        this.#stats.rejectedConnections++;
        this.#refuse(conn);
        continue;
      }
      const p = this.#serve(conn).catch((e) => this.#log(`client handler failed: ${e}`));
      this.#handlers.add(p);
      p.finally(() => this.#handlers.delete(p));
    }
  }

  #refuse(conn: Deno.Conn): void {
    const p = conn.write(encoder.encode("-ERR max number of clients reached\r\n"))
      .then(() => {}, () => {})
      .finally(() => {
        try {
          conn.close();
        } catch { /* gone */ }
      });
    this.#handlers.add(p);
    p.finally(() => this.#handlers.delete(p));
  }

  #close(c: Client): void {
    if (c.closed) return;
    c.closed = true;
    try {
      c.conn.close();
    } catch { /* already closed */ }
  }

  async #write(c: Client, bytes: Uint8Array): Promise<boolean> {
    let off = 0;
    try {
      while (off < bytes.length) off += await c.conn.write(bytes.subarray(off));
    } catch {
      this.#close(c);
      return false;
    }
    this.#stats.netOutputBytes += bytes.length;
    return true;
  }

  async #serve(conn: Deno.Conn): Promise<void> {
    const id = this.#nextClientId++;
    const remote = conn.remoteAddr as Deno.NetAddr;
    const client: Client = {
      conn,
      session: this.#executor.newSession(id, `${remote.hostname}:${remote.port}`),
      lastActivityMs: this.#now(),
      busy: false,
      closed: false,
    };
    this.#clients.set(id, client);
    const parser = new RequestParser(this.#limits);
    const writer = new ReplyWriter();
    const buf = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        let n: number | null;
        try {
          n = await conn.read(buf);
        } catch {
          return; // Closed by us (idle, stop) or reset by the peer.
        }
        if (n === null || client.closed) return;
        this.#stats.netInputBytes += n;
        client.lastActivityMs = this.#now();
        parser.feed(buf.subarray(0, n));
        client.busy = true;
        const keepOpen = await this.#runParsed(client, parser, writer);
        client.busy = false;
        client.lastActivityMs = this.#now();
        if (writer.length > 0 && !(await this.#write(client, writer.take()))) return;
        if (!keepOpen) return;
      }
    } finally {
      this.#clients.delete(id);
      this.#close(client);
    }
  }

  /** Executes every complete command in the parser; false when the connection must close. */
  async #runParsed(c: Client, parser: RequestParser, writer: ReplyWriter): Promise<boolean> {
    for (;;) {
      const req = parser.next();
      if (req === undefined) return true;
      if (req.kind === "error") {
        this.#stats.protocolErrors++;
        writer.write(error(req.message), c.session.resp);
        return false;
      }
      const reply = await this.#run(c.session, req.args);
      writer.write(reply, c.session.resp);
      if (c.session.closeAfterReply) return false;
      if (writer.length >= this.#replyFlushBytes && !(await this.#write(c, writer.take()))) {
        return false;
      }
    }
  }

  async #run(session: Session, args: Uint8Array[]): Promise<Reply> {
    const started = performance.now();
    let reply: Reply;
    try {
      reply = await this.#executor.execute(session, args);
    } catch (e) {
      this.#log(`command failed: ${e instanceof Error ? e.message : String(e)}`);
      reply = error(`ERR internal error: ${e instanceof Error ? e.message : String(e)}`);
    }
    this.#stats.totalCommandsProcessed++;
    this.#onCommand?.({
      name: this.#executor.commandName(args) ?? "unknown",
      durationMs: performance.now() - started,
      failed: reply.kind === "error",
    });
    return reply;
  }

  /**
   * One housekeeping pass: closes idle connections and removes up to
   * expireScanKeysMax keys' worth of expired keys. Runs every tickMs; exposed
   * so that tests with a fake clock can drive it.
   */
  async tick(): Promise<void> {
    const now = this.#now();
    if (this.#idleTimeoutMs > 0) {
      for (const c of this.#clients.values()) {
        if (!c.busy && now - c.lastActivityMs > this.#idleTimeoutMs) {
          this.#stats.idleDisconnects++;
          this.#close(c);
        }
      }
    }
    try {
      await this.#expireStep(now);
    } catch (e) {
      this.#log(`background expiry failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  async #expireStep(now: number): Promise<void> {
    const page = await this.#backend.scanKeys(this.#expiryCursor, this.#expireScanKeysMax);
    const expired = page.entries.filter((e) => isExpired(e.value, now)).map((e) => e.key);
    const last = page.entries[page.entries.length - 1];
    this.#expiryCursor = page.done || last === undefined ? undefined : last.key;
    if (expired.length === 0) return;
    const reply = await this.#backend.execute({ op: "sweep", keys: expired });
    if (reply.kind === "integer") this.#stats.expiredKeys += Number(reply.value);
  }

  #infoSections(): Record<string, Record<string, string | number>> {
    const now = this.#now();
    const s = this.stats;
    const uptime = Math.floor((now - this.#startedMs) / 1000);
    return {
      server: {
        redis_version: "7.0.0",
        spire_mode: "standalone",
        redis_mode: "standalone",
        process_id: Deno.pid,
        tcp_port: this.#boundPort,
        uptime_in_seconds: uptime,
        uptime_in_days: Math.floor(uptime / 86400),
      },
      clients: {
        connected_clients: s.connectedClients,
        maxclients: this.#connectionsMax,
        idle_timeout_ms: this.#idleTimeoutMs,
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

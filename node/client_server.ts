/**
 * The Redis-compatible client port: a TCP server speaking RESP2/RESP3 with
 * per-connection sessions, pipelining, AUTH, connection and request limits,
 * an idle timeout, and a background task that removes expired keys in bounded
 * batches. Command semantics live in `node/commands/`; storage is a
 * {@link KvBackend}.
 *
 * The connection loop exists once, here: {@link ClientPort} holds what every
 * connection shares (executor, counters, INFO fields, idle checks, expiry) and
 * {@link ClientConnection} runs one connection's commands. {@link ClientServer}
 * drives them from one accept loop; the node's `ConnectionServer`
 * (connection_server.ts) from one process per connection.
 *
 * @module
 */

import process from "node:process";
import { type KvBackend } from "./commands/backend.ts";
import { CommandStats } from "./command_stats.ts";
import {
  CommandExecutor,
  type PlainSource,
  type Refusal,
  refusalOf,
  type Session,
} from "./commands/executor.ts";
import { ReplyWriter } from "./resp/encoder.ts";
import {
  DEFAULT_REQUEST_LIMITS,
  type RequestLimits,
  RequestParser,
  validateRequestLimits,
} from "./resp/parser.ts";
import { error, type Reply } from "./resp/reply.ts";
import { NativeGets, NativeStop } from "./native_gets.ts";
import type { SetBatch } from "./commands/set_batch.ts";
import { KEY_BYTES_MAX, VALUE_BYTES_MAX } from "./commands/kv_model.ts";

/** A hook called after every command, for metrics. */
export type CommandHook = (event: {
  /** Command name (`get`, `client|setname`; `unknown` for unknown commands). */
  readonly name: string;
  /** Execution time in ms. */
  readonly durationMs: number;
  /** True when the reply was an error. */
  readonly failed: boolean;
}) => void;

/**
 * Options shared by every form of the client port ({@link ClientServer} and
 * the node's per-connection processes): storage, limits and sources.
 */
export interface ClientPortOptions {
  /** Storage. */
  readonly backend: KvBackend;
  /** Interface to listen on (default 127.0.0.1). */
  readonly hostname?: string;
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
  /**
   * Keys examined per housekeeping tick by the background expiry (default 2048: about 1 ms of
   * the event loop; see `Engine.scanExpired`).
   */
  readonly expireScanKeysMax?: number;
  /** Engine statistics for INFO rocksdb and SPIRE.STATS. */
  readonly engineStats?: PlainSource;
  /** Regions for SPIRE.REGIONS. */
  readonly regions?: PlainSource;
  /**
   * CONFIG GET parameters the port does not know itself (the node's `dir`, durability); the
   * port adds its own: port, bind, maxclients, timeout, databases, proto-max-bulk-len,
   * client-query-buffer-limit.
   */
  readonly configParameters?: () => Readonly<Record<string, string>>;
  /**
   * INFO memory fields the port does not know itself (the engine's memtables and block cache,
   * the value cache); the port adds the process's own figures.
   */
  readonly memoryFields?: () => Readonly<Record<string, string | number>>;
  /** Largest MGET or SPIRE.SCANRANGE reply, in value bytes (default 256 MiB). */
  readonly replyBytesMax?: number;
  /** Called after each command. */
  readonly onCommand?: CommandHook;
  /** Diagnostic log (default: none). */
  readonly log?: (message: string) => void;
  /**
   * Start the single-key writes of a pipeline together instead of one after
   * another. Needs a backend that enqueues a write before its `execute` first
   * waits, as `RaftBackend` does (default false).
   */
  readonly pipelinedWrites?: boolean;
  /**
   * Whether a connection's pipelined writes keep their order only within a region ("region", the
   * default) or across regions too ("sent", as from redis-server; see NodeConfig.writeOrder).
   * Only a backend with regions (KvBackend.regionOf) tells them apart.
   */
  readonly writeOrder?: "sent" | "region";
  /**
   * The native GET path (node/native_gets.ts): runs of pipelined GETs answered from the
   * engine's memory in one FFI call, when the backend allows direct reads (default: the
   * library `./spire` builds, if it is there; false: every GET takes the executor's path).
   */
  readonly nativeGets?: NativeGets | false;
}

/** Options of {@link ClientServer}. */
export interface ClientServerOptions extends ClientPortOptions {
  /** TCP port (default 6379; 0 picks a free one). */
  readonly port?: number;
  /** Housekeeping period (idle checks, expiry), ms (default 100). */
  readonly tickMs?: number;
}

/** Counters of the client port (INFO stats, metrics). */
export interface ClientServerStats {
  /** Currently open connections. */
  connectedClients: number;
  /** Connections accepted since start. */
  totalConnectionsReceived: number;
  /** Connections refused because of connectionsMax. */
  rejectedConnections: number;
  /** Commands executed (unknown and rejected ones are not: see CommandStats.record). */
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
  /** Keys looked up by read commands that held a live value (see CommandExecutor.lookups). */
  keyspaceHits: number;
  /** Keys looked up by read commands that were missing or expired. */
  keyspaceMisses: number;
  /** Commands the native paths took: GETs answered, SETs of the SET lane (in totalCommandsProcessed). */
  nativeCommandsProcessed: number;
  /** 1 when the native GET path is given or loaded, 0 when off, not built, or not needed yet. */
  nativeGetPath: number;
}

/** The counters of {@link ClientServerStats} that CONFIG RESETSTAT starts again in INFO. */
const RESETTABLE = [
  "totalConnectionsReceived",
  "rejectedConnections",
  "totalCommandsProcessed",
  "protocolErrors",
  "idleDisconnects",
  "expiredKeys",
  "netInputBytes",
  "netOutputBytes",
  "keyspaceHits",
  "keyspaceMisses",
  "nativeCommandsProcessed",
] as const;
type ResettableStat = typeof RESETTABLE[number];

const encoder = new TextEncoder();
const NO_BYTES = new Uint8Array(0);

/** The error line sent to a connection refused at connectionsMax. */
export const MAX_CLIENTS_REPLY: Uint8Array = encoder.encode(
  "-ERR max number of clients reached\r\n",
);

/** Bytes as Redis's `*_human` fields print them: `1.50M`, `512B`. */
function humanBytes(n: number): string {
  const units = ["B", "K", "M", "G", "T"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n}B` : `${v.toFixed(2)}${units[i]}`;
}

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

/**
 * Single-key reads without side effects: consecutive ones of a pipeline are
 * started together (the backend may serve them with one engine MultiGet).
 * A read never starts before the writes sent before it are answered, and a
 * write never before the reads sent before it are.
 */
const PIPELINED_READS: ReadonlySet<string> = new Set([
  "get",
  "strlen",
  "ttl",
  "pttl",
  "type",
]);

/** Commands of one pipeline in flight at once, at most. */
const PIPELINED_COMMANDS_MAX = 256;

/**
 * GETs answered by one native call at most, and the reply room it gets: a call holds the
 * event loop for about 2-5 µs per GET, so well under a few milliseconds.
 */
const NATIVE_COMMANDS_MAX = 256;
const NATIVE_REPLY_ROOM_BYTES = 64 * 1024;

/**
 * Whether the request at bytes[start, end) may be a GET: it starts `*2` and has `G` or `g`
 * where the command name's first letter goes. The native code checks the whole frame; this
 * spares every other request the engine handles and the FFI call.
 */
function mayBeGet(bytes: Uint8Array, start: number, end: number): boolean {
  return end - start >= 9 && bytes[start] === 42 && bytes[start + 1] === 50 &&
    (bytes[start + 8]! | 0x20) === 103;
}

/**
 * Whether the request at bytes[start, end) may be a SET: it starts `*3` and has `S` or `s`
 * where the command name's first letter goes (the native code checks the whole frame).
 */
function mayBeSet(bytes: Uint8Array, start: number, end: number): boolean {
  return end - start >= 9 && bytes[start] === 42 && bytes[start + 1] === 51 &&
    (bytes[start + 8]! | 0x20) === 115;
}

/** Calls of the native SET path for one run of SETs at most (each may open a new batch). */
const NATIVE_SET_CALLS_MAX = 64;

/** SETs of a connection taken by the SET lane: answered, in order, from their batch. */
export interface SetTicket {
  /** The batch holding them. */
  readonly batch: SetBatch;
  /** The first one's place in the batch, and how many. */
  readonly first: number;
  readonly count: number;
  /** When they were taken (performance.now()), for the command latency metric. */
  readonly takenMs: number;
}

/**
 * A connection's writes started and not yet answered, for the order of its writes across regions
 * (see `#runParsed`): whether there are any, and the one region they go to (undefined when the
 * backend has no regions). `blocked`: the SET lane stopped before a SET of another region.
 */
export interface WriteOrder {
  outstanding: boolean;
  region: number | undefined;
  blocked: boolean;
}

/** How a command may run relative to its neighbours in a pipeline. */
const SERIAL = 0;
const GROUP_WRITE = 1;
const GROUP_READ = 2;
/** SETs taken by the SET lane (answered from their batches). */
const GROUP_SETS = 3;
type Grouping = typeof SERIAL | typeof GROUP_WRITE | typeof GROUP_READ | typeof GROUP_SETS;

/**
 * The part of the client port that does not depend on how connections are
 * accepted: the command executor, the open connections, the counters, INFO's
 * server/clients/stats fields, idle checks and the background expiry. Both
 * {@link ClientServer} (one object) and the node's `ConnectionServer` (one
 * process per connection) run their connections through it.
 * @example
 * ```ts ignore
 * const port = new ClientPort({ backend });
 * const c = port.open("1", conn);
 * while (await c.handle(await readSome(conn))) {}
 * port.forget("1");
 * ```
 */
export class ClientPort {
  /** The command layer shared by every connection. */
  readonly executor: CommandExecutor;
  /** The clock. */
  readonly now: () => number;
  /** Request parser limits of every connection. */
  readonly limits: RequestLimits;
  /** Open connections at most. */
  readonly connectionsMax: number;
  /** Idle time after which a connection is closed, ms (0: never). */
  readonly idleTimeoutMs: number;
  /** Whether single-key writes of a pipeline are started together. */
  readonly pipelinedWrites: boolean;
  /** INFO commandstats and errorstats (CONFIG RESETSTAT clears them). */
  readonly commandStats: CommandStats = new CommandStats();
  /** See ClientPortOptions.writeOrder: true for "sent". */
  readonly ordersAcrossRegions: boolean;
  /** The native GET path given, false when turned off, undefined to load the default once. */
  readonly #nativeOption: NativeGets | false | undefined;
  /** The default library, once loaded here (null: tried, not built); closed by close(). */
  #loaded: NativeGets | null | undefined;
  /** The SET batch the SET lane last wrote to (tried first for the next SETs). */
  #setBatch: SetBatch | undefined;
  /** The longest key and value the SET lane takes. */
  readonly #setKeyBytesMax: number;
  readonly #setValueBytesMax: number;
  /** The bound TCP port (INFO server), set by whoever listens. */
  boundPort = 0;
  readonly #backend: KvBackend;
  readonly #replyFlushBytes: number;
  readonly #expireScanKeysMax: number;
  readonly #onCommand: CommandHook | undefined;
  readonly #log: (message: string) => void;
  readonly #conns = new Map<string, ClientConnection>();
  /** The connection of each open session (CLIENT KILL closes by session). */
  readonly #bySession = new WeakMap<Session, ClientConnection>();
  readonly #startedMs: number;
  readonly #hostname: string;
  readonly #memoryFields: (() => Readonly<Record<string, string | number>>) | undefined;
  #nextId = 1;
  /** Each resettable counter's value at the last CONFIG RESETSTAT (INFO shows the growth since). */
  readonly #statsBase: Record<ResettableStat, number> = Object.fromEntries(
    RESETTABLE.map((f) => [f, 0]),
  ) as Record<ResettableStat, number>;
  readonly #stats: Omit<ClientServerStats, "keyspaceHits" | "keyspaceMisses" | "nativeGetPath"> = {
    connectedClients: 0,
    totalConnectionsReceived: 0,
    rejectedConnections: 0,
    totalCommandsProcessed: 0,
    protocolErrors: 0,
    idleDisconnects: 0,
    expiredKeys: 0,
    netInputBytes: 0,
    netOutputBytes: 0,
    nativeCommandsProcessed: 0,
  };

  /**
   * Creates the shared state of a client port.
   * @param options backend, limits and sources
   * @throws {RangeError} for invalid limits
   */
  constructor(options: ClientPortOptions) {
    this.#backend = options.backend;
    this.now = options.now ?? Date.now;
    this.connectionsMax = positive("connectionsMax", options.connectionsMax ?? 10_000);
    this.idleTimeoutMs = positive("idleTimeoutMs", options.idleTimeoutMs ?? 3_600_000, true);
    this.limits = {
      ...DEFAULT_REQUEST_LIMITS,
      bulkBytesMax: 32 * 1024 * 1024,
      requestBytesMax: 128 * 1024 * 1024,
      ...options.requestLimits,
    };
    validateRequestLimits(this.limits);
    if (this.limits.bulkBytesMax > this.limits.requestBytesMax) {
      throw new RangeError(
        `Invalid request limits: bulkBytesMax ${this.limits.bulkBytesMax} exceeds requestBytesMax ${this.limits.requestBytesMax}`,
      );
    }
    // The SET lane takes what the parser and the executor would take without an error, in a
    // frame within requestBytesMax (its bulk headers take well under 64 bytes).
    this.#setKeyBytesMax = Math.min(KEY_BYTES_MAX, this.limits.bulkBytesMax);
    this.#setValueBytesMax = Math.max(
      0,
      Math.min(
        VALUE_BYTES_MAX,
        this.limits.bulkBytesMax,
        this.limits.requestBytesMax - this.#setKeyBytesMax - 64,
      ),
    );
    this.#replyFlushBytes = positive("replyFlushBytes", options.replyFlushBytes ?? 1 << 20);
    this.#expireScanKeysMax = positive("expireScanKeysMax", options.expireScanKeysMax ?? 2048);
    this.#onCommand = options.onCommand;
    this.#log = options.log ?? (() => {});
    this.pipelinedWrites = options.pipelinedWrites ?? false;
    this.ordersAcrossRegions = options.writeOrder === "sent";
    this.#nativeOption = options.nativeGets;
    this.#startedMs = this.now();
    this.executor = new CommandExecutor({
      backend: options.backend,
      now: this.now,
      password: options.password,
      serverSections: () => this.#infoSections(),
      sessions: () => [...this.#conns.values()].map((c) => c.session),
      // Its reader sees the end and the connection (process) finishes as on a client's close.
      closeSession: (session) => this.#bySession.get(session)?.close(),
      ...(options.engineStats !== undefined ? { engineStats: options.engineStats } : {}),
      ...(options.replyBytesMax !== undefined ? { replyBytesMax: options.replyBytesMax } : {}),
      ...(options.regions !== undefined ? { regions: options.regions } : {}),
      configParameters: () => ({ ...this.#configParameters(), ...options.configParameters?.() }),
      resetStats: () => this.resetStats(),
    });
    this.#hostname = options.hostname ?? "127.0.0.1";
    this.#memoryFields = options.memoryFields;
  }

  /**
   * CONFIG RESETSTAT: INFO's stats counters, commandstats and errorstats start again from zero.
   * The counters behind /metrics do not: a Prometheus counter only goes up (INFO shows each
   * counter's growth since the reset instead).
   */
  resetStats(): void {
    this.commandStats.reset();
    const s = this.stats;
    for (const field of RESETTABLE) this.#statsBase[field] = s[field];
  }

  /** What CONFIG GET answers about the client port, by Redis's parameter names. */
  #configParameters(): Record<string, string> {
    return {
      port: String(this.boundPort),
      bind: this.#hostname,
      maxclients: String(this.connectionsMax),
      // Redis's client idle timeout is in seconds (0: never); Spire's in ms, rounded up here.
      timeout: String(Math.ceil(this.idleTimeoutMs / 1000)),
      databases: "1",
      "proto-max-bulk-len": String(this.limits.bulkBytesMax),
      "client-query-buffer-limit": String(this.limits.requestBytesMax),
    };
  }

  /** Counters since start. */
  get stats(): Readonly<ClientServerStats> {
    const native = this.#nativeOption === undefined ? this.#loaded : this.#nativeOption;
    return {
      ...this.#stats,
      connectedClients: this.#conns.size,
      ...this.executor.lookups,
      nativeGetPath: native ? 1 : 0,
    };
  }

  /** The number of open connections. */
  get size(): number {
    return this.#conns.size;
  }

  /**
   * Registers an accepted connection under `key` and returns its handler.
   * @param key a name unique among open connections (a pid, a counter)
   * @param conn the socket
   * @returns the connection, to feed with what the socket reads
   */
  open(key: string, conn: Deno.Conn): ClientConnection {
    const remote = conn.remoteAddr as Deno.NetAddr;
    const local = conn.localAddr as Deno.NetAddr;
    // As redis-server does: a reply goes out at once, not held back by Nagle's algorithm until
    // the client acknowledges the previous one (Deno leaves Nagle on for accepted sockets).
    if ("setNoDelay" in conn) (conn as Deno.TcpConn).setNoDelay(true);
    const session = this.executor.newSession(
      this.#nextId++,
      `${remote.hostname}:${remote.port}`,
      `${local.hostname}:${local.port}`,
    );
    const c = new ClientConnection(this, conn, session, this.#replyFlushBytes);
    this.#conns.set(key, c);
    this.#bySession.set(session, c);
    this.#stats.totalConnectionsReceived++;
    return c;
  }

  /**
   * Closes the socket of the connection under `key` (again) and forgets it.
   * @param key its key
   */
  forget(key: string): void {
    const c = this.#conns.get(key);
    if (c === undefined) return;
    this.#conns.delete(key);
    c.close();
  }

  /** The keys of the open connections. */
  keys(): string[] {
    return [...this.#conns.keys()];
  }

  /** Closes every open connection's socket (their readers see the end). */
  closeAll(): void {
    for (const c of this.#conns.values()) c.close();
  }

  /**
   * Counts a connection refused at connectionsMax.
   */
  countRejected(): void {
    this.#stats.rejectedConnections++;
  }

  /** @internal Adds to a counter. */
  count(
    field: "protocolErrors" | "netInputBytes" | "netOutputBytes" | "totalCommandsProcessed",
    n = 1,
  ): void {
    this.#stats[field] += n;
  }

  /**
   * Closes the sockets of connections idle past idleTimeoutMs (their readers
   * see the end and stop).
   * @returns how many were closed
   */
  closeIdle(): number {
    if (this.idleTimeoutMs <= 0) return 0;
    const now = this.now();
    let n = 0;
    for (const c of this.#conns.values()) {
      if (!c.busy && !c.closed && now - c.lastActivityMs > this.idleTimeoutMs) {
        c.close();
        n++;
      }
    }
    this.#stats.idleDisconnects += n;
    return n;
  }

  /**
   * One step of the background expiry: examines up to expireScanKeysMax keys
   * from `cursor` on (the engine reads the values' expiry without handing them
   * to TypeScript) and removes the expired ones through the backend.
   * @param cursor where the previous step stopped, inclusive (undefined: the start)
   * @returns where the next step starts
   * @throws what the backend throws (storage restarting)
   */
  async expireStep(cursor: Uint8Array | undefined): Promise<Uint8Array | undefined> {
    const page = await this.#backend.scanExpired(cursor, this.#expireScanKeysMax, this.now());
    if (page.keys.length === 0) return page.next;
    const reply = await this.#backend.execute({ op: "sweep", keys: [...page.keys] });
    if (reply.kind === "integer") this.#stats.expiredKeys += Number(reply.value);
    return page.next;
  }

  /**
   * @internal Answers the GETs at the start of what `parser` holds through the native path,
   * into `writer`, with the same counters and metrics as the executor's GETs. Answers nothing
   * when the path is off, the session not authenticated, or the backend cannot read directly.
   * @returns the GETs answered
   */
  answerNatively(session: Session, parser: RequestParser, writer: ReplyWriter): number {
    // In a transaction a GET is queued for EXEC, not answered.
    if (this.#nativeOption === false || !session.authed || session.multi !== undefined) return 0;
    let total = 0;
    for (;;) {
      const pending = parser.unparsed();
      // Not a GET (the native code checks the whole frame): no engine handles, no FFI call.
      if (pending === undefined || !mayBeGet(pending.bytes, pending.start, pending.end)) {
        return total;
      }
      const direct = this.#backend.directReads?.();
      if (direct === undefined) return total;
      const native = this.#nativeGets();
      if (native === undefined) return total;
      const room = writer.reserve(NATIVE_REPLY_ROOM_BYTES);
      const nowMs = this.now();
      const started = performance.now();
      const r = native.answer({
        access: direct.engine,
        cache: direct.cache,
        input: pending.bytes,
        inStart: pending.start,
        inEnd: pending.end,
        output: room.buffer,
        outStart: room.offset,
        outBytes: room.buffer.length - room.offset,
        keyBytesMax: Math.min(this.limits.bulkBytesMax, this.limits.requestBytesMax - 3),
        commandsMax: NATIVE_COMMANDS_MAX,
        resp: session.resp,
        nowMs,
      });
      if (r.commands === 0) return total;
      parser.skip(r.consumed);
      writer.advance(r.written);
      this.#countNative(session, r.commands, performance.now() - started, nowMs);
      this.executor.countLookups(r.hits, r.misses);
      total += r.commands;
      // Only a call that stopped for its own limits leaves GETs it could answer.
      if (r.stop !== NativeStop.COUNT && r.stop !== NativeStop.FULL) return total;
      if (writer.length >= this.#replyFlushBytes) return total; // flushed before more
    }
  }

  /**
   * @internal The SET lane: takes the plain SETs (`SET key value`) at the start of what
   * `parser` holds into the backend's region batches through the native SET path, without
   * answering them; `tickets` gets the runs taken, each answered from its batch once the batch
   * is applied ({@link ClientPort.answerSets}). Takes nothing when the path is off or not built,
   * the session is not authenticated or in a transaction, or the backend has no SET lane; a
   * SET the lane does not take (options, a key or value over the limits, a frame cut short)
   * stays for the executor. While the connection has writes outstanding in one region
   * (`order`), the lane takes SETs of that region only, and stops before one of another region
   * with `order.blocked` set: it must wait for the replies before it.
   * @returns the SETs taken
   */
  takeSets(
    session: Session,
    parser: RequestParser,
    tickets: { push(ticket: SetTicket): unknown },
    order: WriteOrder,
  ): number {
    if (this.#nativeOption === false || !session.authed || session.multi !== undefined) return 0;
    const backend = this.#backend;
    if (backend.setBatch === undefined) return 0;
    let total = 0;
    const takenMs = performance.now();
    for (let call = 0; call < NATIVE_SET_CALLS_MAX && total < NATIVE_COMMANDS_MAX; call++) {
      const pending = parser.unparsed();
      if (pending === undefined || !mayBeSet(pending.bytes, pending.start, pending.end)) break;
      const native = this.#nativeGets();
      if (native === undefined) break;
      let batch = this.#setBatch;
      // A batch that went out: the open one of the region holding its first key, most likely
      // the next SETs' region too (when not, the native call stops before them and they route).
      if (batch !== undefined && batch.sealed) {
        batch = this.#setBatch = backend.setBatch(batch.startKey, 0);
      }
      // Another region's batch while this connection's writes are outstanding in one: take
      // none into it (the call then only finds the next SET, routed below).
      const open = batch !== undefined && (!order.outstanding || batch.region === order.region);
      const r = native.takeSets({
        input: pending.bytes,
        inStart: pending.start,
        inEnd: pending.end,
        output: batch?.buffer ?? NO_BYTES,
        outStart: batch?.used ?? 0,
        outEnd: batch?.buffer.length ?? 0,
        keyBytesMax: this.#setKeyBytesMax,
        valueBytesMax: this.#setValueBytesMax,
        commandsMax: open ? Math.min(batch!.countLeft, NATIVE_COMMANDS_MAX - total) : 0,
        startKey: batch?.startKey ?? NO_BYTES,
        endKey: batch?.endKey ?? NO_BYTES,
      });
      if (r.commands > 0) {
        parser.skip(r.consumed);
        const first = batch!.count;
        batch!.added(r.commands, r.written);
        tickets.push({ batch: batch!, first, count: r.commands, takenMs });
        total += r.commands;
        if (this.ordersAcrossRegions) {
          order.outstanding = true;
          order.region = batch!.region;
        }
      }
      // Stopped before a SET the lane may take into another batch (another region, or this
      // one full): route it. Anything else stays for the executor.
      if (r.next === undefined || r.stop === NativeStop.END || r.stop === NativeStop.OTHER) break;
      const next = this.#setBatch = backend.setBatch(r.next.key, r.next.bytes);
      if (next === undefined) break;
      if (order.outstanding && next.region !== order.region) {
        order.blocked = true;
        break;
      }
    }
    if (total > 0) {
      this.#stats.totalCommandsProcessed += total;
      this.#stats.nativeCommandsProcessed += total;
      session.lastCommand = "set";
      session.lastCommandMs = this.now();
      this.executor.noteWrite();
    }
    return total;
  }

  /**
   * @internal The region a single-key write (`args[1]` its key) goes to, when the backend has
   * regions (see KvBackend.regionOf).
   */
  regionOf(args: readonly Uint8Array[]): number | undefined {
    return this.#backend.regionOf?.(args[1]!);
  }

  /**
   * @internal Writes the replies of SETs the lane took, once their batch is applied, and counts
   * them in the command metrics (their latency runs from when they were taken).
   */
  async answerSets(ticket: SetTicket, writer: ReplyWriter, resp: 2 | 3): Promise<void> {
    const replies = await ticket.batch.done;
    for (let i = ticket.first; i < ticket.first + ticket.count; i++) {
      writer.write(replies[i]!, resp);
    }
    const durationMs = performance.now() - ticket.takenMs;
    const hook = this.#onCommand;
    let answered = 0; // counted in one go below: this is the SET lane's path
    for (let i = ticket.first; i < ticket.first + ticket.count; i++) {
      const reply = replies[i]!;
      if (reply.kind === "error") this.commandStats.record("set", durationMs, reply.message);
      else answered++;
      hook?.({ name: "set", durationMs, failed: reply.kind === "error" });
    }
    if (answered > 0) {
      this.commandStats.record("set", durationMs * answered, undefined, undefined, answered);
    }
  }

  /** The native GET path: the one given, or the default library, loaded at first use. */
  #nativeGets(): NativeGets | undefined {
    if (this.#nativeOption !== undefined) return this.#nativeOption || undefined;
    this.#loaded ??= NativeGets.open() ?? null;
    return this.#loaded ?? undefined;
  }

  /**
   * Releases what the port loaded itself (the native GET path's library). Call it once no
   * connection runs any more; safe to call twice.
   */
  close(): void {
    this.#loaded?.close();
    this.#loaded = undefined;
  }

  #countNative(session: Session, commands: number, durationMs: number, nowMs: number): void {
    this.#stats.totalCommandsProcessed += commands;
    this.#stats.nativeCommandsProcessed += commands;
    session.lastCommand = "get";
    session.lastCommandMs = nowMs;
    this.commandStats.record("get", durationMs, undefined, undefined, commands);
    const hook = this.#onCommand;
    if (hook === undefined) return;
    // Each GET's share of the call: what the executor's path measures per command.
    const event = { name: "get", durationMs: durationMs / commands, failed: false };
    for (let i = 0; i < commands; i++) hook(event);
  }

  /** @internal Runs one command with metrics; `name` is `executor.commandName(args)`. */
  async run(session: Session, args: Uint8Array[], name: string | undefined): Promise<Reply> {
    const started = performance.now();
    // The commands an EXEC runs, counted in INFO commandstats when it answers them.
    const queued = name === "exec" ? session.multi?.commands : undefined;
    let reply: Reply;
    try {
      reply = await this.executor.execute(session, args);
    } catch (e) {
      this.#log(`command failed: ${e instanceof Error ? e.message : String(e)}`);
      reply = error(`ERR internal error: ${e instanceof Error ? e.message : String(e)}`);
    }
    const durationMs = performance.now() - started;
    let errorMessage: string | undefined, refusal: Refusal | undefined;
    if (reply.kind === "error") {
      errorMessage = reply.message;
      refusal = refusalOf(reply);
    }
    this.#onCommand?.({ name: name ?? "unknown", durationMs, failed: errorMessage !== undefined });
    // As redis-server: a command queued by MULTI counts when EXEC runs it, not before.
    if (reply.kind === "simple" && reply.value === "QUEUED" && session.multi !== undefined) {
      return reply;
    }
    // As redis-server: an unknown or rejected command (wrong arity, NOAUTH) was not processed.
    if (this.commandStats.record(name ?? "unknown", durationMs, errorMessage, refusal)) {
      this.#stats.totalCommandsProcessed++;
    }
    if (queued !== undefined && reply.kind === "array" && reply.items?.length === queued.length) {
      this.#countExecuted(queued, reply.items, durationMs);
    }
    return reply;
  }

  /** Counts the commands an EXEC ran, each with its share of the EXEC's time. */
  #countExecuted(
    commands: readonly (readonly Uint8Array[])[],
    replies: readonly Reply[],
    ms: number,
  ) {
    for (let i = 0; i < commands.length; i++) {
      const r = replies[i]!;
      const name = this.executor.commandName(commands[i]!) ?? "unknown";
      const message = r.kind === "error" ? r.message : undefined;
      if (this.commandStats.record(name, ms / commands.length, message)) {
        this.#stats.totalCommandsProcessed++;
      }
    }
  }

  /**
   * @internal How a command may be grouped with its neighbours: run alone
   * (after every reply before it), or started together with the other writes,
   * or reads, around it.
   */
  grouping(name: string | undefined, args: readonly Uint8Array[]): Grouping {
    if (name === undefined) return SERIAL;
    if (PIPELINED_READS.has(name)) return GROUP_READ;
    if (!this.pipelinedWrites) return SERIAL;
    if (PIPELINED_WRITES.has(name)) return GROUP_WRITE;
    // One key: one region, so its proposal is enqueued before execute first waits.
    return (name === "del" || name === "unlink") && args.length === 2 ? GROUP_WRITE : SERIAL;
  }

  /**
   * INFO memory. Spire's memory is V8's heap, buffers outside it and RocksDB's native memory, so
   * `used_memory` is the process's resident size (Redis's is its allocator's count), followed by
   * the parts Spire can name.
   */
  #memorySection(): Record<string, string | number> {
    const m = Deno.memoryUsage();
    return {
      used_memory: m.rss,
      used_memory_human: humanBytes(m.rss),
      used_memory_rss: m.rss,
      used_memory_js_heap: m.heapUsed,
      used_memory_js_external: m.external,
      ...this.#memoryFields?.(),
    };
  }

  /** INFO's sections the port knows, each computed only when asked for. */
  #infoSections(): Record<string, () => Record<string, string | number>> {
    return {
      server: () => {
        const uptime = Math.floor((this.now() - this.#startedMs) / 1000);
        return {
          redis_version: "7.0.0",
          spire_mode: "standalone",
          redis_mode: "standalone",
          process_id: Deno.pid,
          tcp_port: this.boundPort,
          uptime_in_seconds: uptime,
          uptime_in_days: Math.floor(uptime / 86400),
        };
      },
      clients: () => ({
        connected_clients: this.#conns.size,
        maxclients: this.connectionsMax,
        idle_timeout_ms: this.idleTimeoutMs,
      }),
      // The engine's statistics behind it cost more than the rest of INFO.
      memory: () => this.#memorySection(),
      stats: () => {
        const raw = this.stats;
        const base = this.#statsBase;
        const s = (field: ResettableStat) => raw[field] - base[field];
        return {
          total_connections_received: s("totalConnectionsReceived"),
          total_commands_processed: s("totalCommandsProcessed"),
          rejected_connections: s("rejectedConnections"),
          expired_keys: s("expiredKeys"),
          keyspace_hits: s("keyspaceHits"),
          keyspace_misses: s("keyspaceMisses"),
          total_net_input_bytes: s("netInputBytes"),
          total_net_output_bytes: s("netOutputBytes"),
          total_error_replies: this.commandStats.errorReplies,
          protocol_errors: s("protocolErrors"),
          idle_disconnects: s("idleDisconnects"),
          spire_native_commands_processed: s("nativeCommandsProcessed"),
        };
      },
      // A standalone node leads every region it holds and has no replicas.
      replication: () => ({ role: "master", connected_slaves: 0 }),
      cpu: () => {
        const { user, system } = process.cpuUsage();
        return { used_cpu_sys: (system / 1e6).toFixed(6), used_cpu_user: (user / 1e6).toFixed(6) };
      },
      commandstats: () => this.commandStats.commandSection(),
      errorstats: () => this.commandStats.errorSection(),
    };
  }
}

/**
 * One client connection of a {@link ClientPort}: its session, request parser
 * and reply buffer. Whoever reads the socket hands each chunk to
 * {@link ClientConnection.handle}, and reads again only once it returned, so a
 * client that floods cannot make the server buffer without bound.
 */
export class ClientConnection {
  /** The command layer's per-connection state. */
  readonly session: Session;
  /** The socket. */
  readonly conn: Deno.Conn;
  /** When the connection last received or answered something (ms). */
  lastActivityMs: number;
  /** True while commands of a chunk run (idle checks skip it). */
  busy = false;
  /** True once the socket was closed. */
  closed = false;
  readonly #port: ClientPort;
  readonly #parser: RequestParser;
  readonly #writer = new ReplyWriter();
  readonly #replyFlushBytes: number;

  /** @internal Created by {@link ClientPort.open}. */
  constructor(port: ClientPort, conn: Deno.Conn, session: Session, replyFlushBytes: number) {
    this.#port = port;
    this.conn = conn;
    this.session = session;
    this.#parser = new RequestParser(port.limits);
    this.#replyFlushBytes = replyFlushBytes;
    this.lastActivityMs = port.now();
  }

  /** Closes the socket; safe to call twice. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.conn.close();
    } catch { /* already closed */ }
  }

  /**
   * Executes every complete command in what was received so far, in order,
   * and writes their replies (one write per chunk, or per replyFlushBytes).
   * @param chunk bytes read from the socket (copied)
   * @returns false when the connection must be closed (protocol error, QUIT,
   *   a failed write)
   */
  async handle(chunk: Uint8Array): Promise<boolean> {
    const port = this.#port;
    port.count("netInputBytes", chunk.length);
    this.lastActivityMs = port.now();
    this.busy = true;
    this.#parser.feed(chunk);
    let keepOpen: boolean;
    try {
      keepOpen = await this.#runParsed();
    } finally {
      this.busy = false;
      this.lastActivityMs = port.now();
    }
    if (this.#writer.length > 0 && !(await this.#flush())) return false;
    return keepOpen;
  }

  async #flush(): Promise<boolean> {
    // Nothing else writes replies of this connection until the bytes are sent: no copy.
    const bytes = this.#writer.view();
    let off = 0;
    try {
      while (off < bytes.length) off += await this.conn.write(bytes.subarray(off));
    } catch {
      this.close();
      return false;
    } finally {
      this.#writer.clear();
    }
    this.#port.count("netOutputBytes", bytes.length);
    return true;
  }

  /** Executes the parsed commands; false when the connection must close. */
  async #runParsed(): Promise<boolean> {
    const port = this.#port;
    const session = this.session;
    const writer = this.#writer;
    // Consecutive single-key writes (see PIPELINED_WRITES), consecutive single-key reads, or
    // consecutive SETs the SET lane took, are started together; anything else, and a change
    // of kind, first waits for the replies before it, so a read sees the writes sent before it.
    // With writeOrder "sent", writes started together go to one region: regions apply
    // independently, so a write to another region first waits for the replies before it, and
    // every client sees a connection's writes take effect in the order sent, as from
    // redis-server. With "region" (the default) only one region's writes keep their order.
    const started: (Promise<Reply> | SetTicket)[] = [];
    let startedKind: Grouping = SERIAL;
    const order: WriteOrder = { outstanding: false, region: undefined, blocked: false };
    const drain = async (): Promise<boolean> => {
      for (let i = 0; i < started.length; i++) {
        const s = started[i]!;
        if (s instanceof Promise) writer.write(await s, session.resp);
        else await port.answerSets(s, writer, session.resp);
        if (writer.length >= this.#replyFlushBytes && !(await this.#flush())) return false;
      }
      started.length = 0;
      order.outstanding = false;
      return true;
    };
    for (;;) {
      if (started.length === 0 && port.answerNatively(session, this.#parser, writer) > 0) {
        if (writer.length >= this.#replyFlushBytes && !(await this.#flush())) return false;
        continue;
      }
      if (started.length === 0 || startedKind === GROUP_SETS) {
        order.blocked = false;
        if (port.takeSets(session, this.#parser, started, order) > 0) {
          startedKind = GROUP_SETS; // a chunk holds a bounded number of them: no drain here
          continue;
        }
        if (order.blocked) {
          if (!(await drain())) return false;
          continue;
        }
      }
      const req = this.#parser.next();
      if (req === undefined) break;
      if (req.kind === "error") {
        if (!(await drain())) return false;
        port.count("protocolErrors");
        writer.write(error(req.message), session.resp);
        return false;
      }
      const name = port.executor.commandName(req.args);
      const kind = port.grouping(name, req.args);
      if (kind !== startedKind && started.length > 0 && !(await drain())) return false;
      if (kind === GROUP_WRITE && port.ordersAcrossRegions) {
        const region = port.regionOf(req.args);
        if (order.outstanding && region !== order.region && !(await drain())) return false;
        order.outstanding = true;
        order.region = region;
      }
      if (kind !== SERIAL) {
        startedKind = kind;
        started.push(port.run(session, req.args, name));
        if (started.length >= PIPELINED_COMMANDS_MAX && !(await drain())) return false;
        continue;
      }
      startedKind = SERIAL;
      writer.write(await port.run(session, req.args, name), session.resp);
      if (session.closeAfterReply) return false;
      if (writer.length >= this.#replyFlushBytes && !(await this.#flush())) return false;
    }
    return await drain();
  }
}

/**
 * The client server: a {@link ClientPort} behind one accept loop and one
 * housekeeping timer, all in one object (used where no supervision tree runs:
 * the command-layer tests and embedders).
 * @example
 * ```ts ignore
 * const server = new ClientServer({ backend, port: 0 });
 * const { port } = server.start();
 * // ... clients connect to 127.0.0.1:port
 * await server.stop();
 * ```
 */
export class ClientServer {
  readonly #port: ClientPort;
  readonly #hostname: string;
  readonly #portWanted: number;
  readonly #tickMs: number;
  readonly #log: (message: string) => void;
  readonly #handlers = new Set<Promise<void>>();
  #listener: Deno.Listener | undefined;
  #acceptLoop: Promise<void> | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #tickRunning: Promise<void> | undefined;
  #expiryCursor: Uint8Array | undefined;
  #nextKey = 1;

  /**
   * Creates a server; nothing listens until {@link ClientServer.start}.
   * @param options backend, address, limits and sources
   * @throws {RangeError} for invalid limits
   */
  constructor(options: ClientServerOptions) {
    this.#hostname = options.hostname ?? "127.0.0.1";
    this.#portWanted = options.port ?? 6379;
    if (!Number.isInteger(this.#portWanted) || this.#portWanted < 0 || this.#portWanted > 65535) {
      throw new RangeError(
        `Invalid client server option port: ${this.#portWanted} is not in 0..65535`,
      );
    }
    this.#tickMs = positive("tickMs", options.tickMs ?? 100);
    this.#log = options.log ?? (() => {});
    this.#port = new ClientPort(options);
  }

  /** Counters since start. */
  get stats(): Readonly<ClientServerStats> {
    return this.#port.stats;
  }

  /** INFO commandstats and errorstats of its port. */
  get commandStats(): CommandStats {
    return this.#port.commandStats;
  }

  /** The executor (for embedding the command layer without TCP). */
  get executor(): CommandExecutor {
    return this.#port.executor;
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
    this.#listener = Deno.listen({
      hostname: this.#hostname,
      port: this.#portWanted,
      transport: "tcp",
    });
    this.#port.boundPort = (this.#listener.addr as Deno.NetAddr).port;
    this.#acceptLoop = this.#accept(this.#listener);
    this.#timer = setInterval(() => {
      this.#tickRunning ??= this.tick().finally(() => (this.#tickRunning = undefined));
    }, this.#tickMs);
    return { hostname: this.#hostname, port: this.#port.boundPort };
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
    this.#port.closeAll();
    await Promise.allSettled([...this.#handlers]);
    await this.#tickRunning;
    this.#port.close();
  }

  #track(p: Promise<void>): void {
    this.#handlers.add(p);
    p.finally(() => this.#handlers.delete(p));
  }

  async #accept(listener: Deno.Listener): Promise<void> {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch {
        return; // Listener closed.
      }
      if (this.#port.size >= this.#port.connectionsMax) {
        this.#port.countRejected();
        this.#track(refuseConnection(conn));
        continue;
      }
      this.#track(this.#serve(conn).catch((e) => this.#log(`client handler failed: ${e}`)));
    }
  }

  async #serve(conn: Deno.Conn): Promise<void> {
    const key = String(this.#nextKey++);
    const c = this.#port.open(key, conn);
    const buf = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        let n: number | null;
        try {
          n = await conn.read(buf);
        } catch {
          return; // Closed by us (idle, stop) or reset by the peer.
        }
        if (n === null || c.closed) return;
        if (!(await c.handle(buf.subarray(0, n)))) return;
      }
    } finally {
      this.#port.forget(key);
    }
  }

  /**
   * One housekeeping pass: closes idle connections and removes up to
   * expireScanKeysMax keys' worth of expired keys. Runs every tickMs; exposed
   * so that tests with a fake clock can drive it.
   */
  async tick(): Promise<void> {
    this.#port.closeIdle();
    try {
      this.#expiryCursor = await this.#port.expireStep(this.#expiryCursor);
    } catch (e) {
      this.#log(`background expiry failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
}

/**
 * Answers a connection refused at connectionsMax with Redis's error and closes it.
 * @param conn the socket
 * @returns when it is closed
 */
export async function refuseConnection(conn: Deno.Conn): Promise<void> {
  try {
    await conn.write(MAX_CLIENTS_REPLY);
  } catch { /* gone */ }
  try {
    conn.close();
  } catch { /* gone */ }
}

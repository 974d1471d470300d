/**
 * Command execution: argument parsing, arity and authentication checks, and
 * the semantics of every supported command, with Redis 7's replies and error
 * texts. Reads are answered from the backend with the executor's clock (expired
 * keys are invisible); writes become {@link WriteCommand}s evaluated at apply
 * time by the backend.
 *
 * @module
 */

import {
  BIT_OFFSET_ERROR,
  BIT_VALUE_ERROR,
  bitCount,
  bitOffset,
  bitPos,
  getBit,
} from "./bitmap.ts";
import type { RespVersion } from "../resp/encoder.ts";
import {
  array,
  bulk,
  error,
  fromPlain,
  integer,
  map,
  NIL,
  OK,
  type Reply,
  simple,
} from "../resp/reply.ts";
import { INT64_MIN, parseInt64 } from "./_int.ts";
import type { Keyspace, KvBackend } from "./backend.ts";
import {
  arityOk,
  type CommandSpec,
  commandTable,
  lowerName,
  SUBCOMMAND_USAGE,
} from "./command_table.ts";
import { globMatch } from "./glob.ts";
import {
  encodeValue,
  EXPIRE_AT_MS_MAX,
  isExpired,
  KEY_BYTES_MAX,
  type StoredValue,
  VALUE_BYTES_MAX,
} from "./kv_model.ts";
import { type Expiry, keyId, NOT_A_FLOAT, type WriteCommand } from "./write_ops.ts";
import { LONG_DOUBLE_CHARS_MAX, parseLongDouble } from "./_long_double.ts";

/** Per-connection state that commands read and change. */
export interface Session {
  /** Connection id (CLIENT ID). */
  readonly id: number;
  /** Peer address "ip:port". */
  readonly addr: string;
  /** The server's address of the connection "ip:port" (CLIENT LIST laddr; CLIENT KILL LADDR). */
  readonly laddr: string;
  /** When the connection was accepted (ms). */
  readonly createdMs: number;
  /** Connection name (CLIENT SETNAME), undefined when unset. */
  name: string | undefined;
  /** Protocol version (HELLO). */
  resp: RespVersion;
  /** True once AUTH succeeded (or when no password is configured). */
  authed: boolean;
  /** Set by QUIT: close the connection after sending the reply. */
  closeAfterReply: boolean;
  /** Client library name (CLIENT SETINFO LIB-NAME). */
  libName?: string | undefined;
  /** Client library version (CLIENT SETINFO LIB-VER). */
  libVer?: string | undefined;
  /** Time of the last command (ms). */
  lastCommandMs: number;
  /** Name of the last command. */
  lastCommand: string;
  /** The commands queued since MULTI, until EXEC or DISCARD; undefined outside a transaction. */
  multi?: QueuedTransaction | undefined;
  /** Keys under WATCH (by their bytes as Latin-1 text), with what they held then. */
  watched?: Map<string, WatchedKey> | undefined;
}

/** A transaction being queued (MULTI until EXEC or DISCARD). */
export interface QueuedTransaction {
  /** The queued commands, as sent. */
  readonly commands: (readonly Uint8Array[])[];
  /** Their argument bytes. */
  bytes: number;
  /** Set when a command could not be queued: EXEC then discards the transaction (EXECABORT). */
  failed: boolean;
}

/** A key under WATCH and its stored value when WATCH read it. */
export interface WatchedKey {
  readonly key: Uint8Array;
  readonly stored: StoredValue | undefined;
  /** Whether it was live then (an expiry since then also aborts EXEC, as in Redis 6.0.9+). */
  readonly live: boolean;
}

/** Key lookups of read commands (INFO stats `keyspace_hits`, `keyspace_misses`). */
export interface KeyspaceLookups {
  /** Keys looked up that held a live value. */
  keyspaceHits: number;
  /** Keys looked up that were missing or expired. */
  keyspaceMisses: number;
}

/** A source of plain values (objects, arrays, numbers, strings). */
export type PlainSource = () => unknown | Promise<unknown>;

/** Options of {@link CommandExecutor}. */
export interface ExecutorOptions {
  /** Storage. */
  readonly backend: KvBackend;
  /** The clock (ms since the epoch). */
  readonly now: () => number;
  /** When set, AUTH is required. Never logged. */
  readonly password?: string | undefined;
  /**
   * INFO sections provided by the server (server, clients, memory, stats), each a function
   * called only when its section is asked for.
   */
  readonly serverSections?: () => Record<string, () => Record<string, string | number>>;
  /** Open sessions, for CLIENT LIST and CLIENT KILL. */
  readonly sessions?: () => Iterable<Session>;
  /**
   * Closes the connection of a session (CLIENT KILL); its pending replies are dropped. Without
   * it CLIENT KILL finds only the caller's own session.
   */
  readonly closeSession?: (session: Session) => void;
  /** Engine statistics (INFO rocksdb, SPIRE.STATS). */
  readonly engineStats?: PlainSource;
  /** Region descriptions (SPIRE.REGIONS). */
  readonly regions?: PlainSource;
  /**
   * CONFIG GET's parameters and their effective values, by Redis's lower-case names; only
   * parameters that mean here what they mean in Redis (default: none).
   */
  readonly configParameters?: () => Readonly<Record<string, string>>;
  /** CONFIG RESETSTAT: starts the server's statistics again (without it, the command is refused). */
  readonly resetStats?: () => void;
  /** SCAN cursors remembered at once; the oldest are forgotten first (default 10000). */
  readonly scanCursorsMax?: number;
  /** Key bytes held by remembered SCAN cursors; the oldest are forgotten first (default 16 MiB). */
  readonly scanCursorsBytesMax?: number;
  /** Largest SCAN COUNT honoured (default 10000). */
  readonly scanCountMax?: number;
  /** Largest SPIRE.SCANRANGE LIMIT and BATCH (default 100000). */
  readonly scanRangeRowsMax?: number;
  /** Largest MGET or SPIRE.SCANRANGE reply, in value bytes (default 256 MiB). */
  readonly replyBytesMax?: number;
  /** How long INFO keyspace reuses a key count when no write came since, in ms (default 1000). */
  readonly keyspaceCacheMs?: number;
  /** Commands one MULTI may queue (default 10000). */
  readonly multiCommandsMax?: number;
  /** Argument bytes one MULTI may queue (default 16 MiB). */
  readonly multiBytesMax?: number;
  /** Keys one connection may WATCH at once (default 10000). */
  readonly watchKeysMax?: number;
}

/** INFO's sections, in the order INFO prints them. */
const INFO_SECTIONS = [
  "server",
  "clients",
  "memory",
  "stats",
  "replication",
  "cpu",
  "commandstats",
  "errorstats",
  "keyspace",
  "rocksdb",
];
const INFO_TITLES: Record<string, string> = { cpu: "CPU", rocksdb: "RocksDB" };

const latin1 = new TextDecoder("latin1");
const utf8Encoder = new TextEncoder();
const utf8 = new TextDecoder();
const str = (b: Uint8Array) => latin1.decode(b);
const lc = lowerName;

const WRONG_INT = "ERR value is not an integer or out of range";
const SYNTAX = "ERR syntax error";
const NOAUTH = "NOAUTH Authentication required.";

/** Result of parsing an expiry option; an error reply or the expiry. */
type ExpiryParse = Expiry | Reply;

function invalidExpire(cmd: string): Reply {
  return error(`ERR invalid expire time in '${cmd}' command`);
}

/**
 * Parses an EX/PX/EXAT/PXAT value: positive, and within Spire's representable
 * range (ms < 2^53).
 */
function parseSetExpiry(kind: string, raw: Uint8Array, cmd: string): ExpiryParse {
  const v = parseInt64(raw);
  if (v === undefined) return error(WRONG_INT);
  if (v <= 0n) return invalidExpire(cmd);
  const unit = kind === "ex" || kind === "exat" ? 1000n : 1n;
  const ms = v * unit;
  // Relative expiries are added to the clock at apply time: keep headroom for it.
  const max = kind === "ex" || kind === "px"
    ? BigInt(EXPIRE_AT_MS_MAX) / 2n
    : BigInt(EXPIRE_AT_MS_MAX);
  if (ms > max) return invalidExpire(cmd);
  return kind === "ex" || kind === "px" ? { in: Number(ms) } : { at: Number(ms) };
}

/** The EX/PX/EXAT/PXAT option of SET and GETEX: given once (the same kind may repeat). */
class ExpiryOption {
  #kind: string | undefined;
  #raw: Uint8Array | undefined;

  /** Whether the option was given. */
  get given(): boolean {
    return this.#kind !== undefined;
  }

  /** Takes `opt` and its value when it is an expiry option that may come here. */
  take(opt: string, value: Uint8Array | undefined): boolean {
    if (opt !== "ex" && opt !== "px" && opt !== "exat" && opt !== "pxat") return false;
    if ((this.#kind !== undefined && this.#kind !== opt) || value === undefined) return false;
    this.#kind = opt;
    this.#raw = value;
    return true;
  }

  /** The expiry (undefined when not given), or the error reply for a bad value. */
  parse(cmd: string): ExpiryParse | undefined {
    if (this.#kind === undefined || this.#raw === undefined) return undefined;
    return parseSetExpiry(this.#kind, this.#raw, cmd);
  }
}

function isReply(x: ExpiryParse | undefined): x is Reply {
  return x !== undefined && "kind" in x;
}

/** Remembers where SCAN cursors stopped, bounded in count and bytes, oldest forgotten first. */
class ScanCursors {
  readonly #max: number;
  readonly #bytesMax: number;
  readonly #cursors = new Map<bigint, Uint8Array>();
  #bytes = 0;
  #nextId = 1n;

  constructor(max: number, bytesMax: number) {
    this.#max = max;
    this.#bytesMax = bytesMax;
  }

  save(after: Uint8Array): bigint {
    const id = this.#nextId++;
    this.#cursors.set(id, after);
    this.#bytes += after.length;
    while (this.#cursors.size > this.#max || this.#bytes > this.#bytesMax) {
      const oldest = this.#cursors.entries().next().value;
      if (oldest === undefined) break;
      this.#cursors.delete(oldest[0]);
      this.#bytes -= oldest[1].length;
    }
    return id;
  }

  take(id: bigint): Uint8Array | undefined {
    const after = this.#cursors.get(id);
    if (after !== undefined) {
      this.#cursors.delete(id);
      this.#bytes -= after.length;
    }
    return after;
  }
}

/** Validates a client name as Redis does (printable ASCII without spaces). */
function validClientName(name: Uint8Array): boolean {
  return name.every((b) => b >= 33 && b <= 126);
}

function timingSafeEqual(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

function snake(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toLowerCase();
}

/**
 * Flattens nested plain values into INFO `key:value` pairs, in Redis's style: names in
 * lower snake case (characters other than letters, digits and `_` become `_`), booleans as 1
 * or 0, fractions to 3 decimals, and an array of per-level objects as `level<N>_<field>`.
 */
function flattenInfo(value: unknown, prefix: string, out: Record<string, string | number>): void {
  if (value === null || value === undefined) return;
  const join = (name: string) => (prefix === "" ? name : `${prefix}_${name}`);
  if (typeof value === "object" && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      flattenInfo(v, join(snake(k).replace(/[^a-z0-9_]/g, "_")), out);
    }
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((v, i) => {
      const level = (v as { level?: unknown } | null)?.level;
      if (typeof v === "object" && typeof level === "number") {
        const { level: _, ...rest } = v as Record<string, unknown>;
        flattenInfo(rest, `level${level}`, out);
      } else flattenInfo(v, `${prefix}_${i}`, out);
    });
    return;
  }
  if (typeof value === "boolean") out[prefix] = value ? 1 : 0;
  else if (typeof value === "number") {
    out[prefix] = Number.isInteger(value) ? value : Number(value.toFixed(3));
  } else out[prefix] = String(value);
}

/**
 * Executes commands for sessions.
 * @example
 * ```ts
 * import { CommandExecutor } from "./executor.ts";
 * import { LocalBackend } from "./backend.ts";
 * import { MemoryEngine } from "./memory_engine.ts";
 * const backend = new LocalBackend({ engine: new MemoryEngine(), now: () => 0 });
 * const exec = new CommandExecutor({ backend, now: () => 0 });
 * const session = exec.newSession(1, "127.0.0.1:1");
 * const e = new TextEncoder();
 * const r = await exec.execute(session, [e.encode("PING")]);
 * console.assert(r.kind === "simple" && r.value === "PONG");
 * await backend.close();
 * ```
 */
export class CommandExecutor {
  readonly #o: ExecutorOptions;
  readonly #table = commandTable();
  readonly #cursors: ScanCursors;
  readonly #scanCountMax: number;
  readonly #scanRangeRowsMax: number;
  readonly #keyspaceCacheMs: number;
  readonly #replyBytesMax: number;
  readonly #multiCommandsMax: number;
  readonly #multiBytesMax: number;
  readonly #watchKeysMax: number;
  #keyspaceCache: { atMs: number; keyspace: Keyspace } | undefined;
  readonly #lookups: KeyspaceLookups = { keyspaceHits: 0, keyspaceMisses: 0 };

  /**
   * Creates an executor.
   * @param options backend, clock, password and sources
   * @throws {RangeError} for limits that are not positive integers
   */
  constructor(options: ExecutorOptions) {
    this.#o = options;
    const positive = (name: string, v: number) => {
      if (!Number.isSafeInteger(v) || v <= 0) {
        throw new RangeError(`Invalid executor option ${name}: ${v} is not a positive integer`);
      }
      return v;
    };
    this.#cursors = new ScanCursors(
      positive("scanCursorsMax", options.scanCursorsMax ?? 10_000),
      positive("scanCursorsBytesMax", options.scanCursorsBytesMax ?? 16 * 1024 * 1024),
    );
    this.#scanCountMax = positive("scanCountMax", options.scanCountMax ?? 10_000);
    this.#scanRangeRowsMax = positive("scanRangeRowsMax", options.scanRangeRowsMax ?? 100_000);
    this.#keyspaceCacheMs = options.keyspaceCacheMs ?? 1000;
    this.#replyBytesMax = positive("replyBytesMax", options.replyBytesMax ?? 256 * 1024 * 1024);
    this.#multiCommandsMax = positive("multiCommandsMax", options.multiCommandsMax ?? 10_000);
    this.#multiBytesMax = positive("multiBytesMax", options.multiBytesMax ?? 16 * 1024 * 1024);
    this.#watchKeysMax = positive("watchKeysMax", options.watchKeysMax ?? 10_000);
  }

  /**
   * Key lookups of read commands since start, as Redis counts them for INFO: each key that
   * GET, MGET, EXISTS, TOUCH, STRLEN, GETRANGE, TYPE, TTL, PTTL, EXPIRETIME, PEXPIRETIME,
   * GETDEL, GETEX, GETSET or SET with GET looked up is a hit when it held a live value and a miss otherwise.
   */
  get lookups(): Readonly<KeyspaceLookups> {
    return { ...this.#lookups };
  }

  /**
   * Counts lookups made outside the executor (the client port's native GET path), so that
   * {@link CommandExecutor.lookups} covers every read command.
   * @param hits keys that held a live value
   * @param misses keys missing or expired
   */
  countLookups(hits: number, misses: number): void {
    this.#lookups.keyspaceHits += hits;
    this.#lookups.keyspaceMisses += misses;
  }

  /** The command table in use. */
  get table(): ReadonlyMap<string, CommandSpec> {
    return this.#table;
  }

  /** A write was made outside {@link CommandExecutor.execute} (the SET lane): INFO keyspace's cached counts are stale. */
  noteWrite(): void {
    this.#keyspaceCache = undefined;
  }

  /**
   * Creates the state of a new connection.
   * @param id the connection id
   * @param addr the peer address
   * @returns the session
   */
  newSession(id: number, addr: string, laddr = ""): Session {
    const now = this.#o.now();
    return {
      id,
      addr,
      laddr,
      createdMs: now,
      name: undefined,
      resp: 2,
      authed: this.#o.password === undefined,
      closeAfterReply: false,
      lastCommandMs: now,
      lastCommand: "NULL",
    };
  }

  /**
   * Resolves the spec for a command line (the subcommand's for containers).
   * @param args the command and its arguments
   * @returns the spec name used for metrics (`client|setname`) or undefined if unknown
   */
  commandName(args: readonly Uint8Array[]): string | undefined {
    const name = args[0] === undefined ? "" : lc(args[0]);
    const spec = this.#table.get(name);
    if (spec === undefined) return undefined;
    if (spec.subcommands !== undefined && args[1] !== undefined) {
      const sub = spec.subcommands.find((s) => s.name === `${name}|${lc(args[1]!)}`);
      if (sub !== undefined) return sub.name;
    }
    return name;
  }

  /**
   * Executes one command. Never rejects for user errors: those are error replies.
   * @param session the connection's state
   * @param args the command name and arguments
   * @returns the reply
   */
  async execute(session: Session, args: readonly Uint8Array[]): Promise<Reply> {
    const first = args[0];
    if (first === undefined) return error("ERR empty command");
    const name = lc(first);
    const checked = this.#check(session, name, args);
    const multi = session.multi;
    if (multi === undefined) {
      if (!("kind" in checked)) return await this.#run(session, name, args, checked);
      return name === "exec" ? this.#execAbort(session, checked) : checked;
    }
    // In a transaction: checked now, queued for EXEC; a command refused here aborts the EXEC.
    const control = TRANSACTION_CONTROL.has(name);
    const bytes = argsBytes(args);
    const refused = "kind" in checked
      ? checked
      : control
      ? undefined
      : this.#queueable(name, checked.sub ?? checked.spec, multi, bytes);
    if (refused !== undefined) {
      multi.failed = true;
      if (name !== "exec") return refused;
      return this.#execAbort(session, refused);
    }
    if (control && !("kind" in checked)) return await this.#run(session, name, args, checked);
    multi.commands.push(args);
    multi.bytes += bytes;
    return QUEUED;
  }

  /**
   * A refused EXEC, in a transaction or not, as redis-server answers it: EXECABORT with the
   * reason, and any transaction and WATCH dropped.
   */
  #execAbort(session: Session, refused: Reply): Reply {
    session.multi = undefined;
    session.watched = undefined;
    if (refused.kind !== "error") return refused;
    const abort = error(
      `EXECABORT Transaction discarded because of: ${refused.message.replace(/^ERR /, "")}`,
    );
    const why = refusalOf(refused);
    return why === undefined ? abort : markRefused(abort, why);
  }

  /**
   * The checks every command passes before it runs (or is queued): its spec (and subcommand's),
   * or the refusal.
   */
  #check(
    session: Session,
    name: string,
    args: readonly Uint8Array[],
  ): Reply | { spec: CommandSpec; sub: CommandSpec | undefined } {
    const spec = this.#table.get(name);
    if (spec === undefined) return markRefused(unknownCommand(args), "unknown");
    if (!arityOk(spec.arity, args.length)) {
      return markRefused(error(`ERR wrong number of arguments for '${name}' command`), "rejected");
    }
    let sub: CommandSpec | undefined;
    if (spec.subcommands !== undefined && args.length >= 2) {
      sub = spec.subcommands.find((s) => s.name === `${name}|${lc(args[1]!)}`);
      if (sub === undefined) {
        return markRefused(
          error(
            `ERR unknown subcommand '${
              str(args[1]!).slice(0, 128)
            }'. Try ${name.toUpperCase()} HELP.`,
          ),
          "unknown",
        );
      }
      if (!arityOk(sub.arity, args.length)) {
        return markRefused(
          error(`ERR wrong number of arguments for '${sub.name}' command`),
          "rejected",
        );
      }
    }
    if (!session.authed && !(sub ?? spec).flags.includes("no_auth")) {
      return markRefused(error(NOAUTH), "rejected");
    }
    return sizeError(name, spec, args) ?? { spec, sub };
  }

  /**
   * Whether a checked command may join the transaction; the refusal if not. `spec` is the
   * subcommand's for a container (OBJECT ENCODING has a key, OBJECT itself none).
   */
  #queueable(
    name: string,
    spec: CommandSpec,
    multi: QueuedTransaction,
    bytes: number,
  ): Reply | undefined {
    const onKeys = spec.firstKey > 0 && !name.startsWith("spire.");
    if (!onKeys && !TRANSACTION_KEYLESS.has(name)) {
      return error(
        `ERR ${name.toUpperCase()} cannot be queued in a transaction on Spire: a transaction ` +
          `holds commands on keys, and ${[...TRANSACTION_KEYLESS].join(", ").toUpperCase()}`,
      );
    }
    if (
      multi.commands.length >= this.#multiCommandsMax ||
      multi.bytes + bytes > this.#multiBytesMax
    ) {
      return error(
        `ERR transaction too large: at most ${this.#multiCommandsMax} commands and ` +
          `${this.#multiBytesMax} bytes are queued (multiCommandsMax, multiBytesMax)`,
      );
    }
    return undefined;
  }

  async #run(
    session: Session,
    name: string,
    args: readonly Uint8Array[],
    { spec, sub }: { spec: CommandSpec; sub: CommandSpec | undefined },
  ): Promise<Reply> {
    // A write may change the key count: INFO keyspace must not serve a stale one.
    if (spec.flags.includes("write")) this.#keyspaceCache = undefined;
    session.lastCommand = sub?.name ?? name;
    session.lastCommandMs = this.#o.now();
    if (sub?.name === `${name}|help`) return subcommandHelp(spec);
    return await this.#dispatch(session, name, args);
  }

  #dispatch(session: Session, name: string, args: readonly Uint8Array[]): Promise<Reply> | Reply {
    const b = this.#o.backend;
    const a1 = args[1]!;
    switch (name) {
      case "ping":
        if (args.length > 2) return error("ERR wrong number of arguments for 'ping' command");
        return args.length === 2 ? bulk(a1) : simple("PONG");
      case "echo":
        return bulk(a1);
      case "hello":
        return this.#hello(session, args);
      case "auth":
        return this.#auth(session, args);
      case "select": {
        const db = parseInt64(a1);
        if (db === undefined) return error(WRONG_INT);
        return db === 0n ? OK : error("ERR DB index is out of range");
      }
      case "quit":
        session.closeAfterReply = true;
        return OK;
      case "reset":
        // The connection as new (Redis 6.2+): no transaction or WATCH, no name, RESP2, and
        // authenticated again only when no password is set. The library name and version stay.
        session.multi = undefined;
        session.watched = undefined;
        session.name = undefined;
        session.resp = 2;
        session.authed = this.#o.password === undefined;
        return RESET;
      case "role":
        // A standalone node leads every region it holds: a master without replicas.
        return array([bulk("master"), integer(0), array([])]);
      case "multi":
        if (session.multi !== undefined) return error("ERR MULTI calls can not be nested");
        session.multi = { commands: [], bytes: 0, failed: false };
        return OK;
      case "discard":
        if (session.multi === undefined) return error("ERR DISCARD without MULTI");
        session.multi = undefined;
        session.watched = undefined;
        return OK;
      case "exec":
        return this.#exec(session);
      case "watch":
        return this.#watch(session, args.slice(1));
      case "unwatch":
        session.watched = undefined;
        return OK;
      case "client":
        return this.#client(session, args);
      case "command":
        return this.#command(args);
      case "config":
        return this.#config(args);
      case "info":
        return this.#info(session, args);
      case "dbsize":
        return b.dbsize().then(integer);
      case "flushdb":
      case "flushall":
        if (args.length > 2 || (args.length === 2 && !["async", "sync"].includes(lc(a1)))) {
          return error(SYNTAX);
        }
        this.#keyspaceCache = undefined;
        return b.execute({ op: "flushdb" });
      case "get":
        return this.#readOne(a1).then((v) => bulk(v?.value ?? null));
      case "set":
        return this.#set(args);
      case "getdel":
        return b.execute({ op: "getdel", key: a1 }).then((r) => this.#countFound(r));
      case "setnx":
        return b.execute({ op: "set", key: a1, value: args[2]!, cond: "nx" }).then((r) =>
          r.kind === "error" ? r : integer(r.kind === "simple" ? 1 : 0)
        );
      case "getset":
        return b.execute({ op: "set", key: a1, value: args[2]!, get: true }).then((r) =>
          this.#countFound(r)
        );
      case "setex":
      case "psetex": {
        const expire = parseSetExpiry(name === "setex" ? "ex" : "px", args[2]!, name);
        if (isReply(expire)) return expire;
        return b.execute({ op: "set", key: a1, value: args[3]!, expire });
      }
      case "getex":
        return this.#getex(args);
      case "mget":
        return this.#readLive(args.slice(1)).then((vs) => {
          const bytes = vs.reduce((n, v) => n + (v?.value.length ?? 0), 0);
          if (bytes > this.#replyBytesMax) return this.#replyTooLarge(bytes);
          return array(vs.map((v) => bulk(v?.value ?? null)));
        });
      case "mset":
      case "msetnx":
        if (args.length % 2 === 0) {
          return error(`ERR wrong number of arguments for '${name}' command`);
        }
        return b.execute({ op: name, entries: args.slice(1) });
      case "del":
      case "unlink":
        return b.execute({ op: "del", keys: args.slice(1) });
      case "rename":
      case "renamenx":
        return b.execute({
          op: "rename",
          key: a1,
          newKey: args[2]!,
          ...(name === "renamenx" ? { nx: true } : {}),
        });
      case "copy":
        return this.#copy(args);
      case "exists":
      case "touch":
        return this.#readLive(args.slice(1)).then((vs) =>
          integer(vs.filter((v) => v !== undefined).length)
        );
      case "incr":
        return b.execute({ op: "incrby", key: a1, delta: "1" });
      case "decr":
        return b.execute({ op: "incrby", key: a1, delta: "-1" });
      case "incrby":
      case "decrby": {
        const d = parseInt64(args[2]!);
        if (d === undefined) return error(WRONG_INT);
        if (name === "decrby" && d === INT64_MIN) return error("ERR decrement would overflow");
        return b.execute({ op: "incrby", key: a1, delta: String(name === "decrby" ? -d : d) });
      }
      case "incrbyfloat": {
        const delta = args[2]!.length < LONG_DOUBLE_CHARS_MAX ? str(args[2]!) : "";
        if (parseLongDouble(delta) === undefined) return error(NOT_A_FLOAT);
        return b.execute({ op: "incrbyfloat", key: a1, delta });
      }
      case "append":
        return b.execute({ op: "append", key: a1, value: args[2]! });
      case "setrange": {
        const offset = parseInt64(args[2]!);
        if (offset === undefined) return error(WRONG_INT);
        if (offset < 0n) return error("ERR offset is out of range");
        // Past the value limit the write is refused at apply time with Redis's own error.
        const capped = offset > BigInt(VALUE_BYTES_MAX) ? VALUE_BYTES_MAX + 1 : Number(offset);
        return b.execute({ op: "setrange", key: a1, offset: capped, value: args[3]! });
      }
      case "getrange":
      case "substr":
        return this.#getrange(args);
      case "setbit": {
        const offset = bitOffset(parseInt64(args[2]!));
        if (offset === undefined) return error(BIT_OFFSET_ERROR);
        const bit = parseInt64(args[3]!);
        if (bit !== 0n && bit !== 1n) return error(BIT_VALUE_ERROR);
        return b.execute({ op: "setbit", key: a1, offset, bit: bit === 1n ? 1 : 0 });
      }
      case "getbit": {
        const offset = bitOffset(parseInt64(args[2]!));
        if (offset === undefined) return error(BIT_OFFSET_ERROR);
        return this.#readOne(a1).then((v) => integer(getBit(v?.value, offset)));
      }
      case "bitcount":
        return this.#bitcount(args);
      case "bitpos":
        return this.#bitpos(args);
      case "strlen":
        return this.#readOne(a1).then((v) => integer(v?.value.length ?? 0));
      case "expire":
      case "pexpire":
      case "expireat":
      case "pexpireat":
        return this.#expire(name, args);
      case "ttl":
      case "pttl":
        return this.#readOne(a1).then((v) => {
          if (v === undefined) return integer(-2);
          if (v.expireAtMs === undefined) return integer(-1);
          const ms = Math.max(0, v.expireAtMs - this.#o.now());
          return integer(name === "pttl" ? ms : Math.floor((ms + 500) / 1000));
        });
      case "expiretime":
      case "pexpiretime":
        return this.#readOne(a1).then((v) => {
          if (v === undefined) return integer(-2);
          if (v.expireAtMs === undefined) return integer(-1);
          return integer(name === "pexpiretime" ? v.expireAtMs : Math.floor(v.expireAtMs / 1000));
        });
      case "time": {
        const ms = this.#o.now(); // the node's clock has millisecond resolution
        return array([bulk(String(Math.floor(ms / 1000))), bulk(String((ms % 1000) * 1000))]);
      }
      case "persist":
        return b.execute({ op: "persist", key: a1 });
      case "scan":
        return this.#scan(args);
      case "keys":
        return this.#keys(a1);
      case "type":
        return this.#readOne(a1).then((v) => simple(v === undefined ? "none" : v.type));
      case "object":
        return this.#object(args);
      case "spire.stats":
        return this.#spireStats();
      case "spire.regions":
        return this.#spireRegions();
      case "spire.scanrange":
        return this.#spireScanRange(args);
      default:
        return error(`ERR unknown command '${name}'`);
    }
  }

  /**
   * WATCH: remembers what each key holds now (a key already watched keeps its first reading, as in
   * Redis); EXEC aborts if any of them holds something else by then.
   */
  async #watch(session: Session, keys: readonly Uint8Array[]): Promise<Reply> {
    if (session.multi !== undefined) return error("ERR WATCH inside MULTI is not allowed");
    const watched = session.watched ?? new Map<string, WatchedKey>();
    // Keys not watched yet, each once (a key already watched keeps its first reading).
    const fresh = new Map<string, Uint8Array>();
    for (const k of keys) {
      const id = keyId(k);
      if (!watched.has(id)) fresh.set(id, k);
    }
    if (watched.size + fresh.size > this.#watchKeysMax) {
      return error(
        `ERR too many watched keys: at most ${this.#watchKeysMax} per connection (watchKeysMax)`,
      );
    }
    const values = fresh.size === 0 ? [] : await this.#o.backend.read([...fresh.values()]);
    const nowMs = this.#o.now();
    let i = 0;
    for (const [id, key] of fresh) {
      const stored = values[i++];
      const live = stored !== undefined && !isExpired(stored, nowMs);
      watched.set(id, { key: key.slice(), stored, live });
    }
    session.watched = watched;
    return OK;
  }

  /**
   * EXEC: the queued commands go as one write (with the keys under WATCH and what WATCH read),
   * evaluated one after the other where writes are applied (node/commands/transaction.ts): one
   * atomic step that no other command interleaves with. The reply is the array of their replies,
   * or a null array when a watched key changed since WATCH (then nothing ran).
   */
  async #exec(session: Session): Promise<Reply> {
    const multi = session.multi;
    if (multi === undefined) return error("ERR EXEC without MULTI");
    const watched = [...(session.watched?.values() ?? [])];
    session.multi = undefined;
    session.watched = undefined;
    if (multi.failed) return error("EXECABORT Transaction discarded because of previous errors.");
    if (multi.commands.length === 0 && watched.length === 0) return array([]);
    this.#keyspaceCache = undefined;
    const reply = await this.#o.backend.execute({
      op: "exec",
      commands: multi.commands,
      watchKeys: watched.map((w) => w.key),
      watchSeen: watched.map((w) => (w.stored === undefined ? null : encodeValue(w.stored))),
      watchLive: watched.map((w) => w.live),
    });
    const looked = execLookups.get(reply);
    if (looked !== undefined) this.countLookups(looked.keyspaceHits, looked.keyspaceMisses);
    return reply;
  }

  #replyTooLarge(bytes: number): Reply {
    return error(
      `ERR reply too large: ${bytes} bytes; at most ${this.#replyBytesMax} (replyBytesMax)`,
    );
  }

  async #readLive(keys: readonly Uint8Array[]): Promise<(StoredValue | undefined)[]> {
    const now = this.#o.now();
    const values = await this.#o.backend.read(keys);
    let hits = 0;
    const live = values.map((v) => {
      if (v === undefined || isExpired(v, now)) return undefined;
      hits++;
      return v;
    });
    this.#lookups.keyspaceHits += hits;
    this.#lookups.keyspaceMisses += live.length - hits;
    return live;
  }

  /** Counts the lookup of a command that answers its key's old value or nil (GETDEL, GETEX, SET GET). */
  #countFound(reply: Reply): Reply {
    if (reply.kind === "bulk") {
      if (reply.value === null) this.#lookups.keyspaceMisses++;
      else this.#lookups.keyspaceHits++;
    }
    return reply;
  }

  async #readOne(key: Uint8Array): Promise<StoredValue | undefined> {
    return (await this.#readLive([key]))[0];
  }

  #set(args: readonly Uint8Array[]): Promise<Reply> | Reply {
    let cond: "nx" | "xx" | undefined;
    let get = false;
    let keepTtl = false;
    const expiry = new ExpiryOption();
    for (let i = 3; i < args.length; i++) {
      const opt = lc(args[i]!);
      if (opt === "nx" && cond !== "xx") cond = "nx";
      else if (opt === "xx" && cond !== "nx") cond = "xx";
      else if (opt === "get") get = true;
      else if (opt === "keepttl" && !expiry.given) keepTtl = true;
      else if (!keepTtl && expiry.take(opt, args[i + 1])) i++;
      else return error(SYNTAX);
    }
    const expire = expiry.parse("set");
    if (isReply(expire)) return expire;
    const cmd: WriteCommand = {
      op: "set",
      key: args[1]!,
      value: args[2]!,
      ...(cond !== undefined ? { cond } : {}),
      ...(get ? { get } : {}),
      ...(keepTtl ? { keepTtl } : {}),
      ...(expire !== undefined ? { expire } : {}),
    };
    const reply = this.#o.backend.execute(cmd);
    return get ? reply.then((r) => this.#countFound(r)) : reply;
  }

  #getex(args: readonly Uint8Array[]): Promise<Reply> | Reply {
    let persist = false;
    const expiry = new ExpiryOption();
    for (let i = 2; i < args.length; i++) {
      const opt = lc(args[i]!);
      if (opt === "persist" && !expiry.given) persist = true;
      else if (!persist && expiry.take(opt, args[i + 1])) i++;
      else return error(SYNTAX);
    }
    const expire = expiry.parse("getex");
    // Redis looks the key up before it checks the time's value: a missing key answers nil,
    // and either way the lookup counts as a keyspace hit or miss.
    if (isReply(expire)) return this.#readOne(args[1]!).then((v) => v === undefined ? NIL : expire);
    return this.#o.backend.execute({
      op: "getex",
      key: args[1]!,
      ...(persist ? { persist } : {}),
      ...(expire !== undefined ? { expire } : {}),
    }).then((r) => this.#countFound(r));
  }

  #expire(name: string, args: readonly Uint8Array[]): Promise<Reply> | Reply {
    let nx = false, xx = false, gt = false, lt = false;
    for (let i = 3; i < args.length; i++) {
      const opt = lc(args[i]!);
      if (opt === "nx") nx = true;
      else if (opt === "xx") xx = true;
      else if (opt === "gt") gt = true;
      else if (opt === "lt") lt = true;
      else return error(`ERR Unsupported option ${str(args[i]!)}`);
    }
    if (nx && (xx || gt || lt)) {
      return error("ERR NX and XX, GT or LT options at the same time are not compatible");
    }
    if (gt && lt) return error("ERR GT and LT options at the same time are not compatible");
    const v = parseInt64(args[2]!);
    if (v === undefined) return error(WRONG_INT);
    const ms = name === "expire" || name === "expireat" ? v * 1000n : v;
    const relative = name === "expire" || name === "pexpire";
    const bound = BigInt(EXPIRE_AT_MS_MAX) / (relative ? 2n : 1n);
    if (ms > bound || ms < -bound) return invalidExpire(name);
    const cond = nx ? "nx" : xx ? "xx" : gt ? "gt" : lt ? "lt" : undefined;
    return this.#o.backend.execute({
      op: "expire",
      key: args[1]!,
      expire: relative ? { in: Number(ms) } : { at: Number(ms) },
      ...(cond !== undefined ? { cond } : {}),
    });
  }

  /** BITCOUNT key [start end [BYTE|BIT]], as redis-server 7.0: a missing key is 0 whatever follows. */
  async #bitcount(args: readonly Uint8Array[]): Promise<Reply> {
    const v = await this.#readOne(args[1]!);
    if (v === undefined) return integer(0);
    if (args.length === 2) return integer(bitCount(v.value));
    if (args.length !== 4 && args.length !== 5) return error(SYNTAX);
    const start = parseInt64(args[2]!), end = parseInt64(args[3]!);
    if (start === undefined || end === undefined) return error(WRONG_INT);
    const unit = args.length === 5 ? bitUnit(args[4]!) : false;
    if (unit === undefined) return error(SYNTAX);
    return integer(bitCount(v.value, { start, end, inBits: unit }));
  }

  /**
   * BITPOS key bit [start [end [BYTE|BIT]]], as redis-server 7.0: the bit is checked first, then
   * a missing key answers at once (-1 for a set bit, 0 for a clear one), then the range.
   */
  async #bitpos(args: readonly Uint8Array[]): Promise<Reply> {
    const bit = parseInt64(args[2]!);
    if (bit === undefined) return error(WRONG_INT);
    if (bit !== 0n && bit !== 1n) return error("ERR The bit argument must be 1 or 0.");
    const b = bit === 1n ? 1 : 0;
    const v = await this.#readOne(args[1]!);
    if (v === undefined) return integer(b === 1 ? -1 : 0);
    if (args.length === 3) return integer(bitPos(v.value, b));
    if (args.length > 6) return error(SYNTAX);
    const start = parseInt64(args[3]!);
    if (start === undefined) return error(WRONG_INT);
    const unit = args.length === 6 ? bitUnit(args[5]!) : false;
    if (unit === undefined) return error(SYNTAX);
    let end: bigint | undefined;
    if (args.length >= 5) {
      end = parseInt64(args[4]!);
      if (end === undefined) return error(WRONG_INT);
    }
    return integer(
      bitPos(v.value, b, { start, ...(end !== undefined ? { end } : {}), inBits: unit }),
    );
  }

  /** GETRANGE (and its old name SUBSTR) with Redis's rules for negative and out-of-range ends. */
  async #getrange(args: readonly Uint8Array[]): Promise<Reply> {
    const start = parseInt64(args[2]!), end = parseInt64(args[3]!);
    if (start === undefined || end === undefined) return error(WRONG_INT);
    const value = (await this.#readOne(args[1]!))?.value ?? new Uint8Array(0);
    const n = BigInt(value.length);
    if (start < 0n && end < 0n && start > end) return bulk("");
    let from = start < 0n ? n + start : start;
    let to = end < 0n ? n + end : end;
    if (from < 0n) from = 0n;
    if (to < 0n) to = 0n;
    if (to >= n) to = n - 1n;
    if (n === 0n || from > to) return bulk("");
    return bulk(value.subarray(Number(from), Number(to) + 1));
  }

  /** KEYS: every live key matching the pattern, in key order, page by page; the reply is bounded. */
  async #keys(pattern: Uint8Array): Promise<Reply> {
    const keys: Reply[] = [];
    let bytes = 0;
    let after: Uint8Array | undefined;
    for (;;) {
      const page = await this.#o.backend.scanKeys(after, this.#scanCountMax);
      const now = this.#o.now();
      for (const { key, value } of page.entries) {
        if (isExpired(value, now) || !globMatch(pattern, key)) continue;
        bytes += key.length;
        if (bytes > this.#replyBytesMax) return this.#replyTooLarge(bytes);
        keys.push(bulk(key));
      }
      const last = page.entries[page.entries.length - 1];
      if (page.done || last === undefined) return array(keys);
      after = last.key;
    }
  }

  async #scan(args: readonly Uint8Array[]): Promise<Reply> {
    const cursorText = str(args[1]!);
    if (!/^\d{1,20}$/.test(cursorText) || BigInt(cursorText) > (1n << 64n) - 1n) {
      return error("ERR invalid cursor");
    }
    const cursor = BigInt(cursorText);
    let pattern: Uint8Array | undefined;
    let type: string | undefined;
    let count = 10;
    for (let i = 2; i < args.length; i++) {
      const opt = lc(args[i]!);
      const next = args[i + 1];
      if (next === undefined) return error(SYNTAX);
      if (opt === "count") {
        const n = parseInt64(next);
        if (n === undefined) return error(WRONG_INT);
        if (n < 1n) return error(SYNTAX);
        count = Number(n > BigInt(this.#scanCountMax) ? BigInt(this.#scanCountMax) : n);
      } else if (opt === "match") {
        pattern = next;
      } else if (opt === "type") {
        type = lc(next);
      } else return error(SYNTAX);
      i++;
    }
    let after: Uint8Array | undefined;
    if (cursor !== 0n) {
      after = this.#cursors.take(cursor);
      if (after === undefined) {
        return error("ERR invalid cursor: unknown or expired SCAN cursor, start again from 0");
      }
    }
    const page = await this.#o.backend.scanKeys(after, count);
    const now = this.#o.now();
    const keys: Reply[] = [];
    for (const { key, value } of page.entries) {
      if (isExpired(value, now)) continue;
      if (pattern !== undefined && !globMatch(pattern, key)) continue;
      if (type !== undefined && value.type !== type) continue;
      keys.push(bulk(key));
    }
    const last = page.entries[page.entries.length - 1];
    const next = page.done || last === undefined ? 0n : this.#cursors.save(last.key);
    return array([bulk(String(next)), array(keys)]);
  }

  #hello(session: Session, args: readonly Uint8Array[]): Reply {
    let version = session.resp;
    if (args.length >= 2) {
      const v = parseInt64(args[1]!);
      if (v === undefined) return error("ERR Protocol version is not an integer or out of range");
      if (v !== 2n && v !== 3n) return error("NOPROTO unsupported protocol version");
      version = Number(v) as RespVersion;
    }
    let authUser: Uint8Array | undefined;
    let authPass: Uint8Array | undefined;
    let setName: Uint8Array | undefined;
    for (let i = 2; i < args.length; i++) {
      const opt = lc(args[i]!);
      const left = args.length - i - 1;
      if (opt === "auth" && left >= 2) {
        authUser = args[i + 1];
        authPass = args[i + 2];
        i += 2;
      } else if (opt === "setname" && left >= 1) {
        setName = args[i + 1];
        i += 1;
      } else {
        return error(`ERR Syntax error in HELLO option '${str(args[i]!)}'`);
      }
    }
    if (authUser !== undefined && authPass !== undefined) {
      const r = this.#checkAuth(session, authUser, authPass);
      if (r !== undefined) return r;
    }
    if (!session.authed) {
      return error(
        "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
      );
    }
    if (setName !== undefined) {
      if (!validClientName(setName)) {
        return error("ERR Client names cannot contain spaces, newlines or special characters.");
      }
      session.name = setName.length === 0 ? undefined : str(setName);
    }
    session.resp = version;
    return map([
      ["server", bulk("spire")],
      ["version", bulk("7.0.0")],
      ["proto", integer(version)],
      ["id", integer(session.id)],
      ["mode", bulk("standalone")],
      ["role", bulk("master")],
      ["modules", array([])],
    ]);
  }

  #checkAuth(session: Session, user: Uint8Array, pass: Uint8Array): Reply | undefined {
    const password = this.#o.password;
    if (password === undefined) {
      // As Redis without requirepass: the default user accepts any password.
      if (str(user) === "default") {
        session.authed = true;
        return undefined;
      }
      return error("WRONGPASS invalid username-password pair or user is disabled.");
    }
    // Compare both fields even when the user is wrong, to keep timing uniform.
    const passOk = timingSafeEqual(utf8.decode(pass), password);
    if (str(user) !== "default" || !passOk) {
      return error("WRONGPASS invalid username-password pair or user is disabled.");
    }
    session.authed = true;
    return undefined;
  }

  #auth(session: Session, args: readonly Uint8Array[]): Reply {
    if (args.length > 3) return error(SYNTAX);
    if (args.length === 2 && this.#o.password === undefined) {
      return error(
        "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
      );
    }
    const user = args.length === 3 ? args[1]! : new TextEncoder().encode("default");
    const pass = args[args.length - 1]!;
    return this.#checkAuth(session, user, pass) ?? OK;
  }

  /** COPY source destination [DB 0] [REPLACE], checked as Redis 7.0 checks it; one database. */
  #copy(args: readonly Uint8Array[]): Promise<Reply> | Reply {
    let replace = false;
    for (let i = 3; i < args.length; i++) {
      const option = lc(args[i]!);
      if (option === "replace") {
        replace = true;
      } else if (option === "db" && i + 1 < args.length) {
        const db = parseInt64(args[++i]!);
        if (db === undefined) return error(WRONG_INT);
        if (db < -(2n ** 31n) || db >= 2n ** 31n) {
          return error("ERR value is out of range, value must between -2147483648 and 2147483647");
        }
        // Any number but 0 names a database this server does not have (`databases` is 1).
        if (db !== 0n) return error("ERR DB index is out of range");
      } else {
        return error(SYNTAX);
      }
    }
    const [key, newKey] = [args[1]!, args[2]!];
    if (key.length === newKey.length && key.every((b, i) => b === newKey[i])) {
      return error("ERR source and destination objects are the same");
    }
    return this.#copyCounted(key, newKey, replace);
  }

  async #copyCounted(key: Uint8Array, newKey: Uint8Array, replace: boolean): Promise<Reply> {
    // Redis counts COPY's look-up of its source in keyspace_hits / keyspace_misses; the reply
    // (0 for a missing source and for a taken name alike) cannot tell them apart, so it is read.
    await this.#readOne(key);
    return await this.#o.backend.execute({
      op: "copy",
      key,
      newKey,
      ...(replace ? { replace: true } : {}),
    });
  }

  #clientLine(s: Session): string {
    const now = this.#o.now();
    return [
      `id=${s.id}`,
      `addr=${s.addr}`,
      `laddr=${s.laddr}`,
      `name=${s.name ?? ""}`,
      `age=${Math.floor((now - s.createdMs) / 1000)}`,
      `idle=${Math.floor((now - s.lastCommandMs) / 1000)}`,
      "db=0",
      `resp=${s.resp}`,
      `cmd=${s.lastCommand}`,
      `lib-name=${s.libName ?? ""}`,
      `lib-ver=${s.libVer ?? ""}`,
    ].join(" ");
  }

  /**
   * OBJECT ENCODING, REFCOUNT, IDLETIME, FREQ (HELP is answered from the table). A missing key
   * is nil for each, as in Redis. Spire stores every string the same way, so ENCODING names the
   * encoding Redis gives a value of that shape when it is written with SET: `int` for a
   * canonical 64-bit integer, `embstr` up to 44 bytes, `raw` above. IDLETIME and FREQ are
   * refused: Spire records neither when nor how often a key is read, and a made-up figure
   * would mislead an eviction or cache analysis.
   */
  async #object(args: readonly Uint8Array[]): Promise<Reply> {
    const sub = lc(args[1]!);
    const v = await this.#readOne(args[2]!);
    if (v === undefined) return bulk(null);
    switch (sub) {
      case "encoding":
        return bulk(stringEncoding(v.value));
      case "refcount":
        return integer(1);
      case "idletime":
        return error(
          "ERR OBJECT IDLETIME is not supported: Spire does not track when a key was last read",
        );
      case "freq":
        return error(
          "ERR OBJECT FREQ is not supported: Spire does not track how often a key is read " +
            "(it has no LFU eviction policy)",
        );
      default: // the table lists the subcommands: checked before dispatch
        return error(`ERR unknown subcommand '${sub}'. Try OBJECT HELP.`);
    }
  }

  #config(args: readonly Uint8Array[]): Reply {
    if (lc(args[1]!) === "resetstat") {
      if (this.#o.resetStats === undefined) {
        return error("ERR CONFIG RESETSTAT: this server keeps no statistics to reset");
      }
      this.#o.resetStats();
      return OK;
    }
    if (lc(args[1]!) === "set") {
      return error(
        "ERR CONFIG SET is not supported: Spire reads its settings at start-up from the YAML " +
          "config, flags and SPIRE_* variables (the admin port's /config shows them)",
      );
    }
    // CONFIG GET: every parameter matching any pattern (no case), each once, as Redis 7 does.
    const params = this.#o.configParameters?.() ?? {};
    const found: [string, Reply][] = [];
    for (const [name, value] of Object.entries(params)) {
      const bytes = utf8Encoder.encode(name);
      if (args.slice(2).some((p) => globMatch(p, bytes, true))) found.push([name, bulk(value)]);
    }
    return map(found); // a flat array of names and values in RESP2, as CONFIG GET's
  }

  #client(session: Session, args: readonly Uint8Array[]): Reply {
    switch (lc(args[1]!)) {
      case "setname": {
        const name = args[2]!;
        if (!validClientName(name)) {
          return error("ERR Client names cannot contain spaces, newlines or special characters.");
        }
        session.name = name.length === 0 ? undefined : str(name);
        return OK;
      }
      case "getname":
        return bulk(session.name ?? null);
      case "setinfo": {
        const attr = lc(args[2]!);
        const value = args[3]!;
        if (attr !== "lib-name" && attr !== "lib-ver") {
          return error(`ERR Unrecognized option '${str(args[2]!)}'`);
        }
        if (!value.every((b) => b >= 33 && b <= 126)) {
          return error(`ERR ${attr} cannot contain spaces, newlines or special characters.`);
        }
        if (attr === "lib-name") session.libName = str(value);
        else session.libVer = str(value);
        return OK;
      }
      case "id":
        return integer(session.id);
      case "info":
        return bulk(this.#clientLine(session) + "\n");
      case "kill":
        return this.#clientKill(session, args);
      case "list": {
        if (args.length > 2) return error(SYNTAX);
        const lines = [...(this.#o.sessions?.() ?? [session])].map((s) =>
          this.#clientLine(s) + "\n"
        );
        return bulk(lines.join(""));
      }
      default:
        return error(SYNTAX);
    }
  }

  /**
   * CLIENT KILL as Redis 7.0 has it: the old form `CLIENT KILL ip:port` (OK, or an error when no
   * client has that address; it may close the caller) and the filter form `ID`, `TYPE`, `USER`,
   * `ADDR`, `LADDR`, `SKIPME` (the number closed; the caller is skipped unless `SKIPME no`). Every
   * client here is a normal one of the default user. The caller's own connection closes after its
   * reply.
   */
  #clientKill(session: Session, args: readonly Uint8Array[]): Reply {
    const oldForm = args.length === 3;
    let skipMe = !oldForm;
    let addr = oldForm ? str(args[2]!) : undefined;
    let laddr: string | undefined;
    let id: number | undefined;
    let typeMatches = true;
    if (!oldForm) {
      for (let i = 2; i < args.length; i += 2) {
        const value = args[i + 1];
        if (value === undefined) return error(SYNTAX);
        switch (lc(args[i]!)) {
          case "id": {
            const n = parseInt64(value);
            if (n === undefined || n < 1n) return error("ERR client-id should be greater than 0");
            id = n > BigInt(Number.MAX_SAFE_INTEGER) ? -1 : Number(n); // -1: no client has it
            break;
          }
          case "type": {
            const type = lc(value);
            if (!["normal", "master", "slave", "replica", "pubsub"].includes(type)) {
              return error(`ERR Unknown client type '${str(value)}'`);
            }
            typeMatches = type === "normal";
            break;
          }
          case "user":
            if (str(value) !== "default") return error(`ERR No such user '${str(value)}'`);
            break;
          case "addr":
            addr = str(value);
            break;
          case "laddr":
            laddr = str(value);
            break;
          case "skipme": {
            const v = lc(value);
            if (v !== "yes" && v !== "no") return error(SYNTAX);
            skipMe = v === "yes";
            break;
          }
          default:
            return error(SYNTAX);
        }
      }
    }
    let killed = 0;
    const all = this.#o.sessions?.() ?? [session];
    for (const s of [...all]) {
      if (!typeMatches || (id !== undefined && s.id !== id)) continue;
      if ((addr !== undefined && s.addr !== addr) || (laddr !== undefined && s.laddr !== laddr)) {
        continue;
      }
      if (s === session) {
        if (skipMe) continue;
        session.closeAfterReply = true;
      } else {
        this.#o.closeSession?.(s);
      }
      killed++;
    }
    if (oldForm) return killed === 0 ? error("ERR No such client") : OK;
    return integer(killed);
  }

  #commandInfo(spec: CommandSpec): Reply {
    return array([
      bulk(spec.name),
      integer(spec.arity),
      { kind: "set", items: spec.flags.map(simple) },
      integer(spec.firstKey),
      integer(spec.lastKey),
      integer(spec.keyStep),
      { kind: "set", items: spec.categories.map(simple) },
      array([]),
      array([]),
      array((spec.subcommands ?? []).map((s) => this.#commandInfo(s))),
    ]);
  }

  #commandDocs(spec: CommandSpec): Reply {
    const entries: [string, Reply][] = [
      ["summary", bulk(spec.summary)],
      ["since", bulk("1.0.0")],
      ["group", bulk(spec.group)],
    ];
    if (spec.subcommands !== undefined) {
      entries.push([
        "subcommands",
        map(spec.subcommands.map((s) => [s.name, this.#commandDocs(s)])),
      ]);
    }
    return map(entries);
  }

  #command(args: readonly Uint8Array[]): Reply {
    const specs = [...this.#table.values()];
    if (args.length === 1) return array(specs.map((s) => this.#commandInfo(s)));
    const names = args.slice(2).map(lc);
    switch (lc(args[1]!)) {
      case "count":
        return integer(specs.length);
      case "list":
        if (args.length > 2) return error(SYNTAX);
        return array(specs.map((s) => bulk(s.name)));
      case "info": {
        const chosen = names.length === 0 ? specs : names.map((n) => this.#table.get(n));
        return array(chosen.map((s) => (s === undefined ? NIL : this.#commandInfo(s))));
      }
      case "docs": {
        const chosen = names.length === 0 ? specs : names.flatMap((n) => {
          const s = this.#table.get(n);
          return s === undefined ? [] : [s];
        });
        return map(chosen.map((s) => [s.name, this.#commandDocs(s)]));
      }
      default:
        return error(SYNTAX);
    }
  }

  async #keyspace(): Promise<Keyspace> {
    const now = this.#o.now();
    const cached = this.#keyspaceCache;
    if (cached !== undefined && now - cached.atMs < this.#keyspaceCacheMs) return cached.keyspace;
    const keyspace = await this.#o.backend.keyspace(now);
    this.#keyspaceCache = { atMs: now, keyspace };
    return keyspace;
  }

  async #info(session: Session, args: readonly Uint8Array[]): Promise<Reply> {
    const asked = args.slice(1).map(lc);
    // Redis's order; commandstats only when asked for by name or with "all" / "everything".
    const wanted = INFO_SECTIONS.filter((s) =>
      asked.includes(s) ||
      asked.includes("all") || asked.includes("everything") ||
      ((asked.length === 0 || asked.includes("default")) && s !== "commandstats")
    );
    const fromServer = this.#o.serverSections?.() ?? {};
    const parts: string[] = [];
    for (const section of wanted) {
      let fields: Record<string, string | number> = {};
      if (section === "keyspace") {
        // Redis's line: keys (expired ones not yet removed included), keys with a TTL, and the
        // mean time left of those not yet expired, in ms (Redis estimates it; Spire counts).
        const { keys, expires, avgTtlMs } = await this.#keyspace();
        if (keys > 0) fields = { db0: `keys=${keys},expires=${expires},avg_ttl=${avgTtlMs}` };
      } else if (section === "rocksdb") {
        if (this.#o.engineStats === undefined) continue;
        flattenInfo(await this.#o.engineStats(), "", fields);
      } else {
        const provided = fromServer[section];
        if (provided === undefined) continue;
        fields = provided();
      }
      const title = INFO_TITLES[section] ?? section[0]!.toUpperCase() + section.slice(1);
      const lines = [`# ${title}`, ...Object.entries(fields).map(([k, v]) => `${k}:${v}`)];
      parts.push(lines.join("\r\n") + "\r\n");
    }
    const text = parts.join("\r\n");
    return session.resp === 3 ? { kind: "verbatim", format: "txt", text } : bulk(text);
  }

  async #spireStats(): Promise<Reply> {
    const server = Object.fromEntries(
      Object.entries(this.#o.serverSections?.() ?? {}).map(([name, section]) => [name, section()]),
    );
    const engine = this.#o.engineStats === undefined ? null : await this.#o.engineStats();
    return fromPlain({ ...server, keys: await this.#o.backend.dbsize(), engine });
  }

  async #spireRegions(): Promise<Reply> {
    if (this.#o.regions === undefined) {
      return error("ERR SPIRE.REGIONS: this node has no region source configured");
    }
    return fromPlain(await this.#o.regions());
  }

  async #spireScanRange(args: readonly Uint8Array[]): Promise<Reply> {
    let batchSize = 1000;
    let limit = 1000;
    for (let i = 3; i < args.length; i += 2) {
      const opt = lc(args[i]!);
      const raw = args[i + 1];
      if ((opt !== "batch" && opt !== "limit") || raw === undefined) return error(SYNTAX);
      const n = parseInt64(raw);
      if (n === undefined || n < 1n || n > BigInt(this.#scanRangeRowsMax)) {
        return error(
          `ERR SPIRE.SCANRANGE ${opt.toUpperCase()}: must be an integer from 1 to ${this.#scanRangeRowsMax}`,
        );
      }
      if (opt === "batch") batchSize = Number(n);
      else limit = Number(n);
    }
    const r = await this.#o.backend.scanRange(args[1]!, args[2]!, {
      batchSize,
      limit,
      nowMs: this.#o.now(),
    });
    const bytes = r.rows.reduce((n, [k, v]) => n + k.length + v.length, 0);
    if (bytes > this.#replyBytesMax) return this.#replyTooLarge(bytes);
    return map([
      ["rows", array(r.rows.map(([k, v]) => array([bulk(k), bulk(v)])))],
      ["rowsReturned", integer(r.rowsReturned)],
      ["bytesRead", integer(r.bytesRead)],
      ["scanTimeMs", { kind: "double", value: r.scanTimeMs }],
      ["batches", integer(r.batches)],
    ]);
  }
}

/** Checks keys and values against the storage limits (KEY_BYTES_MAX, VALUE_BYTES_MAX). */
function sizeError(
  name: string,
  spec: CommandSpec,
  args: readonly Uint8Array[],
): Reply | undefined {
  if (spec.firstKey > 0) {
    const last = spec.lastKey < 0 ? args.length + spec.lastKey : spec.lastKey;
    for (let i = spec.firstKey; i <= last && i < args.length; i += spec.keyStep) {
      if (args[i]!.length > KEY_BYTES_MAX) {
        return error(
          `ERR key is too large: ${args[i]!.length} bytes; at most ${KEY_BYTES_MAX} bytes`,
        );
      }
    }
  }
  if (
    name === "spire.scanrange" &&
    (args[1]!.length > KEY_BYTES_MAX || args[2]!.length > KEY_BYTES_MAX)
  ) {
    return error(`ERR key is too large: at most ${KEY_BYTES_MAX} bytes`);
  }
  const values = name === "set" || name === "append"
    ? [args[2]!]
    : name === "mset" || name === "msetnx"
    ? args.filter((_, i) => i >= 2 && i % 2 === 0)
    : [];
  if (values.some((v) => v.length > VALUE_BYTES_MAX)) {
    return error(`ERR string exceeds maximum allowed size (${VALUE_BYTES_MAX} bytes)`);
  }
  return undefined;
}

/** Commands that act on the transaction itself: they run at once, even between MULTI and EXEC. */
const TRANSACTION_CONTROL: ReadonlySet<string> = new Set([
  "multi",
  "exec",
  "discard",
  "watch",
  "quit",
  "reset",
]);

/** The commands without keys a transaction may hold: their replies need nothing stored. */
const TRANSACTION_KEYLESS: ReadonlySet<string> = new Set([
  "ping",
  "echo",
  "time",
  "role",
  "unwatch",
]);

const QUEUED = simple("QUEUED");
const RESET = simple("RESET");

function argsBytes(args: readonly Uint8Array[]): number {
  let n = 0;
  for (const a of args) n += a.length;
  return n;
}

/** Key lookups made by the commands of an EXEC where it was applied, by its reply. */
const execLookups = new WeakMap<Reply, KeyspaceLookups>();

/**
 * Attaches to an EXEC's reply the key lookups its commands made when it was applied (on a node,
 * by the region's state machine), so that the executor that sent it counts them in INFO stats.
 * @param reply the EXEC's reply
 * @param lookups what the commands looked up
 */
export function attachExecLookups(reply: Reply, lookups: KeyspaceLookups): void {
  if (lookups.keyspaceHits > 0 || lookups.keyspaceMisses > 0) execLookups.set(reply, lookups);
}

/**
 * Why a command was refused before it ran, as redis-server's statistics tell it apart: an
 * unknown command or subcommand (counted in no command's statistics), or a known one rejected
 * for its number of arguments or for authentication (its `rejected_calls`).
 */
export type Refusal = "unknown" | "rejected";

const refusals = new WeakMap<Reply, Refusal>();

function markRefused(reply: Reply, why: Refusal): Reply {
  refusals.set(reply, why);
  return reply;
}

/**
 * Whether an error reply of {@link CommandExecutor.execute} refused the command before it ran,
 * and why; undefined for a command that ran (and maybe failed).
 * @param reply a reply the executor returned
 * @returns the refusal, or undefined
 */
export function refusalOf(reply: Reply): Refusal | undefined {
  return refusals.get(reply);
}

/** BITCOUNT's and BITPOS's unit: true for BIT, false for BYTE, undefined for anything else. */
function bitUnit(arg: Uint8Array): boolean | undefined {
  const unit = lc(arg);
  return unit === "bit" ? true : unit === "byte" ? false : undefined;
}

function unknownCommand(args: readonly Uint8Array[]): Reply {
  let shown = "";
  for (const a of args.slice(1)) {
    if (shown.length >= 128) break;
    shown += `'${str(a).slice(0, 128 - shown.length)}' `;
  }
  return error(
    `ERR unknown command '${str(args[0]!).slice(0, 128)}', with args beginning with: ${shown}`,
  );
}

/** Redis's longest string stored as one allocation with its object header (embstr). */
const EMBSTR_BYTES_MAX = 44;

/** The encoding Redis gives a string value of this shape when SET writes it. */
function stringEncoding(value: Uint8Array): string {
  if (parseInt64(value) !== undefined) return "int";
  return value.length <= EMBSTR_BYTES_MAX ? "embstr" : "raw";
}

/**
 * `<CONTAINER> HELP` as Redis words it: a heading, then each subcommand this server has with its
 * arguments and, indented, what it does; HELP last.
 */
function subcommandHelp(spec: CommandSpec): Reply {
  const title = spec.name.toUpperCase();
  const lines = [`${title} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:`];
  const subs = spec.subcommands ?? [];
  const ordered = [
    ...subs.filter((s) => !s.name.endsWith("|help")),
    ...subs.filter((s) => s.name.endsWith("|help")),
  ];
  for (const s of ordered) {
    const sub = s.name.slice(spec.name.length + 1).toUpperCase();
    const usage = SUBCOMMAND_USAGE[s.name];
    lines.push(usage === undefined ? sub : `${sub} ${usage}`);
    lines.push(`    ${s.name.endsWith("|help") ? "Print this help." : s.summary + "."}`);
  }
  return array(lines.map(simple));
}

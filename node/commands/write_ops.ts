/**
 * Write commands as data, and their deterministic evaluation.
 *
 * Writes are proposed (to Raft, or to the local write queue) as a
 * {@link WriteCommand}, a plain serializable value, together with the
 * proposer's clock reading. {@link applyWrite} evaluates it at apply time
 * against the state before the command: a pure function of (command, nowMs,
 * state) that returns the engine operations to write atomically and the reply.
 * Replaying the same log therefore yields the same state and replies, expiry
 * decisions included.
 *
 * @module
 */

import { bitOffset, withBit } from "./bitmap.ts";
import {
  addLongDouble,
  formatLongDouble,
  LONG_DOUBLE_CHARS_MAX,
  parseLongDouble,
} from "./_long_double.ts";
import { pack, unpack } from "msgpackr";
import { array, bulk, error, integer, NIL, OK, type Reply } from "../resp/reply.ts";
import type { BytePool } from "../resp/byte_pool.ts";
import { commandKeys } from "./command_table.ts";
import { INT64_MAX, INT64_MIN, int64Bytes, parseInt64 } from "./_int.ts";
import {
  decodeValue,
  encodeValue,
  engineKeyOf,
  isExpired,
  liveValue,
  type StoredValue,
  USER_KEY_RANGE,
  VALUE_BYTES_MAX,
} from "./kv_model.ts";

/** An expiry: relative to the apply time (`in`) or absolute (`at`), both in ms. */
export type Expiry = { readonly in: number } | { readonly at: number };

/** A write command. Keys and values are raw Redis bytes (not engine keys). */
export type WriteCommand =
  | {
    readonly op: "set";
    readonly key: Uint8Array;
    readonly value: Uint8Array;
    readonly cond?: "nx" | "xx";
    readonly get?: boolean;
    readonly expire?: Expiry;
    readonly keepTtl?: boolean;
  }
  | { readonly op: "getdel"; readonly key: Uint8Array }
  | {
    readonly op: "getex";
    readonly key: Uint8Array;
    readonly expire?: Expiry;
    readonly persist?: boolean;
  }
  | { readonly op: "mset"; readonly entries: readonly Uint8Array[] }
  | { readonly op: "msetnx"; readonly entries: readonly Uint8Array[] }
  | { readonly op: "del"; readonly keys: readonly Uint8Array[] }
  /** RENAME (RENAMENX with `nx`): the value and its expiry move to `newKey`. */
  | {
    readonly op: "rename";
    readonly key: Uint8Array;
    readonly newKey: Uint8Array;
    readonly nx?: boolean;
  }
  /** COPY (`replace`: over an existing `newKey`): the value and its expiry, to `newKey`. */
  | {
    readonly op: "copy";
    readonly key: Uint8Array;
    readonly newKey: Uint8Array;
    readonly replace?: boolean;
  }
  | { readonly op: "incrby"; readonly key: Uint8Array; readonly delta: string }
  /** `delta` is the increment as the client sent it (a valid float, see _long_double.ts). */
  | { readonly op: "incrbyfloat"; readonly key: Uint8Array; readonly delta: string }
  | { readonly op: "append"; readonly key: Uint8Array; readonly value: Uint8Array }
  | {
    readonly op: "setrange";
    readonly key: Uint8Array;
    readonly offset: number;
    readonly value: Uint8Array;
  }
  /** SETBIT: the bit at `offset` (bitmap.ts) set to `bit`; the reply is the bit it held. */
  | {
    readonly op: "setbit";
    readonly key: Uint8Array;
    readonly offset: number;
    readonly bit: 0 | 1;
  }
  | {
    readonly op: "expire";
    readonly key: Uint8Array;
    readonly expire: Expiry;
    readonly cond?: "nx" | "xx" | "gt" | "lt";
  }
  | { readonly op: "persist"; readonly key: Uint8Array }
  | { readonly op: "flushdb" }
  | { readonly op: "sweep"; readonly keys: readonly Uint8Array[] }
  /**
   * MULTI/EXEC: the queued commands as the client sent them, evaluated one after the other at
   * apply time, each seeing the ones before it, as one atomic step (node/commands/transaction.ts).
   * The keys under WATCH go with what WATCH read (`watchSeen[i]`: the stored value of
   * `watchKeys[i]` as the engine holds it, or null; `watchLive[i]`: whether it was live): if any
   * holds something else at apply time, nothing runs and the reply is a null array.
   */
  | {
    readonly op: "exec";
    readonly commands: readonly (readonly Uint8Array[])[];
    readonly watchKeys: readonly Uint8Array[];
    readonly watchSeen: readonly (Uint8Array | null)[];
    readonly watchLive: readonly boolean[];
  }
  /**
   * Several single-key writes in one Raft entry (writes of many clients, or of
   * a pipeline, proposed together), applied in order, each seeing the ones
   * before it; the reply is an array of their replies. Holds only the ops of
   * {@link BATCHABLE_WRITE_OPS}.
   */
  | { readonly op: "batch"; readonly cmds: readonly WriteCommand[] };

/** Redis's error for a value or increment that is not a float. */
export const NOT_A_FLOAT = "ERR value is not a valid float";

const encoder = new TextEncoder();

/** Bytes converted per `String.fromCharCode` call (an argument each). */
const LATIN1_CHUNK = 4096;

/** Bytes as Latin-1 text: each byte one character, so any non-ASCII byte fails a number parse. */
function latin1(bytes: Uint8Array): string {
  // `apply` takes the typed array as its argument list; a spread would walk its iterator
  // (a key's text is taken twice an INCR in a batch: 243 against 664 ns a 16-byte key here).
  if (bytes.length <= LATIN1_CHUNK) {
    return String.fromCharCode.apply(null, bytes as unknown as number[]);
  }
  let s = "";
  for (let i = 0; i < bytes.length; i += LATIN1_CHUNK) {
    s += String.fromCharCode.apply(
      null,
      bytes.subarray(i, i + LATIN1_CHUNK) as unknown as number[],
    );
  }
  return s;
}

/** The ops a `batch` write may hold: single-key writes (a `del` of one key). */
export const BATCHABLE_WRITE_OPS: ReadonlySet<string> = new Set([
  "del",
  "set",
  "incrby",
  "incrbyfloat",
  "append",
  "setrange",
  "getdel",
  "persist",
]);

/** One engine operation, in the engine's writeBatch format. */
export type EngineOp =
  | { readonly op: "put"; readonly key: Uint8Array; readonly value: Uint8Array }
  | { readonly op: "delete"; readonly key: Uint8Array }
  | { readonly op: "deleteRange"; readonly start: Uint8Array; readonly end: Uint8Array };

/** A read-only view of the state before the command, by engine key. */
export interface StateReader {
  /** Reads one engine key. */
  get(engineKey: Uint8Array): Uint8Array | undefined | Promise<Uint8Array | undefined>;
}

/** The outcome of applying one write command. */
export interface ApplyResult {
  /** Engine operations to write in one atomic batch (possibly empty). */
  readonly ops: EngineOp[];
  /** The reply for the client. */
  readonly reply: Reply;
}

/** The default size limit of an encoded write command, in bytes. */
export const WRITE_COMMAND_BYTES_MAX = 513 * 1024 * 1024;

/** The user keys a command touches (for routing it to a region). */
export function writeCommandKeys(cmd: WriteCommand): Uint8Array[] {
  switch (cmd.op) {
    case "mset":
    case "msetnx":
      return cmd.entries.filter((_, i) => i % 2 === 0);
    case "del":
    case "sweep":
      return [...cmd.keys];
    case "rename":
    case "copy":
      return [cmd.key, cmd.newKey];
    case "flushdb":
      return [];
    case "exec":
      return [...cmd.watchKeys, ...cmd.commands.flatMap(commandKeys)];
    case "batch":
      return cmd.cmds.flatMap(writeCommandKeys);
    default:
      return [cmd.key];
  }
}

/**
 * A key's bytes as Latin-1 text (one character a byte): an exact map key for byte strings.
 * @param key the key bytes
 * @returns the text
 */
export function keyId(key: Uint8Array): string {
  return latin1(key);
}

/** Reads through the changes the command has made so far (for repeated keys). */
export class Overlay {
  readonly #reader: StateReader;
  readonly #nowMs: number;
  readonly #changed = new Map<string, StoredValue | null>();
  /** Changes not yet in #changed: indexed on the next read only (a blind SET never is). */
  #unindexed: { key: Uint8Array; value: StoredValue | null }[] = [];
  readonly ops: EngineOp[] = [];
  readonly #pool: BytePool | undefined;

  constructor(reader: StateReader, nowMs: number, pool: BytePool | undefined) {
    this.#reader = reader;
    this.#nowMs = nowMs;
    this.#pool = pool;
  }

  #index(): void {
    for (const c of this.#unindexed) this.#changed.set(keyId(c.key), c.value);
    this.#unindexed = [];
  }

  /** The live (unexpired) value of a user key, or undefined. */
  async live(key: Uint8Array): Promise<StoredValue | undefined> {
    if (this.#unindexed.length > 0) this.#index();
    const id = keyId(key);
    if (this.#changed.has(id)) {
      // A value written earlier in this command (or batch) may already be expired (EX -1).
      const v = this.#changed.get(id);
      return v === null || v === undefined || isExpired(v, this.#nowMs) ? undefined : v;
    }
    return liveValue(await this.#reader.get(engineKeyOf(key)), this.#nowMs);
  }

  /** The stored value of a user key, expired or not, or undefined when there is none. */
  async stored(key: Uint8Array): Promise<StoredValue | undefined> {
    if (this.#unindexed.length > 0) this.#index();
    const id = keyId(key);
    if (this.#changed.has(id)) return this.#changed.get(id) ?? undefined;
    const raw = await this.#reader.get(engineKeyOf(key));
    return raw === undefined ? undefined : decodeValue(raw);
  }

  /** True when the engine holds bytes for the key (live or expired). */
  async present(key: Uint8Array): Promise<boolean> {
    if (this.#unindexed.length > 0) this.#index();
    const id = keyId(key);
    if (this.#changed.has(id)) return this.#changed.get(id) !== null;
    return (await this.#reader.get(engineKeyOf(key))) !== undefined;
  }

  put(key: Uint8Array, value: StoredValue): void {
    this.#unindexed.push({ key, value });
    this.ops.push({
      op: "put",
      key: engineKeyOf(key, this.#pool),
      value: encodeValue(value, this.#pool),
    });
  }

  delete(key: Uint8Array): void {
    this.#unindexed.push({ key, value: null });
    this.ops.push({ op: "delete", key: engineKeyOf(key, this.#pool) });
  }
}

function resolveExpiry(expire: Expiry, nowMs: number): number {
  return "in" in expire ? nowMs + expire.in : expire.at;
}

const WRONG_INT = "ERR value is not an integer or out of range";

/**
 * Evaluates a write command against the state before it.
 * @param cmd the command
 * @param nowMs the proposer's clock reading carried with the command (ms)
 * @param reader the state before the command
 * @param pool where to cut the engine keys and values from (fresh arrays without one)
 * @returns the engine operations and the reply
 * @example
 * ```ts
 * import { applyWrite } from "./write_ops.ts";
 * const key = new TextEncoder().encode("n");
 * const r = await applyWrite({ op: "incrby", key, delta: "5" }, 0, { get: () => undefined });
 * console.assert(r.reply.kind === "integer" && r.reply.value === 5n);
 * ```
 */
export async function applyWrite(
  cmd: WriteCommand,
  nowMs: number,
  reader: StateReader,
  pool?: BytePool,
): Promise<ApplyResult> {
  const o = new Overlay(reader, nowMs, pool);
  const reply = await evaluate(cmd, nowMs, o);
  return { ops: o.ops, reply };
}

/**
 * Evaluates one command on an overlay (its changes join the overlay's ops).
 * @param cmd the command (not `exec`)
 * @param nowMs the clock reading carried with the command
 * @param o the state before it, with the changes made so far
 * @returns the reply
 */
export async function evaluate(cmd: WriteCommand, nowMs: number, o: Overlay): Promise<Reply> {
  switch (cmd.op) {
    case "set": {
      // A plain SET is a blind write: it needs no read of the old value.
      const needsOld = cmd.cond !== undefined || cmd.get === true || cmd.keepTtl === true;
      const old = needsOld ? await o.live(cmd.key) : undefined;
      const oldReply = cmd.get === true ? bulk(old?.value ?? null) : undefined;
      if ((cmd.cond === "nx" && old !== undefined) || (cmd.cond === "xx" && old === undefined)) {
        return oldReply ?? NIL;
      }
      const expireAtMs = cmd.expire !== undefined
        ? resolveExpiry(cmd.expire, nowMs)
        : cmd.keepTtl === true
        ? old?.expireAtMs
        : undefined;
      o.put(cmd.key, { type: "string", value: cmd.value, expireAtMs });
      return oldReply ?? OK;
    }
    case "getdel": {
      const old = await o.live(cmd.key);
      if (await o.present(cmd.key)) o.delete(cmd.key);
      return bulk(old?.value ?? null);
    }
    case "getex": {
      const old = await o.live(cmd.key);
      if (old === undefined) return NIL;
      if (cmd.expire !== undefined) {
        const at = resolveExpiry(cmd.expire, nowMs);
        if (at <= nowMs) o.delete(cmd.key);
        else o.put(cmd.key, { ...old, expireAtMs: at });
      } else if (cmd.persist === true && old.expireAtMs !== undefined) {
        o.put(cmd.key, { ...old, expireAtMs: undefined });
      }
      return bulk(old.value);
    }
    case "mset":
      for (let i = 0; i + 1 < cmd.entries.length; i += 2) {
        o.put(cmd.entries[i]!, {
          type: "string",
          value: cmd.entries[i + 1]!,
          expireAtMs: undefined,
        });
      }
      return OK;
    case "msetnx": {
      for (let i = 0; i < cmd.entries.length; i += 2) {
        if ((await o.live(cmd.entries[i]!)) !== undefined) return integer(0);
      }
      for (let i = 0; i + 1 < cmd.entries.length; i += 2) {
        o.put(cmd.entries[i]!, {
          type: "string",
          value: cmd.entries[i + 1]!,
          expireAtMs: undefined,
        });
      }
      return integer(1);
    }
    case "del": {
      let n = 0;
      for (const key of cmd.keys) {
        if ((await o.live(key)) !== undefined) n++;
        if (await o.present(key)) o.delete(key);
      }
      return integer(n);
    }
    case "rename": {
      // Redis's order: a missing source is an error even when both names are the same.
      const old = await o.live(cmd.key);
      if (old === undefined) return error("ERR no such key");
      if (keyId(cmd.key) === keyId(cmd.newKey)) return cmd.nx === true ? integer(0) : OK;
      if (cmd.nx === true && (await o.live(cmd.newKey)) !== undefined) return integer(0);
      o.delete(cmd.key);
      o.put(cmd.newKey, old); // its expiry moves with it
      return cmd.nx === true ? integer(1) : OK;
    }
    case "copy": {
      // The executor refused a copy onto itself; a missing source or a taken name is 0.
      const old = await o.live(cmd.key);
      if (old === undefined) return integer(0);
      if (cmd.replace !== true && (await o.live(cmd.newKey)) !== undefined) return integer(0);
      o.put(cmd.newKey, old); // with its expiry
      return integer(1);
    }
    case "incrby": {
      const delta = BigInt(cmd.delta);
      const old = await o.live(cmd.key);
      let base = 0n;
      if (old !== undefined) {
        const parsed = parseInt64(old.value);
        if (parsed === undefined) return error(WRONG_INT);
        base = parsed;
      }
      const next = base + delta;
      if (next < INT64_MIN || next > INT64_MAX) {
        return error("ERR increment or decrement would overflow");
      }
      o.put(cmd.key, { type: "string", value: int64Bytes(next), expireAtMs: old?.expireAtMs });
      return integer(next);
    }
    case "append": {
      const old = await o.live(cmd.key);
      const oldBytes = old?.value ?? new Uint8Array(0);
      if (oldBytes.length + cmd.value.length > VALUE_BYTES_MAX) {
        return error("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
      }
      const value = new Uint8Array(oldBytes.length + cmd.value.length);
      value.set(oldBytes);
      value.set(cmd.value, oldBytes.length);
      o.put(cmd.key, { type: "string", value, expireAtMs: old?.expireAtMs });
      return integer(value.length);
    }
    case "incrbyfloat": {
      const old = await o.live(cmd.key);
      const base = old === undefined
        ? parseLongDouble("0")
        : old.value.length < LONG_DOUBLE_CHARS_MAX
        ? parseLongDouble(latin1(old.value))
        : undefined;
      const delta = parseLongDouble(cmd.delta);
      if (base === undefined || delta === undefined) return error(NOT_A_FLOAT);
      const sum = addLongDouble(base, delta);
      if (sum === undefined || sum.kind === "inf") {
        return error("ERR increment would produce NaN or Infinity");
      }
      const text = formatLongDouble(sum);
      o.put(cmd.key, { type: "string", value: encoder.encode(text), expireAtMs: old?.expireAtMs });
      return bulk(text);
    }
    case "setrange": {
      const old = await o.live(cmd.key);
      const oldBytes = old?.value ?? new Uint8Array(0);
      if (cmd.value.length === 0) return integer(oldBytes.length); // nothing written, no key made
      const length = Math.max(oldBytes.length, cmd.offset + cmd.value.length);
      if (cmd.offset + cmd.value.length > VALUE_BYTES_MAX) {
        return error("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
      }
      const value = new Uint8Array(length); // a gap before the offset is zero bytes, as in Redis
      value.set(oldBytes);
      value.set(cmd.value, cmd.offset);
      o.put(cmd.key, { type: "string", value, expireAtMs: old?.expireAtMs });
      return integer(length);
    }
    case "setbit": {
      const old = await o.live(cmd.key);
      const { value, was } = withBit(old?.value ?? new Uint8Array(0), cmd.offset, cmd.bit);
      o.put(cmd.key, { type: "string", value, expireAtMs: old?.expireAtMs });
      return integer(was);
    }
    case "expire": {
      const old = await o.live(cmd.key);
      if (old === undefined) return integer(0);
      const at = resolveExpiry(cmd.expire, nowMs);
      const cur = old.expireAtMs;
      if (
        (cmd.cond === "nx" && cur !== undefined) ||
        (cmd.cond === "xx" && cur === undefined) ||
        (cmd.cond === "gt" && (cur === undefined || at <= cur)) ||
        (cmd.cond === "lt" && cur !== undefined && at >= cur)
      ) {
        return integer(0);
      }
      if (at <= nowMs) o.delete(cmd.key);
      else o.put(cmd.key, { ...old, expireAtMs: at });
      return integer(1);
    }
    case "persist": {
      const old = await o.live(cmd.key);
      if (old === undefined || old.expireAtMs === undefined) return integer(0);
      o.put(cmd.key, { ...old, expireAtMs: undefined });
      return integer(1);
    }
    case "flushdb":
      o.ops.push({ op: "deleteRange", start: USER_KEY_RANGE.start, end: USER_KEY_RANGE.end });
      return OK;
    case "exec":
      throw new Error("Cannot evaluate exec here: applyCommand (transaction.ts) applies it");
    case "sweep": {
      let n = 0;
      for (const key of cmd.keys) {
        if (!(await o.present(key))) continue;
        if ((await o.live(key)) !== undefined) continue; // Renewed since the scan saw it.
        o.delete(key);
        n++;
      }
      return integer(n);
    }
    case "batch": {
      const replies: Reply[] = [];
      for (const c of cmd.cmds) replies.push(await evaluate(c, nowMs, o));
      return array(replies);
    }
  }
}

/** Thrown by {@link decodeWriteCommand} for bytes that are not a write command. */
export class WriteCommandDecodeError extends Error {
  /**
   * Creates the error.
   * @param message what is wrong
   */
  constructor(message: string) {
    super(message);
    this.name = "WriteCommandDecodeError";
  }
}

/**
 * Encodes a write command with MessagePack (for a Raft log entry).
 * @param cmd the command
 * @param bytesMax the largest encoding allowed
 * @returns the bytes
 * @throws {RangeError} when the encoding exceeds bytesMax
 */
export function encodeWriteCommand(
  cmd: WriteCommand,
  bytesMax: number = WRITE_COMMAND_BYTES_MAX,
): Uint8Array {
  const bytes: Uint8Array = pack(cmd);
  if (bytes.length > bytesMax) {
    throw new RangeError(
      `Cannot encode write command ${cmd.op}: ${bytes.length} bytes exceeds the limit of ${bytesMax}`,
    );
  }
  return bytes;
}

const isBytes = (v: unknown): v is Uint8Array => v instanceof Uint8Array;
const isBytesList = (v: unknown): v is Uint8Array[] => Array.isArray(v) && v.every(isBytes);
const isExpiry = (v: unknown): v is Expiry =>
  typeof v === "object" && v !== null &&
  Object.keys(v).length === 1 &&
  (Number.isSafeInteger((v as { in?: unknown }).in) ||
    Number.isSafeInteger((v as { at?: unknown }).at));

function optional(o: Record<string, unknown>, field: string, ok: (v: unknown) => boolean): boolean {
  return o[field] === undefined || ok(o[field]);
}

const bool = (v: unknown) => typeof v === "boolean";

/** Bytes that decode as a stored value (what EXEC carries for each watched key). */
function isStoredBytes(v: unknown): boolean {
  if (!isBytes(v)) return false;
  try {
    decodeValue(v);
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether two stored values are the same: type, bytes and expiry (both absent counts as the same).
 * @param a one value or undefined
 * @param b the other
 * @returns true when they are equal
 */
export function sameStored(a: StoredValue | undefined, b: StoredValue | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.type !== b.type || a.expireAtMs !== b.expireAtMs) return false;
  if (a.value.length !== b.value.length) return false;
  for (let i = 0; i < a.value.length; i++) if (a.value[i] !== b.value[i]) return false;
  return true;
}

/**
 * Decodes and validates a write command encoded by {@link encodeWriteCommand}.
 * @param bytes the encoding
 * @returns the command
 * @throws {WriteCommandDecodeError} when the bytes are not a valid command
 */
export function decodeWriteCommand(bytes: Uint8Array): WriteCommand {
  let v: unknown;
  try {
    v = unpack(bytes);
  } catch (e) {
    throw new WriteCommandDecodeError(`Cannot decode write command: ${(e as Error).message}`);
  }
  return toCommand(v, true);
}

/** Validates one decoded command; `top` allows a batch (of non-batch commands). */
function toCommand(v: unknown, top: boolean): WriteCommand {
  if (typeof v !== "object" || v === null) {
    throw new WriteCommandDecodeError("Cannot decode write command: not a map");
  }
  const o = v as Record<string, unknown>;
  const normalize = (x: unknown): unknown =>
    x instanceof Uint8Array ? new Uint8Array(x.buffer, x.byteOffset, x.byteLength) : x;
  for (const k of Object.keys(o)) {
    o[k] = Array.isArray(o[k]) ? (o[k] as unknown[]).map(normalize) : normalize(o[k]);
  }
  let ok: boolean;
  switch (o.op) {
    case "set":
      ok = isBytes(o.key) && isBytes(o.value) &&
        optional(o, "cond", (c) => c === "nx" || c === "xx") &&
        optional(o, "get", bool) && optional(o, "expire", isExpiry) && optional(o, "keepTtl", bool);
      break;
    case "getdel":
    case "persist":
      ok = isBytes(o.key);
      break;
    case "rename":
      ok = isBytes(o.key) && isBytes(o.newKey) && optional(o, "nx", bool);
      break;
    case "copy":
      ok = isBytes(o.key) && isBytes(o.newKey) && optional(o, "replace", bool);
      break;
    case "getex":
      ok = isBytes(o.key) && optional(o, "expire", isExpiry) && optional(o, "persist", bool);
      break;
    case "mset":
    case "msetnx":
      ok = isBytesList(o.entries) && o.entries.length % 2 === 0 && o.entries.length > 0;
      break;
    case "del":
    case "sweep":
      ok = isBytesList(o.keys);
      break;
    case "incrby":
      ok = isBytes(o.key) && typeof o.delta === "string" && /^-?\d{1,19}$/.test(o.delta) &&
        BigInt(o.delta) >= INT64_MIN && BigInt(o.delta) <= INT64_MAX;
      break;
    case "incrbyfloat":
      ok = isBytes(o.key) && typeof o.delta === "string" && parseLongDouble(o.delta) !== undefined;
      break;
    case "append":
      ok = isBytes(o.key) && isBytes(o.value);
      break;
    case "setrange":
      ok = isBytes(o.key) && isBytes(o.value) && Number.isSafeInteger(o.offset) &&
        (o.offset as number) >= 0;
      break;
    case "setbit":
      ok = isBytes(o.key) && (o.bit === 0 || o.bit === 1) && Number.isSafeInteger(o.offset) &&
        bitOffset(BigInt(o.offset as number)) !== undefined;
      break;
    case "expire":
      ok = isBytes(o.key) && isExpiry(o.expire) &&
        optional(o, "cond", (c) => c === "nx" || c === "xx" || c === "gt" || c === "lt");
      break;
    case "flushdb":
      ok = true;
      break;
    case "exec":
      ok = Array.isArray(o.commands) && o.commands.every((c) => isBytesList(c) && c.length > 0) &&
        isBytesList(o.watchKeys) && Array.isArray(o.watchSeen) && Array.isArray(o.watchLive) &&
        o.watchSeen.length === o.watchKeys.length && o.watchLive.length === o.watchKeys.length &&
        o.watchSeen.every((v) => v === null || isStoredBytes(v)) && o.watchLive.every(bool);
      break;
    case "batch":
      ok = top && Array.isArray(o.cmds) && o.cmds.length > 0;
      if (ok) {
        o.cmds = (o.cmds as unknown[]).map((c) => toCommand(c, false));
        ok = (o.cmds as WriteCommand[]).every((c) =>
          BATCHABLE_WRITE_OPS.has(c.op) && (c.op !== "del" || c.keys.length === 1)
        );
      }
      break;
    default:
      ok = false;
  }
  if (!ok) {
    throw new WriteCommandDecodeError(
      `Cannot decode write command: ${JSON.stringify(String(o.op))} has missing or invalid fields`,
    );
  }
  return o as unknown as WriteCommand;
}

/** Bytes of keys and values that engine ops carry: what a batch of them costs to write. */
export function engineOpsBytes(ops: readonly EngineOp[]): number {
  let n = 0;
  for (const op of ops) {
    n += op.op === "put"
      ? op.key.length + op.value.length
      : op.op === "delete"
      ? op.key.length
      : op.start.length + op.end.length;
  }
  return n;
}

/**
 * Applying a write command, MULTI/EXEC included.
 *
 * EXEC's queued commands travel as the client sent them (a `WriteCommand` of op `exec`) and are
 * evaluated here, where writes are applied: one after the other on one {@link Overlay} of the
 * state, by a {@link CommandExecutor} whose storage is that overlay, so each command sees the
 * ones before it, the replies and errors are the ones the same commands get outside a
 * transaction, and the engine operations of all of them are written in one atomic batch. Nothing
 * else runs in between: a region applies its log one entry at a time. The keys under WATCH are
 * checked first against what WATCH read; if one holds something else, or was live and is not
 * now, nothing runs and the reply is a null array.
 *
 * It is deterministic, as applying must be: the commands use the clock reading the entry carries
 * and only the state, so replaying the log gives the same state.
 *
 * @module
 */

import type { Reply } from "../resp/reply.ts";
import type { BytePool } from "../resp/byte_pool.ts";
import type { ExpiredKeys, KeyPage, Keyspace, KvBackend, RangeScanResult } from "./backend.ts";
import { attachExecLookups, CommandExecutor } from "./executor.ts";
import { decodeValue, isExpired, type StoredValue } from "./kv_model.ts";
import {
  type ApplyResult,
  applyWrite,
  evaluate,
  Overlay,
  sameStored,
  type StateReader,
  type WriteCommand,
} from "./write_ops.ts";

const NIL_ARRAY: Reply = { kind: "array", items: null };

/**
 * Evaluates a write command against the state before it: {@link applyWrite}, and EXEC's
 * transactions.
 * @param cmd the command
 * @param nowMs the proposer's clock reading carried with the command (ms)
 * @param reader the state before the command
 * @param pool where to cut engine keys and values from (fresh arrays without one)
 * @returns the engine operations and the reply
 */
export async function applyCommand(
  cmd: WriteCommand,
  nowMs: number,
  reader: StateReader,
  pool?: BytePool,
): Promise<ApplyResult> {
  if (cmd.op !== "exec") return await applyWrite(cmd, nowMs, reader, pool);
  const o = new Overlay(reader, nowMs, pool);
  for (let i = 0; i < cmd.watchKeys.length; i++) {
    const seen = cmd.watchSeen[i];
    const then = seen === null || seen === undefined ? undefined : decodeValue(seen);
    const now = await o.stored(cmd.watchKeys[i]!);
    const liveNow = now !== undefined && !isExpired(now, nowMs);
    const liveThen = cmd.watchLive[i] === true;
    if (!liveThen && !liveNow) continue; // absent (or expired) then and now
    if (liveThen !== liveNow || !sameStored(now, then)) return { ops: [], reply: NIL_ARRAY };
  }
  const executor = new CommandExecutor({ backend: new OverlayBackend(o, nowMs), now: () => nowMs });
  const session = executor.newSession(0, "");
  const replies: Reply[] = [];
  for (const args of cmd.commands) replies.push(await executor.execute(session, args));
  const reply: Reply = { kind: "array", items: replies };
  attachExecLookups(reply, executor.lookups);
  return { ops: o.ops, reply };
}

/** Storage for the commands of one transaction: the overlay, read and written in place. */
class OverlayBackend implements KvBackend {
  readonly #o: Overlay;
  readonly #nowMs: number;

  constructor(o: Overlay, nowMs: number) {
    this.#o = o;
    this.#nowMs = nowMs;
  }

  execute(cmd: WriteCommand): Promise<Reply> {
    if (cmd.op === "exec") throw new Error("Cannot run EXEC inside a transaction");
    return evaluate(cmd, this.#nowMs, this.#o);
  }

  async read(keys: readonly Uint8Array[]): Promise<(StoredValue | undefined)[]> {
    const values: (StoredValue | undefined)[] = [];
    for (const key of keys) values.push(await this.#o.stored(key));
    return values;
  }

  // The executor queues only commands on keys (and PING, ECHO, TIME, UNWATCH): none of these.
  scanKeys(): Promise<KeyPage> {
    return Promise.reject(notInTransaction("scanKeys"));
  }
  scanExpired(): Promise<ExpiredKeys> {
    return Promise.reject(notInTransaction("scanExpired"));
  }
  dbsize(): Promise<number> {
    return Promise.reject(notInTransaction("dbsize"));
  }
  keyspace(): Promise<Keyspace> {
    return Promise.reject(notInTransaction("keyspace"));
  }
  scanRange(): Promise<RangeScanResult> {
    return Promise.reject(notInTransaction("scanRange"));
  }
}

function notInTransaction(what: string): Error {
  return new Error(`Cannot ${what} inside a transaction: only commands on keys run there`);
}

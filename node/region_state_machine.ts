/**
 * The Raft state machine of one region over the shared engine.
 *
 * Committed entries carry {@link RegionCommand}s: client writes (a
 * `WriteCommand` with the proposer's clock reading) and splits. A batch of
 * committed entries is evaluated in order with `applyWrite` (each command sees
 * the effects of the ones before it) and written to the engine in ONE
 * `writeBatch` together with the region's applied index (and, for a split,
 * both regions' new metadata). After a crash the engine therefore holds the
 * effects of exactly the entries up to the stored applied index, and the peer
 * replays the log from there: applying is idempotent.
 *
 * A write whose keys are no longer in the region (a split applied before it)
 * is not applied; its result tells the proposer to route again. So no key is
 * ever written through two regions.
 *
 * The snapshot image is the region's metadata and applied index: the data
 * stays in the shared engine (standalone mode; streaming a region's data to
 * another store is not implemented). Before an image is taken the engine is
 * flushed, so the Raft log is compacted only below state that is on disk.
 *
 * @module
 */

import { pack, unpack } from "msgpackr";
import type { Entry, Snapshot } from "../raft/core/mod.ts";
import type { StateMachine } from "../raft/driver/mod.ts";
import { type Region, splitRegionMeta } from "../pd/mod.ts";
import { encodeValue, engineKeyOf, USER_KEY_PREFIX } from "./commands/kv_model.ts";
import type { EngineLike } from "./commands/memory_engine.ts";
import { BatchReader } from "./commands/batch_reader.ts";
import { SET_OVERHEAD_BYTES, setSlices } from "./commands/set_batch.ts";
import type { ValueCacheLike } from "./value_cache.ts";
import { BytePool } from "./resp/byte_pool.ts";
import { WRITE_BATCH_BYTES_MAX, WRITE_BATCH_OPS_MAX, WriteBatch } from "../engine/mod.ts";
import { applyCommand } from "./commands/transaction.ts";
import {
  decodeWriteCommand,
  encodeWriteCommand,
  type EngineOp,
  engineOpsBytes,
  WRITE_COMMAND_BYTES_MAX,
  type WriteCommand,
  writeCommandKeys,
} from "./commands/write_ops.ts";
import { error, OK, type Reply } from "./resp/reply.ts";
import {
  appliedIndexKey,
  decodeIndex,
  decodeRegion,
  encodeIndex,
  encodeRegion,
  engineRangeOf,
  inRegion,
  regionStateKey,
} from "./region_meta.ts";

/** A command in a region's Raft log. */
export type RegionCommand =
  | { readonly kind: "write"; readonly nowMs: number; readonly cmd: WriteCommand }
  | {
    readonly kind: "split";
    /** First key of the right half (the existing region keeps the right half). */
    readonly splitKey: Uint8Array;
    /** Id of the new left region, from PD. */
    readonly newRegionId: number;
    /** Peer ids of the new region, one per peer, from PD. */
    readonly newPeerIds: readonly number[];
    /** The region's epoch version when the split was decided; a later one makes it stale. */
    readonly version: number;
  };

/** What applying (or reading) gave. */
export type RegionResult =
  | { readonly kind: "reply"; readonly reply: Reply }
  | { readonly kind: "values"; readonly values: readonly (Uint8Array | undefined)[] }
  /** A key is outside the region now (it was split): route again. */
  | { readonly kind: "keyNotInRegion"; readonly region: Region }
  | { readonly kind: "split"; readonly left: Region; readonly right: Region }
  /** The split was decided on an older epoch: nothing changed. */
  | { readonly kind: "staleSplit"; readonly region: Region };

/**
 * The largest encoded write command a region takes (the client port's requests are smaller): a
 * value of up to 32 MiB fits, several of them in one MSET or MULTI/EXEC up to this.
 */
export const REGION_COMMAND_BYTES_MAX = 64 * 1024 * 1024;
/** The largest Raft entry of a region: a write command with its header (the peers' `maxSizePerMsg`). */
export const REGION_ENTRY_BYTES_MAX = REGION_COMMAND_BYTES_MAX + 64;

/** Engine operations of one entry at most: one engine batch, with the applied index. */
const ENTRY_OPS_MAX = WRITE_BATCH_OPS_MAX - 1;
/** Engine bytes of one entry at most (room left for the applied index). */
const ENTRY_BYTES_MAX = WRITE_BATCH_BYTES_MAX - 1024;

const TAG_WRITE = 1;
const TAG_SPLIT = 2;
/**
 * Plain SETs (no option), alone or as a batch, in a flat layout instead of
 * msgpack, whose encode and decode were about 8% of the event loop under
 * pipelined SETs: `[3] [nowMs f64] [batch u8] [count u32]` then, per SET,
 * `[key length u32] [key] [value length u32] [value]` (big-endian).
 */
const TAG_PLAIN_SETS = 3;
/** Bytes of a plain-SETs command before its first SET. */
export const PLAIN_SETS_HEADER_BYTES = 14;

/**
 * Writes the header of a plain-SETs command into `data[0, PLAIN_SETS_HEADER_BYTES)`; its SETs
 * follow it in `data` (the layout of node/commands/set_batch.ts).
 * @param data the command
 * @param nowMs the proposer's clock reading
 * @param batch whether the reply is an array (one reply per SET) rather than one reply
 * @param count the SETs in it
 */
export function writePlainSetsHeader(
  data: Uint8Array,
  nowMs: number,
  batch: boolean,
  count: number,
): void {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  data[0] = TAG_PLAIN_SETS;
  view.setFloat64(1, nowMs);
  data[9] = batch ? 1 : 0;
  view.setUint32(10, count);
}

type PlainSet = { readonly op: "set"; readonly key: Uint8Array; readonly value: Uint8Array };

function isPlainSet(c: WriteCommand): c is WriteCommand & PlainSet {
  return c.op === "set" && c.cond === undefined && c.get !== true && c.expire === undefined &&
    c.keepTtl !== true;
}

/** The SETs of a command made only of plain SETs, else undefined. */
function plainSets(cmd: WriteCommand): readonly PlainSet[] | undefined {
  if (isPlainSet(cmd)) return [cmd];
  if (cmd.op !== "batch") return undefined;
  for (const c of cmd.cmds) if (!isPlainSet(c)) return undefined;
  return cmd.cmds as readonly PlainSet[];
}

function encodePlainSets(
  nowMs: number,
  batch: boolean,
  sets: readonly PlainSet[],
  bytesMax: number,
): Uint8Array {
  let n = PLAIN_SETS_HEADER_BYTES;
  for (const c of sets) n += SET_OVERHEAD_BYTES + c.key.length + c.value.length;
  if (n > bytesMax) {
    throw new RangeError(
      `Cannot encode write command ${
        batch ? "batch" : "set"
      }: ${n} bytes exceeds the limit of ${bytesMax}`,
    );
  }
  const out = new Uint8Array(n);
  const view = new DataView(out.buffer);
  writePlainSetsHeader(out, nowMs, batch, sets.length);
  let at = PLAIN_SETS_HEADER_BYTES;
  for (const c of sets) {
    view.setUint32(at, c.key.length);
    out.set(c.key, at + 4);
    at += 4 + c.key.length;
    view.setUint32(at, c.value.length);
    out.set(c.value, at + 4);
    at += 4 + c.value.length;
  }
  return out;
}

/** A plain-SETs entry's header, and where each SET's key and value lie in it. */
interface PlainSetsLayout {
  readonly nowMs: number;
  readonly batch: boolean;
  readonly count: number;
  /** Per SET: key offset, key length, value offset, value length. */
  readonly slices: Uint32Array;
}

/**
 * Reads a plain-SETs entry's layout without copying a byte of it.
 * @throws {Error} on data that is not such an entry (a corrupt log)
 */
function plainSetsLayout(data: Uint8Array): PlainSetsLayout {
  const bad = (why: string) => new Error(`Cannot decode plain SETs command: ${why}`);
  if (data.length < PLAIN_SETS_HEADER_BYTES) throw bad("shorter than its header");
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const nowMs = view.getFloat64(1);
  const batch = data[9] === 1;
  const count = view.getUint32(10);
  if (count === 0 || (!batch && count !== 1) || data[9]! > 1) throw bad(`count ${count}`);
  let slices: Uint32Array;
  try {
    slices = setSlices(data, PLAIN_SETS_HEADER_BYTES, count);
  } catch (e) {
    throw bad((e as Error).message);
  }
  const end = slices[4 * count - 2]! + slices[4 * count - 1]!;
  if (end !== data.length) throw bad("bytes after the last SET");
  return { nowMs, batch, count, slices };
}

function decodePlainSets(data: Uint8Array): RegionCommand {
  const { nowMs, batch, count, slices } = plainSetsLayout(data);
  const cmds: PlainSet[] = [];
  for (let i = 0; i < 4 * count; i += 4) {
    const key = data.subarray(slices[i]!, slices[i]! + slices[i + 1]!);
    const value = data.subarray(slices[i + 2]!, slices[i + 2]! + slices[i + 3]!);
    cmds.push({ op: "set", key, value });
  }
  return { kind: "write", nowMs, cmd: batch ? { op: "batch", cmds } : cmds[0]! };
}

/** The engine key prefix and stored-value header of a plain SET's put. */
const PLAIN_KEY_HEAD = new Uint8Array([USER_KEY_PREFIX]);
const PLAIN_VALUE_HEAD = encodeValue({
  type: "string",
  value: new Uint8Array(0),
  expireAtMs: undefined,
});

/**
 * Encodes a region command for a Raft entry.
 * @param c the command
 * @param bytesMax largest encoding allowed
 * @returns the entry data
 * @throws {RangeError} when the encoding is too large
 */
export function encodeRegionCommand(c: RegionCommand, bytesMax?: number): Uint8Array {
  if (c.kind === "write") {
    const sets = plainSets(c.cmd);
    if (sets !== undefined) {
      return encodePlainSets(
        c.nowMs,
        c.cmd.op === "batch",
        sets,
        bytesMax ?? WRITE_COMMAND_BYTES_MAX,
      );
    }
    const body = encodeWriteCommand(c.cmd, bytesMax);
    const out = new Uint8Array(9 + body.length);
    out[0] = TAG_WRITE;
    new DataView(out.buffer).setFloat64(1, c.nowMs);
    out.set(body, 9);
    return out;
  }
  const body: Uint8Array = pack({
    splitKey: c.splitKey,
    newRegionId: c.newRegionId,
    newPeerIds: [...c.newPeerIds],
    version: c.version,
  });
  const out = new Uint8Array(1 + body.length);
  out[0] = TAG_SPLIT;
  out.set(body, 1);
  return out;
}

/**
 * Decodes entry data written by {@link encodeRegionCommand}.
 * @throws {Error} on data that is not a region command (a corrupt log)
 */
export function decodeRegionCommand(data: Uint8Array): RegionCommand {
  if (data[0] === TAG_PLAIN_SETS) return decodePlainSets(data);
  if (data[0] === TAG_WRITE && data.length > 9) {
    const nowMs = new DataView(data.buffer, data.byteOffset, data.byteLength).getFloat64(1);
    return { kind: "write", nowMs, cmd: decodeWriteCommand(data.subarray(9)) };
  }
  if (data[0] === TAG_SPLIT) {
    const o = unpack(data.subarray(1)) as {
      splitKey: Uint8Array;
      newRegionId: number;
      newPeerIds: number[];
      version: number;
    };
    if (!(o?.splitKey instanceof Uint8Array) || typeof o.newRegionId !== "number") {
      throw new Error("Cannot decode split command: fields are missing");
    }
    return {
      kind: "split",
      splitKey: new Uint8Array(o.splitKey.buffer, o.splitKey.byteOffset, o.splitKey.byteLength)
        .slice(),
      newRegionId: o.newRegionId,
      newPeerIds: o.newPeerIds,
      version: o.version,
    };
  }
  throw new Error(`Cannot decode region command: tag ${data[0]} is not write or split`);
}

/** Puts the stored values of a plain-SETs entry's SETs into `batch`. */
function addPlainSets(
  batch: WriteBatch,
  data: Uint8Array,
  { count, slices }: PlainSetsLayout,
): void {
  for (let i = 0; i < 4 * count; i += 4) {
    batch.putParts(
      PLAIN_KEY_HEAD,
      data,
      slices[i]!,
      slices[i + 1]!,
      PLAIN_VALUE_HEAD,
      data,
      slices[i + 2]!,
      slices[i + 3]!,
    );
  }
}

/** The engine ops of a plain-SETs entry (for the writes applied after it in one batch). */
function plainSetOps(data: Uint8Array, slices: Uint32Array): EngineOp[] {
  const ops: EngineOp[] = [];
  for (let i = 0; i < slices.length; i += 4) {
    const key = new Uint8Array(PLAIN_KEY_HEAD.length + slices[i + 1]!);
    key.set(PLAIN_KEY_HEAD);
    key.set(data.subarray(slices[i]!, slices[i]! + slices[i + 1]!), PLAIN_KEY_HEAD.length);
    const value = new Uint8Array(PLAIN_VALUE_HEAD.length + slices[i + 3]!);
    value.set(PLAIN_VALUE_HEAD);
    value.set(
      data.subarray(slices[i + 2]!, slices[i + 2]! + slices[i + 3]!),
      PLAIN_VALUE_HEAD.length,
    );
    ops.push({ op: "put", key, value });
  }
  return ops;
}

/** A read request: the user keys to read. */
export function encodeReadRequest(keys: readonly Uint8Array[]): Uint8Array {
  return pack(keys.map((k) => k));
}

function decodeReadRequest(data: Uint8Array): Uint8Array[] {
  const keys = unpack(data) as Uint8Array[];
  return keys.map((k) => new Uint8Array(k.buffer, k.byteOffset, k.byteLength));
}

/** Test-only planted bugs of the state machine. Never set in production. */
export type RegionPlant =
  /** Leave the applied index out of the batch: entries are applied again after a restart. */
  | "skip-applied-index"
  /** Tell the value cache only about puts: deleted keys stay cached (stale reads). */
  | "value-cache-keeps-deleted";

/** Options of {@link RegionStateMachine.open}. */
export interface RegionStateMachineOptions {
  /** The shared engine. */
  readonly engine: EngineLike & { flush?: () => Promise<void> };
  /** The region id. */
  readonly regionId: number;
  /** Called after a split applied (its metadata is durable in the engine by then). */
  readonly onSplit?: (left: Region, right: Region) => void;
  /**
   * Engine operations per batch at most; a larger apply is cut between entries (one entry alone
   * may hold up to the engine's limit; a write beyond it is refused with an error reply).
   */
  readonly batchOpsMax?: number;
  /** Engine bytes per batch at most (approximate). */
  readonly batchBytesMax?: number;
  /** The node's value cache, written through after each engine batch. */
  readonly cache?: ValueCacheLike;
  /** Test-only planted bugs. */
  readonly plants?: readonly RegionPlant[];
}

/** Counters of a {@link RegionStateMachine}. */
export interface RegionApplyStats {
  /** Write commands applied. */
  writesApplied: number;
  /** Writes refused because a key left the region. */
  writesRerouted: number;
  /** Engine batches written. */
  batchesWritten: number;
  /** Key and value bytes put since the last size count (for split checks). */
  bytesPutSinceCount: number;
  /** Keys put since the last size count. */
  keysPutSinceCount: number;
}

/**
 * One region's state machine over the shared engine.
 */
export class RegionStateMachine implements StateMachine<RegionResult> {
  readonly #engine: EngineLike & { flush?: () => Promise<void> };
  readonly #onSplit: (left: Region, right: Region) => void;
  readonly #batchOpsMax: number;
  readonly #batchBytesMax: number;
  readonly #skipApplied: boolean;
  readonly #cache: ValueCacheLike | undefined;
  readonly #cacheKeepsDeleted: boolean;
  /**
   * Engine keys and values of applied writes are cut from shared buffers: a fresh array each
   * cost 0.4-0.9 µs (see BytePool). Nothing keeps them past the batch but views of their own
   * (the engine and the value cache copy them), and pool buffers are never reused.
   */
  readonly #opBytes = new BytePool();
  /** The engine batch of one apply (reused: cleared before each). */
  readonly #batch = new WriteBatch();
  #region: Region;
  #applied: number;
  readonly #stats: RegionApplyStats = {
    writesApplied: 0,
    writesRerouted: 0,
    batchesWritten: 0,
    bytesPutSinceCount: 0,
    keysPutSinceCount: 0,
  };

  private constructor(
    options: RegionStateMachineOptions,
    region: Region,
    applied: number,
  ) {
    this.#engine = options.engine;
    this.#onSplit = options.onSplit ?? (() => {});
    this.#batchOpsMax = options.batchOpsMax ?? 50_000;
    this.#batchBytesMax = options.batchBytesMax ?? 64 * 1024 * 1024;
    this.#skipApplied = options.plants?.includes("skip-applied-index") ?? false;
    this.#cache = options.cache?.enabled ? options.cache : undefined;
    this.#cacheKeepsDeleted = options.plants?.includes("value-cache-keeps-deleted") ?? false;
    this.#region = region;
    this.#applied = applied;
  }

  /**
   * Loads a region's metadata and applied index from the engine.
   * @param options engine, region id, hooks and limits
   * @returns the state machine at the stored applied index
   * @throws {Error} when the engine holds no metadata for the region
   */
  static async open(options: RegionStateMachineOptions): Promise<RegionStateMachine> {
    const [state, applied] = await options.engine.getBatch([
      regionStateKey(options.regionId),
      appliedIndexKey(options.regionId),
    ]);
    if (state === undefined) {
      throw new Error(
        `Cannot open region ${options.regionId}: the engine holds no metadata for it`,
      );
    }
    return new RegionStateMachine(
      options,
      decodeRegion(state),
      applied === undefined ? 0 : decodeIndex(applied),
    );
  }

  /** The region as of the applied index. */
  get region(): Region {
    return this.#region;
  }

  /** Counters. */
  get stats(): Readonly<RegionApplyStats> {
    return { ...this.#stats };
  }

  /** Resets the counters used to decide when to count the region's size again. */
  resetSizeCounters(): void {
    this.#stats.bytesPutSinceCount = 0;
    this.#stats.keysPutSinceCount = 0;
  }

  /** The index of the last entry whose effects are in the engine. */
  appliedIndex(): number {
    return this.#applied;
  }

  /**
   * Applies committed commands in order, in one engine batch with the applied index.
   * @param commands committed normal entries
   * @param appliedIndex the index this batch brings the region to
   * @returns one result per command
   */
  async apply(commands: readonly Entry[], appliedIndex: number): Promise<RegionResult[]> {
    const results: RegionResult[] = [];
    const batch = this.#batch;
    batch.clear();
    // The value cache holds only what the engine holds (it is bound to this engine instance
    // first), so the batch's reads may take their values from it.
    this.#cache?.use(this.#engine);
    let overlay = new BatchReader(this.#engine, this.#cache);
    let splits: { left: Region; right: Region }[] = [];
    const flush = async (index: number) => {
      if (!this.#skipApplied) batch.put(appliedIndexKey(this.#region.id), encodeIndex(index));
      if (batch.count > 0) {
        await this.#write(batch);
        this.#stats.batchesWritten++;
      }
      this.#applied = index;
      for (const s of splits) this.#onSplit(s.left, s.right);
      overlay = new BatchReader(this.#engine, this.#cache);
      batch.clear();
      splits = [];
    };
    /** Before an entry of `ops` operations and `bytes` bytes: the entries so far go first if need be. */
    const makeRoom = async (ops: number, bytes: number, lastIndex: number) => {
      if (
        batch.count > 0 &&
        (batch.count + ops > this.#batchOpsMax || batch.bytes + bytes > this.#batchBytesMax)
      ) await flush(lastIndex); // the entry was evaluated on top of them
    };
    let lastIndex = this.#applied;
    for (const e of commands) {
      if (e.index <= this.#applied) {
        throw new Error(
          `Cannot apply entry ${e.index} to region ${this.#region.id}: applied is ${this.#applied}`,
        );
      }
      if (e.data[0] === TAG_PLAIN_SETS) {
        const p = this.#checkPlainSets(e.data);
        if ("layout" in p) {
          await makeRoom(p.layout.count, p.bytes, lastIndex);
          addPlainSets(batch, e.data, p.layout);
          overlay.record(() => plainSetOps(e.data, p.layout.slices));
        }
        results.push(p.result);
        lastIndex = e.index;
        continue;
      }
      const c = decodeRegionCommand(e.data);
      let r: { result: RegionResult; ops: EngineOp[]; bytes?: number };
      if (c.kind === "write") r = await this.#applyWrite(c.cmd, c.nowMs, overlay);
      else r = this.#applySplit(c);
      await makeRoom(r.ops.length, r.bytes ?? engineOpsBytes(r.ops), lastIndex);
      if (r.result.kind === "split") splits.push({ left: r.result.left, right: r.result.right });
      overlay.record(r.ops);
      for (const op of r.ops) batch.add(op);
      results.push(r.result);
      lastIndex = e.index;
    }
    await flush(appliedIndex);
    return results;
  }

  /**
   * A plain-SETs entry (the common write) is applied without decoding it into commands: each
   * SET is one put of the stored value straight from the entry's bytes (see addPlainSets),
   * what evaluating the SET would give (a plain SET is a blind write: no read, no expiry).
   * This checks the entry first, as #applyWrite checks a command: its keys in the region, its
   * size within an engine batch; it returns the layout and engine bytes of an entry to apply,
   * or only the result of one refused.
   */
  #checkPlainSets(
    data: Uint8Array,
  ): { result: RegionResult; layout: PlainSetsLayout; bytes: number } | { result: RegionResult } {
    const region = this.#region;
    const layout = plainSetsLayout(data);
    const { count, slices } = layout;
    const bounded = region.startKey.length > 0 || region.endKey.length > 0;
    let bytes = 0;
    for (let i = 0; i < 4 * count; i += 4) {
      bytes += PLAIN_KEY_HEAD.length + slices[i + 1]! + PLAIN_VALUE_HEAD.length + slices[i + 3]!;
      if (bounded && !inRegion(region, data.subarray(slices[i]!, slices[i]! + slices[i + 1]!))) {
        this.#stats.writesRerouted++;
        return { result: { kind: "keyNotInRegion", region } };
      }
    }
    this.#stats.writesApplied++;
    if (count > ENTRY_OPS_MAX || bytes > ENTRY_BYTES_MAX) {
      return { result: { kind: "reply", reply: this.#tooLarge(count, bytes) } };
    }
    this.#stats.bytesPutSinceCount += bytes;
    this.#stats.keysPutSinceCount += count;
    const reply: Reply = layout.batch ? { kind: "array", items: new Array(count).fill(OK) } : OK;
    return { result: { kind: "reply", reply }, layout, bytes };
  }

  /**
   * Writes an apply's batch to the engine and the value cache. On the event loop: a worker
   * thread for this write was measured slower (2 cores shared with the clients: the hand-off
   * cost more CPU than the memtable inserts it moved).
   */
  async #write(batch: WriteBatch): Promise<void> {
    const cache = this.#cache;
    const engine = this.#engine;
    // User keys only: nothing reads Spire's own metadata through the cache.
    const scope = { keyPrefix: USER_KEY_PREFIX, keepDeleted: this.#cacheKeepsDeleted };
    cache?.use(engine);
    try {
      // Written at once: no read ran in between, the cache learns the write in one pass.
      if (engine.writeNow?.(batch) === true) return cache?.written(batch, scope);
      const write = cache?.beginWrite(batch, scope);
      await engine.write(batch);
      if (write !== undefined) cache?.endWrite(write);
    } catch (e) {
      cache?.clear(); // whether any of it reached the engine is not known here
      throw e;
    }
  }

  #tooLarge(opsCount: number, bytes: number): Reply {
    return error(
      `ERR write too large: ${opsCount} engine operations and ${bytes} bytes; at most ` +
        `${ENTRY_OPS_MAX} operations and ${ENTRY_BYTES_MAX} bytes in one write`,
    );
  }

  async #applyWrite(
    cmd: WriteCommand,
    nowMs: number,
    overlay: BatchReader,
  ): Promise<{ result: RegionResult; ops: EngineOp[]; bytes?: number }> {
    const region = this.#region;
    for (const key of writeCommandKeys(cmd)) {
      if (!inRegion(region, key)) {
        this.#stats.writesRerouted++;
        return { result: { kind: "keyNotInRegion", region }, ops: [] };
      }
    }
    this.#stats.writesApplied++;
    if (cmd.op === "flushdb") {
      // Only this region's share of the keyspace: FLUSHDB goes to every region.
      const { start, end } = engineRangeOf(region);
      return {
        result: { kind: "reply", reply: { kind: "simple", value: "OK" } },
        ops: [{ op: "deleteRange", start, end }],
      };
    }
    const { ops, reply } = await applyCommand(cmd, nowMs, overlay, this.#opBytes);
    const bytes = engineOpsBytes(ops);
    if (ops.length > ENTRY_OPS_MAX || bytes > ENTRY_BYTES_MAX) {
      // Refused here, the same way on every replay: no engine batch could hold it.
      return { result: { kind: "reply", reply: this.#tooLarge(ops.length, bytes) }, ops: [] };
    }
    for (const op of ops) {
      if (op.op === "put") {
        this.#stats.bytesPutSinceCount += op.key.length + op.value.length;
        this.#stats.keysPutSinceCount++;
      }
    }
    return { result: { kind: "reply", reply }, ops, bytes };
  }

  #applySplit(
    c: RegionCommand & { kind: "split" },
  ): { result: RegionResult; ops: EngineOp[] } {
    const region = this.#region;
    if (c.version !== region.epoch.version || !inRegion(region, c.splitKey)) {
      return { result: { kind: "staleSplit", region }, ops: [] };
    }
    let parts: { left: Region; right: Region };
    try {
      parts = splitRegionMeta(region, c.splitKey, c.newRegionId, c.newPeerIds);
    } catch {
      return { result: { kind: "staleSplit", region }, ops: [] };
    }
    this.#region = parts.right;
    return {
      result: { kind: "split", left: parts.left, right: parts.right },
      ops: [
        { op: "put", key: regionStateKey(parts.right.id), value: encodeRegion(parts.right) },
        { op: "put", key: regionStateKey(parts.left.id), value: encodeRegion(parts.left) },
      ],
    };
  }

  /** Reads user keys (after the driver made the read linearizable). */
  async query(request: Uint8Array): Promise<RegionResult> {
    const keys = decodeReadRequest(request);
    for (const key of keys) {
      if (!inRegion(this.#region, key)) return { kind: "keyNotInRegion", region: this.#region };
    }
    const values = await this.#engine.getBatch(keys.map((k) => engineKeyOf(k)));
    return { kind: "values", values };
  }

  /**
   * The region's metadata and applied index. The engine is flushed first, so
   * the log below this index may be dropped: the state it produced is on disk.
   */
  async snapshot(): Promise<Uint8Array> {
    await this.#engine.flush?.();
    return pack({ region: encodeRegion(this.#region), applied: this.#applied });
  }

  /**
   * Accepts a snapshot of this region whose state the engine already holds
   * (the bootstrap snapshot of a new group, or the image of a local compaction).
   * @throws {Error} when the engine is behind the snapshot: the data would have
   *   to be streamed from another store, which standalone mode does not do
   */
  restore(snapshot: Snapshot): void {
    const index = snapshot.metadata.index;
    if (index > 1 && this.#applied < index) {
      throw new Error(
        `Cannot restore region ${this.#region.id} from a snapshot at ${index}: the engine has ` +
          `applied only ${this.#applied}, and streaming region data is not supported`,
      );
    }
    this.#applied = Math.max(this.#applied, index);
  }
}

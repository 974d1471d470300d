/**
 * {@link KvBackend} over Raft regions: each write is routed to the region
 * that owns its keys and proposed to that region's peer; it is answered once
 * it is applied. Reads go through the region's ReadIndex (a linearizable
 * read) and then read the shared engine.
 *
 * Multi-key commands are split per region: MGET, EXISTS, DEL/UNLINK and the
 * background expiry's sweeps go to every region involved and their answers
 * are merged. MSET is atomic within each region but not across regions (as
 * MSET in Redis Cluster is refused across slots, Spire applies each region's
 * share on its own). MSETNX must be all-or-nothing, which Spire cannot
 * promise across regions without a distributed transaction: MSETNX whose keys
 * lie in more than one region is refused with an error. FLUSHDB goes to
 * every region.
 *
 * Reads in standalone mode: when a region has one voter and it is this
 * store's peer, no other leader can exist, and the engine holds exactly the
 * applied (hence committed) writes, every acknowledged one included (a write
 * is acknowledged after it is applied) once the peer has applied an entry of
 * its own term (after a restart, writes acknowledged by the previous
 * incarnation may be durable in the log but not yet committed or applied
 * again). Reading the engine directly is then
 * linearizable without a ReadIndex round, like a lease that never expires;
 * `readMode: "readIndex"` forces the Raft round anyway. With more than one
 * voter the ReadIndex round is always used.
 *
 * Group commit: single-key writes (SET, INCR/DECR(BY), APPEND, GETDEL,
 * PERSIST) from every connection are proposed as one `batch` Raft entry per
 * region while the previous batch is in flight (see `#queueWrite`); each is
 * answered with its own reply once the entry is fsynced and applied. Local
 * reads asked for in one turn share one engine MultiGet.
 *
 * Retries: a request that certainly had no effect (the region's process is
 * restarting, the peer is not the leader yet, a key moved to another region
 * after a split) is sent again after a short wait, at most `attemptsMax`
 * times. A write whose fate is unknown (its region crashed after taking it)
 * is not repeated: the client gets an error saying it may have been applied.
 *
 * @module
 */

import {
  CallExitError,
  CallTimeoutError,
  MailboxFullError,
  NoProcessError,
} from "../supervisor/mod.ts";
import type { Region } from "../pd/mod.ts";
import { EngineClosedError, GET_BATCH_KEYS_MAX } from "../engine/mod.ts";
import {
  type DirectReads,
  type ExpiredKeys,
  type KeyPage,
  type Keyspace,
  keyspaceOf,
  type KvBackend,
  RangeScan,
  type RangeScanResult,
  type StoredEntry,
} from "./commands/backend.ts";
import {
  decodeValue,
  engineKeyOf,
  type StoredValue,
  userKeyOf,
  VALUE_DEADLINE_LAYOUT,
} from "./commands/kv_model.ts";
import { BATCHABLE_WRITE_OPS, type WriteCommand, writeCommandKeys } from "./commands/write_ops.ts";
import { error, integer, OK, type Reply } from "./resp/reply.ts";
import { BytePool } from "./resp/byte_pool.ts";
import { engineRangeOf, inRegion } from "./region_meta.ts";
import { compareBytes } from "../engine/codec/mod.ts";
import type { RegionReply, RegionRequest } from "./region_peer_process.ts";
import {
  encodeReadRequest,
  encodeRegionCommand,
  PLAIN_SETS_HEADER_BYTES,
  REGION_COMMAND_BYTES_MAX,
  type RegionResult,
  writePlainSetsHeader,
} from "./region_state_machine.ts";
import { SetBatch } from "./commands/set_batch.ts";
import { EngineUnavailableError, NAMES, type NodeServices } from "./services.ts";

/** Options of {@link RaftBackend}. */
export interface RaftBackendOptions {
  /** The node's services (runtime, routing, engine). */
  readonly services: NodeServices;
  /** Tries per request before giving up (default 60). */
  readonly attemptsMax?: number;
  /** First wait between tries, doubled up to `retryDelayMaxMs` (default 5 ms). */
  readonly retryDelayMs?: number;
  /** Longest wait between tries (default 200 ms). */
  readonly retryDelayMaxMs?: number;
  /** Timeout of one call to a region (default 10 s). */
  readonly callTimeoutMs?: number;
  /** Largest encoded write command (default and most: what a region takes, 64 MiB). */
  readonly commandBytesMax?: number;
  /**
   * `"auto"` (default): regions with this store's peer as their only voter are read from the
   * engine directly, others through ReadIndex; `"readIndex"`: always through ReadIndex.
   */
  readonly readMode?: "auto" | "readIndex";
}

/** A region could not serve a request within the retry budget. */
export class RegionUnavailableError extends Error {
  /**
   * Creates the error.
   * @param message what failed and why
   */
  constructor(message: string) {
    super(message);
    this.name = "RegionUnavailableError";
  }
}

type Outcome =
  | { kind: "done"; result: RegionResult }
  | { kind: "retry"; why: string }
  | { kind: "unknown"; why: string };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Keys of local reads served by one engine MultiGet, at most. */
const READ_BATCH_KEYS_MAX = Math.min(GET_BATCH_KEYS_MAX, 4096);

/** Buffers of settled SET batches kept for new ones (each at most WRITE_BATCH_BYTES_MAX). */
const SET_BUFFERS_KEPT = 8;

/**
 * Rounds of group-committed writes in flight at once, at most (see #queueWrite). With the SET
 * lane, 4 served 50 clients' SETs at pipeline 1 about 13% faster than 2 (30,000 vs 26,500/s,
 * medians of 3) and within the noise at pipeline 16; 8 gained nothing more.
 */
export const WRITE_ROUNDS_MAX = 4;
/** Writes in one batch proposal, at most. */
const WRITE_BATCH_COMMANDS_MAX = 512;
/** Key and value bytes in one batch proposal, at most (one larger write goes alone). */
const WRITE_BATCH_BYTES_MAX = 1024 * 1024;

interface PendingWrite {
  readonly key: Uint8Array;
  readonly cmd: WriteCommand;
  readonly bytes: number;
  readonly resolve: (reply: Reply) => void;
}

interface PendingRead {
  /** Engine keys (cut once, for the value cache and the MultiGet alike). */
  readonly keys: readonly Uint8Array[];
  readonly resolve: (values: (StoredValue | undefined)[] | undefined) => void;
  readonly reject: (error: unknown) => void;
}

/** The Raft-backed storage of a node. */
export class RaftBackend implements KvBackend {
  readonly #s: NodeServices;
  readonly #attemptsMax: number;
  readonly #delayMs: number;
  readonly #delayMaxMs: number;
  readonly #timeoutMs: number;
  readonly #commandBytesMax: number;
  readonly #readIndexAlways: boolean;
  /** Local reads waiting for the next microtask, served together by one MultiGet. */
  #pendingReads: PendingRead[] = [];
  #pendingReadKeys = 0;
  /** The engine keys of local reads are cut from shared buffers (see BytePool). */
  readonly #readKeys = new BytePool();
  /** Single-key writes waiting for the batch in flight to be answered. */
  #pendingWrites: PendingWrite[] = [];
  /** Rounds of queued writes in flight (see #queueWrite). */
  #rounds = 0;
  /** Whether a round is about to start (on the next microtask). */
  #roundStarting = false;
  /** SET batches not yet sent, in the order they opened (see setBatch). */
  #setBatches: SetBatch[] = [];
  /** The open SET batch of each region. */
  readonly #openSets = new Map<number, SetBatch>();
  /** Buffers of settled SET batches, for new ones (at most SET_BUFFERS_KEPT). */
  readonly #setBuffers: Uint8Array[] = [];

  /**
   * Creates a backend over the node's regions.
   * @param options services, retry budget and limits
   * @throws {RangeError} for limits that are not positive
   */
  constructor(options: RaftBackendOptions) {
    this.#s = options.services;
    this.#attemptsMax = options.attemptsMax ?? 60;
    this.#delayMs = options.retryDelayMs ?? 5;
    this.#delayMaxMs = options.retryDelayMaxMs ?? 200;
    this.#timeoutMs = options.callTimeoutMs ?? 10_000;
    // No larger than a region takes: a larger proposal would be refused by its peer.
    this.#commandBytesMax = Math.min(
      options.commandBytesMax ?? REGION_COMMAND_BYTES_MAX,
      REGION_COMMAND_BYTES_MAX,
    );
    this.#readIndexAlways = options.readMode === "readIndex";
    for (
      const [name, v] of [
        ["attemptsMax", this.#attemptsMax],
        ["retryDelayMs", this.#delayMs],
        ["retryDelayMaxMs", this.#delayMaxMs],
        ["callTimeoutMs", this.#timeoutMs],
        ["commandBytesMax", this.#commandBytesMax],
      ] as const
    ) {
      if (!(Number.isFinite(v) && v > 0)) {
        throw new RangeError(`Invalid RaftBackend option ${name}: ${v} is not a positive number`);
      }
    }
  }

  async #ask(regionId: number, req: RegionRequest): Promise<Outcome> {
    let reply: RegionReply;
    try {
      reply = await this.#s.runtime.call<RegionRequest, RegionReply>(NAMES.region(regionId), req, {
        timeoutMs: this.#timeoutMs,
      });
    } catch (e) {
      const why = `region ${regionId}: ${(e as Error).message}`;
      if (e instanceof NoProcessError || e instanceof MailboxFullError) {
        return { kind: "retry", why };
      }
      if ((e instanceof CallExitError || e instanceof CallTimeoutError) && req.op === "propose") {
        return { kind: "unknown", why };
      }
      return { kind: "retry", why };
    }
    if ("ok" in reply) return { kind: "done", result: reply.ok };
    const why = `region ${regionId}: ${reply.error.message}`;
    return reply.retry || req.op !== "propose" ? { kind: "retry", why } : { kind: "unknown", why };
  }

  /**
   * Sends a request to the region owning `key` (routing again on each try),
   * retrying what had no effect.
   */
  async #send(
    what: string | (() => string),
    route: () => Region,
    req: RegionRequest,
  ): Promise<{ ok: RegionResult; region: Region } | { failed: string; unknown: boolean }> {
    let delay = this.#delayMs;
    let last = "";
    for (let attempt = 0; attempt < this.#attemptsMax; attempt++) {
      if (attempt > 0) {
        await sleep(delay);
        delay = Math.min(delay * 2, this.#delayMaxMs);
      }
      let region: Region;
      try {
        region = route();
      } catch (e) {
        if (!(e instanceof EngineUnavailableError)) throw e;
        last = e.message;
        continue;
      }
      const o = await this.#ask(region.id, req);
      if (o.kind === "done") return { ok: o.result, region };
      if (o.kind === "unknown") {
        return {
          failed: `Cannot confirm ${typeof what === "string" ? what : what()}: ${o.why}; ` +
            "it may have been applied",
          unknown: true,
        };
      }
      last = o.why;
    }
    return {
      failed: `Cannot ${
        typeof what === "string" ? what : what()
      }: no answer after ${this.#attemptsMax} tries; last: ${last}`,
      unknown: false,
    };
  }

  /** Proposes a command to the region of `key` once; `undefined` when the key moved. */
  async #writeOnce(key: Uint8Array, cmd: WriteCommand): Promise<Reply | undefined> {
    let command: Uint8Array;
    try {
      command = encodeRegionCommand(
        { kind: "write", nowMs: this.#s.now(), cmd },
        this.#commandBytesMax,
      );
    } catch (e) {
      if (!(e instanceof RangeError)) throw e;
      return error(`ERR write too large: ${e.message} (nothing was written)`);
    }
    return await this.#proposeOnce(key, command, () => `write ${cmd.op}`);
  }

  /** Proposes an encoded write to the region of `key` once; `undefined` when the key moved. */
  async #proposeOnce(
    key: Uint8Array,
    command: Uint8Array,
    what: () => string,
  ): Promise<Reply | undefined> {
    const r = await this.#send(what, () => this.#s.route(key), { op: "propose", command });
    if ("failed" in r) return error(`${r.unknown ? "ERR" : "TRYAGAIN"} ${r.failed}`);
    if (r.ok.kind === "keyNotInRegion") return undefined;
    return r.ok.kind === "reply" ? r.ok.reply : error(`ERR unexpected result ${r.ok.kind}`);
  }

  /**
   * Applies a command over `keys`, split per region: `make` builds each
   * region's share; `merge` folds the replies. A share refused because its keys
   * moved (a split) is grouped again and resent.
   */
  async #writePerRegion(
    keys: readonly Uint8Array[],
    make: (at: number[]) => WriteCommand,
    merge: (replies: Reply[]) => Reply,
  ): Promise<Reply> {
    const replies: Reply[] = [];
    let pending = keys.map((_, i) => i);
    for (let round = 0; pending.length > 0; round++) {
      if (round >= this.#attemptsMax) {
        return error(`TRYAGAIN Cannot write: keys kept moving between regions`);
      }
      if (round > 0) await sleep(Math.min(this.#delayMs * 2 ** round, this.#delayMaxMs));
      const next: number[] = [];
      for (const g of this.#byRegion(pending.map((i) => keys[i]!)).values()) {
        const at = g.at.map((j) => pending[j]!);
        const r = await this.#writeOnce(keys[at[0]!]!, make(at));
        if (r === undefined) next.push(...at);
        else if (r.kind === "error") return r;
        else replies.push(r);
      }
      pending = next;
    }
    return merge(replies);
  }

  /** A write of one key: proposed to its region, routed again when a split moved the key. */
  async #write(key: Uint8Array, cmd: WriteCommand): Promise<Reply> {
    for (let round = 0; round < this.#attemptsMax; round++) {
      if (round > 0) await sleep(Math.min(this.#delayMs * 2 ** round, this.#delayMaxMs));
      const r = await this.#writeOnce(key, cmd);
      if (r !== undefined) return r;
    }
    return error(`TRYAGAIN Cannot write: keys kept moving between regions`);
  }

  /** Groups keys (with their positions) by the region that holds them now. */
  #byRegion(keys: readonly Uint8Array[]): Map<number, { region: Region; at: number[] }> {
    const groups = new Map<number, { region: Region; at: number[] }>();
    keys.forEach((k, i) => {
      const region = this.#s.route(k);
      const g = groups.get(region.id) ?? { region, at: [] };
      g.at.push(i);
      groups.set(region.id, g);
    });
    return groups;
  }

  /** Routes a write to its region(s), proposes it and answers once it is applied. */
  async execute(cmd: WriteCommand): Promise<Reply> {
    try {
      return await this.#execute(cmd);
    } catch (e) {
      if (e instanceof EngineUnavailableError) return error(`TRYAGAIN ${e.message}`);
      throw e;
    }
  }

  async #execute(cmd: WriteCommand): Promise<Reply> {
    switch (cmd.op) {
      case "flushdb": {
        for (const region of this.#s.regions()) {
          const r = await this.#write(region.startKey, cmd);
          if (r.kind === "error") return r;
        }
        return OK;
      }
      case "del":
      case "sweep": {
        const keys = cmd.keys;
        // A one-key DEL of a pipeline joins the group-committed writes queued before it (the
        // client port starts it with them), so that it is proposed after them, in pipeline order.
        if (cmd.op === "del" && keys.length === 1) return await this.#queueWrite(keys[0]!, cmd);
        return await this.#writePerRegion(
          keys,
          (at) => ({ ...cmd, keys: at.map((i) => keys[i]!) }),
          (replies) =>
            integer(replies.reduce((n, r) => n + Number(r.kind === "integer" ? r.value : 0), 0)),
        );
      }
      case "rename":
      case "copy": {
        const keys = [cmd.key, cmd.newKey];
        const regions = this.#byRegion(keys).size;
        if (regions > 1) {
          const name = cmd.op.toUpperCase();
          return error(
            `ERR ${name} keys lie in ${regions} regions; ${name} is atomic only within one region`,
          );
        }
        // One region: atomic. A split meanwhile refuses it whole, and it is sent again.
        return await this.#writePerRegion(keys, () => cmd, (r) => r[0]!);
      }
      case "exec": {
        const keys = writeCommandKeys(cmd);
        // Commands without keys only (PING...): any region may apply it; the first one does.
        if (keys.length === 0) return await this.#write(new Uint8Array(0), cmd);
        const regions = this.#byRegion(keys).size;
        if (regions > 1) {
          return error(
            `ERR the transaction's keys lie in ${regions} regions; MULTI/EXEC is atomic only ` +
              "within one region",
          );
        }
        return await this.#writePerRegion(keys, () => cmd, (r) => r[0]!);
      }
      case "mset":
      case "msetnx": {
        const keys = cmd.entries.filter((_, i) => i % 2 === 0);
        const regions = this.#byRegion(keys).size;
        if (regions > 1 && cmd.op === "msetnx") {
          return error(
            `ERR MSETNX keys lie in ${regions} regions; MSETNX is atomic only within one region`,
          );
        }
        if (regions === 1) {
          // One region: atomic (MSETNX included). A split meanwhile refuses it whole.
          return await this.#writePerRegion(keys, () => cmd, (r) => r[0]!);
        }
        return await this.#writePerRegion(
          keys,
          (at) => ({
            op: "mset",
            entries: at.flatMap((i) => [cmd.entries[2 * i]!, cmd.entries[2 * i + 1]!]),
          }),
          () => OK,
        );
      }
      default: {
        const key = "key" in cmd ? cmd.key : undefined;
        if (key === undefined) return error(`ERR unsupported write ${cmd.op}`);
        if (BATCHABLE_WRITE_OPS.has(cmd.op)) return await this.#queueWrite(key, cmd);
        return await this.#write(key, cmd);
      }
    }
  }

  /**
   * Group commit of single-key writes: writes queued in one turn (from every
   * connection) go as one round: one `batch` proposal per region (in arrival
   * order, up to WRITE_BATCH_COMMANDS_MAX writes or WRITE_BATCH_BYTES_MAX
   * bytes each). Up to WRITE_ROUNDS_MAX rounds are in flight, so the region
   * persists one round's entry while it applies the one before; the writes
   * arriving meanwhile wait for a round to end. One entry costs far less to
   * propose, log and apply than hundreds. A write is still answered only
   * after its entry is durable and applied.
   *
   * Order: the writes of one connection that are unanswered at the same time
   * were queued in one turn, so they are in one round, where one region's
   * chunks go one after the other (and a chunk refused because a split moved
   * a key is resent as single writes, started in order, before the next chunk). Writes
   * in different rounds in flight are concurrent, so either order is
   * linearizable; a write queued after another was answered joins a later
   * round, proposed after that one's entry was applied.
   */
  #queueWrite(key: Uint8Array, cmd: WriteCommand): Promise<Reply> {
    return new Promise((resolve) => {
      const bytes = key.length + ("value" in cmd ? cmd.value.length : 0);
      this.#pendingWrites.push({ key, cmd, bytes, resolve });
      this.#startRound();
    });
  }

  /** Starts a round on the next microtask, if one may start. */
  #startRound(): void {
    if (this.#roundStarting || this.#rounds >= WRITE_ROUNDS_MAX) return;
    this.#roundStarting = true;
    queueMicrotask(() => {
      this.#roundStarting = false;
      void this.#round();
    });
  }

  async #round(): Promise<void> {
    const waiting = this.#pendingWrites.length > 0 || this.#setBatches.length > 0;
    if (!waiting || this.#rounds >= WRITE_ROUNDS_MAX) return;
    const batch = this.#pendingWrites;
    this.#pendingWrites = [];
    const sets = this.#setBatches;
    this.#setBatches = [];
    this.#openSets.clear();
    this.#rounds++;
    try {
      await Promise.all([this.#writeGroups(batch), this.#writeSetBatches(sets)]);
    } finally {
      this.#rounds--;
      if (this.#pendingWrites.length > 0 || this.#setBatches.length > 0) this.#startRound();
    }
  }

  /** The region routing sends `key` to now; undefined while the store cannot route. */
  #routeNow(key: Uint8Array): Region | undefined {
    try {
      return this.#s.route(key);
    } catch (e) {
      if (e instanceof EngineUnavailableError) return undefined;
      throw e;
    }
  }

  /** See KvBackend.regionOf: the id of {@link #routeNow}'s region, NaN while it cannot route. */
  regionOf(key: Uint8Array): number {
    return this.#routeNow(key)?.id ?? NaN;
  }

  /**
   * The SET lane: the open batch of plain SETs of `key`'s region with room for one more SET of
   * `bytes` bytes (see KvBackend.setBatch). Batches go out with the group-committed writes'
   * rounds (#round), each as one plain-SETs proposal; a batch that fills up, or whose region
   * changed (a split), waits for the next round as it is, and a new one opens.
   */
  setBatch(key: Uint8Array, bytes: number): SetBatch | undefined {
    if (bytes > WRITE_BATCH_BYTES_MAX) return undefined;
    const region = this.#routeNow(key);
    if (region === undefined) return undefined;
    const open = this.#openSets.get(region.id);
    if (open !== undefined) {
      if (
        open.regionVersion === region.epoch.version && open.countLeft > 0 && open.makeRoom(bytes)
      ) return open;
      this.#openSets.delete(region.id); // full, or its range changed: it goes out as it is
    }
    const reused = this.#setBuffers.pop();
    const batch = new SetBatch({
      startKey: region.startKey,
      endKey: region.endKey,
      headerBytes: PLAIN_SETS_HEADER_BYTES,
      countMax: WRITE_BATCH_COMMANDS_MAX,
      bytesMax: WRITE_BATCH_BYTES_MAX,
      onAdded: () => this.#startRound(),
      region: region.id,
      regionVersion: region.epoch.version,
      ...(reused === undefined ? {} : { buffer: reused }),
    });
    if (!batch.makeRoom(bytes)) return undefined;
    this.#openSets.set(region.id, batch);
    this.#setBatches.push(batch);
    return batch;
  }

  /**
   * Sends a round's SET batches: one region's in the order they opened, regions in parallel.
   * When a region split since one of them opened, all go one after another instead: a
   * connection's SETs may then lie in a batch of the old range (refused, and resent SET by SET)
   * and in one of the new region, and must still apply in the order they were sent.
   */
  async #writeSetBatches(sets: SetBatch[]): Promise<void> {
    const byRegion = new Map<number, SetBatch[]>();
    let stale = false;
    const versions = new Map(this.#s.regions().map((r) => [r.id, r.epoch.version]));
    for (const b of sets) {
      const id = b.region!;
      if (versions.get(id) !== b.regionVersion) stale = true;
      const list = byRegion.get(id);
      if (list === undefined) byRegion.set(id, [b]);
      else list.push(b);
    }
    if (stale) {
      for (const b of sets) await this.#writeSetBatch(b);
      return;
    }
    await Promise.all([...byRegion.values()].map(async (list) => {
      for (const b of list) await this.#writeSetBatch(b);
    }));
  }

  /**
   * One SET batch as one plain-SETs proposal; if a split moved one of its keys, each SET is
   * sent on its own, in order.
   */
  async #writeSetBatch(batch: SetBatch): Promise<void> {
    if (batch.count === 0) return batch.settle([]);
    const command = batch.seal();
    writePlainSetsHeader(command, this.#s.now(), true, batch.count);
    let r: Reply | undefined;
    try {
      r = await this.#proposeOnce(batch.firstKey(), command, () => `write ${batch.count} SETs`);
    } catch (e) {
      r = e instanceof EngineUnavailableError ? error(`TRYAGAIN ${e.message}`) : error(
        `ERR internal error: ${e instanceof Error ? e.message : String(e)}`,
      );
    }
    if (r === undefined) {
      // Nothing of the batch was applied: each SET alone, started in order.
      const replies = await Promise.all(
        batch.sets().map(({ key, value }) => this.#write(key, { op: "set", key, value })),
      );
      batch.settle(replies);
      return;
    }
    if (r.kind === "array" && r.items !== null && r.items.length === batch.count) {
      batch.settle(r.items);
      // Its bytes are in the log now: the buffer serves a later batch (no new one to zero and grow).
      const buffer = batch.release();
      if (buffer !== undefined && this.#setBuffers.length < SET_BUFFERS_KEPT) {
        this.#setBuffers.push(buffer);
      }
      return;
    }
    // An error for the whole batch (no answer, outcome unknown): every SET gets it.
    const failed = r.kind === "error" ? r : error(`ERR unexpected batch reply ${r.kind}`);
    batch.settle(new Array<Reply>(batch.count).fill(failed));
  }

  /** Proposes queued writes grouped per region (and in chunks), in parallel across regions. */
  async #writeGroups(batch: PendingWrite[]): Promise<void> {
    const groups = new Map<number, PendingWrite[][]>();
    const lastBytes = new Map<number, number>(); // bytes of each region's last chunk
    const alone: PendingWrite[] = [];
    for (const w of batch) {
      let regionId: number;
      try {
        regionId = this.#s.route(w.key).id;
      } catch {
        alone.push(w); // storage restarting: the single-write path retries
        continue;
      }
      let chunks = groups.get(regionId);
      if (chunks === undefined) groups.set(regionId, chunks = [[]]);
      let last = chunks[chunks.length - 1]!;
      const bytes = lastBytes.get(regionId) ?? 0;
      if (
        last.length > 0 &&
        (last.length >= WRITE_BATCH_COMMANDS_MAX || bytes + w.bytes > WRITE_BATCH_BYTES_MAX)
      ) {
        chunks.push(last = []);
        lastBytes.set(regionId, 0);
      }
      last.push(w);
      lastBytes.set(regionId, (lastBytes.get(regionId) ?? 0) + w.bytes);
    }
    const work: Promise<void>[] = alone.map((w) => this.#writeAlone(w));
    for (const chunks of groups.values()) {
      work.push((async () => {
        for (const chunk of chunks) await this.#writeChunk(chunk);
      })());
    }
    await Promise.all(work);
  }

  async #writeAlone(w: PendingWrite): Promise<void> {
    try {
      w.resolve(await this.#write(w.key, w.cmd));
    } catch (e) {
      w.resolve(
        e instanceof EngineUnavailableError ? error(`TRYAGAIN ${e.message}`) : error(
          `ERR internal error: ${e instanceof Error ? e.message : String(e)}`,
        ),
      );
    }
  }

  /** One batch proposal; if a split moved one of its keys, each write is sent on its own. */
  async #writeChunk(chunk: PendingWrite[]): Promise<void> {
    if (chunk.length === 1) return await this.#writeAlone(chunk[0]!);
    let r: Reply | undefined;
    try {
      r = await this.#writeOnce(chunk[0]!.key, { op: "batch", cmds: chunk.map((w) => w.cmd) });
    } catch (e) {
      r = e instanceof EngineUnavailableError ? error(`TRYAGAIN ${e.message}`) : error(
        `ERR internal error: ${e instanceof Error ? e.message : String(e)}`,
      );
    }
    if (r === undefined) {
      // Nothing of the batch was applied. Started in order, so one key's writes keep theirs.
      await Promise.all(chunk.map((w) => this.#writeAlone(w)));
      return;
    }
    if (r.kind === "array" && r.items !== null && r.items.length === chunk.length) {
      chunk.forEach((w, i) => w.resolve(r.items![i]!));
      return;
    }
    // An error for the whole batch (no answer, outcome unknown): every write gets it.
    const failed = r.kind === "error" ? r : error(`ERR unexpected batch reply ${r.kind}`);
    for (const w of chunk) w.resolve(failed);
  }

  /** Whether reads of `region` may skip the ReadIndex round (see the module doc). */
  #readsLocally(region: Region): boolean {
    if (this.#readIndexAlways) return false;
    let voters = 0;
    let mine = false;
    for (const p of region.peers) {
      if (p.role !== "voter") continue;
      voters++;
      mine = p.storeId === this.#s.storeId;
    }
    return voters === 1 && mine && this.#s.raftInfo.get(region.id)?.appliedOwnTerm === true;
  }

  /** Whether every region may be read locally. */
  #allLocal(): boolean {
    for (const r of this.#s.regions()) if (!this.#readsLocally(r)) return false;
    return true;
  }

  /**
   * The engine's native handles while every region may be read locally (one voter, this
   * store, an entry of its own term applied: what {@link RaftBackend.read} then does too).
   */
  directReads(): DirectReads | undefined {
    const engine = this.#s.engine;
    if (engine === undefined || engine.closed || !this.#allLocal()) return undefined;
    const access = engine.nativeReadAccess();
    if (access === undefined) return undefined;
    const cache = this.#s.valueCache;
    cache.use(engine); // the reader fills it from this engine
    return { engine: access, cache: cache.enabled ? cache.nativeHandle : null };
  }

  /** Reads stored values (expired ones included), linearizably. */
  async read(keys: readonly Uint8Array[]): Promise<(StoredValue | undefined)[]> {
    if (keys.length > 0 && this.#allLocal()) {
      const local = await this.#readLocal(keys);
      if (local !== undefined) return local;
    }
    return await this.#readIndexed(keys);
  }

  /**
   * Reads the engine directly; undefined when the engine is restarting (use
   * the slow path). Reads asked for in one burst (the reads of a pipeline,
   * of several connections in one turn) wait for the next microtask and are
   * served together by one engine MultiGet, up to READ_BATCH_KEYS_MAX keys.
   */
  #readLocal(keys: readonly Uint8Array[]): Promise<(StoredValue | undefined)[] | undefined> {
    const engine = this.#s.engine;
    if (engine === undefined || engine.closed) return Promise.resolve(undefined);
    const engineKeys = keys.map((k) => engineKeyOf(k, this.#readKeys));
    const cached = this.#fromCache(engine, engineKeys);
    if (cached !== undefined) return Promise.resolve(cached);
    if (this.#pendingReadKeys + keys.length > READ_BATCH_KEYS_MAX && this.#pendingReadKeys > 0) {
      this.#serveReads();
    }
    return new Promise((resolve, reject) => {
      if (this.#pendingReads.length === 0) queueMicrotask(() => this.#serveReads());
      this.#pendingReads.push({ keys: engineKeys, resolve, reject });
      this.#pendingReadKeys += keys.length;
    });
  }

  /**
   * The values of `engineKeys` when the value cache holds every one of them (a
   * read needs no engine call then), else undefined.
   */
  #fromCache(
    engine: object,
    engineKeys: readonly Uint8Array[],
  ): (StoredValue | undefined)[] | undefined {
    const cache = this.#s.valueCache;
    if (!cache.enabled) return undefined;
    cache.use(engine);
    const out = new Array<StoredValue | undefined>(engineKeys.length);
    for (let i = 0; i < engineKeys.length; i++) {
      const stored = cache.get(engineKeys[i]!);
      if (stored === undefined) return undefined;
      out[i] = decodeValue(stored);
    }
    return out;
  }

  /** Serves the pending local reads (see #readLocal). */
  #serveReads(): void {
    const batch = this.#pendingReads;
    if (batch.length === 0) return;
    this.#pendingReads = [];
    this.#pendingReadKeys = 0;
    const keys: Uint8Array[] = [];
    for (const r of batch) for (const k of r.keys) keys.push(k);
    const cache = this.#s.valueCache;
    if (this.#s.engine !== undefined) cache.use(this.#s.engine); // the engine read below
    const generation = cache.generation;
    this.#readEngine(keys).then((raw) => {
      if (raw !== undefined && cache.enabled) {
        for (let i = 0; i < keys.length; i++) cache.fill(generation, keys[i]!, raw[i]);
      }
      let at = 0;
      for (const r of batch) {
        if (raw === undefined) {
          r.resolve(undefined);
          continue;
        }
        const values = new Array<StoredValue | undefined>(r.keys.length);
        for (let i = 0; i < values.length; i++) {
          const v = raw[at++];
          values[i] = v === undefined ? undefined : decodeValue(v);
        }
        r.resolve(values);
      }
    }, (e) => {
      for (const r of batch) r.reject(e);
    });
  }

  /** Engine values of engine keys, in chunks of READ_BATCH_KEYS_MAX; undefined if it closed. */
  async #readEngine(keys: Uint8Array[]): Promise<(Uint8Array | undefined)[] | undefined> {
    const engine = this.#s.engine;
    if (engine === undefined || engine.closed) return undefined;
    try {
      if (keys.length <= READ_BATCH_KEYS_MAX) return await engine.getBatch(keys); // 1 key: a get
      const out: (Uint8Array | undefined)[] = [];
      for (let i = 0; i < keys.length; i += READ_BATCH_KEYS_MAX) {
        out.push(...await engine.getBatch(keys.slice(i, i + READ_BATCH_KEYS_MAX)));
      }
      return out;
    } catch (e) {
      if (e instanceof EngineClosedError) return undefined;
      throw e;
    }
  }

  async #readIndexed(keys: readonly Uint8Array[]): Promise<(StoredValue | undefined)[]> {
    const out = new Array<StoredValue | undefined>(keys.length);
    let pending = keys.map((_, i) => i);
    for (let round = 0; pending.length > 0; round++) {
      if (round >= this.#attemptsMax) {
        throw new RegionUnavailableError(`Cannot read: keys kept moving between regions`);
      }
      const groups = this.#byRegion(pending.map((i) => keys[i]!));
      const next: number[] = [];
      await Promise.all([...groups.values()].map(async (g) => {
        const idx = g.at.map((j) => pending[j]!);
        const part = idx.map((i) => keys[i]!);
        const r = await this.#send("read", () => this.#s.route(part[0]!), {
          op: "read",
          request: encodeReadRequest(part),
        });
        if ("failed" in r) throw new RegionUnavailableError(r.failed);
        if (r.ok.kind !== "values") {
          next.push(...idx);
          return;
        }
        r.ok.values.forEach((v, j) => {
          out[idx[j]!] = v === undefined ? undefined : decodeValue(v);
        });
      }));
      pending = next;
    }
    return out;
  }

  /** Makes reads of a region linearizable: a ReadIndex round with no keys. */
  async #barrier(region: Region): Promise<void> {
    if (this.#readsLocally(region)) return;
    const r = await this.#send("read", () => this.#s.route(region.startKey), {
      op: "read",
      request: encodeReadRequest([]),
    });
    if ("failed" in r) throw new RegionUnavailableError(r.failed);
  }

  /** Regions from the one holding `from` on, in key order. */
  #regionsFrom(from: Uint8Array): Region[] {
    return this.#s.regions().filter((r) =>
      r.endKey.length === 0 || compareBytes(from, r.endKey) < 0
    );
  }

  /** Up to `limit` entries with keys after `after`, across regions in key order. */
  async scanKeys(after: Uint8Array | undefined, limit: number): Promise<KeyPage> {
    const from = after === undefined ? new Uint8Array() : successor(after);
    const entries: StoredEntry[] = [];
    const engine = this.#s.requireEngine("scan");
    for (const region of this.#regionsFrom(from)) {
      await this.#barrier(region);
      const range = engineRangeOf(region);
      const start = inRegion(region, from) ? engineKeyOf(from) : range.start;
      const want = limit + 1 - entries.length;
      for await (
        const batch of engine.scanRange(start, range.end, {
          batchSize: Math.min(want, 1000),
          limit: want,
        })
      ) {
        for (const { key, value } of batch.entries) {
          entries.push({ key: userKeyOf(key).slice(), value: decodeValue(value) });
        }
      }
      if (entries.length > limit) break;
    }
    const done = entries.length <= limit;
    return { entries: done ? entries : entries.slice(0, limit), done };
  }

  /**
   * Up to `rowsMax` keys from `from` examined for expiry across regions in key order; the
   * expired ones returned (the sweep that removes them re-checks at apply time).
   */
  async scanExpired(
    from: Uint8Array | undefined,
    rowsMax: number,
    nowMs: number,
  ): Promise<ExpiredKeys> {
    const at = from ?? new Uint8Array();
    const engine = this.#s.requireEngine("scan");
    const keys: Uint8Array[] = [];
    let left = rowsMax;
    const regions = this.#regionsFrom(at);
    for (const [i, region] of regions.entries()) {
      await this.#barrier(region);
      const range = engineRangeOf(region);
      const start = inRegion(region, at) ? engineKeyOf(at) : range.start;
      const page = await engine.scanExpired(start, range.end, {
        layout: VALUE_DEADLINE_LAYOUT,
        now: nowMs,
        rowsMax: left,
      });
      for (const k of page.keys) keys.push(userKeyOf(k));
      if (page.next !== undefined) return { keys, next: userKeyOf(page.next) };
      left -= page.rowsExamined;
      // This region is done; with no rows left, the next step starts at the next one.
      if (left === 0) {
        return { keys, next: i + 1 < regions.length ? region.endKey.slice() : undefined };
      }
    }
    return { keys, next: undefined };
  }

  /** Keys, keys with an expiry and their mean time left, over every region. */
  async keyspace(nowMs: number): Promise<Keyspace> {
    const engine = this.#s.requireEngine("count keys");
    const measures = [];
    for (const region of this.#s.regions()) {
      await this.#barrier(region);
      const { start, end } = engineRangeOf(region);
      measures.push(
        await engine.measureRange(start, end, {
          deadlines: { layout: VALUE_DEADLINE_LAYOUT, now: nowMs },
        }),
      );
    }
    return keyspaceOf(measures);
  }

  /** Counts stored keys of every region. */
  async dbsize(): Promise<number> {
    const engine = this.#s.requireEngine("count keys");
    let n = 0;
    for (const region of this.#s.regions()) {
      await this.#barrier(region);
      const { start, end } = engineRangeOf(region);
      n += await engine.countRange(start, end);
    }
    return n;
  }

  /** Scans live user keys in [start, end) across regions. */
  async scanRange(
    start: Uint8Array,
    end: Uint8Array,
    options: { readonly batchSize: number; readonly limit: number; readonly nowMs: number },
  ): Promise<RangeScanResult> {
    const engine = this.#s.requireEngine("scan");
    const scan = new RangeScan(options.limit, options.nowMs);
    const regions = this.#regionsFrom(start).filter((r) =>
      end.length === 0 || compareBytes(r.startKey, end) < 0
    );
    for (const region of regions) {
      if (scan.full) break;
      await this.#barrier(region);
      const range = engineRangeOf(region);
      const s = inRegion(region, start) ? engineKeyOf(start) : range.start;
      const e = end.length > 0 && inRegion(region, end) ? engineKeyOf(end) : range.end;
      await scan.add(engine.scanRange(s, e, { batchSize: options.batchSize }));
    }
    return scan.result();
  }
}

/** The smallest key greater than `key`. */
function successor(key: Uint8Array): Uint8Array {
  const out = new Uint8Array(key.length + 1);
  out.set(key);
  return out;
}

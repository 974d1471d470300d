// Record encoding of the region log (private to raft/log_store).
//
// A record is a 12-byte header and a body:
//   u32 LE body length | u32 LE CRC-32C of those 4 length bytes | u32 LE CRC-32C of the body
// and the body starts with a type byte. The length has its own checksum so
// that a damaged length in the middle of a file is reported as corruption
// instead of being mistaken for a torn tail.

import type { ConfState, Entry, HardState, SnapshotMetadata } from "../core/mod.ts";
import type { Crc32c } from "./crc32c.ts";

export const HEADER_BYTES = 12;
export const REC_ENTRY = 1;
export const REC_HARD_STATE = 2;
export const REC_SNAPSHOT = 3;
/** A journal record: bytes appended at an offset of another file (see journal.ts). */
export const REC_JOURNAL = 4;

export type SnapshotKind = "compact" | "install";

export type LogRecord =
  | { type: typeof REC_ENTRY; entry: Entry }
  | { type: typeof REC_HARD_STATE; hardState: HardState }
  | { type: typeof REC_SNAPSHOT; kind: SnapshotKind; metadata: SnapshotMetadata }
  | { type: typeof REC_JOURNAL; path: string; offset: number; data: Uint8Array };

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

/** Accumulates records into one buffer, for one write and one fsync. */
export class RecordWriter {
  #buf = new Uint8Array(4096);
  #view = new DataView(this.#buf.buffer);
  #len = 0;
  readonly #crc: Crc32c;

  constructor(crc: Crc32c) {
    this.#crc = crc;
  }

  get length(): number {
    return this.#len;
  }

  #reserve(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    const grown = new Uint8Array(Math.max(this.#buf.length * 2, this.#len + n));
    grown.set(this.#buf.subarray(0, this.#len));
    this.#buf = grown;
    this.#view = new DataView(grown.buffer);
  }

  /** Starts a record of `bodyBytes` (type byte included); returns the body offset. */
  #begin(bodyBytes: number, type: number): number {
    this.#reserve(HEADER_BYTES + bodyBytes);
    const at = this.#len;
    this.#view.setUint32(at, bodyBytes, true);
    this.#view.setUint32(at + 4, this.#crc.compute(this.#buf, at, at + 4), true);
    this.#buf[at + HEADER_BYTES] = type;
    return at + HEADER_BYTES;
  }

  #end(body: number, bodyBytes: number): void {
    this.#view.setUint32(body - 4, this.#crc.compute(this.#buf, body, body + bodyBytes), true);
    this.#len = body + bodyBytes;
  }

  entry(e: Entry): void {
    const bodyBytes = 1 + 17 + e.data.length;
    const b = this.#begin(bodyBytes, REC_ENTRY);
    this.#view.setFloat64(b + 1, e.term, true);
    this.#view.setFloat64(b + 9, e.index, true);
    this.#buf[b + 17] = e.type === "confChange" ? 1 : 0;
    this.#buf.set(e.data, b + 18);
    this.#end(b, bodyBytes);
  }

  hardState(hs: HardState): void {
    const b = this.#begin(25, REC_HARD_STATE);
    this.#view.setFloat64(b + 1, hs.term, true);
    this.#view.setFloat64(b + 9, hs.vote, true);
    this.#view.setFloat64(b + 17, hs.commit, true);
    this.#end(b, 25);
  }

  snapshot(kind: SnapshotKind, m: SnapshotMetadata): void {
    const conf = textEncoder.encode(JSON.stringify(m.confState));
    const bodyBytes = 18 + conf.length;
    const b = this.#begin(bodyBytes, REC_SNAPSHOT);
    this.#buf[b + 1] = kind === "install" ? 1 : 0;
    this.#view.setFloat64(b + 2, m.index, true);
    this.#view.setFloat64(b + 10, m.term, true);
    this.#buf.set(conf, b + 18);
    this.#end(b, bodyBytes);
  }

  /** Records that `data` was appended to `path` at byte `offset` (a journal record). */
  journal(path: Uint8Array, offset: number, data: Uint8Array): void {
    const bodyBytes = 11 + path.length + data.length;
    const b = this.#begin(bodyBytes, REC_JOURNAL);
    this.#view.setUint16(b + 1, path.length, true);
    this.#view.setFloat64(b + 3, offset, true);
    this.#buf.set(path, b + 11);
    this.#buf.set(data, b + 11 + path.length);
    this.#end(b, bodyBytes);
  }

  /** The encoded bytes (a view; valid until the next write). */
  bytes(): Uint8Array {
    return this.#buf.subarray(0, this.#len);
  }

  reset(): void {
    this.#len = 0;
  }
}

/** Outcome of scanning one file. */
export interface ScanResult {
  records: { record: LogRecord; offset: number }[];
  /** Offset of the first byte after the last valid record. */
  validBytes: number;
  /** Set when the file ends in an incomplete or damaged final record. */
  tornAt: number | null;
  /** Set when a record before the end is damaged: the offset and why. */
  corrupt: { offset: number; reason: string } | null;
}

function parseConfState(bytes: Uint8Array): ConfState {
  const raw = JSON.parse(textDecoder.decode(bytes)) as { voters?: unknown; learners?: unknown };
  if (!Array.isArray(raw.voters) || !Array.isArray(raw.learners)) {
    throw new TypeError("conf state lacks voters or learners");
  }
  return { voters: raw.voters as number[], learners: raw.learners as number[] };
}

function parseBody(body: Uint8Array): LogRecord {
  const v = new DataView(body.buffer, body.byteOffset, body.byteLength);
  switch (body[0]) {
    case REC_ENTRY: {
      if (body.length < 18) throw new TypeError("entry record shorter than 18 bytes");
      return {
        type: REC_ENTRY,
        entry: {
          term: v.getFloat64(1, true),
          index: v.getFloat64(9, true),
          type: body[17] === 1 ? "confChange" : "normal",
          data: body.slice(18),
        },
      };
    }
    case REC_HARD_STATE:
      if (body.length !== 25) throw new TypeError("hard state record is not 25 bytes");
      return {
        type: REC_HARD_STATE,
        hardState: {
          term: v.getFloat64(1, true),
          vote: v.getFloat64(9, true),
          commit: v.getFloat64(17, true),
        },
      };
    case REC_SNAPSHOT:
      if (body.length < 18) throw new TypeError("snapshot record shorter than 18 bytes");
      return {
        type: REC_SNAPSHOT,
        kind: body[1] === 1 ? "install" : "compact",
        metadata: {
          index: v.getFloat64(2, true),
          term: v.getFloat64(10, true),
          confState: parseConfState(body.subarray(18)),
        },
      };
    case REC_JOURNAL: {
      if (body.length < 11) throw new TypeError("journal record shorter than 11 bytes");
      const pathEnd = 11 + v.getUint16(1, true);
      const offset = v.getFloat64(3, true);
      if (pathEnd > body.length || !Number.isSafeInteger(offset) || offset < 0) {
        throw new TypeError("journal record has a bad path length or offset");
      }
      return {
        type: REC_JOURNAL,
        path: textDecoder.decode(body.subarray(11, pathEnd)),
        offset,
        data: body.subarray(pathEnd),
      };
    }
    default:
      throw new TypeError(`unknown record type ${body[0]}`);
  }
}

/**
 * Reads records until the end or the first damaged one. A damaged record that
 * reaches the end of the file is a torn tail; one followed by more bytes, or
 * with a damaged length, is corruption.
 */
export function scanRecords(data: Uint8Array, crc: Crc32c): ScanResult {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const records: ScanResult["records"] = [];
  let off = 0;
  const stop = (tornAt: number | null, corrupt: ScanResult["corrupt"]): ScanResult => ({
    records,
    validBytes: off,
    tornAt,
    corrupt,
  });
  while (off < data.length) {
    if (data.length - off < HEADER_BYTES) return stop(off, null);
    const bodyBytes = view.getUint32(off, true);
    if (view.getUint32(off + 4, true) !== crc.compute(data, off, off + 4)) {
      return stop(null, { offset: off, reason: "record length fails its checksum" });
    }
    const end = off + HEADER_BYTES + bodyBytes;
    if (end > data.length) return stop(off, null);
    if (view.getUint32(off + 8, true) !== crc.compute(data, off + HEADER_BYTES, end)) {
      if (end === data.length) return stop(off, null);
      return stop(null, { offset: off, reason: "record body fails its checksum" });
    }
    try {
      records.push({ record: parseBody(data.subarray(off + HEADER_BYTES, end)), offset: off });
    } catch (error) {
      return stop(null, { offset: off, reason: (error as Error).message });
    }
    off = end;
  }
  return stop(null, null);
}

/** Encodes a snapshot file: one record whose body is `u32 meta length | meta JSON | data`. */
export function encodeSnapshotFile(m: SnapshotMetadata, data: Uint8Array, crc: Crc32c): Uint8Array {
  const meta = textEncoder.encode(JSON.stringify(m));
  const bodyBytes = 4 + meta.length + data.length;
  const out = new Uint8Array(HEADER_BYTES + bodyBytes);
  const v = new DataView(out.buffer);
  v.setUint32(0, bodyBytes, true);
  v.setUint32(4, crc.compute(out, 0, 4), true);
  v.setUint32(HEADER_BYTES, meta.length, true);
  out.set(meta, HEADER_BYTES + 4);
  out.set(data, HEADER_BYTES + 4 + meta.length);
  v.setUint32(8, crc.compute(out, HEADER_BYTES, out.length), true);
  return out;
}

/** Decodes a snapshot file, or returns why it cannot. */
export function decodeSnapshotFile(
  bytes: Uint8Array,
  crc: Crc32c,
): { metadata: SnapshotMetadata; data: Uint8Array } | string {
  if (bytes.length < HEADER_BYTES + 4) return "file shorter than its header";
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const bodyBytes = v.getUint32(0, true);
  if (HEADER_BYTES + bodyBytes !== bytes.length) return "length does not match the file size";
  if (v.getUint32(8, true) !== crc.compute(bytes, HEADER_BYTES, bytes.length)) {
    return "body fails its checksum";
  }
  const metaBytes = v.getUint32(HEADER_BYTES, true);
  const metaEnd = HEADER_BYTES + 4 + metaBytes;
  const raw = JSON.parse(textDecoder.decode(bytes.subarray(HEADER_BYTES + 4, metaEnd))) as {
    index: number;
    term: number;
    confState: unknown;
  };
  const confState = parseConfState(textEncoder.encode(JSON.stringify(raw.confState)));
  return {
    metadata: { index: raw.index, term: raw.term, confState },
    data: bytes.slice(metaEnd),
  };
}

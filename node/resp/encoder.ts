/**
 * RESP2/RESP3 reply encoder into a growable byte buffer, so that the replies of
 * a pipelined batch leave in one write.
 *
 * @module
 */

import type { Reply } from "./reply.ts";

/** The protocol version of a connection: 2 (default) or 3 (after HELLO 3). */
export type RespVersion = 2 | 3;

const textEncoder = new TextEncoder();
const CRLF = [13, 10] as const;
/** Lines up to this many UTF-16 units are tried as ASCII first (see ReplyWriter's #line). */
const ASCII_INLINE_MAX = 64;

/**
 * A growable byte buffer that replies are appended to.
 * @example
 * ```ts
 * import { ReplyWriter } from "./encoder.ts";
 * import { OK } from "./reply.ts";
 * const w = new ReplyWriter();
 * w.write(OK, 2);
 * console.assert(new TextDecoder().decode(w.take()) === "+OK\r\n");
 * ```
 */
export class ReplyWriter {
  #buf: Uint8Array;
  #len = 0;

  /**
   * Creates an empty writer.
   * @param initialBytes the starting capacity
   */
  constructor(initialBytes = 4096) {
    this.#buf = new Uint8Array(Math.max(16, initialBytes));
  }

  /** The number of bytes written since the last `take`. */
  get length(): number {
    return this.#len;
  }

  /**
   * Appends one reply.
   * @param reply the reply
   * @param version the connection's protocol version
   */
  write(reply: Reply, version: RespVersion): void {
    switch (reply.kind) {
      case "simple":
        return this.#line(43, reply.value);
      case "error":
        return this.#line(45, reply.message);
      case "integer":
        return this.#line(58, reply.value.toString());
      case "bulk":
        if (reply.value === null) return version === 3 ? this.#line(95, "") : this.#line(36, "-1");
        return this.#bulk(36, reply.value);
      case "array":
        if (reply.items === null) return version === 3 ? this.#line(95, "") : this.#line(42, "-1");
        this.#line(42, String(reply.items.length));
        for (const item of reply.items) this.write(item, version);
        return;
      case "set":
        this.#line(version === 3 ? 126 : 42, String(reply.items.length));
        for (const item of reply.items) this.write(item, version);
        return;
      case "map":
        if (version === 3) this.#line(37, String(reply.entries.length));
        else this.#line(42, String(reply.entries.length * 2));
        for (const [k, v] of reply.entries) {
          this.write(k, version);
          this.write(v, version);
        }
        return;
      case "double": {
        const text = formatDouble(reply.value);
        return version === 3 ? this.#line(44, text) : this.#bulk(36, textEncoder.encode(text));
      }
      case "boolean":
        if (version === 3) return this.#line(35, reply.value ? "t" : "f");
        return this.#line(58, reply.value ? "1" : "0");
      case "null":
        return version === 3 ? this.#line(95, "") : this.#line(36, "-1");
      case "verbatim": {
        if (version === 3) {
          return this.#bulk(61, textEncoder.encode(`${reply.format.slice(0, 3)}:${reply.text}`));
        }
        return this.#bulk(36, textEncoder.encode(reply.text));
      }
    }
  }

  /**
   * Returns the bytes written so far and resets the buffer. The returned view
   * stays valid: the writer starts a new buffer when the old one is large.
   * @returns the encoded bytes
   */
  take(): Uint8Array {
    const out = this.#buf.slice(0, this.#len);
    this.#len = 0;
    if (this.#buf.length > 1 << 20) this.#buf = new Uint8Array(4096);
    return out;
  }

  /**
   * The bytes written since the last `take` or `clear`, without a copy. The
   * view is valid until the next `write`, `take` or `clear`.
   * @returns a view of the buffer
   */
  view(): Uint8Array {
    return this.#buf.subarray(0, this.#len);
  }

  /**
   * Room for at least `bytes` more bytes, to be filled in place (by native
   * code) and then counted with {@link ReplyWriter.advance}. The view is valid
   * until the next `write`, `reserve`, `take` or `clear`.
   * @param bytes the room wanted
   * @returns the buffer and where the room starts; it has at least `bytes` after `offset`
   */
  reserve(bytes: number): { readonly buffer: Uint8Array; readonly offset: number } {
    this.#ensure(bytes);
    return { buffer: this.#buf, offset: this.#len };
  }

  /**
   * Counts `n` bytes written in place into the room of {@link ReplyWriter.reserve}.
   * @param n bytes written
   * @throws {RangeError} past the buffer's end
   */
  advance(n: number): void {
    if (!Number.isSafeInteger(n) || n < 0 || this.#len + n > this.#buf.length) {
      throw new RangeError(`Cannot advance the reply buffer by ${n} bytes: past its end`);
    }
    this.#len += n;
  }

  /** Forgets the bytes written so far (after a `view` was sent). */
  clear(): void {
    this.#len = 0;
    if (this.#buf.length > 1 << 20) this.#buf = new Uint8Array(4096);
  }

  #ensure(extra: number): void {
    const need = this.#len + extra;
    if (need <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < need) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
  }

  #line(type: number, text: string): void {
    const n = text.length;
    if (n <= ASCII_INLINE_MAX) {
      // Lengths, counts, integers and most status lines: ASCII, copied here without the
      // encoder's call out of JavaScript (a third of a PING's encoding otherwise).
      this.#ensure(n + 3);
      const buf = this.#buf;
      const at = this.#len + 1;
      let i = 0;
      for (; i < n; i++) {
        const c = text.charCodeAt(i);
        if (c > 0x7f) break;
        buf[at + i] = c;
      }
      if (i === n) {
        buf[at - 1] = type;
        buf[at + n] = CRLF[0];
        buf[at + n + 1] = CRLF[1];
        this.#len = at + n + 2;
        return;
      }
    }
    // Worst case UTF-8 is 3 bytes per UTF-16 unit.
    this.#ensure(n * 3 + 3);
    this.#buf[this.#len++] = type;
    const { written } = textEncoder.encodeInto(text, this.#buf.subarray(this.#len));
    this.#len += written;
    this.#buf[this.#len++] = CRLF[0];
    this.#buf[this.#len++] = CRLF[1];
  }

  #bulk(type: number, bytes: Uint8Array): void {
    this.#line(type, String(bytes.length));
    this.#ensure(bytes.length + 2);
    this.#buf.set(bytes, this.#len);
    this.#len += bytes.length;
    this.#buf[this.#len++] = CRLF[0];
    this.#buf[this.#len++] = CRLF[1];
  }
}

/**
 * Formats a double as RESP3 does (`inf`, `-inf`, `nan`, otherwise the shortest
 * round-tripping decimal).
 * @param value the number
 * @returns its RESP text
 */
export function formatDouble(value: number): string {
  if (Number.isNaN(value)) return "nan";
  if (value === Infinity) return "inf";
  if (value === -Infinity) return "-inf";
  return String(value);
}

/**
 * Encodes a single reply.
 * @param reply the reply
 * @param version the protocol version
 * @returns the bytes
 * @example
 * ```ts
 * import { encodeReply } from "./encoder.ts";
 * import { integer } from "./reply.ts";
 * console.assert(new TextDecoder().decode(encodeReply(integer(5), 2)) === ":5\r\n");
 * ```
 */
export function encodeReply(reply: Reply, version: RespVersion): Uint8Array {
  const w = new ReplyWriter(64);
  w.write(reply, version);
  return w.take();
}

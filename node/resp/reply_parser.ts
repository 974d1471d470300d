/**
 * Incremental decoder of RESP2/RESP3 replies into {@link Reply} values: the
 * client side of the protocol, used by tests, by the differential checks
 * against redis-server and by anything in Spire that talks RESP to a peer.
 *
 * @module
 */

import type { Reply } from "./reply.ts";

const decoder = new TextDecoder();

/** Thrown by {@link ReplyParser.next} when the bytes are not valid RESP. */
export class RespDecodeError extends Error {
  /**
   * Creates the error.
   * @param message what is wrong
   */
  constructor(message: string) {
    super(message);
    this.name = "RespDecodeError";
  }
}

/**
 * Decodes replies from a byte stream.
 * @example
 * ```ts
 * import { ReplyParser } from "./reply_parser.ts";
 * const p = new ReplyParser();
 * p.feed(new TextEncoder().encode("*2\r\n:1\r\n$-1\r\n"));
 * const r = p.next();
 * console.assert(r?.kind === "array" && r.items?.length === 2);
 * ```
 */
export class ReplyParser {
  #buf = new Uint8Array(4096);
  #pos = 0;
  #end = 0;
  readonly #bytesMax: number;

  /**
   * Creates a decoder with empty input.
   * @param bytesMax the largest amount of buffered, undecoded bytes
   */
  constructor(bytesMax = 1 << 30) {
    this.#bytesMax = bytesMax;
  }

  /**
   * Appends received bytes (amortized: the buffer doubles when full).
   * @param chunk bytes
   * @throws {RespDecodeError} when more than bytesMax bytes are buffered
   */
  feed(chunk: Uint8Array): void {
    const used = this.#end - this.#pos;
    if (used + chunk.length > this.#bytesMax) {
      throw new RespDecodeError(`Cannot buffer reply: more than ${this.#bytesMax} bytes`);
    }
    if (this.#end + chunk.length > this.#buf.length) {
      let size = this.#buf.length;
      while (size < used + chunk.length) size *= 2;
      if (size === this.#buf.length) {
        this.#buf.copyWithin(0, this.#pos, this.#end);
      } else {
        const next = new Uint8Array(size);
        next.set(this.#buf.subarray(this.#pos, this.#end));
        this.#buf = next;
      }
      this.#pos = 0;
      this.#end = used;
    }
    this.#buf.set(chunk, this.#end);
    this.#end += chunk.length;
  }

  /**
   * Decodes the next complete reply.
   * @returns the reply, or undefined when more bytes are needed
   * @throws {RespDecodeError} on malformed input
   */
  next(): Reply | undefined {
    const at = this.#pos;
    const r = this.#value();
    if (r === undefined) this.#pos = at;
    return r;
  }

  #line(): string | undefined {
    for (let i = this.#pos; i + 1 < this.#end; i++) {
      if (this.#buf[i] === 13 && this.#buf[i + 1] === 10) {
        const s = decoder.decode(this.#buf.subarray(this.#pos, i));
        this.#pos = i + 2;
        return s;
      }
    }
    return undefined;
  }

  #bytes(n: number): Uint8Array | undefined {
    if (this.#end - this.#pos < n + 2) return undefined;
    const out = this.#buf.slice(this.#pos, this.#pos + n);
    this.#pos += n + 2;
    return out;
  }

  #count(text: string): number {
    const n = Number(text);
    if (!Number.isSafeInteger(n) || n < -1) throw new RespDecodeError(`Bad length: ${text}`);
    return n;
  }

  #items(n: number): Reply[] | undefined {
    const items: Reply[] = [];
    for (let i = 0; i < n; i++) {
      const v = this.#value();
      if (v === undefined) return undefined;
      items.push(v);
    }
    return items;
  }

  #value(): Reply | undefined {
    if (this.#pos >= this.#end) return undefined;
    const type = this.#buf[this.#pos++]!;
    const line = this.#line();
    if (line === undefined) return undefined;
    switch (type) {
      case 43: // +
        return { kind: "simple", value: line };
      case 45: // -
        return { kind: "error", message: line };
      case 58: { // :
        const big = BigInt(line);
        const small = Number(big);
        return { kind: "integer", value: Number.isSafeInteger(small) ? small : big };
      }
      case 36: { // $
        const n = this.#count(line);
        if (n === -1) return { kind: "bulk", value: null };
        const b = this.#bytes(n);
        return b === undefined ? undefined : { kind: "bulk", value: b };
      }
      case 61: { // =
        const b = this.#bytes(this.#count(line));
        if (b === undefined) return undefined;
        const s = decoder.decode(b);
        return { kind: "verbatim", format: s.slice(0, 3), text: s.slice(4) };
      }
      case 42: // *
      case 126: // ~
      case 62: { // > (push, decoded as an array)
        const n = this.#count(line);
        if (n === -1) return { kind: "array", items: null };
        const items = this.#items(n);
        if (items === undefined) return undefined;
        return type === 126 ? { kind: "set", items } : { kind: "array", items };
      }
      case 37: { // %
        const items = this.#items(this.#count(line) * 2);
        if (items === undefined) return undefined;
        const entries: [Reply, Reply][] = [];
        for (let i = 0; i < items.length; i += 2) entries.push([items[i]!, items[i + 1]!]);
        return { kind: "map", entries };
      }
      case 44: // ,
        return {
          kind: "double",
          value: line === "inf" ? Infinity : line === "-inf" ? -Infinity : Number(line),
        };
      case 35: // #
        return { kind: "boolean", value: line === "t" };
      case 95: // _
        return { kind: "null" };
      case 40: // ( big number, kept as an integer
        return { kind: "integer", value: BigInt(line) };
      default:
        throw new RespDecodeError(`Unknown reply type byte: ${type}`);
    }
  }
}

/**
 * Renders a reply as compact readable text (bulk strings as JSON strings), for
 * comparisons and test messages.
 * @param reply the reply
 * @returns the text
 * @example
 * ```ts
 * import { showReply } from "./reply_parser.ts";
 * import { bulk } from "./reply.ts";
 * console.assert(showReply(bulk("a")) === '"a"');
 * ```
 */
export function showReply(reply: Reply): string {
  switch (reply.kind) {
    case "simple":
      return `+${reply.value}`;
    case "error":
      return `-${reply.message}`;
    case "integer":
      return `:${reply.value}`;
    case "bulk":
      return reply.value === null ? "nil" : JSON.stringify(decoder.decode(reply.value));
    case "array":
      return reply.items === null ? "nil[]" : `[${reply.items.map(showReply).join(", ")}]`;
    case "set":
      return `~[${reply.items.map(showReply).join(", ")}]`;
    case "map":
      return `{${reply.entries.map(([k, v]) => `${showReply(k)}: ${showReply(v)}`).join(", ")}}`;
    case "double":
      return `,${reply.value}`;
    case "boolean":
      return reply.value ? "#t" : "#f";
    case "null":
      return "null";
    case "verbatim":
      return `=${reply.format}:${JSON.stringify(reply.text)}`;
  }
}

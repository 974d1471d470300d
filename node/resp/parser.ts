/**
 * Incremental parser of client requests: RESP multibulk frames
 * (`*N\r\n$len\r\n...`) and inline commands (`PING\r\n`, as telnet sends them).
 * Bytes are fed as they arrive; complete commands come out one at a time, so
 * pipelined requests are handled in order. Every size is bounded; malformed input
 * yields a protocol error result (never an exception) after which the parser
 * refuses further input, as Redis closes such connections.
 *
 * @module
 */

import { BytePool } from "./byte_pool.ts";

/** Limits of the request parser. */
export interface RequestLimits {
  /** Largest bulk string argument, in bytes (Redis: proto-max-bulk-len, 512 MiB). */
  readonly bulkBytesMax: number;
  /** Largest number of arguments in one command. */
  readonly argsMax: number;
  /** Largest total size of one command's arguments, in bytes. */
  readonly requestBytesMax: number;
  /** Longest inline command line, in bytes (Redis: 64 KiB). */
  readonly inlineBytesMax: number;
}

/** Defaults matching Redis 7's limits where Redis has one. */
export const DEFAULT_REQUEST_LIMITS: RequestLimits = Object.freeze({
  bulkBytesMax: 512 * 1024 * 1024,
  argsMax: 1024 * 1024,
  requestBytesMax: 512 * 1024 * 1024,
  inlineBytesMax: 64 * 1024,
});

/** One parsed request: a command with its arguments, or a fatal protocol error. */
export type ParseResult =
  | { readonly kind: "command"; readonly args: Uint8Array[]; readonly bytes: number }
  | { readonly kind: "error"; readonly message: string };

const HEADER_BYTES_MAX = 32;

/**
 * Checks that limits are positive integers.
 * @param limits the limits
 * @throws {RangeError} when a limit is not a positive safe integer
 */
export function validateRequestLimits(limits: RequestLimits): void {
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw new RangeError(`Invalid request limit ${name}: ${value} is not a positive integer`);
    }
  }
}

/**
 * The incremental request parser.
 * @example
 * ```ts
 * import { RequestParser } from "./parser.ts";
 * const p = new RequestParser();
 * p.feed(new TextEncoder().encode("*1\r\n$4\r\nPING\r\nECHO hi\r\n"));
 * const first = p.next();
 * console.assert(first?.kind === "command" && first.args.length === 1);
 * const second = p.next();
 * console.assert(second?.kind === "command" && second.args.length === 2);
 * console.assert(p.next() === undefined);
 * ```
 */
export class RequestParser {
  readonly #limits: RequestLimits;
  #buf = new Uint8Array(16 * 1024);
  /** Where complete requests are copied to (see BytePool): their arguments are views of it. */
  readonly #requests = new BytePool();
  #start = 0;
  #end = 0;
  #failed: string | undefined;
  // Multibulk state: remaining < 0 means "between requests".
  #remaining = -1;
  /** Where the current multibulk request starts in #buf (valid while remaining >= 0). */
  #cmdStart = 0;
  /** Offset from #cmdStart and length of each argument parsed so far, flattened. */
  #spans: number[] = [];
  #bulkLen = -1;
  #requestBytes = 0;

  /**
   * Creates a parser with empty input.
   * @param limits parser limits (defaults: {@link DEFAULT_REQUEST_LIMITS})
   * @throws {RangeError} when a limit is not a positive integer
   */
  constructor(limits: RequestLimits = DEFAULT_REQUEST_LIMITS) {
    validateRequestLimits(limits);
    this.#limits = limits;
  }

  /** The number of received bytes not yet consumed by a complete command. */
  get bufferedBytes(): number {
    return this.#end - this.#start;
  }

  /**
   * The received bytes not yet consumed, when the parser is between requests
   * (undefined in the middle of one, after a protocol error, or with nothing
   * buffered): `bytes[start, end)`, a view valid until the next `feed`. Whoever
   * answers requests from it says how much it consumed with {@link RequestParser.skip}.
   * @returns the buffer and the range, or undefined
   */
  unparsed():
    | { readonly bytes: Uint8Array; readonly start: number; readonly end: number }
    | undefined {
    if (this.#failed !== undefined || this.#remaining >= 0 || this.#start === this.#end) {
      return undefined;
    }
    return { bytes: this.#buf, start: this.#start, end: this.#end };
  }

  /**
   * Consumes `n` bytes of {@link RequestParser.unparsed}: whole requests answered elsewhere.
   * @param n bytes, at most what is buffered
   * @throws {RangeError} in the middle of a request or past the buffered bytes
   */
  skip(n: number): void {
    if (this.#remaining >= 0 || !Number.isSafeInteger(n) || n < 0 || n > this.bufferedBytes) {
      throw new RangeError(
        `Cannot skip ${n} bytes: only whole buffered requests between requests may be skipped`,
      );
    }
    this.#start += n;
  }

  /** True after a protocol error: the connection must be closed. */
  get failed(): boolean {
    return this.#failed !== undefined;
  }

  /**
   * Appends received bytes. Ignored after a protocol error.
   * @param chunk the bytes (copied)
   */
  feed(chunk: Uint8Array): void {
    if (this.#failed !== undefined || chunk.length === 0) return;
    // The bytes of a request being parsed stay in the buffer until it is complete: its
    // arguments are copied out together, once (bounded by requestBytesMax).
    const keep = this.#remaining >= 0 ? this.#cmdStart : this.#start;
    const used = this.#end - keep;
    if (this.#end + chunk.length > this.#buf.length) {
      if (used + chunk.length <= this.#buf.length && keep > 0) {
        this.#buf.copyWithin(0, keep, this.#end);
      } else {
        let size = this.#buf.length;
        while (size < used + chunk.length) size *= 2;
        const next = new Uint8Array(size);
        next.set(this.#buf.subarray(keep, this.#end));
        this.#buf = next;
      }
      this.#start -= keep;
      if (this.#remaining >= 0) this.#cmdStart -= keep;
      this.#end = used;
    }
    this.#buf.set(chunk, this.#end);
    this.#end += chunk.length;
  }

  /**
   * Returns the next complete request, or undefined when more bytes are needed.
   * After an error result every call returns the same error.
   * @returns the parsed command, a protocol error, or undefined
   */
  next(): ParseResult | undefined {
    if (this.#failed !== undefined) return { kind: "error", message: this.#failed };
    for (;;) {
      if (this.#remaining < 0) {
        if (this.#start === this.#end) {
          // Everything consumed: reclaim a large buffer.
          this.#start = this.#end = 0;
          if (this.#buf.length > 1 << 20) this.#buf = new Uint8Array(16 * 1024);
          return undefined;
        }
        if (this.#buf[this.#start] !== 42 /* * */) {
          const inline = this.#inline();
          if (inline === null) continue;
          return inline;
        }
        const line = this.#headerLine();
        if (line === undefined) {
          return this.bufferedBytes > HEADER_BYTES_MAX
            ? this.#fail("ERR Protocol error: too big mbulk count string")
            : undefined;
        }
        const n = parseDecimal(this.#buf, this.#start + 1, line);
        if (n === undefined || n > this.#limits.argsMax) {
          return this.#fail("ERR Protocol error: invalid multibulk length");
        }
        this.#start = line + 2;
        if (n <= 0) continue; // Redis ignores empty and null multibulks.
        this.#remaining = n;
        this.#cmdStart = this.#start;
        this.#spans = [];
        this.#bulkLen = -1;
        this.#requestBytes = 0;
      }
      const result = this.#multibulkStep();
      if (result !== "continue") return result;
    }
  }

  #multibulkStep(): ParseResult | undefined | "continue" {
    while (this.#remaining > 0) {
      if (this.#bulkLen < 0) {
        if (this.#start === this.#end) return undefined;
        const first = this.#buf[this.#start]!;
        if (first !== 36 /* $ */) {
          return this.#fail(
            `ERR Protocol error: expected '$', got '${printable(first)}'`,
          );
        }
        const line = this.#headerLine();
        if (line === undefined) {
          return this.bufferedBytes > HEADER_BYTES_MAX
            ? this.#fail("ERR Protocol error: too big bulk count string")
            : undefined;
        }
        const len = parseDecimal(this.#buf, this.#start + 1, line);
        if (len === undefined || len < 0 || len > this.#limits.bulkBytesMax) {
          return this.#fail("ERR Protocol error: invalid bulk length");
        }
        this.#requestBytes += len;
        if (this.#requestBytes > this.#limits.requestBytesMax) {
          return this.#fail(
            `ERR Protocol error: request too large: more than ${this.#limits.requestBytesMax} bytes (requestBytesMax)`,
          );
        }
        this.#start = line + 2;
        this.#bulkLen = len;
      }
      if (this.#end - this.#start < this.#bulkLen + 2) return undefined;
      const stop = this.#start + this.#bulkLen;
      if (this.#buf[stop] !== 13 || this.#buf[stop + 1] !== 10) {
        return this.#fail("ERR Protocol error: expected CRLF after bulk string");
      }
      this.#spans.push(this.#start - this.#cmdStart, this.#bulkLen);
      this.#start = stop + 2;
      this.#bulkLen = -1;
      this.#remaining--;
    }
    // One copy per request, cut from a shared buffer; the arguments are views of it.
    const block = this.#requests.copy(this.#buf.subarray(this.#cmdStart, this.#start));
    const spans = this.#spans;
    const args = new Array<Uint8Array>(spans.length / 2);
    for (let i = 0; i < args.length; i++) {
      const off = spans[2 * i]!;
      args[i] = block.subarray(off, off + spans[2 * i + 1]!);
    }
    const bytes = this.#requestBytes;
    this.#spans = [];
    this.#remaining = -1;
    return { kind: "command", args, bytes };
  }

  /** Index of the CR of the CRLF ending the line at #start, or undefined. */
  #headerLine(): number | undefined {
    const limit = Math.min(this.#end - 1, this.#start + HEADER_BYTES_MAX + 1);
    for (let i = this.#start; i < limit; i++) {
      if (this.#buf[i] === 13 && this.#buf[i + 1] === 10) return i;
    }
    return undefined;
  }

  /** Parses one inline line; null means an empty line was skipped. */
  #inline(): ParseResult | undefined | null {
    const nl = this.#buf.subarray(this.#start, this.#end).indexOf(10);
    if (nl < 0) {
      return this.bufferedBytes > this.#limits.inlineBytesMax
        ? this.#fail("ERR Protocol error: too big inline request")
        : undefined;
    }
    if (nl > this.#limits.inlineBytesMax) {
      return this.#fail("ERR Protocol error: too big inline request");
    }
    let lineEnd = this.#start + nl;
    if (lineEnd > this.#start && this.#buf[lineEnd - 1] === 13) lineEnd--;
    const line = this.#buf.subarray(this.#start, lineEnd);
    this.#start += nl + 1;
    const args = splitInlineArgs(line);
    if (args === undefined) return this.#fail("ERR Protocol error: unbalanced quotes in request");
    if (args.length === 0) return null;
    if (args.length > this.#limits.argsMax) {
      return this.#fail("ERR Protocol error: invalid multibulk length");
    }
    return { kind: "command", args, bytes: nl };
  }

  #fail(message: string): ParseResult {
    this.#failed = message;
    this.#start = this.#end = 0;
    this.#buf = new Uint8Array(0);
    this.#spans = [];
    this.#remaining = -1;
    return { kind: "error", message };
  }
}

function printable(byte: number): string {
  return byte >= 32 && byte < 127 ? String.fromCharCode(byte) : `\\x${byte.toString(16)}`;
}

/** Parses an optionally negative decimal in buf[from, to); undefined if not one. */
function parseDecimal(buf: Uint8Array, from: number, to: number): number | undefined {
  if (from >= to || to - from > 19) return undefined;
  let i = from;
  let negative = false;
  if (buf[i] === 45 /* - */) {
    negative = true;
    i++;
    if (i === to) return undefined;
  }
  let n = 0;
  for (; i < to; i++) {
    const d = buf[i]! - 48;
    if (d < 0 || d > 9) return undefined;
    n = n * 10 + d;
  }
  if (!Number.isSafeInteger(n)) return undefined;
  return negative ? -n : n;
}

function isSpace(b: number): boolean {
  return b === 32 || b === 9 || b === 10 || b === 13 || b === 11 || b === 12;
}

function hexValue(b: number): number {
  if (b >= 48 && b <= 57) return b - 48;
  if (b >= 97 && b <= 102) return b - 87;
  if (b >= 65 && b <= 70) return b - 55;
  return -1;
}

/**
 * Splits an inline command line into arguments the way Redis's sdssplitargs
 * does: whitespace separates, "double quotes" understand \n \r \t \b \a \\ \"
 * and \xHH, 'single quotes' understand \'; a closing quote must be followed by
 * whitespace or the end of the line.
 * @param line the line without its line ending
 * @returns the arguments, or undefined for unbalanced quotes
 * @example
 * ```ts
 * import { splitInlineArgs } from "./parser.ts";
 * const args = splitInlineArgs(new TextEncoder().encode('SET k "a b"'))!;
 * console.assert(new TextDecoder().decode(args[2]) === "a b");
 * ```
 */
export function splitInlineArgs(line: Uint8Array): Uint8Array[] | undefined {
  const args: Uint8Array[] = [];
  let i = 0;
  const n = line.length;
  for (;;) {
    while (i < n && isSpace(line[i]!)) i++;
    if (i >= n) return args;
    const cur: number[] = [];
    let inDouble = false;
    let inSingle = false;
    let done = false;
    while (!done) {
      const c = line[i];
      if (inDouble) {
        if (c === undefined) return undefined;
        if (
          c === 92 && line[i + 1] === 120 && i + 3 < n && hexValue(line[i + 2]!) >= 0 &&
          hexValue(line[i + 3]!) >= 0
        ) {
          cur.push(hexValue(line[i + 2]!) * 16 + hexValue(line[i + 3]!));
          i += 3;
        } else if (c === 92 && i + 1 < n) {
          i++;
          const e = line[i]!;
          cur.push(
            e === 110 ? 10 : e === 114 ? 13 : e === 116 ? 9 : e === 98 ? 8 : e === 97 ? 7 : e,
          );
        } else if (c === 34) {
          if (i + 1 < n && !isSpace(line[i + 1]!)) return undefined;
          done = true;
        } else {
          cur.push(c);
        }
      } else if (inSingle) {
        if (c === undefined) return undefined;
        if (c === 92 && line[i + 1] === 39) {
          i++;
          cur.push(39);
        } else if (c === 39) {
          if (i + 1 < n && !isSpace(line[i + 1]!)) return undefined;
          done = true;
        } else {
          cur.push(c);
        }
      } else if (c === undefined || isSpace(c)) {
        done = true;
      } else if (c === 34) {
        inDouble = true;
      } else if (c === 39) {
        inSingle = true;
      } else {
        cur.push(c);
      }
      if (i < n) i++;
    }
    args.push(Uint8Array.from(cur));
  }
}

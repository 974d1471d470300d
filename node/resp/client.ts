/**
 * A minimal RESP client over TCP: sends commands (pipelined if several) and
 * decodes replies into {@link Reply} values. Used by tests, by the differential
 * checks against redis-server, and for talking to peers.
 *
 * @module
 */

import type { Reply } from "./reply.ts";
import { ReplyParser } from "./reply_parser.ts";

const encoder = new TextEncoder();

/**
 * Encodes a command as a RESP multibulk frame.
 * @param args the command name and arguments (strings are UTF-8 encoded)
 * @returns the frame
 * @example
 * ```ts
 * import { encodeCommand } from "./client.ts";
 * const f = new TextDecoder().decode(encodeCommand(["GET", "k"]));
 * console.assert(f === "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
 * ```
 */
export function encodeCommand(args: readonly (string | Uint8Array)[]): Uint8Array {
  const parts: Uint8Array[] = [encoder.encode(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = typeof a === "string" ? encoder.encode(a) : a;
    parts.push(encoder.encode(`$${b.length}\r\n`), b, encoder.encode("\r\n"));
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Thrown when the server closes the connection before replying. */
export class ConnectionClosedError extends Error {
  constructor() {
    super("Cannot read reply: the connection was closed");
    this.name = "ConnectionClosedError";
  }
}

/** Thrown when a reply does not arrive in time; the connection is closed. */
export class ReadTimeoutError extends Error {
  /**
   * Creates the error.
   * @param timeoutMs the limit that passed
   */
  constructor(timeoutMs: number) {
    super(`Cannot read reply: none within ${timeoutMs} ms (readTimeoutMs)`);
    this.name = "ReadTimeoutError";
  }
}

/**
 * A RESP connection.
 * @example
 * ```ts ignore
 * const c = await RespClient.connect({ port: 6379 });
 * const pong = await c.call(["PING"]);
 * c.close();
 * ```
 */
export class RespClient {
  readonly #conn: Deno.Conn;
  readonly #parser = new ReplyParser();
  readonly #buf = new Uint8Array(64 * 1024);
  readonly #readTimeoutMs: number;
  #closed = false;

  private constructor(conn: Deno.Conn, readTimeoutMs: number) {
    this.#conn = conn;
    this.#readTimeoutMs = readTimeoutMs;
  }

  /**
   * Connects.
   * @param options host (default 127.0.0.1), port, and how long a reply may take
   *   (readTimeoutMs, default 10000; on timeout the connection is closed)
   * @returns the client
   */
  static async connect(
    options: { hostname?: string; port: number; readTimeoutMs?: number },
  ): Promise<RespClient> {
    const conn = await Deno.connect({
      hostname: options.hostname ?? "127.0.0.1",
      port: options.port,
    });
    return new RespClient(conn, options.readTimeoutMs ?? 10_000);
  }

  /**
   * Sends raw bytes (for malformed-input tests).
   * @param bytes the bytes
   */
  async sendRaw(bytes: Uint8Array): Promise<void> {
    let off = 0;
    while (off < bytes.length) off += await this.#conn.write(bytes.subarray(off));
  }

  /**
   * Reads the next reply.
   * @returns the reply
   * @throws {ConnectionClosedError} when the connection closes first
   * @throws {ReadTimeoutError} when no complete reply comes within readTimeoutMs
   */
  async read(): Promise<Reply> {
    const first = this.#parser.next();
    if (first !== undefined) return first;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      this.close();
    }, this.#readTimeoutMs);
    try {
      for (;;) {
        const r = this.#parser.next();
        if (r !== undefined) return r;
        let n: number | null;
        try {
          n = await this.#conn.read(this.#buf);
        } catch {
          n = null;
        }
        if (n === null) {
          throw timedOut ? new ReadTimeoutError(this.#readTimeoutMs) : new ConnectionClosedError();
        }
        this.#parser.feed(this.#buf.subarray(0, n));
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Reads until the server closes the connection, or gives up after timeoutMs
   * (then closes the connection itself).
   * @param timeoutMs how long to wait (default 5000)
   * @returns true when the server closed it, false on timeout
   */
  async waitClosed(timeoutMs = 5000): Promise<boolean> {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      this.close();
    }, timeoutMs);
    try {
      for (;;) {
        let n: number | null;
        try {
          n = await this.#conn.read(this.#buf);
        } catch {
          return !timedOut;
        }
        if (n === null) return !timedOut;
        this.#parser.feed(this.#buf.subarray(0, n));
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Sends one command and reads its reply.
   * @param args command and arguments
   * @returns the reply
   */
  async call(args: readonly (string | Uint8Array)[]): Promise<Reply> {
    await this.sendRaw(encodeCommand(args));
    return await this.read();
  }

  /**
   * Sends several commands in one write and reads their replies in order.
   * @param commands the commands
   * @returns the replies
   */
  async pipeline(commands: readonly (readonly (string | Uint8Array)[])[]): Promise<Reply[]> {
    const frames = commands.map(encodeCommand);
    const all = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
    let off = 0;
    for (const f of frames) {
      all.set(f, off);
      off += f.length;
    }
    await this.sendRaw(all);
    const out: Reply[] = [];
    for (let i = 0; i < commands.length; i++) out.push(await this.read());
    return out;
  }

  /** Closes the connection. Safe to call twice. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch { /* already closed */ }
  }
}

/**
 * The runtime's network path alone, for `spire bench node`: a TCP server on
 * 127.0.0.1 that answers every RESP request (an array, `*...`) with `+PONG`,
 * through the same socket API as the node's client port (Deno.listen, one
 * `read` and one `write` a turn, TCP_NODELAY), with nothing behind it: no
 * parsing beyond counting requests, no commands, no engine, no Raft, no
 * actors. What a request costs it is what any server on this runtime pays
 * before it does any work; redis-server's PING beside it is the same for C.
 *
 * Run: `deno run --allow-net bench/_bare_resp_server.ts PORT`. It counts a
 * request per `*` byte, which is right for redis-benchmark's PING_MBULK and
 * redis-cli's PING (neither holds another `*`), and is not a RESP parser.
 *
 * @module
 */

/** Bytes read at once (redis-benchmark's -P 16 PINGs are 224 bytes). */
const READ_BYTES = 64 * 1024;
/** Requests answered per read at most; more in one read are answered in several writes. */
const REPLIES_MAX = 4096;
const STAR = 0x2a;

function main(args: string[]): void {
  const port = Number(args[0]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    console.error(`Cannot start: port "${args[0] ?? ""}" is not an integer from 1 to 65535`);
    Deno.exit(2);
  }
  const pong = new TextEncoder().encode("+PONG\r\n");
  const replies = new Uint8Array(pong.length * REPLIES_MAX);
  for (let i = 0; i < REPLIES_MAX; i++) replies.set(pong, i * pong.length);
  const listener = Deno.listen({ hostname: "127.0.0.1", port });
  const serve = async (conn: Deno.TcpConn): Promise<void> => {
    conn.setNoDelay(true);
    const buf = new Uint8Array(READ_BYTES);
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        let requests = 0;
        for (let i = 0; i < n; i++) if (buf[i] === STAR) requests++;
        while (requests > 0) {
          const k = Math.min(requests, REPLIES_MAX);
          const bytes = replies.subarray(0, k * pong.length);
          for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
          requests -= k;
        }
      }
    } catch {
      // The client went away: nothing to keep.
    } finally {
      try {
        conn.close();
      } catch {
        // Closed already.
      }
    }
  };
  (async () => {
    for await (const conn of listener) void serve(conn);
  })();
  Deno.addSignalListener("SIGTERM", () => {
    listener.close();
    Deno.exit(0);
  });
}

if (import.meta.main) main(Deno.args);

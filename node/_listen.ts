/**
 * Names the address and the service in a failed bind, so that a taken port
 * reads "Cannot listen on 127.0.0.1:6379 for RESP clients: the port is in
 * use" instead of Deno's bare "Address already in use (os error 98)".
 *
 * @module
 */

/**
 * Runs `bind` and rethrows its error with the address and service named; an
 * `AddrInUse` stays an `AddrInUse` so callers can still tell it apart.
 */
export function bindOrExplain<T>(what: string, hostname: string, port: number, bind: () => T): T {
  try {
    return bind();
  } catch (error) {
    const where = `Cannot listen on ${hostname}:${port} for ${what}`;
    if (error instanceof Deno.errors.AddrInUse) {
      throw new Deno.errors.AddrInUse(`${where}: the port is in use`);
    }
    if (error instanceof Deno.errors.PermissionDenied) {
      throw new Deno.errors.PermissionDenied(
        `${where}: permission denied (ports below 1024 need root)`,
      );
    }
    throw error;
  }
}

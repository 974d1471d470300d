/**
 * The admin HTTP server: `/health`, `/stats` (JSON), `/metrics` (Prometheus
 * text) and any routes the node adds. Loopback only unless told otherwise.
 * Every data source is an injected function, so the server knows nothing of
 * the engine and the node can add routes (`/regions`) and metrics later.
 *
 * @module
 */

import { bindOrExplain } from "./_listen.ts";
import type { Registry } from "prom-client";

/** Default admin port. */
export const DEFAULT_ADMIN_PORT = 9180;

/** Default limit of requests handled at once; more get 503. */
export const DEFAULT_CONCURRENT_REQUESTS_MAX = 64;

/** What a health check reports; `ok: false` answers 503. */
export interface HealthReport {
  /** Whether the node can serve. */
  ok: boolean;
  /** Anything else worth showing (engine state, uptime...). */
  [detail: string]: unknown;
}

/** A route handler; it receives the request and returns the response. */
export type AdminRoute = (request: Request) => Response | Promise<Response>;

/** Options of {@link AdminServer.start}. */
export interface AdminServerOptions {
  /** Interface to bind; default `127.0.0.1`. */
  hostname?: string;
  /** TCP port; 0 picks a free one (see {@link AdminServer.port}). Default {@link DEFAULT_ADMIN_PORT}. */
  port?: number;
  /** Answers `/health`; default: always ok. */
  health?: () => HealthReport | Promise<HealthReport>;
  /** Answers `/stats` as JSON; without it `/stats` is 404. */
  stats?: () => unknown;
  /** Scraped by `/metrics`; without it `/metrics` is 404. */
  registry?: Registry;
  /** More GET routes by exact path, e.g. `{ "/regions": ... }`. */
  routes?: Readonly<Record<string, AdminRoute>>;
  /** Requests handled at once; more are answered 503. Default {@link DEFAULT_CONCURRENT_REQUESTS_MAX}. */
  concurrentRequestsMax?: number;
  /** Where handler failures are reported; default `console.error`. */
  onError?: (error: unknown, request: Request) => void;
}

function json(body: unknown, status = 200): Response {
  const text = JSON.stringify(
    body,
    (_key, value) => (typeof value === "bigint" ? value.toString() : value),
    2,
  );
  return new Response(text + "\n", {
    status,
    headers: { "content-type": "application/json; charset=utf-8" },
  });
}

function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`Cannot start admin server: port ${port} is invalid; allowed: 0 to 65535`);
  }
}

/**
 * A running admin HTTP server.
 *
 * @example
 * ```ts
 * import { AdminServer } from "./admin_http.ts";
 * const server = AdminServer.start({ port: 0, stats: () => ({ keys: 1 }) });
 * const res = await fetch(`${server.url}/stats`);
 * console.assert((await res.json()).keys === 1);
 * await server.close();
 * ```
 */
export class AdminServer {
  readonly #server: Deno.HttpServer<Deno.NetAddr>;
  readonly #routes = new Map<string, AdminRoute>();
  readonly #concurrentRequestsMax: number;
  readonly #onError: (error: unknown, request: Request) => void;
  #inFlight = 0;
  #closing: Promise<void> | undefined;

  private constructor(options: AdminServerOptions) {
    const port = options.port ?? DEFAULT_ADMIN_PORT;
    checkPort(port);
    const max = options.concurrentRequestsMax ?? DEFAULT_CONCURRENT_REQUESTS_MAX;
    if (!Number.isInteger(max) || max < 1) {
      throw new RangeError(
        `Cannot start admin server: concurrentRequestsMax ${max} is invalid; allowed: 1 or more`,
      );
    }
    this.#concurrentRequestsMax = max;
    this.#onError = options.onError ?? ((error) => console.error("admin http:", error));
    const health = options.health ?? (() => ({ ok: true }));
    this.#routes.set("/health", async () => {
      const report = await health();
      return json(report, report.ok ? 200 : 503);
    });
    const stats = options.stats;
    if (stats !== undefined) this.#routes.set("/stats", async () => json(await stats()));
    const registry = options.registry;
    if (registry !== undefined) {
      this.#routes.set("/metrics", async () =>
        new Response(await registry.metrics(), {
          headers: { "content-type": registry.contentType },
        }));
    }
    for (const [path, route] of Object.entries(options.routes ?? {})) this.addRoute(path, route);
    const hostname = options.hostname ?? "127.0.0.1";
    this.#server = bindOrExplain("admin HTTP", hostname, port, () =>
      Deno.serve(
        { hostname, port, onListen: () => {} },
        (request) => this.#handle(request),
      ));
  }

  /**
   * Binds and starts serving.
   *
   * @param options Sources, address and limits.
   * @returns The running server; its port is known at once.
   * @throws {RangeError} For a bad port or limit.
   * @throws {Deno.errors.AddrInUse} When the port is taken.
   */
  static start(options: AdminServerOptions = {}): AdminServer {
    return new AdminServer(options);
  }

  /** The bound port (the real one when started on port 0). */
  get port(): number {
    return this.#server.addr.port;
  }

  /** The bound interface. */
  get hostname(): string {
    return this.#server.addr.hostname;
  }

  /** Base URL, e.g. `http://127.0.0.1:9180`. */
  get url(): string {
    const host = this.hostname.includes(":") ? `[${this.hostname}]` : this.hostname;
    return `http://${host}:${this.port}`;
  }

  /**
   * Adds or replaces a GET route.
   *
   * @param path Exact path starting with `/`.
   * @param route The handler.
   * @throws {TypeError} When the path does not start with `/` or the route is not a function.
   */
  addRoute(path: string, route: AdminRoute): void {
    if (!path.startsWith("/") || typeof route !== "function") {
      throw new TypeError(
        `Cannot add admin route ${
          JSON.stringify(path)
        }: allowed: a path starting with / and a function`,
      );
    }
    this.#routes.set(path, route);
  }

  async #handle(request: Request): Promise<Response> {
    if (request.method !== "GET" && request.method !== "HEAD") {
      return json({ error: `method ${request.method} not allowed; allowed: GET, HEAD` }, 405);
    }
    const path = new URL(request.url).pathname;
    const route = this.#routes.get(path);
    if (route === undefined) {
      return json({ error: `no route ${path}`, routes: [...this.#routes.keys()].sort() }, 404);
    }
    if (this.#inFlight >= this.#concurrentRequestsMax) {
      return json({ error: "too many requests at once" }, 503);
    }
    this.#inFlight++;
    try {
      return await route(request);
    } catch (error) {
      this.#onError(error, request);
      const detail = error instanceof Error ? error.message : String(error);
      return json({ error: `${path} failed: ${detail}` }, 500);
    } finally {
      this.#inFlight--;
    }
  }

  /**
   * Stops accepting connections and waits for requests in flight. Safe to call twice.
   *
   * @returns Resolves when the server has stopped.
   */
  close(): Promise<void> {
    this.#closing ??= this.#server.shutdown();
    return this.#closing;
  }

  /** Same as {@link AdminServer.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

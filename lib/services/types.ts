/**
 * The service contract: something that answers a proxied request, whether a
 * load balancer over servers or a weighted/failover/mirroring composite.
 *
 * @module
 */

import type { Exchange } from "../engine/exchange.ts";
import type { ForwardedInfo } from "../proxy/headers.ts";
import { STATUS_TEXT } from "../http_status.ts";

/**
 * The per-request forwarding state. Middlewares rewrite `pathAndQuery` and
 * `headers`; the service reads them when it builds the upstream request.
 */
export interface ProxyRequest extends ForwardedInfo {
  request: Request;
  /** Path and query as they will go upstream (the client's bytes unless a middleware rewrote them). */
  pathAndQuery: string;
  /** The request headers that will be forwarded (the client's, possibly modified). */
  headers: Headers;
  entryPoint: string;
  routerName?: string;
  /** Extra response headers a service or middleware wants added (e.g. a sticky cookie). */
  responseHeaders?: Headers;
  /**
   * The engine exchange the request arrived on (HTTP/1.1), for what needs
   * the socket: protocol upgrades. Absent for HTTP/2 requests.
   */
  exchange?: Exchange;
  /** The body when `request` cannot carry it (a GET or HEAD with a body). */
  detachedBody?: ReadableStream<Uint8Array> | null;
  /** Set by an auth middleware that let the request through: the access log's user. */
  user?: string;
}

/**
 * The fast path of a service: forwards an engine exchange without Web
 * objects. `headers` is the client's flat header list, forwarding headers
 * already removed for an untrusted client. Resolves with the status sent
 * and the body size when it was announced.
 */
export type FastServe = (
  exchange: Exchange,
  headers: readonly string[],
  info: ForwardedInfo,
  pathAndQuery: string,
  responseEdits?: { readonly dropped: ReadonlySet<string>; readonly lines: string },
) => Promise<{ status: number; size: number | undefined }>;

/** The health of one server, as the API reports it. */
export type ServerStatus = "UP" | "DOWN";

export interface Service {
  readonly name: string;
  serve(request: ProxyRequest): Promise<Response>;
  /** False when no server behind this service is healthy (for failover). */
  available(): boolean;
  /** Per-server status for `/api/http/services` (empty for composites). */
  serverStatus(): Record<string, ServerStatus>;
  /** Starts health checks and other timers. */
  start(): void;
  stop(): void;
}

/** A plain-text error response whose body never leaks internals (Traefik's 404 text). */
export function errorResponse(status: number): Response {
  const text = status === 404 ? "404 page not found" : STATUS_TEXT[status] ?? "Error";
  return new Response(text, { status, headers: { "content-type": "text/plain; charset=utf-8" } });
}

/**
 * The service contract: something that answers a proxied request, whether a
 * load balancer over servers or a weighted/failover/mirroring composite.
 *
 * @module
 */

import type { ForwardedInfo } from "../proxy/headers.ts";

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
}

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

/** A plain-text error response whose body never leaks internals. */
export function errorResponse(status: number): Response {
  const text = STATUS_TEXT[status] ?? "Error";
  return new Response(text, { status, headers: { "content-type": "text/plain; charset=utf-8" } });
}

const STATUS_TEXT: Record<number, string> = {
  400: "Bad Request",
  404: "404 page not found",
  413: "Request Entity Too Large",
  429: "Too Many Requests",
  500: "Internal Server Error",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

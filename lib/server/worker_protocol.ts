/**
 * The messages between the main isolate (control plane) and its data-plane
 * workers, and the conversions that carry a request observation or an
 * internal-service call across the isolate boundary. Everything here is
 * structured-clone data: no functions, no streams.
 *
 * @module
 */

import type { DynamicConfig, StaticConfig } from "../config/types.ts";
import type { ConnectionInfo, ObservedRequest, RequestObserver } from "../contracts.ts";
import type { ProxyRequest } from "../services/types.ts";
import type { TcpStatsSnapshot } from "../tcp/remote_stats.ts";

/** Main → worker. */
export type ToWorker =
  | {
    type: "init";
    index: number;
    staticConfig: StaticConfig;
    /** The entrypoints this worker listens on, with the port main bound. */
    entryPoints: { name: string; port: number }[];
    /** Shared entrypoints whose TLS connections are relayed to main. */
    relayed: string[];
    internalServices: string[];
    serverName: string;
    testHooks: boolean;
    /** The generation to serve from the first connection on. */
    config: ConfigMessage;
  }
  | ConfigMessage
  | { type: "internal-response"; id: number; response?: WireResponse; error?: string }
  | { type: "relay-port"; id: number; port?: number; error?: string }
  | { type: "stats" }
  | { type: "shutdown" }
  | { type: "crash" };

export interface ConfigMessage {
  type: "config";
  generation: number;
  snapshots: Map<string, DynamicConfig>;
}

/** Worker → main. */
export type FromWorker =
  | { type: "listening" }
  | { type: "failed"; error: string }
  | { type: "applied"; generation: number }
  | { type: "rejected"; generation: number; error: string }
  | { type: "log"; line: string }
  | { type: "observations"; batch: WireObservation[] }
  | { type: "tcp-stats"; stats: TcpStatsSnapshot[] }
  | { type: "internal-request"; id: number; service: string; request: WireProxyRequest }
  | { type: "stats"; accepted: Record<string, number> }
  /** A TLS connection on a shared plain port is relayed to main's TLS side, where the certificates are. */
  | { type: "relay-port"; id: number; entryPoint: string }
  | { type: "relay-register"; entryPoint: string; localPort: number; info: ConnectionInfo }
  | { type: "relay-unregister"; entryPoint: string; localPort: number }
  | { type: "stopped" };

/** One finished request, with the two headers the access log reads. */
export interface WireObservation {
  entryPoint: string;
  method: string;
  target: string;
  status: number;
  size: number | undefined;
  referer: string | null;
  userAgent: string | null;
  user?: string;
  conn: ConnectionInfo;
  router: string | undefined;
  /** How long the request took, ms (each isolate has its own clock origin). */
  elapsed: number;
}

export function toWireObservation(
  entryPoint: string,
  request: ObservedRequest,
  conn: ConnectionInfo,
  router: string | undefined,
  started: number,
  now: number,
): WireObservation {
  return {
    entryPoint,
    method: request.method,
    target: request.target,
    status: request.status,
    size: request.size,
    referer: request.header("referer"),
    userAgent: request.header("user-agent"),
    user: request.user,
    conn: { remoteAddr: conn.remoteAddr, tls: conn.tls, port: conn.port },
    router,
    elapsed: now - started,
  };
}

/** Replays a worker's observation into main's observers, on main's clock. */
export function replayObservation(o: WireObservation, observer: RequestObserver, now: number): void {
  const headers: Record<string, string | null> = { "referer": o.referer, "user-agent": o.userAgent };
  const request: ObservedRequest = {
    method: o.method,
    target: o.target,
    status: o.status,
    size: o.size,
    header: (name) => headers[name.toLowerCase()] ?? null,
    user: o.user,
  };
  observer(o.entryPoint, request, o.conn, o.router, now - o.elapsed);
}

/** A request for an internal service (API, dashboard, ping, ACME HTTP-01), body buffered. */
export interface WireProxyRequest {
  method: string;
  url: string;
  requestHeaders: [string, string][];
  headers: [string, string][];
  body: Uint8Array<ArrayBuffer> | null;
  pathAndQuery: string;
  entryPoint: string;
  routerName?: string;
  forwarded: Record<string, unknown>;
}

export interface WireResponse {
  status: number;
  statusText: string;
  headers: [string, string][];
  body: Uint8Array<ArrayBuffer> | null;
}

const NOT_FORWARDED = new Set([
  "request",
  "headers",
  "pathAndQuery",
  "entryPoint",
  "routerName",
  "responseHeaders",
  "exchange",
  "detachedBody",
]);

export async function toWireProxyRequest(req: ProxyRequest): Promise<WireProxyRequest> {
  const forwarded: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(req)) {
    if (!NOT_FORWARDED.has(key) && typeof value !== "function") forwarded[key] = value;
  }
  const source = req.detachedBody ?? req.request.body;
  const body = source ? new Uint8Array(await new Response(source).arrayBuffer()) : null;
  return {
    method: req.request.method,
    url: req.request.url,
    requestHeaders: [...req.request.headers],
    headers: [...req.headers],
    body,
    pathAndQuery: req.pathAndQuery,
    entryPoint: req.entryPoint,
    routerName: req.routerName,
    forwarded,
  };
}

export function fromWireProxyRequest(wire: WireProxyRequest): ProxyRequest {
  const hasBody = wire.body !== null && wire.method !== "GET" && wire.method !== "HEAD";
  const request = new Request(wire.url, {
    method: wire.method,
    headers: wire.requestHeaders,
    body: hasBody ? wire.body : undefined,
  });
  return {
    ...(wire.forwarded as unknown as ProxyRequest),
    request,
    headers: new Headers(wire.headers),
    pathAndQuery: wire.pathAndQuery,
    entryPoint: wire.entryPoint,
    routerName: wire.routerName,
    detachedBody: wire.body !== null && !hasBody ? new Response(wire.body).body : undefined,
  };
}

export async function toWireResponse(response: Response, extra?: Headers): Promise<WireResponse> {
  const headers: [string, string][] = [...response.headers];
  if (extra) headers.push(...extra);
  const body = response.body ? new Uint8Array(await response.arrayBuffer()) : null;
  return { status: response.status, statusText: response.statusText, headers, body };
}

export function fromWireResponse(wire: WireResponse): Response {
  const nullBody = wire.status === 204 || wire.status === 205 || wire.status === 304;
  return new Response(nullBody ? null : wire.body, {
    status: wire.status,
    statusText: wire.statusText,
    headers: wire.headers,
  });
}

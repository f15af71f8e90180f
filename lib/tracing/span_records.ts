/**
 * Turns recorded request traces into the spans Traefik emits, with the
 * HTTP semantic-convention attributes: the entrypoint span (server, named
 * after the method), `Router`, `Service` and `ReverseProxy` (client), each
 * the parent of the next. Runs at export time only.
 *
 * The result has the shape of OpenTelemetry's `ReadableSpan`, which the
 * official OTLP exporters serialise.
 *
 * @module
 */

import type { RequestTrace } from "./request_trace.ts";

/** `SpanKind` and `SpanStatusCode` of @opentelemetry/api, as numbers. */
const KIND_INTERNAL = 0, KIND_SERVER = 1, KIND_CLIENT = 2;
const STATUS_UNSET = 0, STATUS_ERROR = 2;
/** W3C trace flags: sampled. */
const SAMPLED = 1;

export type AttributeValue = string | number | boolean | string[];
export type Attributes = Record<string, AttributeValue>;

/** A span as the OTLP exporters read it (`ReadableSpan` of the OpenTelemetry SDK). */
export interface ExportSpan {
  name: string;
  kind: number;
  spanContext: () => { traceId: string; spanId: string; traceFlags: number };
  parentSpanContext?: { traceId: string; spanId: string; traceFlags: number; isRemote?: boolean };
  startTime: [number, number];
  endTime: [number, number];
  duration: [number, number];
  status: { code: number; message?: string };
  attributes: Attributes;
  links: never[];
  events: never[];
  ended: true;
  resource: unknown;
  instrumentationScope: { name: string; version?: string };
  droppedAttributesCount: 0;
  droppedEventsCount: 0;
  droppedLinksCount: 0;
}

/** What span building needs besides the trace. */
export interface SpanContextOptions {
  resource: unknown;
  scope: { name: string; version?: string };
  safeQueryParams: ReadonlySet<string>;
  /** `performance.timeOrigin`, so recorded times become wall-clock times. */
  timeOrigin: number;
}

/** Milliseconds since the epoch as OpenTelemetry's `[seconds, nanoseconds]`. */
export function hrTime(epochMs: number): [number, number] {
  let seconds = Math.floor(epochMs / 1000);
  let nanos = Math.round((epochMs - seconds * 1000) * 1e6);
  if (nanos >= 1e9) {
    seconds++;
    nanos -= 1e9;
  }
  return [seconds, nanos];
}

/**
 * The query with every value replaced by `REDACTED` except the safe
 * parameters, keys sorted (as Traefik, which re-encodes with Go's url.Values).
 */
export function redactQuery(query: string, safe: ReadonlySet<string>): string {
  if (query === "") return "";
  const params = new URLSearchParams(query);
  const keys = [...new Set(params.keys())].sort();
  const out = new URLSearchParams();
  for (const key of keys) {
    for (const value of params.getAll(key)) out.append(key, safe.has(key) ? value : "REDACTED");
  }
  return out.toString();
}

/** Span status for an HTTP status, by span kind (Traefik's serverStatus/clientStatus/defaultStatus). */
export function spanStatus(code: number, kind: number): { code: number; message?: string } {
  if (code < 100 || code >= 600) {
    return { code: STATUS_ERROR, message: `Invalid HTTP status code ${code}` };
  }
  const limit = kind === KIND_CLIENT ? 400 : 500;
  return { code: code >= limit ? STATUS_ERROR : STATUS_UNSET };
}

function splitTarget(target: string): { path: string; query: string } {
  const q = target.indexOf("?");
  return q === -1
    ? { path: target, query: "" }
    : { path: target.slice(0, q), query: target.slice(q + 1) };
}

function addHeaders(
  attributes: Attributes,
  prefix: string,
  headers: [string, string][] | undefined,
) {
  if (!headers) return;
  for (const [name, value] of headers) attributes[`${prefix}${name}`] = [value];
}

/** The spans of one trace, parents first. */
export function spansOf(trace: RequestTrace, options: SpanContextOptions): ExportSpan[] {
  const { traceId } = trace;
  const at = (t: number) => hrTime(options.timeOrigin + t);
  const context = (spanId: string) => () => ({ traceId, spanId, traceFlags: SAMPLED });
  const parent = (spanId: string, isRemote = false) => ({
    traceId,
    spanId,
    traceFlags: SAMPLED,
    isRemote,
  });
  const make = (
    name: string,
    kind: number,
    spanId: string,
    parentSpan: ExportSpan["parentSpanContext"],
    start: number,
    end: number,
    attributes: Attributes,
    status: number,
  ): ExportSpan => ({
    name,
    kind,
    spanContext: context(spanId),
    parentSpanContext: parentSpan,
    startTime: at(start),
    endTime: at(end),
    duration: hrTime(Math.max(0, end - start)),
    status: spanStatus(status, kind),
    attributes,
    links: [],
    events: [],
    ended: true,
    resource: options.resource,
    instrumentationScope: options.scope,
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
  });

  const { path, query } = splitTarget(trace.target);
  const redactedQuery = redactQuery(query, options.safeQueryParams);
  const server: Attributes = {
    "entry_point": trace.entryPoint,
    "http.request.method": trace.method,
    "network.protocol.version": "1.1",
    "http.request.body.size": trace.requestBodySize,
    "url.path": path,
    "url.query": redactedQuery,
    "url.scheme": trace.scheme,
    "server.address": trace.host,
    "client.address": trace.clientAddr,
    "network.peer.address": trace.clientAddr,
    "http.response.status_code": trace.status,
  };
  if (trace.userAgent !== null) server["user_agent.original"] = trace.userAgent;
  addHeaders(server, "http.request.header.", trace.requestHeaders);
  addHeaders(server, "http.response.header.", trace.responseHeaders);
  const spans = [
    make(
      trace.method,
      KIND_SERVER,
      trace.spanId,
      trace.remoteParent === undefined ? undefined : parent(trace.remoteParent, true),
      trace.start,
      trace.end,
      server,
      trace.status,
    ),
  ];
  if (trace.router === undefined || trace.route === undefined) return spans;

  const routerEnd = trace.end;
  spans.push(
    make(
      "Router",
      KIND_INTERNAL,
      trace.routerSpanId,
      parent(trace.spanId),
      trace.routerStart,
      routerEnd,
      {
        "traefik.service.name": trace.route.service,
        "traefik.router.name": trace.router,
        "http.route": trace.route.rule,
      },
      trace.status,
    ),
  );
  if (trace.upstream === undefined) return spans;

  const serviceEnd = trace.clientEnd || trace.end;
  spans.push(
    make(
      "Service",
      KIND_INTERNAL,
      trace.serviceSpanId,
      parent(trace.routerSpanId),
      trace.serviceStart,
      serviceEnd,
      {
        "traefik.service.name": trace.route.service,
      },
      trace.upstreamStatus || trace.status,
    ),
  );
  const upstream = trace.upstream;
  const host = upstream.hostname.startsWith("[")
    ? upstream.hostname.slice(1, -1)
    : upstream.hostname;
  const upstreamPort = upstream.port
    ? Number(upstream.port)
    : upstream.protocol === "https:"
    ? 443
    : 80;
  const target = splitTarget(trace.upstreamPath);
  // Middlewares rarely touch the query: redact once when it is the client's.
  const redacted = target.query === query
    ? redactedQuery
    : redactQuery(target.query, options.safeQueryParams);
  const client: Attributes = {
    "http.request.method": trace.method,
    "network.protocol.version": "1.1",
    "url.full": `${upstream.protocol}//${upstream.host}${target.path}${
      redacted ? `?${redacted}` : ""
    }`,
    "url.scheme": upstream.protocol.slice(0, -1),
    "network.peer.address": host,
    "network.peer.port": upstreamPort,
    "server.address": host,
    "server.port": upstreamPort,
  };
  if (trace.upstreamStatus > 0) client["http.response.status_code"] = trace.upstreamStatus;
  if (trace.userAgent !== null) client["user_agent.original"] = trace.userAgent;
  addHeaders(client, "http.request.header.", trace.requestHeaders);
  addHeaders(client, "http.response.header.", trace.responseHeaders);
  spans.push(
    make(
      "ReverseProxy",
      KIND_CLIENT,
      trace.clientSpanId,
      parent(trace.serviceSpanId),
      trace.clientStart,
      trace.clientEnd || trace.end,
      client,
      trace.upstreamStatus || 502,
    ),
  );
  return spans;
}

/** How many spans a trace becomes (for the queue's bound). */
export function spanCount(trace: RequestTrace): number {
  if (trace.router === undefined) return 1;
  return trace.upstream === undefined ? 2 : 4;
}

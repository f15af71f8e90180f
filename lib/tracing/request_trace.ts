/**
 * One request's trace as the hot path records it: a handful of fields set
 * as the request moves from the entrypoint to the router, the service and
 * the upstream. It becomes OpenTelemetry spans only at export time
 * (span_records.ts), off the request path.
 *
 * @module
 */

import { formatTraceparent } from "./trace_context.ts";

/** What a route contributes to its spans. */
export interface RouteTraceInfo {
  /** The router's rule text (`http.route`). */
  rule: string;
  /** The qualified service name. */
  service: string;
}

/** Captured header values, by lower-case name. */
export type CapturedHeaders = [name: string, value: string][];

/**
 * The mutable record of one traced request. `sampled` false means the
 * trace context is only propagated: nothing is recorded or exported.
 * Times are `performance.now()` milliseconds.
 */
export class RequestTrace {
  /** The span id the upstream sees as its parent (the ReverseProxy client span). */
  readonly clientSpanId: string;
  /** Set when the request reached a router that is not traced (internal, without addInternals). */
  discarded = false;

  router?: string;
  route?: RouteTraceInfo;
  routerStart = 0;
  serviceStart = 0;
  /** The upstream server's URL, once the load balancer picked one. */
  upstream?: URL;
  upstreamPath = "";
  clientStart = 0;
  clientEnd = 0;
  /** The status the upstream answered (0: no answer). */
  upstreamStatus = 0;
  end = 0;
  status = 0;
  requestHeaders?: CapturedHeaders;
  responseHeaders?: CapturedHeaders;
  /** Response headers to capture (lower-case); set only when some are configured. */
  responseHeaderNames?: readonly string[];

  constructor(
    readonly traceId: string,
    /** The entrypoint (server) span. */
    readonly spanId: string,
    readonly routerSpanId: string,
    readonly serviceSpanId: string,
    clientSpanId: string,
    readonly sampled: boolean,
    /** The caller's span id from `traceparent`, when there was one. */
    readonly remoteParent: string | undefined,
    readonly start: number,
    readonly entryPoint: string,
    readonly method: string,
    /** Path and query as the client sent them. */
    readonly target: string,
    readonly host: string,
    readonly clientAddr: string,
    readonly scheme: "http" | "https",
    readonly userAgent: string | null,
    readonly requestBodySize: number,
  ) {
    this.clientSpanId = clientSpanId;
  }

  /** The `traceparent` value to send upstream. */
  outgoing(): string {
    return formatTraceparent(this.traceId, this.clientSpanId, this.sampled);
  }

  /** The load balancer picked `server` and is about to forward. */
  forwarding(server: URL, pathAndQuery: string): void {
    if (!this.sampled) return;
    const now = performance.now();
    if (this.serviceStart === 0) this.serviceStart = now;
    this.upstream = server;
    this.upstreamPath = pathAndQuery;
    this.clientStart = now;
  }

  /** Captures the configured response headers from the upstream's answer. */
  captureResponse(header: (name: string) => string | null): void {
    const names = this.responseHeaderNames;
    if (!names) return;
    const out: CapturedHeaders = [];
    for (const name of names) {
      const value = header(name);
      if (value !== null) out.push([name, value]);
    }
    this.responseHeaders = out;
  }

  /** The upstream exchange ended with `status` (0: no answer). */
  forwarded(status: number): void {
    if (!this.sampled) return;
    this.clientEnd = performance.now();
    this.upstreamStatus = status;
  }
}

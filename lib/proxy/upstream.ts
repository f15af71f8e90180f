/**
 * What every way of reaching an upstream shares: the request to send, the
 * transport timeouts, and the error a failed exchange becomes.
 *
 * @module
 */

/** A failure to get a response from the upstream, mapped to a status by the caller. */
export class UpstreamError extends Error {
  constructor(
    message: string,
    /** 502 for refused/reset/malformed, 504 for a timeout. */
    readonly status: 502 | 504,
    /** True when the request body was not consumed, so the request can be replayed. */
    readonly beforeSend: boolean,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "UpstreamError";
  }
}

/** Timeouts for talking to upstreams (Traefik's serversTransport.forwardingTimeouts). */
export interface ForwardingTimeouts {
  /** Connect timeout in ms. */
  dialTimeout: number;
  /** Time to wait for response headers after the request is sent; 0 = none. */
  responseHeaderTimeout: number;
  /** How long an idle pooled connection is kept. */
  idleConnTimeout: number;
}

export const DEFAULT_TIMEOUTS: ForwardingTimeouts = {
  dialTimeout: 30_000,
  responseHeaderTimeout: 0,
  idleConnTimeout: 90_000,
};

/** One request to send upstream. */
export interface UpstreamRequest {
  target: URL;
  method: string;
  /** Path and query exactly as they go on the wire. */
  pathAndQuery: string;
  headers: Record<string, string | string[]>;
  body: ReadableStream<Uint8Array> | null;
}

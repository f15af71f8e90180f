/**
 * `retry` (Traefik v3.7): re-sends a request to the service, whose load
 * balancer moves to its next server.
 *
 * - On a network error: the upstream could not be reached before any byte
 *   of the request was sent (refused, dial timeout, TLS failure). Any
 *   method; off with `disableRetryOnNetworkError`.
 * - On a status in `status` ("503", "500-599"), from the upstream or from
 *   a middleware after this one. Only for idempotent methods unless
 *   `retryNonIdempotentMethod` (POST, PATCH and LOCK are not idempotent),
 *   and only when the body fits in `maxRequestBodyBytes` (default 2 MiB,
 *   -1 for no limit), which is held in memory to be replayed.
 * - Never after `timeout` has passed since the first try, and never once a
 *   response is on its way to the client.
 *
 * @module
 */

import { UpstreamError } from "../../proxy/upstream.ts";
import type { ProxyRequest } from "../../services/types.ts";
import { errorResponse } from "../../services/types.ts";
import { clearResponse } from "../shared/replace_response.ts";
import { readOptions } from "../options.ts";
import { peekBody } from "../peek_body.ts";
import { type MiddlewareFactory, writableRequestHeaders } from "../types.ts";
import { inRanges, parseStatusRanges, type StatusRange } from "../shared/status_ranges.ts";
import { backoffDelay } from "./backoff.ts";

/** Traefik's `dynamic.RetryDefaultMaxRequestBodyBytes`. */
const DEFAULT_MAX_BODY = 2 * 1024 * 1024;

const NOT_IDEMPOTENT = new Set(["POST", "PATCH", "LOCK"]);

/** Methods whose body cannot ride on a Web Request. */
const DETACHED = new Set(["GET", "HEAD"]);

/**
 * Builds a `retry` middleware.
 *
 * @example
 * ```toml
 * [http.middlewares.retry-3.retry]
 * attempts = 3
 * initialInterval = "100ms"
 * status = ["502-504"]
 * timeout = "5s"
 * ```
 */
export const retry: MiddlewareFactory = (options, context) => {
  const o = readOptions(context.name, options);
  o.unknownKeysCheck([
    "attempts",
    "initialInterval",
    "timeout",
    "maxRequestBodyBytes",
    "status",
    "disableRetryOnNetworkError",
    "retryNonIdempotentMethod",
  ]);
  const attempts = o.int("attempts", { required: true });
  if (attempts < 1) {
    o.fail("attempts", `must be 1 or more (the total number of tries), found ${attempts}`);
  }
  const initialInterval = o.duration("initialInterval", { default: 0 });
  const timeout = o.duration("timeout", { default: 0 });
  const maxBody = o.int("maxRequestBodyBytes", { default: DEFAULT_MAX_BODY });
  const ranges = parseStatusRanges(
    o.stringList("status", { default: [] }),
    (i, msg) => o.fail(`status[${i}]`, msg),
  );
  const noNetworkRetry = o.bool("disableRetryOnNetworkError", { default: false });
  const nonIdempotentToo = o.bool("retryNonIdempotentMethod", { default: false });
  if (ranges.length === 0 && noNetworkRetry) {
    o.fail(
      "disableRetryOnNetworkError",
      'with network errors not retried, status must list the codes to retry on, e.g. status = ["503"]',
    );
  }

  return async (c, next) => {
    if (attempts === 1) return await next();
    const proxy = c.get("proxy");
    const method = proxy.request.method;
    let statuses: readonly StatusRange[] = nonIdempotentToo || !NOT_IDEMPOTENT.has(method)
      ? ranges
      : [];
    let replay: Uint8Array<ArrayBuffer> | undefined;
    if (statuses.length > 0) {
      // The request object is replaced per attempt: keep the headers apart from it.
      writableRequestHeaders(proxy);
      const held = await holdBody(proxy, maxBody);
      if (held === "error") return errorResponse(500);
      if (held === "too large") statuses = [];
      else replay = held;
    }
    const original = proxy.request;
    const saved = snapshot(proxy);
    const started = performance.now();
    const timedOut = () => timeout > 0 && performance.now() - started >= timeout;

    for (let attempt = 1;; attempt++) {
      if (replay) replayBody(proxy, original, replay);
      if (attempt === attempts) return await next();
      let status: number;
      try {
        await next();
        status = c.res.status;
        if (status === 101 || timedOut() || !inRanges(statuses, status)) return;
        await c.res.body?.cancel().catch(() => {});
      } catch (err) {
        if (!(err instanceof UpstreamError) || timedOut()) throw err;
        const nothingSent = err.beforeSend && (replay !== undefined || !proxy.request.bodyUsed);
        const byNetwork = !noNetworkRetry && nothingSent;
        const byStatus = inRanges(statuses, err.status) && (replay !== undefined || nothingSent);
        if (!byNetwork && !byStatus) throw err;
      }
      const wait = backoffDelay(initialInterval, attempts, attempt);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      if (original.signal.aborted) throw new UpstreamError("client went away", 502, true);
      restore(proxy, saved);
      clearResponse(c);
    }
  };
};

/**
 * Reads the request body into memory when it fits in `max` bytes (negative:
 * no limit). When it does not, the bytes already read are put back in front
 * of the rest, so the request still goes upstream whole, once.
 */
async function holdBody(
  proxy: ProxyRequest,
  max: number,
): Promise<Uint8Array<ArrayBuffer> | undefined | "too large" | "error"> {
  const source = proxy.request.body ?? proxy.detachedBody ?? null;
  if (!source) return undefined;
  try {
    const { head, ended, stream } = await peekBody(source, max < 0 ? Infinity : max + 1);
    if (ended && (max < 0 || head.length <= max)) return new Uint8Array(head);
    const request = proxy.request;
    if (DETACHED.has(request.method)) {
      proxy.detachedBody = stream;
    } else {
      proxy.request = new Request(request.url, {
        method: request.method,
        headers: request.headers,
        body: stream,
        signal: request.signal,
      });
    }
    return "too large";
  } catch {
    return "error";
  }
}

/** A fresh copy of the held body for one attempt. */
function replayBody(proxy: ProxyRequest, original: Request, body: Uint8Array<ArrayBuffer>): void {
  if (DETACHED.has(original.method)) {
    proxy.detachedBody = new Response(body.slice()).body;
    return;
  }
  proxy.request = new Request(original.url, {
    method: original.method,
    headers: original.headers,
    body: body.length > 0 ? body : null,
    signal: original.signal,
  });
}

interface Snapshot {
  pathAndQuery: string;
  headers: Headers;
  responseHeaders?: Headers;
}

// Middlewares after this one run again on each attempt; undo their changes
// first so e.g. addPrefix does not prefix twice.
function snapshot(proxy: ProxyRequest): Snapshot {
  return {
    pathAndQuery: proxy.pathAndQuery,
    headers: proxy.headers === proxy.request.headers ? proxy.headers : new Headers(proxy.headers),
    responseHeaders: proxy.responseHeaders ? new Headers(proxy.responseHeaders) : undefined,
  };
}

function restore(proxy: ProxyRequest, saved: Snapshot): void {
  proxy.pathAndQuery = saved.pathAndQuery;
  proxy.headers = saved.headers === proxy.request.headers
    ? saved.headers
    : new Headers(saved.headers);
  proxy.responseHeaders = saved.responseHeaders ? new Headers(saved.responseHeaders) : undefined;
}

/**
 * Connection and request limits of every entrypoint: Traefik's
 * `entryPoints.NAME.transport.respondingTimeouts` (`readTimeout`,
 * `writeTimeout`, `idleTimeout`), a maximum request-head size (431) and
 * Portico's `transport.maxConnections`.
 *
 * HTTP/1.1 connections are served by the connection engine
 * (lib/engine/connection.ts), which enforces all of them on the socket:
 * the head and body `readTimeout`, `idleTimeout`, `writeTimeout`, the
 * head size and `maxConnections` as a socket cap.
 *
 * HTTP/2 requests come from Deno's native server as Web Requests; for
 * them {@linkcode guardHandler} adds, per request:
 * - `maxHeaderBytes`: request line plus header lines, counted as on the
 *   wire; above it the answer is 431;
 * - `readTimeout`, request body: the body must be read to its end within
 *   `readTimeout` of the head arriving, else 408 when no response started;
 * - `writeTimeout` (Traefik default 0 = off): a response body not fully
 *   taken within `writeTimeout` of the head arriving is aborted.
 *
 * @module
 */

import type { EntryPointConfig } from "../config/types.ts";
import type { ConnectionInfo } from "../contracts.ts";
import type { EntryPointHandler } from "../contracts.ts";

/** The default head limit (request line plus header lines): above it, 431. */
export const DEFAULT_MAX_HEADER_BYTES = 32 * 1024;

/** The limits one entrypoint enforces; times in ms, 0 = no limit. */
export interface ConnectionLimits {
  readTimeout: number;
  writeTimeout: number;
  idleTimeout: number;
  maxHeaderBytes: number;
  /** Open connections at most; undefined = unlimited. */
  maxConnections?: number;
}

/**
 * The limits of an entrypoint from its static config. `maxHeaderBytes` is
 * read from `http.maxHeaderBytes` when the schema provides it (Traefik's
 * name), else the default.
 */
export function limitsFor(entryPoint: EntryPointConfig): ConnectionLimits {
  const t = entryPoint.transport.respondingTimeouts;
  const maxHeaderBytes = (entryPoint.http as { maxHeaderBytes?: number }).maxHeaderBytes;
  return {
    readTimeout: t.readTimeout,
    writeTimeout: t.writeTimeout,
    idleTimeout: t.idleTimeout,
    maxHeaderBytes: maxHeaderBytes && maxHeaderBytes > 0
      ? maxHeaderBytes
      : DEFAULT_MAX_HEADER_BYTES,
    maxConnections: entryPoint.transport.maxConnections,
  };
}

/**
 * The size of a request's head as it was on the wire (request line, header
 * lines, CRLFs), stopping early once over `limit`.
 */
export function headBytes(request: Request, limit = Infinity): number {
  const url = request.url;
  const pathStart = url.indexOf("/", url.indexOf("//") + 2);
  // "GET " + target + " HTTP/1.1\r\n" + final "\r\n"
  let n = request.method.length + (pathStart === -1 ? 1 : url.length - pathStart) + 14;
  // forEach, not for…of: Deno's Headers iterator re-sorts on every step.
  if (n > limit) return n;
  request.headers.forEach((value, name) => {
    n += name.length + value.length + 4;
  });
  return n;
}

/** Thrown into a request body stream read past its deadline. */
export class BodyTimeoutError extends Error {
  override name = "BodyTimeoutError";
}

/**
 * The same bytes as `body`, failing with {@linkcode BodyTimeoutError} if
 * the stream has not ended by `deadline` (a `performance.now()` time).
 * Pull-based, so backpressure is kept.
 */
export function bodyWithDeadline(
  body: ReadableStream<Uint8Array>,
  deadline: number,
  onTimeout: () => void,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let fired = false;
  // One timer that errors the stream, rather than racing every read against
  // a shared promise: each race would keep its chunk reachable until the end.
  return new ReadableStream<Uint8Array>({
    start(controller) {
      timer = setTimeout(() => {
        fired = true;
        onTimeout();
        const err = new BodyTimeoutError("request body not received within readTimeout");
        controller.error(err);
        reader.cancel(err).catch(() => {});
      }, Math.max(0, deadline - performance.now()));
    },
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (fired) return;
        if (done) {
          clearTimeout(timer);
          controller.close();
        } else controller.enqueue(value);
      } catch (err) {
        clearTimeout(timer);
        if (!fired) controller.error(err);
      }
    },
    cancel(reason) {
      clearTimeout(timer);
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}

/**
 * A response whose body is aborted if it has not been fully taken by the
 * connection by `deadline` (a `performance.now()` time).
 */
export function responseWithDeadline(response: Response, deadline: number): Response {
  if (!response.body || response.status === 101) return response;
  const reader = response.body.getReader();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      timer = setTimeout(() => {
        controller.error(new Error("response not written within writeTimeout"));
        reader.cancel().catch(() => {});
      }, Math.max(0, deadline - performance.now()));
    },
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (done) {
          clearTimeout(timer);
          controller.close();
        } else controller.enqueue(value);
      } catch (err) {
        clearTimeout(timer);
        controller.error(err);
      }
    },
    cancel(reason) {
      clearTimeout(timer);
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
  return new Response(body, {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  });
}

const HEADERS_TOO_LARGE = () =>
  new Response("Request Header Fields Too Large", {
    status: 431,
    headers: { connection: "close" },
  });
const REQUEST_TIMEOUT = () =>
  new Response("Request Timeout", { status: 408, headers: { connection: "close" } });
const OVERLOADED = () =>
  new Response("Service Unavailable", {
    status: 503,
    headers: { connection: "close", "retry-after": "1" },
  });

/** Requests in flight on one entrypoint, for `maxConnections`. */
export interface InFlight {
  count: number;
}

/**
 * Wraps an entrypoint handler with the per-request limits (head size, body
 * read deadline, response write deadline, in-flight cap). Requests without
 * a body and with no `writeTimeout` pay for one header walk and a counter.
 *
 * @example
 * ```ts
 * const guarded = guardHandler(limitsFor(ep), handler);
 * Deno.serve((req, info) => guarded(req, conn));
 * ```
 */
export function guardHandler(
  limits: ConnectionLimits,
  handler: EntryPointHandler,
  inFlight: InFlight = { count: 0 },
): EntryPointHandler {
  const { maxHeaderBytes, readTimeout, writeTimeout } = limits;
  const slow = async (request: Request, conn: ConnectionInfo): Promise<Response> => {
    const started = performance.now();
    let timedOut = false;
    if (request.body && readTimeout > 0) {
      const body = bodyWithDeadline(request.body, started + readTimeout, () => (timedOut = true));
      request = new Request(request, { body, duplex: "half" } as RequestInit);
    }
    const response = await handler(request, conn);
    if (timedOut) {
      response.body?.cancel().catch(() => {});
      return REQUEST_TIMEOUT();
    }
    return writeTimeout > 0 ? responseWithDeadline(response, started + writeTimeout) : response;
  };
  // The common request (no body, no writeTimeout) stays synchronous: one
  // header walk, then straight to the router.
  const guarded: EntryPointHandler = (request, conn) => {
    if (headBytes(request, maxHeaderBytes) > maxHeaderBytes) {
      return Promise.resolve(HEADERS_TOO_LARGE());
    }
    if (writeTimeout > 0 || (request.body && readTimeout > 0)) return slow(request, conn);
    return handler(request, conn);
  };
  const cap = limits.maxConnections;
  if (cap === undefined) return guarded;
  return async (request, conn) => {
    if (inFlight.count >= cap) return OVERLOADED();
    inFlight.count++;
    try {
      return await guarded(request, conn);
    } finally {
      inFlight.count--;
    }
  };
}

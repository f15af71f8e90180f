/**
 * Connection and request limits for plain-HTTP entrypoints: Traefik's
 * `entryPoints.NAME.transport.respondingTimeouts` (`readTimeout`,
 * `writeTimeout`, `idleTimeout`), a maximum request-head size (431) and
 * Portico's `transport.maxConnections`.
 *
 * What `Deno.serve` (hyper) does by itself, probed on Deno 2.9.6: it has no
 * option for any of these and enforces no time limit at all (a client that
 * sends one header byte per second, a silent connection and an idle
 * keep-alive connection were all still open after 40 s). It refuses a
 * request head over about 64 KiB, or with more than 100 header lines, with
 * a plain 400. Such connections cost a socket and a few KiB each; they hold
 * no slot, so other clients are not blocked.
 *
 * What {@linkcode guardHandler} adds on the request path (used by the
 * plain listener):
 * - `maxHeaderBytes`: request line plus header lines, counted as on the
 *   wire; above it the answer is 431 (heads above Deno's ~64 KiB get
 *   Deno's 400 first).
 * - `readTimeout`, request body: the body must be read to its end within
 *   `readTimeout` of the head arriving; otherwise the body stream fails
 *   and the client gets 408 when no response has started.
 * - `writeTimeout` (Traefik default 0 = off): a response body not fully
 *   taken by the connection within `writeTimeout` of the head arriving is
 *   aborted, so the client sees a truncated response.
 * - `maxConnections`: Deno.serve gives no per-connection handle, so this is
 *   a cap on requests in flight on the entrypoint (one per connection in
 *   HTTP/1.1); beyond it the answer is an immediate 503 with
 *   `connection: close`, never a queue.
 *
 * What needs a handle on the connection, and so is only done by
 * {@linkcode startGuardedListener} (accepts sockets itself and serves each
 * with Deno's native per-connection server): `readTimeout` for the request
 * head (slowloris, silent connections) and `idleTimeout`. It is not wired
 * into the server because on Deno 2.9.6 a WebSocket upgrade on a connection
 * served that way dies as soon as the 101 is sent (the per-connection
 * server finishes and closes the upgraded stream); with plain `Deno.serve`
 * these two limits are not enforced at all.
 *
 * @module
 */

import type { EntryPointConfig } from "../config/types.ts";
import type { ConnectionInfo } from "../router/build.ts";
import type { EntryPointHandler, Listener } from "./extension.ts";

/** Below Deno's own head buffer (~64 KiB, refused with 400), so 431 is what a client sees. */
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
const REFUSED = new TextEncoder().encode(
  "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 19\r\nconnection: close\r\n\r\nService Unavailable",
);

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

interface NativeServer {
  finished: Promise<void>;
  shutdown(): Promise<void>;
}

type ServeOnConnection = (
  conn: Deno.Conn,
  signal: AbortSignal,
  handler: (request: Request) => Response | Promise<Response>,
  onError: (error: unknown) => Response | Promise<Response>,
  onListen: () => void,
) => NativeServer;

function serveOnConnection(): ServeOnConnection {
  // deno-lint-ignore no-explicit-any
  const internal = (Deno as any)[(Deno as any).internal] as {
    serveHttpOnConnection?: ServeOnConnection;
  } | undefined;
  const fn = internal?.serveHttpOnConnection;
  if (typeof fn !== "function") {
    throw new Error(
      `this Deno (${Deno.version.deno}) cannot serve an accepted connection natively; use Deno 2.9`,
    );
  }
  return fn;
}

/** Per-connection bookkeeping the sweep reads. */
interface ConnState {
  server?: NativeServer;
  /** Requests whose handler has not returned yet. */
  inFlight: number;
  /** performance.now() of accept or of the last handler return. */
  since: number;
  served: boolean;
  closing: boolean;
}

/** Options of {@linkcode startGuardedListener}. */
export interface GuardedListenerOptions {
  hostname: string;
  port: number;
  limits: ConnectionLimits;
  handler: EntryPointHandler;
  onError?: (error: unknown) => void;
  /** Connection-level events (timeouts, refusals), for debug logging. */
  onEvent?: (event: string, fields: Record<string, unknown>) => void;
}

/** A running plain-HTTP listener. */
export interface GuardedListener extends Listener {
  /** Connections open now. */
  readonly connections: number;
}

/** The sweep interval: a quarter of the smallest active timeout, within [10 ms, 1 s]. */
export function sweepInterval(limits: ConnectionLimits): number {
  const active = [limits.readTimeout, limits.idleTimeout].filter((t) => t > 0);
  if (active.length === 0) return 0;
  return Math.min(1000, Math.max(10, Math.floor(Math.min(...active) / 4)));
}

/**
 * Which connections a sweep at `now` must close: not yet served and older
 * than `readTimeout`, or idle (nothing in flight) for `idleTimeout`. Pure.
 */
export function expired(
  state: Pick<ConnState, "inFlight" | "since" | "served" | "closing">,
  now: number,
  limits: Pick<ConnectionLimits, "readTimeout" | "idleTimeout">,
): "read" | "idle" | undefined {
  if (state.closing || state.inFlight > 0) return undefined;
  const age = now - state.since;
  if (!state.served) {
    return limits.readTimeout > 0 && age >= limits.readTimeout ? "read" : undefined;
  }
  return limits.idleTimeout > 0 && age >= limits.idleTimeout ? "idle" : undefined;
}

/**
 * Listens on `hostname:port` and serves plain HTTP with every
 * {@linkcode ConnectionLimits}, including the head `readTimeout` and
 * `idleTimeout`, and `maxConnections` as a real connection cap (a new
 * connection beyond it gets a raw 503 and is closed). Not used by the
 * server yet: WebSocket upgrades do not survive on it (see the module doc).
 *
 * @example
 * ```ts
 * const l = startGuardedListener({ hostname: "0.0.0.0", port: 80, limits: limitsFor(ep), handler });
 * await l.shutdown();
 * ```
 */
export function startGuardedListener(options: GuardedListenerOptions): GuardedListener {
  const serve = serveOnConnection();
  const { limits, handler } = options;
  const socket = Deno.listen({ hostname: options.hostname, port: options.port });
  const port = (socket.addr as Deno.NetAddr).port;
  const conns = new Set<ConnState>();
  const never = new AbortController();
  let closed = false;

  const close = (state: ConnState, reason: string) => {
    state.closing = true;
    options.onEvent?.("connection closed", { reason });
    state.server?.shutdown().catch(() => {});
  };

  const interval = sweepInterval(limits);
  const sweep = interval > 0
    ? setInterval(() => {
      const now = performance.now();
      for (const state of conns) {
        const why = expired(state, now, limits);
        if (why) close(state, why === "read" ? "readTimeout" : "idleTimeout");
      }
    }, interval)
    : undefined;

  // The connection cap is enforced at accept; the rest per request.
  const guarded = guardHandler({ ...limits, maxConnections: undefined }, handler);
  const handle = async (
    request: Request,
    info: ConnectionInfo,
    state: ConnState,
  ): Promise<Response> => {
    state.inFlight++;
    state.served = true;
    try {
      return await guarded(request, info);
    } finally {
      state.inFlight--;
      state.since = performance.now();
    }
  };

  const accept = async () => {
    while (true) {
      let conn: Deno.TcpConn;
      try {
        conn = await socket.accept();
      } catch {
        return; // closed
      }
      if (closed) {
        conn.close();
        continue;
      }
      if (limits.maxConnections !== undefined && conns.size >= limits.maxConnections) {
        options.onEvent?.("connection refused", { reason: "maxConnections", open: conns.size });
        conn.write(REFUSED).catch(() => {}).finally(() => {
          try {
            conn.close();
          } catch { /* gone */ }
        });
        continue;
      }
      try {
        conn.setNoDelay(true);
      } catch { /* closed already */ }
      const info: ConnectionInfo = {
        remoteAddr: (conn.remoteAddr as Deno.NetAddr).hostname,
        tls: false,
        port,
      };
      const state: ConnState = {
        inFlight: 0,
        since: performance.now(),
        served: false,
        closing: false,
      };
      conns.add(state);
      state.server = serve(
        conn,
        never.signal,
        (request) => handle(request, info, state),
        (error) => {
          options.onError?.(error);
          return new Response("Internal Server Error", { status: 500 });
        },
        () => {},
      );
      state.server.finished.catch(() => {}).finally(() => conns.delete(state));
    }
  };
  const accepting = accept();

  return {
    port,
    get connections() {
      return conns.size;
    },
    async shutdown() {
      closed = true;
      if (sweep !== undefined) clearInterval(sweep);
      socket.close();
      await accepting;
      await Promise.allSettled([...conns].map((s) => s.server?.shutdown()));
    },
  };
}

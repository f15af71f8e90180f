/**
 * Serving each accepted connection with its own native HTTP server
 * (Deno's internal `serveHttpOnConnection`), which gives Portico a handle
 * on every socket. That handle is what the limits `Deno.serve` cannot
 * enforce need:
 * - the request-head `readTimeout`: a connection that has not delivered a
 *   complete head within it (slowloris, silent sockets) is closed;
 * - `idleTimeout`: a keep-alive connection with nothing in flight for that
 *   long is closed;
 * - `maxConnections` as a real socket cap: a connection beyond it gets a
 *   raw 503 and is closed.
 *
 * The price, on Deno 2.9.6: a WebSocket upgrade on a connection served
 * this way dies right after the 101 (the per-connection server finishes
 * and closes the upgraded stream). So this is the opt-in `connection`
 * serving mode (see serving_mode.ts), for plain and TLS entrypoints alike.
 *
 * @module
 */

import type { ConnectionInfo } from "../router/build.ts";
import type { EntryPointHandler, Listener } from "./extension.ts";
import { type ConnectionLimits, guardHandler } from "./limits.ts";

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

const REFUSED = new TextEncoder().encode(
  "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 19\r\nconnection: close\r\n\r\nService Unavailable",
);

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

/** Options of {@linkcode ConnectionGuard}. */
export interface ConnectionGuardOptions {
  limits: ConnectionLimits;
  handler: EntryPointHandler;
  onError?: (error: unknown) => void;
  /** Connection-level events (timeouts, refusals), for debug logging. */
  onEvent?: (event: string, fields: Record<string, unknown>) => void;
}

/**
 * Serves accepted connections (TCP or TLS) one native server each, with
 * every {@linkcode ConnectionLimits} enforced.
 */
export class ConnectionGuard {
  readonly #conns = new Set<ConnState>();
  readonly #never = new AbortController();
  readonly #serve = serveOnConnection();
  readonly #handler: EntryPointHandler;
  readonly #sweep?: ReturnType<typeof setInterval>;
  #closed = false;

  constructor(private readonly options: ConnectionGuardOptions) {
    // The connection cap is enforced at accept; the rest per request.
    this.#handler = guardHandler({ ...options.limits, maxConnections: undefined }, options.handler);
    const interval = sweepInterval(options.limits);
    if (interval > 0) this.#sweep = setInterval(() => this.#expire(), interval);
  }

  /** Connections open now. */
  get connections(): number {
    return this.#conns.size;
  }

  /** Takes over an accepted connection: refuses it over the cap, else serves it. */
  serve(conn: Deno.Conn, info: ConnectionInfo): void {
    const { limits } = this.options;
    if (this.#closed) {
      closeQuietly(conn);
      return;
    }
    if (limits.maxConnections !== undefined && this.#conns.size >= limits.maxConnections) {
      this.options.onEvent?.("connection refused", {
        reason: "maxConnections",
        open: this.#conns.size,
      });
      conn.write(REFUSED).catch(() => {}).finally(() => closeQuietly(conn));
      return;
    }
    try {
      (conn as Deno.TcpConn).setNoDelay?.(true);
    } catch { /* closed already */ }
    const state: ConnState = {
      inFlight: 0,
      since: performance.now(),
      served: false,
      closing: false,
    };
    try {
      state.server = this.#serve(
        conn,
        this.#never.signal,
        (request) => this.#handle(request, info, state),
        (error) => {
          this.options.onError?.(error);
          return new Response("Internal Server Error", { status: 500 });
        },
        () => {},
      );
    } catch (error) {
      // The accept loop calling us must go on whatever one socket does.
      this.options.onError?.(error);
      closeQuietly(conn);
      return;
    }
    this.#conns.add(state);
    state.server.finished.catch(() => {}).finally(() => this.#conns.delete(state));
  }

  /** Stops the sweep and drains every connection gracefully. */
  async shutdown(): Promise<void> {
    this.#closed = true;
    if (this.#sweep !== undefined) clearInterval(this.#sweep);
    await Promise.allSettled([...this.#conns].map((s) => s.server?.shutdown()));
  }

  async #handle(request: Request, info: ConnectionInfo, state: ConnState): Promise<Response> {
    state.inFlight++;
    state.served = true;
    try {
      return await this.#handler(request, info);
    } finally {
      state.inFlight--;
      state.since = performance.now();
    }
  }

  #expire(): void {
    const now = performance.now();
    for (const state of this.#conns) {
      const why = expired(state, now, this.options.limits);
      if (!why) continue;
      state.closing = true;
      this.options.onEvent?.("connection closed", {
        reason: why === "read" ? "readTimeout" : "idleTimeout",
      });
      state.server?.shutdown().catch(() => {});
    }
  }
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch { /* gone */ }
}

/** Options of {@linkcode startGuardedListener}. */
export interface GuardedListenerOptions extends ConnectionGuardOptions {
  hostname: string;
  port: number;
}

/** A running plain-HTTP listener in `connection` mode. */
export interface GuardedListener extends Listener {
  /** Connections open now. */
  readonly connections: number;
}

/**
 * Listens on `hostname:port` and serves plain HTTP through a
 * {@linkcode ConnectionGuard}.
 *
 * @example
 * ```ts
 * const l = startGuardedListener({ hostname: "0.0.0.0", port: 80, limits: limitsFor(ep), handler });
 * await l.shutdown();
 * ```
 */
export function startGuardedListener(options: GuardedListenerOptions): GuardedListener {
  return listenGuarded(options.hostname, options.port, new ConnectionGuard(options));
}

/** Listens on `hostname:port` (plain TCP) and hands every connection to `guard`. */
export function listenGuarded(
  hostname: string,
  port: number,
  guard: ConnectionGuard,
): GuardedListener {
  const socket = Deno.listen({ hostname, port });
  const bound = (socket.addr as Deno.NetAddr).port;
  const accepting = (async () => {
    while (true) {
      let conn: Deno.TcpConn;
      try {
        conn = await socket.accept();
      } catch {
        return; // closed
      }
      guard.serve(conn, {
        remoteAddr: (conn.remoteAddr as Deno.NetAddr).hostname,
        tls: false,
        port: bound,
      });
    }
  })();
  return {
    port: bound,
    get connections() {
      return guard.connections;
    },
    async shutdown() {
      socket.close();
      await accepting;
      await guard.shutdown();
    },
  };
}

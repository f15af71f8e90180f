/**
 * The TLS entrypoint listener: Deno's native HTTP server (hyper + rustls,
 * the same engine as `Deno.serve`) on a `Deno.listenTls` socket whose
 * certificate is chosen per handshake from the {@linkcode CertificateStore}
 * (SNI).
 *
 * Why this shape (measured, see the README's TLS section):
 * - `Deno.serve({cert, key})` takes one certificate; `node:https` with
 *   `SNICallback` does SNI but runs its HTTP layer in JS (about 4x slower).
 * - Deno 2.9's `Deno.listenTls` accepts an SNI resolver through the
 *   internal `resolverSymbol`, and two internal entry points serve HTTP on
 *   it natively: `serveHttpOnListener` (one server for the socket) and
 *   `serveHttpOnConnection` (one server per accepted connection).
 * - Deno caches the resolver's answer per SNI name for the socket's
 *   lifetime (errors too). So when a change in the store would give an
 *   already-resolved name a different answer, the socket is replaced
 *   (close + rebind, a few milliseconds).
 * - The two serving modes (lib/server/serving_mode.ts) differ in what
 *   such a swap costs and in WebSockets:
 *   - `listener` (default): the server owns the socket, so a swap shuts the
 *     old server down gracefully. Requests in flight complete; idle
 *     keep-alive connections and upgraded WebSockets of the old socket are
 *     closed. WebSockets work.
 *   - `connection` (when {@linkcode TlsListenerOptions.connections} is
 *     given): every accepted connection is handed over and outlives any
 *     swap untouched. But Deno closes an upgraded stream right after the
 *     101 when its per-connection server ends, so WebSockets cannot work.
 * - TLS sockets here have no `setNoDelay`, so a response whose headers and
 *   body go out as separate TLS records stalls on Nagle + delayed ACK
 *   (a flat ~40 ms). Handlers of TLS entrypoints are therefore wrapped
 *   with {@linkcode sendingSmallBodiesWhole}.
 *
 * @module
 */

import type { ConnectionInfo } from "../router/build.ts";
import type { CertificateStore, Selection } from "./store.ts";

/** Bodies up to this size (with a Content-Length) are sent in one write. */
export const BUFFER_LIMIT = 64 * 1024;

/** Serves connections handed over after the handshake (`connection` mode). */
export interface AcceptedConnections {
  serve(conn: Deno.Conn, info: ConnectionInfo): void;
  /** Drains every connection handed over. */
  shutdown(): Promise<void>;
}

/** Options of {@linkcode startTlsListener}. */
export interface TlsListenerOptions {
  hostname: string;
  /** 0 picks a free port (kept across socket swaps). */
  port: number;
  store: CertificateStore;
  /** Serves requests in `listener` mode. */
  handler: (request: Request, conn: ConnectionInfo) => Promise<Response>;
  /** Given: `connection` mode, every accepted connection goes there. */
  connections?: AcceptedConnections;
  /** ALPN protocols offered; default h2 and http/1.1. */
  alpnProtocols?: string[];
  /** Told about handshake failures and swaps (debug level). */
  onEvent?: (event: string, fields: Record<string, unknown>) => void;
  onError?: (error: unknown) => void;
}

/** A running TLS listener. */
export interface TlsListener {
  readonly port: number;
  readonly mode: "listener" | "connection";
  /** How many times the listening socket was replaced to drop stale SNI answers. */
  readonly swaps: number;
  shutdown(): Promise<void>;
}

interface NativeServer {
  finished: Promise<void>;
  shutdown(): Promise<void>;
}

type OnError = (error: unknown) => Response | Promise<Response>;

interface DenoInternals {
  resolverSymbol: symbol;
  serveHttpOnListener(
    listener: Deno.TlsListener,
    signal: AbortSignal | undefined,
    handler: (
      request: Request,
      info: { remoteAddr: Deno.NetAddr },
    ) => Response | Promise<Response>,
    onError: OnError,
    onListen: () => void,
  ): NativeServer;
}

function internals(): DenoInternals {
  // deno-lint-ignore no-explicit-any
  const i = (Deno as any)[(Deno as any).internal] as Partial<DenoInternals> | undefined;
  if (!i?.resolverSymbol || typeof i.serveHttpOnListener !== "function") {
    throw new Error(
      `this Deno (${Deno.version.deno}) lacks the SNI resolver used for TLS entrypoints; use Deno 2.9`,
    );
  }
  return i as DenoInternals;
}

/** What a resolved name got, to detect when a store change alters it. */
function identity(s: Selection): string {
  return s.kind === "refuse" ? `refuse:${s.reason}` : s.pair.cert;
}

/** One listening socket and whatever serves it; replaced as a whole on a swap. */
interface Generation {
  /** SNI name → identity of the answer this socket's resolver gave (and cached). */
  resolved: Map<string, string>;
  /** Stops accepting; `listener` mode also drains the socket's connections. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts serving HTTPS on `hostname:port` with certificates from `store`.
 *
 * @example
 * ```ts
 * const l = await startTlsListener({ hostname: "0.0.0.0", port: 443, store, handler });
 * await l.shutdown();
 * ```
 */
export async function startTlsListener(options: TlsListenerOptions): Promise<TlsListener> {
  const deno = internals();
  const handOver = options.connections;
  const mode = handOver ? "connection" : "listener";
  const alpnProtocols = options.alpnProtocols ?? ["h2", "http/1.1"];
  const onError: OnError = (error) => {
    options.onError?.(error);
    return new Response("Internal Server Error", { status: 500 });
  };
  let port = options.port;
  let swaps = 0;
  let closed = false;

  const bind = (resolved: Map<string, string>): Deno.TlsListener => {
    const listener = Deno.listenTls(
      {
        hostname: options.hostname,
        port,
        alpnProtocols,
        [deno.resolverSymbol]: (sni: string) => {
          const selection = options.store.select(sni);
          resolved.set(sni, identity(selection));
          if (selection.kind === "refuse") {
            options.onEvent?.("handshake refused", { sni, reason: selection.reason });
            throw new Error(selection.reason);
          }
          return selection.pair;
        },
      } as unknown as Deno.ListenTlsOptions & Deno.TlsCertifiedKeyPem,
    );
    port = (listener.addr as Deno.NetAddr).port;
    return listener;
  };

  const serveSocket = (listener: Deno.TlsListener, resolved: Map<string, string>): Generation => {
    if (!handOver) {
      const server = deno.serveHttpOnListener(
        listener,
        undefined,
        (request, info) =>
          options.handler(request, { remoteAddr: info.remoteAddr.hostname, tls: true, port }),
        onError,
        () => {},
      );
      // A rejected `finished` must not become an unhandled rejection: that
      // would end the whole process.
      server.finished.catch((error) => options.onError?.(error));
      let closing: Promise<void> | undefined;
      return { resolved, close: () => closing ??= server.shutdown().catch(options.onError) };
    }
    const accepting = (async () => {
      while (true) {
        let conn: Deno.TlsConn;
        try {
          conn = await listener.accept();
        } catch {
          return; // closed (swap or shutdown)
        }
        handOver.serve(conn, {
          remoteAddr: (conn.remoteAddr as Deno.NetAddr).hostname,
          tls: true,
          port,
        });
      }
    })();
    let closing: Promise<void> | undefined;
    return {
      resolved,
      close: () =>
        closing ??= (async () => {
          listener.close();
          await accepting;
        })(),
    };
  };

  const open = (): Generation => {
    const resolved = new Map<string, string>();
    return serveSocket(bind(resolved), resolved);
  };

  let current = open();
  /** Old generations still draining (`listener` mode). */
  const draining = new Set<Promise<void>>();

  const swap = async () => {
    if (closed) return;
    const old = current;
    // The old socket must be gone before the new one can bind the same port;
    // its drain goes on in the background.
    const drained = old.close().catch((err) => options.onError?.(err));
    draining.add(drained);
    drained.finally(() => draining.delete(drained));
    // The port must come back whatever happens: an entrypoint left without
    // its socket would be down until a restart. So rebinding never gives up;
    // after the first ~100 ms (the old socket normally frees it within a few)
    // each failure is reported and the wait grows to 1 s.
    for (let attempt = 0; !closed; attempt++) {
      try {
        current = open();
        break;
      } catch (err) {
        if (attempt >= 100) options.onError?.(err);
        await new Promise((r) =>
          setTimeout(r, attempt < 100 ? 1 : Math.min(1000, 10 * (attempt - 99)))
        );
      }
    }
    if (closed) return;
    swaps++;
    options.onEvent?.("tls socket replaced", { port, swaps, mode });
  };

  // Swaps run one at a time; a change during a swap schedules one more.
  let swapping: Promise<void> | undefined;
  let again = false;
  const onStoreChange = () => {
    if (closed) return;
    let stale = false;
    for (const [sni, seen] of current.resolved) {
      if (identity(options.store.select(sni)) !== seen) {
        stale = true;
        break;
      }
    }
    if (!stale) return;
    if (swapping) {
      again = true;
      return;
    }
    swapping = (async () => {
      try {
        do {
          again = false;
          await swap();
        } while (again);
      } catch (err) {
        options.onError?.(err);
      } finally {
        swapping = undefined;
      }
    })();
  };
  const unsubscribe = options.store.onChange(onStoreChange);

  return {
    get port() {
      return port;
    },
    mode,
    get swaps() {
      return swaps;
    },
    async shutdown() {
      closed = true;
      unsubscribe();
      await swapping;
      await current.close();
      await Promise.allSettled([...draining]);
      await handOver?.shutdown();
    },
  };
}

/**
 * Wraps a TLS entrypoint's handler so that a small body is sent with its
 * headers in one TLS write (see the module doc).
 */
export function sendingSmallBodiesWhole(
  handler: (request: Request, conn: ConnectionInfo) => Promise<Response>,
): (request: Request, conn: ConnectionInfo) => Promise<Response> {
  return async (request, conn) => coalesce(await handler(request, conn));
}

async function coalesce(response: Response): Promise<Response> {
  // Reading `response.body` would turn a native string/bytes body into a
  // stream (losing its length), so only bodies that announce a length are touched.
  const announced = response.headers.get("content-length");
  if (announced === null || response.status === 101) return response;
  const length = Number(announced);
  if (!(length >= 0 && length <= BUFFER_LIMIT) || !response.body) return response;
  const body = await response.arrayBuffer();
  return new Response(body, {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  });
}

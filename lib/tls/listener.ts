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
 * - The two serving modes differ in what such a swap costs and in
 *   WebSockets, which is why both exist:
 *   - `listener` (default): the server owns the socket, so a swap shuts the
 *     old server down gracefully. Requests in flight complete; idle
 *     keep-alive connections and upgraded WebSockets of the old socket are
 *     closed. WebSockets work.
 *   - `connection`: every connection has its own server and outlives any
 *     swap untouched. But Deno closes an upgraded stream right after the 101
 *     when its per-connection server ends, so WebSockets cannot work.
 * - TLS sockets here have no `setNoDelay`, so a response whose headers and
 *   body go out as separate TLS records stalls on Nagle + delayed ACK
 *   (a flat ~40 ms). Small bodies with a known length are therefore
 *   buffered and sent in one write.
 *
 * @module
 */

import type { ConnectionInfo } from "../router/build.ts";
import type { CertificateStore, Selection } from "./store.ts";

/** Bodies up to this size (with a Content-Length) are sent in one write. */
export const BUFFER_LIMIT = 64 * 1024;

/** How a TLS entrypoint serves HTTP; see the module doc for the trade-off. */
export type TlsServingMode = "listener" | "connection";

/** Environment variable that picks the {@linkcode TlsServingMode}. */
export const TLS_SERVING_ENV = "PORTICO_TLS_SERVING";

/** Reads {@linkcode TLS_SERVING_ENV}; anything else than the two modes is an error naming it. */
export function tlsServingMode(value: string | undefined): TlsServingMode {
  if (value === undefined || value === "" || value === "listener") return "listener";
  if (value === "connection") return "connection";
  throw new Error(
    `${TLS_SERVING_ENV}=${JSON.stringify(value)}: expected "listener" (default) or "connection"`,
  );
}

/** Options of {@linkcode startTlsListener}. */
export interface TlsListenerOptions {
  hostname: string;
  /** 0 picks a free port (kept across socket swaps). */
  port: number;
  store: CertificateStore;
  handler: (request: Request, conn: ConnectionInfo) => Promise<Response>;
  /** Default `listener`. */
  mode?: TlsServingMode;
  /** ALPN protocols offered; default h2 and http/1.1. */
  alpnProtocols?: string[];
  /** Told about handshake failures and swaps (debug level). */
  onEvent?: (event: string, fields: Record<string, unknown>) => void;
  onError?: (error: unknown) => void;
}

/** A running TLS listener. */
export interface TlsListener {
  readonly port: number;
  readonly mode: TlsServingMode;
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
  serveHttpOnConnection(
    conn: Deno.Conn,
    signal: AbortSignal,
    handler: (request: Request) => Response | Promise<Response>,
    onError: OnError,
    onListen: () => void,
  ): NativeServer;
}

function internals(): DenoInternals {
  // deno-lint-ignore no-explicit-any
  const i = (Deno as any)[(Deno as any).internal] as Partial<DenoInternals> | undefined;
  if (
    !i?.resolverSymbol || typeof i.serveHttpOnConnection !== "function" ||
    typeof i.serveHttpOnListener !== "function"
  ) {
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
  /** Stops accepting; `listener` mode also drains the socket's connections. */
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
  const mode = options.mode ?? "listener";
  const alpnProtocols = options.alpnProtocols ?? ["h2", "http/1.1"];
  const onError: OnError = (error) => {
    options.onError?.(error);
    return new Response("Internal Server Error", { status: 500 });
  };
  const respond = async (request: Request, info: ConnectionInfo) =>
    coalesce(await options.handler(request, info));
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

  // `connection` mode: servers outlive their socket, so they are tracked
  // here and only shut down with the whole listener.
  const perConnection = new Set<NativeServer>();
  const stopAll = new AbortController();

  const serveSocket = (listener: Deno.TlsListener, resolved: Map<string, string>): Generation => {
    if (mode === "listener") {
      const server = deno.serveHttpOnListener(
        listener,
        undefined,
        (request, info) =>
          respond(request, { remoteAddr: info.remoteAddr.hostname, tls: true, port }),
        onError,
        () => {},
      );
      return { resolved, close: () => server.shutdown() };
    }
    const accepting = (async () => {
      while (true) {
        let conn: Deno.TlsConn;
        try {
          conn = await listener.accept();
        } catch {
          return; // closed (swap or shutdown)
        }
        const info: ConnectionInfo = {
          remoteAddr: (conn.remoteAddr as Deno.NetAddr).hostname,
          tls: true,
          port,
        };
        const server = deno.serveHttpOnConnection(
          conn,
          stopAll.signal,
          (request) => respond(request, info),
          onError,
          () => {},
        );
        perConnection.add(server);
        server.finished.catch((error) => {
          options.onEvent?.("connection ended with error", {
            remoteAddr: info.remoteAddr,
            error: String(error),
          });
        }).finally(() => perConnection.delete(server));
      }
    })();
    return {
      resolved,
      close: async () => {
        listener.close();
        await accepting;
      },
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
    for (let attempt = 0;; attempt++) {
      try {
        current = open();
        break;
      } catch (err) {
        if (!(err instanceof Deno.errors.AddrInUse) || attempt > 1000) throw err;
        await new Promise((r) => setTimeout(r, 1));
      }
    }
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
      await Promise.allSettled([...perConnection].map((s) => s.shutdown()));
    },
  };
}

/** Sends a small body with its headers in one TLS write (see the module doc). */
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

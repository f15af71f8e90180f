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
 *   internal `resolverSymbol`, and `serveHttpOnConnection` serves one
 *   accepted connection with the native server.
 * - Deno caches the resolver's answer per SNI name for the listener's
 *   lifetime (errors too). So when a change in the store would give an
 *   already-resolved name a different answer, the listening socket is
 *   replaced (close + rebind, well under a millisecond) while every open
 *   connection keeps being served: connections are independent of the
 *   socket that accepted them.
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

/** Options of {@linkcode startTlsListener}. */
export interface TlsListenerOptions {
  hostname: string;
  /** 0 picks a free port (kept across socket swaps). */
  port: number;
  store: CertificateStore;
  handler: (request: Request, conn: ConnectionInfo) => Promise<Response>;
  /** ALPN protocols offered; default h2 and http/1.1. */
  alpnProtocols?: string[];
  /** Told about handshake failures and swaps (debug level). */
  onEvent?: (event: string, fields: Record<string, unknown>) => void;
  onError?: (error: unknown) => void;
}

/** A running TLS listener. */
export interface TlsListener {
  readonly port: number;
  /** How many times the listening socket was replaced to drop stale SNI answers. */
  readonly swaps: number;
  /** Open connections. */
  readonly connections: number;
  shutdown(): Promise<void>;
}

interface NativeServer {
  finished: Promise<void>;
  shutdown(): Promise<void>;
}

interface DenoInternals {
  resolverSymbol: symbol;
  serveHttpOnConnection(
    conn: Deno.Conn,
    signal: AbortSignal,
    handler: (request: Request) => Response | Promise<Response>,
    onError: (error: unknown) => Response | Promise<Response>,
    onListen: () => void,
  ): NativeServer;
}

function internals(): DenoInternals {
  // deno-lint-ignore no-explicit-any
  const i = (Deno as any)[(Deno as any).internal] as Partial<DenoInternals> | undefined;
  if (!i?.resolverSymbol || typeof i.serveHttpOnConnection !== "function") {
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
  const alpnProtocols = options.alpnProtocols ?? ["h2", "http/1.1"];
  const servers = new Set<NativeServer>();
  const abort = new AbortController();
  let port = options.port;
  let swaps = 0;
  let closed = false;

  let socket: Deno.TlsListener;
  let acceptLoop: Promise<void>;
  let resolved = new Map<string, string>();

  const open = () => {
    const answers = new Map<string, string>();
    resolved = answers;
    const listener = Deno.listenTls(
      {
        hostname: options.hostname,
        port,
        alpnProtocols,
        [deno.resolverSymbol]: (sni: string) => {
          const selection = options.store.select(sni);
          answers.set(sni, identity(selection));
          if (selection.kind === "refuse") {
            options.onEvent?.("handshake refused", { sni, reason: selection.reason });
            throw new Error(selection.reason);
          }
          return selection.pair;
        },
      } as unknown as Deno.ListenTlsOptions & Deno.TlsCertifiedKeyPem,
    );
    port = (listener.addr as Deno.NetAddr).port;
    socket = listener;
    acceptLoop = accept(listener);
  };

  const accept = async (listener: Deno.TlsListener) => {
    while (true) {
      let conn: Deno.TlsConn;
      try {
        conn = await listener.accept();
      } catch {
        return; // closed (swap or shutdown)
      }
      serveConnection(conn);
    }
  };

  const serveConnection = (conn: Deno.TlsConn) => {
    const info: ConnectionInfo = {
      remoteAddr: (conn.remoteAddr as Deno.NetAddr).hostname,
      tls: true,
      port,
    };
    const server = deno.serveHttpOnConnection(
      conn,
      abort.signal,
      async (request) => {
        const response = await options.handler(request, info);
        return coalesce(response);
      },
      (error) => {
        options.onError?.(error);
        return new Response("Internal Server Error", { status: 500 });
      },
      () => {},
    );
    servers.add(server);
    server.finished.catch((error) => {
      options.onEvent?.("connection ended with error", {
        remoteAddr: info.remoteAddr,
        error: String(error),
      });
    }).finally(() => servers.delete(server));
  };

  // Swaps run one at a time; a change during a swap schedules one more.
  let swapping: Promise<void> | undefined;
  let again = false;
  const swap = async () => {
    if (closed) return;
    socket.close();
    await acceptLoop;
    for (let attempt = 0;; attempt++) {
      try {
        open();
        break;
      } catch (err) {
        if (!(err instanceof Deno.errors.AddrInUse) || attempt > 200) throw err;
        await new Promise((r) => setTimeout(r, 1));
      }
    }
    swaps++;
    options.onEvent?.("tls socket replaced", { port, swaps });
  };
  const onStoreChange = () => {
    if (closed) return;
    let stale = false;
    for (const [sni, seen] of resolved) {
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

  open();
  const unsubscribe = options.store.onChange(onStoreChange);

  return {
    get port() {
      return port;
    },
    get swaps() {
      return swaps;
    },
    get connections() {
      return servers.size;
    },
    async shutdown() {
      closed = true;
      unsubscribe();
      await swapping;
      socket.close();
      await acceptLoop;
      await Promise.allSettled([...servers].map((s) => s.shutdown()));
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

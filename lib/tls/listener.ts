/**
 * The TLS entrypoint listener: a `Deno.listenTls` socket whose certificate
 * is chosen per handshake from the {@linkcode CertificateStore} (SNI), and
 * every accepted connection handed over to Portico's serving (the
 * HTTP/1.1 engine, or the native server for h2).
 *
 * Why this shape:
 * - `Deno.serve({cert, key})` takes one certificate; Deno 2.9's
 *   `Deno.listenTls` accepts an SNI resolver through the internal
 *   `resolverSymbol`.
 * - Deno caches the resolver's answer per SNI name for the socket's
 *   lifetime (errors too). So when a change in the store would give an
 *   already-resolved name a different answer, the listening socket is
 *   replaced (close + rebind, a few milliseconds). Connections already
 *   accepted are Portico's and outlive the swap untouched: nothing drains.
 *
 * @module
 */

import type { ConnectionInfo } from "../contracts.ts";
import type { CertificateStore, Selection } from "./store.ts";

/** Serves connections handed over after the accept. */
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
  /** Every accepted connection goes there. */
  connections: AcceptedConnections;
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
  /** Closes the listening socket; the connections handed over are left as they are. */
  stopAccepting(): Promise<void>;
  shutdown(): Promise<void>;
}

interface DenoInternals {
  resolverSymbol: symbol;
}

function internals(): DenoInternals {
  // deno-lint-ignore no-explicit-any
  const i = (Deno as any)[(Deno as any).internal] as Partial<DenoInternals> | undefined;
  if (!i?.resolverSymbol) {
    throw new Error(
      `this Deno (${Deno.version.deno}) lacks the SNI resolver used for TLS entrypoints; use Deno 2.9`,
    );
  }
  return i as DenoInternals;
}

/** What a resolved name got, to detect when a store change alters it. */
function identity(s: Selection): string {
  return s.kind === "refuse" ? `refuse:${s.reason}` : s.termination ? `ended-by-portico:${s.pair.cert}` : s.pair.cert;
}

/** One listening socket and whatever serves it; replaced as a whole on a swap. */
interface Generation {
  /** SNI name → identity of the answer this socket's resolver gave (and cached). */
  resolved: Map<string, string>;
  /** Stops accepting. Idempotent. */
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
  const alpnProtocols = options.alpnProtocols ?? ["h2", "http/1.1"];
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
          if (selection.termination) {
            // Reached only before the port switches to peeking (or through a worker's relay):
            // this stack cannot ask for the client certificate, so it refuses (fail closed).
            const reason = `tls.options.${selection.termination.name} asks for client certificates, which this listener cannot`;
            options.onEvent?.("handshake refused", { sni, reason });
            throw new Error(reason);
          }
          return selection.pair;
        },
      } as unknown as Deno.ListenTlsOptions & Deno.TlsCertifiedKeyPem,
    );
    port = (listener.addr as Deno.NetAddr).port;
    return listener;
  };

  const serveSocket = (listener: Deno.TlsListener, resolved: Map<string, string>): Generation => {
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
  /** Old sockets still closing. */
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
    options.onEvent?.("tls socket replaced", { port, swaps });
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
  const stopAccepting = async () => {
    closed = true;
    unsubscribe();
    await swapping;
    await current.close();
    await Promise.allSettled([...draining]);
  };

  return {
    get port() {
      return port;
    },
    get swaps() {
      return swaps;
    },
    stopAccepting,
    async shutdown() {
      await stopAccepting();
      await handOver.shutdown();
    },
  };
}

/**
 * Entrypoint listeners. Every accepted socket is Portico's: plain ones go
 * straight to the HTTP/1.1 connection engine; TLS ones (from the listener
 * an extension provides) finish their handshake first, then HTTP/1.1 goes
 * to the engine and a connection that negotiated `h2` by ALPN is handed to
 * Deno's native server for that one connection.
 *
 * @module
 */

import type { EntryPointConfig } from "../config/types.ts";
import type { ConnectionInfo } from "../contracts.ts";
import { HttpEngine } from "../engine/connection.ts";
import type { ExchangeHandler } from "../engine/exchange.ts";
import type { Logger } from "../log/logger.ts";
import type { AcceptedConnections, TlsListener } from "../tls/listener.ts";
import type { EntryPointHandler } from "../contracts.ts";
import type { Listener } from "./listener.ts";
import type { TlsRelay } from "../tls/runtime.ts";
import { pipe } from "../proxy/upgrade.ts";
import { closeQuietly, ReadBuffer, writeAll } from "../engine/socket.ts";
import { guardHandler, limitsFor } from "./limits.ts";
import { parseProxyHeader } from "../engine/proxy_protocol.ts";
import { TrustedNetworks } from "../router/trusted.ts";
import { parseClientHello } from "../engine/client_hello.ts";
import { startSwitchingListener } from "./switching_listener.ts";
import { type CertificatePicker, terminateTls } from "../tls/terminate_after_peek.ts";
import { endsTlsHere, httpsTermination } from "../tls/termination.ts";
import { dispatchPlain, type DispatchTable, dispatchTls, dispatchTlsTcpOnly, routesAtAccept } from "../tcp/dispatch.ts";
import { POSTGRES_SSL_REQUEST, POSTGRES_YES, startsLikeSslRequest } from "../tcp/postgres.ts";
import type { TcpRoute } from "../tcp/build.ts";
import type { TcpClient } from "../tcp/service.ts";

/** The current generation's TCP routes, as the listeners read them per connection. */
export interface TcpAccess {
  /** The dispatch table of an entrypoint; undefined when no TCP route is on it. */
  table(entryPoint: string): DispatchTable<TcpRoute> | undefined;
  /** A terminating TCP route, which the TLS side serves once the handshake is done. */
  terminating(entryPoint: string, router: string): TcpRoute | undefined;
  /**
   * The certificate for an SNI name, when this isolate holds the certificates:
   * terminating routes then end TLS in place instead of through the TLS side.
   */
  certificate?: CertificatePicker;
  /** True while some SNI names need their handshake ended by Portico (client certificates). */
  peekTls?(): boolean;
}

/** How one entrypoint serves: the engine for HTTP/1.1, a Web handler for HTTP/2. */
export interface EntryPointServing {
  engine: HttpEngine;
  /** Takes accepted TLS connections: h2 to the native server, the rest to the engine. */
  tls: AcceptedConnections;
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
  const internal = (Deno as any)[(Deno as any).internal] as { serveHttpOnConnection?: ServeOnConnection } | undefined;
  const fn = internal?.serveHttpOnConnection;
  if (typeof fn !== "function") {
    throw new Error(`this Deno (${Deno.version.deno}) cannot serve HTTP/2 on an accepted connection; use Deno 2.9`);
  }
  return fn;
}

/** The engine and the TLS hand-over of `entryPoint`, with its limits. */
export function servingFor(
  name: string,
  entryPoint: EntryPointConfig,
  exchangeHandler: ExchangeHandler,
  webHandler: EntryPointHandler,
  log: Logger,
  tcp?: TcpAccess,
): EntryPointServing {
  const limits = limitsFor(entryPoint);
  const engine = new HttpEngine({
    limits: { ...limits, maxRequestLine: Math.min(16 * 1024, limits.maxHeaderBytes) },
    handler: exchangeHandler,
    onError: (err) => log.error("request handling failed", { entryPoint: name, error: (err as Error).message }),
    onEvent: (event, fields) => log.debug(event, { entryPoint: name, ...fields }),
  });
  // HTTP/2 requests are Web Requests: the request-level limits apply to them
  // (head size, body and write deadlines); the socket cap is the engine's.
  const h2Handler = guardHandler({ ...limits, maxConnections: undefined }, webHandler);
  const h2Servers = new Set<NativeServer>();
  const never = new AbortController();
  let serveH2: ServeOnConnection | undefined;
  const tls: AcceptedConnections = {
    serve(conn, info) {
      const tlsConn = conn as Deno.TlsConn;
      // A handshake that never finishes is cut like a head that never arrives.
      const timer = limits.readTimeout > 0 ? setTimeout(() => closeQuietly(conn), limits.readTimeout) : undefined;
      tlsConn.handshake().then((hs) => {
        clearTimeout(timer);
        if (info.tcpRouter !== undefined) {
          // A terminating TCP router: the plain bytes go to its service.
          const route = tcp?.terminating(name, info.tcpRouter);
          // Deno's TLS ended this one: options it cannot honour refuse rather than serve without them.
          if (!route || endsTlsHere(route.tlsOptions)) return closeQuietly(conn);
          return void route.serve(tcpClient(conn, info, new Uint8Array(0)));
        }
        if (hs.alpnProtocol !== "h2") return engine.serve(conn, info);
        if (engine.draining) return closeQuietly(conn);
        try {
          serveH2 ??= serveOnConnection();
          const server = serveH2(
            conn,
            never.signal,
            (request) => h2Handler(request, info),
            (error) => {
              log.error("request handling failed", { entryPoint: name, error: String(error) });
              return new Response("Internal Server Error", { status: 500 });
            },
            () => {},
          );
          h2Servers.add(server);
          server.finished.catch(() => {}).finally(() => h2Servers.delete(server));
        } catch (error) {
          log.error("HTTP/2 connection refused", { entryPoint: name, error: String(error) });
          closeQuietly(conn);
        }
      }, (error) => {
        clearTimeout(timer);
        log.debug("TLS handshake failed", { entryPoint: name, error: String(error) });
        closeQuietly(conn);
      });
    },
    async shutdown() {
      await Promise.all([engine.shutdown(), ...[...h2Servers].map((s) => s.shutdown().catch(() => {}))]);
    },
  };
  return { engine, tls };
}

/** What the sniff step reads at most before deciding: a PROXY header and the first bytes after it. */
const SNIFF_BYTES = 16 * 1024;

/** The first byte of a TLS record (a ClientHello starts with a handshake record). */
const TLS_HANDSHAKE = 0x16;

/**
 * Listens on a plain entrypoint and hands every socket to the engine. With
 * a `tlsRelay`, the entrypoint also speaks TLS on the same port, as
 * Traefik's do: a connection whose first byte opens a TLS record goes to
 * the entrypoint's TLS side; anything else is plain HTTP/1.1.
 */
export function startPlainListener(
  entryPoint: EntryPointConfig,
  serving: EntryPointServing,
  tlsRelay?: TlsRelay,
  reusePort = false,
  tcpTable?: () => DispatchTable<TcpRoute> | undefined,
  tcpCertificate?: CertificatePicker,
  peekTls?: () => boolean,
): Listener {
  const socket = listenPlain(entryPoint, reusePort);
  const port = (socket.addr as Deno.NetAddr).port;
  let accepted = 0;
  const relayed = new Set<Deno.Conn>();
  const sniffing = new Set<Deno.Conn>();
  // Connections relayed by TCP routes: they count against maxConnections too.
  const tcpOpen = new Set<Deno.Conn>();
  const serveTcp = (route: TcpRoute, client: TcpClient) => {
    tcpOpen.add(client.conn);
    void route.serve(client).finally(() => tcpOpen.delete(client.conn));
  };
  const { readTimeout } = limitsFor(entryPoint);
  const proxyProtocol = entryPoint.proxyProtocol;
  const proxyTrusted = proxyProtocol && !proxyProtocol.insecure ? new TrustedNetworks(proxyProtocol.trustedIPs) : undefined;
  // Reads what decides how to serve the connection: a PROXY header (when
  // configured) and the first byte of what follows it, within readTimeout.
  const sniff = async (
    conn: Deno.TcpConn,
    info: ConnectionInfo,
    tcp: DispatchTable<TcpRoute> | undefined,
  ) => {
    const rb = new ReadBuffer(conn, SNIFF_BYTES);
    const readMore = () => rb.readMore().catch(() => false);
    const timer = readTimeout > 0 ? setTimeout(() => closeQuietly(conn), readTimeout) : undefined;
    let start = 0;
    try {
      if (!(await readMore())) return closeQuietly(conn);
      if (proxyProtocol) {
        let header = parseProxyHeader(rb.buf, rb.end);
        while (header.kind === "incomplete" && rb.end < SNIFF_BYTES && await readMore()) {
          header = parseProxyHeader(rb.buf, rb.end);
        }
        if (header.kind === "incomplete" || header.kind === "error") return closeQuietly(conn);
        if (header.kind === "header") {
          // A header from a peer that is not trusted could claim any client: refuse the connection.
          if (proxyTrusted && !proxyTrusted.contains(info.remoteAddr)) return closeQuietly(conn);
          if (header.source) info.remoteAddr = header.source.address;
          start = header.end;
          if (tcp && routesAtAccept(tcp)) {
            // Behind the header may come nothing until the backend speaks first.
            const decision = dispatchPlain(tcp, { serverName: "", clientIp: info.remoteAddr, alpn: [] });
            if (decision.to === "tcp") {
              clearTimeout(timer);
              sniffing.delete(conn);
              return serveTcp(decision.route, tcpClient(conn, info, rb.buf.slice(start, rb.end)));
            }
          }
          if (start === rb.end && !(await readMore())) return closeQuietly(conn);
        }
      }
      let postgres = false;
      if (tcp && tcp.tls.length > 0 && startsLikeSslRequest(rb.buf, start, rb.end)) {
        // Postgres asks for TLS in clear first (SSLRequest); answer yes, then read its ClientHello.
        while (rb.end - start < POSTGRES_SSL_REQUEST.length && await readMore()) { /* the rest of the 8 bytes */ }
        if (rb.end - start >= POSTGRES_SSL_REQUEST.length && startsLikeSslRequest(rb.buf, start, start + 8)) {
          postgres = true;
          start += POSTGRES_SSL_REQUEST.length;
          try {
            await writeAll(conn, POSTGRES_YES);
          } catch {
            return closeQuietly(conn);
          }
          if (start === rb.end && !(await readMore())) return closeQuietly(conn);
          if (rb.buf[start] !== TLS_HANDSHAKE) return closeQuietly(conn);
        }
      }
      const peek = tcp !== undefined || (tcpCertificate !== undefined && peekTls?.() === true);
      if (peek && rb.buf[start] === TLS_HANDSHAKE) {
        // A TLS connection on an entrypoint with TCP routes or client-certificate names: its ClientHello decides.
        let hello = parseClientHello(rb.buf.subarray(start, rb.end), rb.end - start);
        while (hello.kind === "incomplete" && await readMore()) {
          hello = parseClientHello(rb.buf.subarray(start, rb.end), rb.end - start);
        }
        if (hello.kind !== "hello") return closeQuietly(conn);
        const seen = { serverName: hello.info.serverName, clientIp: info.remoteAddr, alpn: hello.info.alpn };
        // After an SSLRequest only TLS TCP routes may take it (as Traefik): HTTPS cannot speak Postgres.
        const decision = !tcp ? { to: "http" as const } : postgres ? dispatchTlsTcpOnly(tcp, seen) : dispatchTls(tcp, seen);
        if (postgres && decision.to !== "tcp") return closeQuietly(conn);
        if (decision.to === "tcp") {
          clearTimeout(timer);
          const bytes = rb.buf.slice(start, rb.end);
          sniffing.delete(conn);
          if (decision.route.kind === "passthrough") {
            return serveTcp(decision.route, { ...tcpClient(conn, info, bytes), postgresSslRequest: postgres });
          }
          if (tcpCertificate) {
            const route = decision.route;
            conn.setNoDelay(true);
            const ended = await terminateTls(conn, bytes, hello.info.serverName, tcpCertificate, readTimeout, route.tlsOptions)
              .catch(() => undefined);
            if (ended) serveTcp(route, tcpClient(ended, { ...info, tls: true }, new Uint8Array(0)));
            return;
          }
          // The loopback hand-off cannot replay an SSLRequest's answer: Postgres needs TLS ended here.
          if (!tlsRelay || postgres) return closeQuietly(conn);
          return await relayed_(conn, bytes, { ...info, tcpRouter: decision.route.name });
        }
        // HTTPS for a name whose options ask for client certificates: ended here, then the engine.
        const mutual = tcpCertificate && httpsTermination(tcpCertificate, hello.info.serverName);
        if (mutual) {
          clearTimeout(timer);
          sniffing.delete(conn);
          conn.setNoDelay(true);
          const ended = await terminateTls(conn, rb.buf.slice(start, rb.end), hello.info.serverName, tcpCertificate, readTimeout, mutual)
            .catch(() => undefined);
          if (ended) serving.engine.serve(ended, { ...info, tls: true, peerCertificates: ended.peerCertificates });
          return;
        }
      }
    } finally {
      clearTimeout(timer);
    }
    const first = rb.buf.subarray(start, rb.end);
    sniffing.delete(conn);
    if (first[0] !== TLS_HANDSHAKE && tcp) {
      const decision = dispatchPlain(tcp, { serverName: "", clientIp: info.remoteAddr, alpn: [] });
      if (decision.to === "tcp") return serveTcp(decision.route, tcpClient(conn, info, first.slice()));
    }
    if (!tlsRelay || first[0] !== TLS_HANDSHAKE) return serving.engine.serve(conn, info, first);
    await relayed_(conn, first, info);
  };
  const relayed_ = async (conn: Deno.TcpConn, first: Uint8Array, info: ConnectionInfo) => {
    relayed.add(conn);
    try {
      await relayToTls(conn, first, info, tlsRelay!);
    } finally {
      relayed.delete(conn);
    }
  };
  const accepting = (async () => {
    for (;;) {
      let conn: Deno.TcpConn;
      try {
        conn = await socket.accept();
      } catch (err) {
        if (err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted) return;
        // EMFILE and the like: the listener stays; wait a moment and go on.
        await new Promise((r) => setTimeout(r, 10));
        continue;
      }
      accepted++;
      const info: ConnectionInfo = { remoteAddr: (conn.remoteAddr as Deno.NetAddr).hostname, tls: false, port };
      const tcp = tcpTable?.();
      if (!tlsRelay && !proxyProtocol && !tcp) {
        serving.engine.serve(conn, info);
        continue;
      }
      // Sockets still being sniffed or relayed count against the cap too.
      if (serving.engine.refuseOverCap(conn, sniffing.size + relayed.size + tcpOpen.size)) continue;
      if (tcp && !proxyProtocol && routesAtAccept(tcp)) {
        // Only non-TLS TCP routes here: route now, so server-first protocols work.
        const decision = dispatchPlain(tcp, {
          serverName: "",
          clientIp: info.remoteAddr,
          alpn: [],
        });
        if (decision.to === "tcp") {
          serveTcp(decision.route, tcpClient(conn, info, new Uint8Array(0)));
          continue;
        }
      }
      sniffing.add(conn);
      void sniff(conn, info, tcp).finally(() => sniffing.delete(conn));
    }
  })();
  const stopAccepting = async () => {
    try {
      socket.close();
    } catch { /* closed */ }
    await accepting;
  };
  return {
    port,
    shareable: true,
    accepted: () => accepted,
    stopAccepting,
    async shutdown() {
      await stopAccepting();
      await Promise.all([serving.engine.shutdown(), tlsRelay?.shutdown()]);
    },
    closeAll: () => {
      serving.engine.closeAll();
      for (const c of relayed) closeQuietly(c);
      for (const c of tcpOpen) closeQuietly(c);
    },
  };
}

/**
 * Binds a plain entrypoint. With `reusePort`, several isolates bind the same
 * port and the kernel spreads new connections over them.
 */
function listenPlain(entryPoint: EntryPointConfig, reusePort: boolean): Deno.TcpListener {
  const hostname = entryPoint.hostname || "0.0.0.0";
  if (!reusePort) return Deno.listen({ hostname, port: entryPoint.port });
  try {
    return Deno.listen({ hostname, port: entryPoint.port, reusePort: true });
  } catch (err) {
    if (err instanceof TypeError || /unstable/i.test(String(err))) {
      throw new Error(`server.workers > 1 needs SO_REUSEPORT: run Deno with --unstable-net (${(err as Error).message})`);
    }
    throw err;
  }
}

/**
 * Carries a TLS connection that arrived on a plain port to the
 * entrypoint's TLS side over loopback, bytes both ways. The TLS side
 * learns the real client from the relay's local port.
 */
async function relayToTls(conn: Deno.TcpConn, first: Uint8Array, info: ConnectionInfo, relay: TlsRelay): Promise<void> {
  let inner: Deno.TcpConn;
  try {
    inner = await Deno.connect({ hostname: "127.0.0.1", port: await relay.port() });
  } catch {
    return closeQuietly(conn);
  }
  const localPort = (inner.localAddr as Deno.NetAddr).port;
  relay.register(localPort, { ...info, tls: true });
  try {
    inner.setNoDelay(true);
    conn.setNoDelay(true);
    await inner.write(first);
    await Promise.all([pipe(conn, inner), pipe(inner, conn)]);
  } catch { /* either side went away */ } finally {
    relay.unregister(localPort);
    closeQuietly(inner);
    closeQuietly(conn);
  }
}

/** Where TLS is ended: the listener of a TLS entrypoint, and the TLS side of a plain one. */
export interface EntryPointTls {
  listen(name: string, entryPoint: EntryPointConfig, connections: AcceptedConnections): Promise<TlsListener>;
  /** Undefined when this entrypoint's TLS connections are not served here. */
  relay(name: string, connections: AcceptedConnections): TlsRelay | undefined;
}

export interface EntryPointsOptions {
  entryPoints: Record<string, EntryPointConfig>;
  exchangeHandlerFor: (name: string) => ExchangeHandler;
  webHandlerFor: (name: string) => EntryPointHandler;
  log: Logger;
  /** Without it, entrypoints speak plain HTTP only. */
  tls?: EntryPointTls;
  /** Told about each plain entrypoint's TLS side (data-plane workers relay to it). */
  onRelay?: (name: string, relay: TlsRelay) => void;
  /** Plain entrypoints bind with SO_REUSEPORT (data-plane workers share them). */
  reusePort?: boolean;
  tcp?: TcpAccess;
}

/** Starts every entrypoint; on failure closes those already started and rethrows. */
export async function startEntryPoints(options: EntryPointsOptions): Promise<Map<string, Listener>> {
  const { entryPoints, log, tls, tcp } = options;
  const listeners = new Map<string, Listener>();
  try {
    for (const [name, ep] of Object.entries(entryPoints)) {
      const serving = servingFor(name, ep, options.exchangeHandlerFor(name), options.webHandlerFor(name), log, tcp);
      const tcpTable = tcp && (() => tcp.table(name));
      let relay: TlsRelay | undefined;
      const relayFor = () => {
        if (!tls) return undefined;
        if (relay) return relay;
        relay = tls.relay(name, serving.tls);
        if (relay) options.onRelay?.(name, relay);
        return relay;
      };
      const peekTls = tcp?.peekTls && (() => tcp.peekTls!());
      let listener: Listener;
      if (tls && ep.http.tls) {
        // TLS through and through, unless TCP routes need the ClientHello first.
        // A port picked by the system (0) is kept across switches.
        let bound = ep;
        const start = async (mode: "tls" | "sniff"): Promise<Listener> => {
          const l: Listener = mode === "sniff"
            ? startPlainListener(bound, serving, relayFor(), false, tcpTable, tcp?.certificate, peekTls)
            : await tls.listen(name, bound, serving.tls);
          bound = { ...ep, port: l.port };
          return l;
        };
        listener = await startSwitchingListener({
          name,
          log,
          wanted: () => (tcpTable?.() || peekTls?.() ? "sniff" : "tls"),
          start,
          shutdownShared: async () => {
            await Promise.all([serving.tls.shutdown(), relay?.shutdown()]);
          },
          closeAllShared: () => serving.engine.closeAll(),
        });
      } else {
        listener = startPlainListener(ep, serving, relayFor(), options.reusePort ?? false, tcpTable, tcp?.certificate, peekTls);
      }
      listeners.set(name, listener);
      log.info("entrypoint listening", { entryPoint: name, address: ep.address, port: listener.port, tls: Boolean(ep.http.tls) });
    }
  } catch (err) {
    await Promise.all([...listeners.values()].map((l) => l.shutdown()));
    const ep = entryPoints[[...Object.keys(entryPoints)][listeners.size]];
    const where = ep
      ? `entryPoint ${[...Object.keys(entryPoints)][listeners.size]} (${ep.address})`
      : "entrypoint";
    throw new Error(`cannot listen on ${where}: ${(err as Error).message}`);
  }
  return listeners;
}

/** What a TCP service needs of an accepted connection. */
function tcpClient(conn: Deno.Conn, info: ConnectionInfo, initial: Uint8Array): TcpClient {
  const remote = conn.remoteAddr as Deno.NetAddr, local = conn.localAddr as Deno.NetAddr;
  // Relayed bytes must leave at once: Nagle's wait for an ACK that the peer delays stalls every
  // exchange by tens of milliseconds (measured: 1.8k against 7k 100 KB echoes per second).
  try {
    (conn as Deno.TcpConn).setNoDelay?.(true);
  } catch { /* TLS connections have none; closed ones throw */ }
  return {
    conn,
    initial,
    clientIp: info.remoteAddr,
    // Behind a PROXY header the port is the balancer's; the address is the client's.
    clientPort: remote.port ?? 0,
    localIp: local.hostname ?? "",
    localPort: local.port ?? info.port,
  };
}

/**
 * Which handler a new connection on an entrypoint goes to, in Traefik's
 * order (`pkg/server/router/tcp/router.go`, ServeTCP). Pure: tables and
 * what the connection showed in, a decision out.
 *
 * - A plain connection: the first non-TLS TCP route that matches, else the
 *   HTTP routers.
 * - A TLS connection (by its ClientHello): an ACME TLS-ALPN challenge; an HTTPS router whose Host names
 *   the SNI; then a specific TLS TCP route (passthrough or terminating);
 *   then an HTTPS router without a Host (HTTPS catch-all); then a
 *   `HostSNI(`*`)` TLS TCP route; else HTTPS, whose routers answer 404.
 * - When the entrypoint has only non-TLS TCP routes (no TLS TCP route, no
 *   HTTPS router), a connection is routed at accept, before any byte, so
 *   protocols where the server speaks first (SMTP, MySQL) work.
 *
 * @module
 */

import type { CompiledTcpRule, TcpConnData } from "../rules/tcp.ts";

/** A TCP route as dispatch sees it. */
export interface DispatchRoute {
  readonly name: string;
  readonly rule: CompiledTcpRule;
}

/** The routes of one entrypoint, each list in the order they are tried. */
export interface DispatchTable<R extends DispatchRoute = DispatchRoute> {
  /** Non-TLS TCP routes. */
  plain: readonly R[];
  /** TLS TCP routes, passthrough and terminating. */
  tls: readonly R[];
  /** HTTPS routers on this entrypoint, by the SNI names their Host rules give. */
  https: {
    /** True when an HTTPS router's Host names `serverName`. */
    names(serverName: string): boolean;
    /** An HTTPS router without any Host (it takes any SNI). */
    catchAll: boolean;
    /** Whether the entrypoint has HTTPS routers at all. */
    any: boolean;
  };
}

export type Decision<R> =
  | { to: "tcp"; route: R }
  | { to: "http" };

/** True when connections are routed at accept, without waiting for a first byte. */
export function routesAtAccept(table: DispatchTable): boolean {
  return table.plain.length > 0 && table.tls.length === 0 && !table.https.any;
}

function first<R extends DispatchRoute>(routes: readonly R[], conn: TcpConnData): R | undefined {
  for (const r of routes) if (r.rule.match(conn)) return r;
  return undefined;
}

/** A connection that is not TLS (or is routed at accept, with nothing read). */
export function dispatchPlain<R extends DispatchRoute>(
  table: DispatchTable<R>,
  conn: TcpConnData,
): Decision<R> {
  const route = first(table.plain, conn);
  return route ? { to: "tcp", route } : { to: "http" };
}

/** A TLS connection, by what its ClientHello showed. */
export function dispatchTls<R extends DispatchRoute>(
  table: DispatchTable<R>,
  conn: TcpConnData,
): Decision<R> {
  // TLS-ALPN-01 challenges are answered by the TLS side, as Traefik's ACME handler takes them first.
  if (conn.alpn.includes("acme-tls/1")) return { to: "http" };
  if (conn.serverName !== "" && table.https.names(conn.serverName)) return { to: "http" };
  const route = first(table.tls, conn);
  if (route && !route.rule.catchAll) return { to: "tcp", route };
  if (table.https.catchAll) return { to: "http" };
  return route ? { to: "tcp", route } : { to: "http" };
}

/** A Postgres connection after its SSLRequest: only TLS TCP routes, catch-all included (Traefik's servePostgres). */
export function dispatchTlsTcpOnly<R extends DispatchRoute>(table: DispatchTable<R>, conn: TcpConnData): Decision<R> {
  const route = first(table.tls, conn);
  return route ? { to: "tcp", route } : { to: "http" };
}

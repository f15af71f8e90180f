/**
 * The vocabulary several layers share: what a connection is, what a finished
 * request looks like to its observers, and how a reload ended. It sits at the
 * bottom of the import graph and imports nothing, so the engine, the router,
 * the access log, metrics and the server can all speak it without reaching
 * up into each other.
 *
 * @module
 */

/** Who is on the other end of a connection, as the engine accepted it. */
export interface ConnectionInfo {
  remoteAddr: string;
  tls: boolean;
  /** The port the client connected to. */
  port: number;
  /** Set on a TLS connection handed to the TLS side for a terminating TCP router: its name. */
  tcpRouter?: string;
  /** The client's certificate chain as DER, leaf first, when Portico ended a TLS handshake that asked for one. */
  peerCertificates?: readonly Uint8Array[];
}

/**
 * What request observers (access log, metrics) see of a finished request,
 * the same for the byte-level path and the Web path.
 */
export interface ObservedRequest {
  method: string;
  /** Path and query as the client sent them. */
  target: string;
  status: number;
  /** Response body size when it was announced. */
  size: number | undefined;
  /** A request header (repeated fields joined), or null. */
  header(name: string): string | null;
  /** The user an auth middleware let through (Traefik's ClientUsername), when one did. */
  user?: string;
}

/** Called once per finished request. Must not block or throw. */
export type RequestObserver = (
  entryPoint: string,
  request: ObservedRequest,
  conn: ConnectionInfo,
  router: string | undefined,
  started: number,
) => void;

/** The outcome of the last attempt to apply configuration. */
export interface ReloadStatus {
  time: Date;
  success: boolean;
  provider?: string;
  error?: string;
}

/** Answers one Web request (HTTP/2, or a request a guard turned away) that arrived on an entrypoint. */
export type EntryPointHandler = (request: Request, conn: ConnectionInfo) => Promise<Response>;

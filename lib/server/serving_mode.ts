/**
 * How entrypoints serve HTTP, picked at start with `PORTICO_SERVING`:
 * - `listener` (default): one native server per listening socket. Fastest
 *   path, WebSockets work (plain and TLS). Deno gives no per-connection
 *   handle, so the head `readTimeout` and `idleTimeout` are not enforced and
 *   `maxConnections` caps requests in flight; a certificate change for a
 *   name already served drains the TLS socket's open connections.
 * - `connection`: one native server per accepted connection
 *   (connection_guard.ts). Every timeout is enforced and `maxConnections`
 *   caps sockets; TLS connections outlive certificate changes; WebSocket
 *   upgrades do not work on Deno 2.9.6.
 *
 * @module
 */

/** See the module doc. */
export type ServingMode = "listener" | "connection";

/** The environment variable that picks the {@linkcode ServingMode}. */
export const SERVING_ENV = "PORTICO_SERVING";

/** Reads {@linkcode SERVING_ENV}; any other value is an error naming it. */
export function servingMode(value: string | undefined): ServingMode {
  if (value === undefined || value === "" || value === "listener") return "listener";
  if (value === "connection") return "connection";
  throw new Error(
    `${SERVING_ENV}=${JSON.stringify(value)}: expected "listener" (default) or "connection"`,
  );
}

/**
 * Builds the headers `forwardAuth` sends to the auth server, as Traefik
 * v3.7 builds them. Traefik's entrypoint has already run when forwardAuth
 * does, so the request it copies carries X-Real-Ip, X-Forwarded-Proto,
 * -Port, -Host and -Server (and a trusted client's own X-Forwarded-*);
 * Portico adds those upstream, later, so they are put in here first. Then
 * one of Traefik's three writers, chosen by `trustForwardHeader`:
 *
 * - unset (Traefik's legacy writer): every header is copied, then
 *   X-Forwarded-For, -Proto, -Method, -Host and -Uri are overwritten.
 * - `false`: every X-Forwarded-* and X-Real-Ip is dropped, then For,
 *   Method, Proto, Port, Host and Uri are set from the request.
 * - `true`: kept as they came; X-Forwarded-For is appended to; missing ones
 *   are filled in. With `authRequestHeaders`, the X- headers stay allowed.
 *
 * Hop-by-hop headers are removed by Traefik's own list, which keeps
 * Proxy-Authorization (meant for the auth server, RFC 7235). Pure.
 *
 * @module
 */

import type { ProxyRequest } from "../../services/types.ts";

/** Traefik's `forwardedheaders.XHeadersSet`, lower-cased. */
const MANAGED_X_HEADERS = new Set([
  "x-forwarded-proto",
  "x-forwarded-scheme",
  "x-forwarded-for",
  "x-forwarded-host",
  "x-forwarded-port",
  "x-forwarded-server",
  "x-forwarded-uri",
  "x-forwarded-method",
  "x-forwarded-prefix",
  "x-forwarded-tls-client-cert",
  "x-forwarded-tls-client-cert-info",
  "x-scheme",
  "x-real-ip",
]);

/** Removed from the auth request (oxy's names: "Trailers", not "Trailer"). */
const HOP_HEADERS = new Set([
  "connection",
  "keep-alive",
  "te",
  "trailers",
  "transfer-encoding",
  "upgrade",
]);

/**
 * Not sent by Go's client whatever the header map says (`Host`, the body
 * framing), or not worth sending on a bodiless request (`Expect`).
 */
const NEVER_SENT = new Set(["host", "content-length", "expect"]);

/** Whether `name` is a managed X header, dash or underscore form (`X_Forwarded_For`). */
function isManagedXHeader(name: string): boolean {
  return MANAGED_X_HEADERS.has(name) ||
    (name.includes("_") && MANAGED_X_HEADERS.has(name.replaceAll("_", "-")));
}

export interface AuthRequestOptions {
  /** undefined: Traefik's legacy behaviour when the option is not set. */
  trustForwardHeader: boolean | undefined;
  /** Lower-cased names to keep; empty keeps all. */
  authRequestHeaders: ReadonlySet<string>;
}

/** Traefik's `forwardedPort`: the Host's port, else 443 for https/wss, else 80. */
export function forwardedPort(host: string, forwardedProto: string | undefined, tls: boolean) {
  const port = /^(?:\[[^\]]*\]|[^:[\]]*):(\d*)$/.exec(host)?.[1];
  if (port) return port;
  if (forwardedProto === "https" || forwardedProto === "wss" || tls) return "443";
  return "80";
}

/**
 * The auth request's headers as a plain object for `node:http`.
 *
 * @example
 * ```ts
 * const headers = authRequestHeaders(c.get("proxy"), { trustForwardHeader: false, authRequestHeaders: new Set() });
 * ```
 */
export function authRequestHeaders(
  proxy: ProxyRequest,
  options: AuthRequestOptions,
): Record<string, string> {
  const h = new Map<string, string>();
  // forEach: Deno's Headers iterator re-sorts the list on every step.
  proxy.headers.forEach((value, name) => {
    // Traefik's entrypoint drops an untrusted client's X headers in both spellings.
    if (!proxy.trustForwarded && isManagedXHeader(name)) return;
    h.set(name, value);
  });
  const tls = proxy.proto === "https";
  // What Traefik's entrypoint has added by the time forwardAuth runs.
  if (!h.has("x-real-ip")) h.set("x-real-ip", proxy.clientIp);
  if (!h.has("x-forwarded-proto")) h.set("x-forwarded-proto", proxy.proto);
  if (!h.has("x-forwarded-port")) {
    h.set("x-forwarded-port", forwardedPort(proxy.host, h.get("x-forwarded-proto"), tls));
  }
  if (!h.has("x-forwarded-host") && proxy.host !== "") h.set("x-forwarded-host", proxy.host);
  h.set("x-forwarded-server", proxy.serverName);
  for (const listed of (h.get("connection") ?? "").split(",")) {
    const name = listed.trim().toLowerCase();
    if (name !== "" && !isManagedXHeader(name)) h.delete(name);
  }
  for (const name of HOP_HEADERS) h.delete(name);
  for (const name of NEVER_SENT) h.delete(name);

  const trust = options.trustForwardHeader;
  if (trust === false) {
    for (const name of [...h.keys()]) if (isManagedXHeader(name)) h.delete(name);
  }
  const allowed = options.authRequestHeaders;
  if (allowed.size > 0) {
    const keep = (name: string) =>
      allowed.has(name) || (trust === true && MANAGED_X_HEADERS.has(name));
    for (const name of [...h.keys()]) if (!keep(name)) h.delete(name);
  }

  const method = proxy.request.method;
  if (trust === undefined) {
    h.set("x-forwarded-for", proxy.clientIp);
    h.set("x-forwarded-proto", proxy.proto);
    h.set("x-forwarded-method", method);
    h.set("x-forwarded-host", proxy.host);
    h.set("x-forwarded-uri", proxy.pathAndQuery);
  } else {
    const prior = h.get("x-forwarded-for");
    h.set("x-forwarded-for", prior ? `${prior}, ${proxy.clientIp}` : proxy.clientIp);
    if (!h.has("x-forwarded-method")) h.set("x-forwarded-method", method);
    if (!h.has("x-forwarded-proto")) h.set("x-forwarded-proto", proxy.proto);
    if (!h.has("x-forwarded-port")) {
      h.set("x-forwarded-port", forwardedPort(proxy.host, h.get("x-forwarded-proto"), tls));
    }
    if (!h.has("x-forwarded-host")) h.set("x-forwarded-host", proxy.host);
    if (!h.has("x-forwarded-uri")) h.set("x-forwarded-uri", proxy.pathAndQuery);
  }
  return Object.fromEntries(h);
}

/** Go's http.CanonicalHeaderKey, so `authResponseHeadersRegex` sees names as in Traefik. */
export function canonicalHeaderKey(name: string): string {
  return name.toLowerCase().replace(
    /(^|-)([a-z])/g,
    (_, dash: string, c: string) => dash + c.toUpperCase(),
  );
}

/**
 * Builds the request `forwardAuth` sends to the auth server, with Traefik's
 * header rules: the client's headers minus hop-by-hop ones (optionally only
 * `authRequestHeaders`), then X-Forwarded-Method/Proto/Host/Uri/For, taken
 * from the client's headers only when `trustForwardHeader` is set. Pure.
 *
 * @module
 */

import type { ProxyRequest } from "../../services/types.ts";
import { FORWARDED_NAMES, HOP_BY_HOP } from "../../proxy/headers.ts";

/**
 * Not sent to the auth server: hop-by-hop headers, and those that would make
 * it wait for a body the bodiless GET never sends.
 */
const NOT_FORWARDED = new Set([...HOP_BY_HOP, "content-length", "expect", "host"]);

/** X-Forwarded-* names that an untrusted client must not be able to set. */
const FORWARDED = FORWARDED_NAMES;

export interface AuthRequestOptions {
  trustForwardHeader: boolean;
  /** Lower-cased names to keep; empty keeps all. */
  authRequestHeaders: Set<string>;
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
  const incoming = proxy.headers;
  const listed = new Set<string>();
  for (const name of (incoming.get("connection") ?? "").split(",")) {
    listed.add(name.trim().toLowerCase());
  }
  const out: Record<string, string> = {};
  // forEach: Deno's Headers iterator re-sorts the list on every step.
  incoming.forEach((value, name) => {
    if (NOT_FORWARDED.has(name) || listed.has(name)) return;
    // The entrypoint did not trust this client: its X-Forwarded-* are not facts.
    if (!proxy.trustForwarded && FORWARDED.includes(name)) return;
    if (options.authRequestHeaders.size > 0 && !options.authRequestHeaders.has(name)) return;
    out[name] = value;
  });
  const trusted = (name: string) =>
    options.trustForwardHeader && proxy.trustForwarded ? incoming.get(name) : null;
  out["x-forwarded-method"] = trusted("x-forwarded-method") || proxy.request.method;
  out["x-forwarded-proto"] = trusted("x-forwarded-proto") || proxy.proto;
  out["x-forwarded-host"] = trusted("x-forwarded-host") || proxy.host;
  out["x-forwarded-uri"] = trusted("x-forwarded-uri") || proxy.pathAndQuery;
  const priorFor = trusted("x-forwarded-for");
  out["x-forwarded-for"] = priorFor ? `${priorFor}, ${proxy.clientIp}` : proxy.clientIp;
  return out;
}

/** Go's http.CanonicalHeaderKey, so `authResponseHeadersRegex` sees names as in Traefik. */
export function canonicalHeaderKey(name: string): string {
  return name.toLowerCase().replace(
    /(^|-)([a-z])/g,
    (_, dash: string, c: string) => dash + c.toUpperCase(),
  );
}

/**
 * The `redirectScheme` middleware: redirects to another scheme (and port),
 * unless the request already arrived that way, as Traefik v3 does.
 *
 * @module
 */

import { readOptions } from "../options.ts";
import type { MiddlewareFactory } from "../types.ts";
import type { ProxyRequest } from "../../services/types.ts";
import { ABSOLUTE_TARGET, redirectTo, requestUri } from "../shared/redirect_core.ts";

/** Splits a Host header into host and ":port" (IPv6 brackets kept). */
export function splitHostPort(host: string): { host: string; port: string } {
  const m = /^(\[[^\]]*\]|[^:]*)(:\d*)?$/.exec(host);
  if (!m) return { host, port: "" };
  return { host: m[1], port: m[2] && m[2] !== ":" ? m[2] : "" };
}

/**
 * The scheme after `X-Forwarded-Proto`, as Traefik's redirectScheme sees
 * it: Traefik's entrypoint sets the header from the TLS state unless a
 * trusted client sent it, so only a trusted client's value can differ from
 * the connection; a value other than http/ws/https/wss leaves `current`.
 */
function forwardedScheme(proxy: ProxyRequest, current: string): string {
  const sent = proxy.trustForwarded ? proxy.headers.get("x-forwarded-proto") : null;
  if (!sent) return proxy.proto;
  const value = sent.toLowerCase();
  if (value === "http" || value === "ws") return "http";
  if (value === "https" || value === "wss") return "https";
  return current;
}

function withoutDefaultPort(scheme: string, port: string): string {
  return (scheme === "http" && port === ":80") || (scheme === "https" && port === ":443")
    ? ""
    : port;
}

/**
 * Builds `redirectScheme` from `{ scheme, port?, permanent? }`. Answers
 * 302/307 (301/308 when `permanent`) with the same host, path and query;
 * the port becomes `port`, or none. The current URL is the one Traefik
 * sees: an absolute-form target counts with its scheme, host and port; TLS
 * means https; a trusted `X-Forwarded-Proto` (http/ws, https/wss) wins. A
 * request already on the target URL goes on. Unlike Traefik, the scheme is
 * lower-cased (Traefik would redirect `HTTPS` forever) and the port must
 * be a number, both checked at build; an IPv6 Host keeps its brackets
 * (Traefik drops them for an origin-form request with a port).
 *
 * @example
 * ```toml
 * [http.middlewares.to-https.redirectScheme]
 * scheme = "https"
 * port = "8443"
 * permanent = true
 * ```
 */
export const redirectScheme: MiddlewareFactory = (options, context) => {
  const o = readOptions(context.name, options);
  o.unknownKeysCheck(["scheme", "port", "permanent"]);
  const scheme = o.string("scheme", { required: true }).toLowerCase();
  if (!/^[a-z][a-z0-9+.-]*$/.test(scheme)) {
    o.fail("scheme", `expected a URL scheme such as "https", found ${JSON.stringify(scheme)}`);
  }
  const portValue = o.string("port", { default: "" });
  if (
    portValue !== "" &&
    !(/^\d+$/.test(portValue) && Number(portValue) > 0 && Number(portValue) < 65536)
  ) {
    o.fail("port", `expected a port number from 1 to 65535, found ${JSON.stringify(portValue)}`);
  }
  const permanent = o.bool("permanent", { default: false });
  const targetPort = withoutDefaultPort(scheme, portValue ? `:${portValue}` : "");

  return async (c, next) => {
    const proxy = c.get("proxy");
    let current: string = proxy.proto;
    let { host, port } = splitHostPort(proxy.host);
    let uri = requestUri(proxy);
    const m = ABSOLUTE_TARGET.exec(uri);
    if (m) {
      current = m[1];
      if (m[2]) host = m[2];
      if (m[3]) port = m[3];
      uri = m[4];
    }
    if (proxy.proto === "https") current = "https";
    current = forwardedScheme(proxy, current);
    const oldUrl = `${current}://${host}${withoutDefaultPort(current, port)}${uri}`;
    const newUrl = `${scheme}://${host}${targetPort}${uri}`;
    if (newUrl === oldUrl) return await next();
    return redirectTo(newUrl, permanent, proxy.request.method);
  };
};

/**
 * The `redirectScheme` middleware: redirects to another scheme (and port),
 * unless the request already arrived that way, as Traefik v3 does.
 *
 * @module
 */

import { redirectStatus } from "../../server/internal.ts";
import { readOptions } from "../options.ts";
import type { MiddlewareFactory } from "../types.ts";
import type { ProxyRequest } from "../../services/types.ts";

/** Splits a Host header into host and ":port" (IPv6 brackets kept). */
export function splitHostPort(host: string): { host: string; port: string } {
  const m = /^(\[[^\]]*\]|[^:]*)(:\d*)?$/.exec(host);
  if (!m) return { host, port: "" };
  return { host: m[1], port: m[2] && m[2] !== ":" ? m[2] : "" };
}

/**
 * The scheme the client used: the TLS state, or `X-Forwarded-Proto` from a
 * trusted client (ws/wss count as http/https, as in Traefik).
 */
export function clientScheme(proxy: ProxyRequest): "http" | "https" {
  const forwarded = proxy.trustForwarded
    ? proxy.headers.get("x-forwarded-proto")?.toLowerCase()
    : undefined;
  if (forwarded === "http" || forwarded === "ws") return "http";
  if (forwarded === "https" || forwarded === "wss") return "https";
  return proxy.proto;
}

function withoutDefaultPort(scheme: string, port: string): string {
  return (scheme === "http" && port === ":80") || (scheme === "https" && port === ":443")
    ? ""
    : port;
}

/**
 * Builds `redirectScheme` from `{ scheme, port?, permanent? }`. Answers
 * 302/307 (301/308 when `permanent`) with the same host and path; the port
 * becomes `port`, or none. A request already on the target URL goes on.
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
    const current = clientScheme(proxy);
    const { host, port } = splitHostPort(proxy.host);
    const oldUrl = `${current}://${host}${withoutDefaultPort(current, port)}${proxy.pathAndQuery}`;
    const newUrl = `${scheme}://${host}${targetPort}${proxy.pathAndQuery}`;
    if (newUrl === oldUrl) return await next();
    const status = redirectStatus(permanent, proxy.request.method);
    return new Response(STATUS_TEXT[status], {
      status,
      headers: { location: newUrl, "content-type": "text/plain; charset=utf-8" },
    });
  };
};

/** Go's `http.StatusText` for the redirect statuses, which Traefik writes as the body. */
export const STATUS_TEXT: Record<number, string> = {
  301: "Moved Permanently",
  302: "Found",
  307: "Temporary Redirect",
  308: "Permanent Redirect",
};

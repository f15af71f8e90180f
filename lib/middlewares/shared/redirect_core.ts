/**
 * What `redirectRegex` and `redirectScheme` share: the URL Traefik matches
 * (built from the request target as Go's `RequestURI` holds it, so an
 * absolute-form target counts with its own scheme, host and port), and the
 * answer once a new URL is known: 502 when Go could not parse it, else a
 * redirect whose `Location` is the parsed URL written back.
 *
 * @module
 */

import { pathAndQueryOf } from "../../engine/web_request.ts";
import type { ProxyRequest } from "../../services/types.ts";
import { plainResponse } from "./responses.ts";
import { STATUS_TEXT } from "../../http_status.ts";
import { formatGoUrl, parseGoUrl } from "./go_url.ts";

/** Traefik's pattern for an absolute-form request target: scheme, host, port, the rest. */
export const ABSOLUTE_TARGET = /^(https?):\/\/(\[[\w:.]+\]|[\w._-]+)?(:\d+)?(.*)$/;

/**
 * The request target as Go's `RequestURI` holds it: the client's
 * absolute-form target while no middleware has rewritten the path, else the
 * path and query that will go upstream.
 */
export function requestUri(proxy: ProxyRequest): string {
  const target = proxy.exchange?.head.target;
  if (target && target[0] !== "/" && pathAndQueryOf(target) === proxy.pathAndQuery) return target;
  return proxy.pathAndQuery;
}

/**
 * The answer for a redirect to `newUrl`: 502 when Go's URL parser refuses
 * it (Traefik's answer), else 301/302/307/308 by `permanent` and method,
 * with Go's status text as the body.
 */
export function redirectTo(newUrl: string, permanent: boolean, method: string): Response {
  const parsed = parseGoUrl(newUrl);
  if (!parsed) return plainResponse(502);
  const status = redirectStatus(permanent, method);
  try {
    return new Response(STATUS_TEXT[status], {
      status,
      headers: { location: formatGoUrl(parsed), "content-type": "text/plain; charset=utf-8" },
    });
  } catch {
    // A byte a header cannot carry; Go's parser lets a few through in the query.
    return plainResponse(502);
  }
}

/** Redirect status as Traefik picks it: 301/302 for GET, 308/307 otherwise. */
export function redirectStatus(permanent: boolean, method: string): number {
  if (permanent) return method === "GET" ? 301 : 308;
  return method === "GET" ? 302 : 307;
}

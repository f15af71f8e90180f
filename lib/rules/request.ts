/**
 * @module
 * The request view rule predicates read, built once per request.
 */

import { canonicalHost } from "./host.ts";
import { routingPath } from "./routing_path.ts";

/** What a compiled rule looks at. Build it with {@link matchRequestFrom}. */
export interface MatchRequest {
  /** The method as sent (not case-normalised: `get` does not match ``Method(`GET`)``). */
  method: string;
  /** Lowercased, port stripped, from the URL authority, else the Host header; "" if none. */
  host: string;
  /** The routing path (see `routingPath`). */
  path: string;
  /** Raw query string without `?`; parsed lazily, only by Query matchers. */
  query: string;
  /** Request headers. */
  headers: Headers;
  /** Socket peer address without port; never taken from X-Forwarded-For. */
  clientIp: string;
}

/** Strips a port the way Go's `net.SplitHostPort` would, keeping the value if it fails. */
function stripPort(addr: string): string {
  if (addr[0] === "[") {
    const close = addr.indexOf("]");
    if (close > 0 && addr[close + 1] === ":" && !addr.includes(":", close + 2)) {
      return addr.slice(1, close);
    }
    return addr;
  }
  const colon = addr.indexOf(":");
  if (colon >= 0 && addr.indexOf(":", colon + 1) < 0) return addr.slice(0, colon);
  return addr;
}

/**
 * Builds the {@link MatchRequest} for a request served by `Deno.serve`.
 *
 * `req.url` from `Deno.serve` keeps the request target as sent (no dot-segment removal,
 * no re-encoding), so the path and query are cut from it by hand rather than with `URL`.
 * For an absolute-form target (`GET http://a.com/ HTTP/1.1`) the host is the one in the
 * target, as in Go; if that host is empty (`http://@/`) the Host header is used.
 *
 * @param remoteAddr socket peer address, e.g. `info.remoteAddr.hostname`; a port
 *   (`1.2.3.4:5678`, `[::1]:5678`) is stripped if present.
 * @throws {RoutingPathError} when the path has an invalid percent-encoding: answer 400.
 * @example
 * ```ts
 * Deno.serve((req, info) => {
 *   const view = matchRequestFrom(req, info.remoteAddr.hostname);
 *   return new Response(rule.match(view) ? "matched" : "no", { status: rule.match(view) ? 200 : 404 });
 * });
 * ```
 */
export function matchRequestFrom(req: Request, remoteAddr: string): MatchRequest {
  const url = req.url;
  const schemeEnd = url.indexOf("://");
  const authStart = schemeEnd < 0 ? 0 : schemeEnd + 3;
  let pathStart = authStart;
  while (pathStart < url.length) {
    const c = url.charCodeAt(pathStart);
    if (c === 47 /* / */ || c === 63 /* ? */) break;
    pathStart++;
  }
  let authority = url.slice(authStart, pathStart);
  const at = authority.lastIndexOf("@");
  if (at >= 0) authority = authority.slice(at + 1);

  const hostHeader = req.headers.get("host");
  if (authority === "") authority = hostHeader ?? "";
  else if (!hostHeader && /^localhost:\d+$/.test(authority)) {
    // Deno fills in localhost:<port> when the client sent no Host at all; Go sees "".
    authority = "";
  }

  // Go does not split a fragment off a request target, so neither does this.
  const q = url.indexOf("?", pathStart);
  const rawPath = url.slice(pathStart, q >= 0 ? q : url.length) || "/";
  const query = q >= 0 ? url.slice(q + 1) : "";

  return {
    method: req.method,
    host: canonicalHost(authority),
    path: routingPath(rawPath),
    query,
    headers: req.headers,
    clientIp: stripPort(remoteAddr),
  };
}

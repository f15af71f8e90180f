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
  /** Request headers (a `Headers`, or the engine's flat list behind the same lookup). */
  headers: HeaderLookup;
  /** Socket peer address without port; never taken from X-Forwarded-For. */
  clientIp: string;
}

/** The one thing rules ask of request headers: `Headers.get` semantics (repeats joined by ", "). */
export interface HeaderLookup {
  get(name: string): string | null;
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

/**
 * Builds the {@link MatchRequest} from a request head the connection engine
 * parsed: `target` exactly as sent, `hostHeader` "" when absent. Same
 * semantics as {@link matchRequestFrom}; an absolute-form target's authority
 * wins over the Host header, as in Go.
 *
 * @throws {RoutingPathError} when the path has an invalid percent-encoding: answer 400.
 * @example
 * ```ts
 * const view = matchRequestFromTarget("GET", "/api?x=1", "a.com", { get: () => null }, "10.0.0.1");
 * ```
 */
export function matchRequestFromTarget(
  method: string,
  target: string,
  hostHeader: string,
  headers: HeaderLookup,
  remoteAddr: string,
): MatchRequest {
  let authority = hostHeader;
  let pathStart = 0;
  if (target.charCodeAt(0) !== 47 /* / */) {
    const schemeEnd = target.indexOf("://");
    if (schemeEnd > 0) {
      const authStart = schemeEnd + 3;
      pathStart = authStart;
      while (pathStart < target.length) {
        const c = target.charCodeAt(pathStart);
        if (c === 47 || c === 63) break;
        pathStart++;
      }
      let a = target.slice(authStart, pathStart);
      const at = a.lastIndexOf("@");
      if (at >= 0) a = a.slice(at + 1);
      if (a !== "") authority = a;
    }
  }
  const q = target.indexOf("?", pathStart);
  const rawPath = target.slice(pathStart, q >= 0 ? q : target.length) || "/";
  return {
    method,
    host: canonicalHost(authority),
    path: rawPath === "*" ? "*" : routingPath(rawPath),
    query: q >= 0 ? target.slice(q + 1) : "",
    headers,
    clientIp: stripPort(remoteAddr),
  };
}

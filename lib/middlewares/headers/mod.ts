/**
 * The `headers` middleware: custom request/response headers, CORS with
 * preflight answered by the proxy, and security headers, in Traefik's order
 * (custom and CORS outside, security inside, so custom response headers can
 * override security ones).
 *
 * @module
 */

import { readOptions } from "../options.ts";
import {
  MiddlewareConfigError,
  type MiddlewareFactory,
  type PorticoMiddleware,
  writableRequestHeaders,
  writableResponse,
} from "../types.ts";
import { ResponseEdits, withFastStep } from "../fast.ts";
import { replaceResponse } from "../shared/replace_response.ts";
import { decorateResponse, preflightResponse, readCors } from "./cors.ts";
import {
  badHostResponse,
  fixedSecureHeaders,
  readSecure,
  secureIsPerRequest,
  secureRequest,
} from "./secure.ts";

const OPTION_NAMES = [
  "customRequestHeaders",
  "customResponseHeaders",
  "accessControlAllowCredentials",
  "accessControlAllowHeaders",
  "accessControlAllowMethods",
  "accessControlAllowOriginList",
  "accessControlAllowOriginListRegex",
  "accessControlExposeHeaders",
  "accessControlMaxAge",
  "addVaryHeader",
  "allowedHosts",
  "hostsProxyHeaders",
  "sslProxyHeaders",
  "stsSeconds",
  "stsIncludeSubdomains",
  "stsPreload",
  "forceSTSHeader",
  "frameDeny",
  "customFrameOptionsValue",
  "contentTypeNosniff",
  "browserXssFilter",
  "customBrowserXSSValue",
  "contentSecurityPolicy",
  "contentSecurityPolicyReportOnly",
  "publicKey",
  "referrerPolicy",
  "permissionsPolicy",
  "isDevelopment",
];

/** Options Traefik v3 still parses but no longer acts on; refused here rather than ignored. */
const REMOVED_IN_V3: Record<string, string> = {
  featurePolicy: "use permissionsPolicy",
  sslRedirect: "use a redirectScheme middleware or the entrypoint's http.redirections",
  sslTemporaryRedirect: "use a redirectScheme middleware or the entrypoint's http.redirections",
  sslHost: "use a redirectRegex middleware",
  sslForceHost: "use a redirectRegex middleware",
};

/** The forwarding headers Portico's forwarder writes itself (Traefik's entrypoint writes them first). */
const FORWARDER_WRITES = new Set([
  "x-forwarded-for",
  "x-forwarded-proto",
  "x-forwarded-host",
  "x-forwarded-port",
  "x-forwarded-server",
  "x-real-ip",
]);

/**
 * Where the forwarder picks up a middleware's own edits of the headers it
 * writes (see `ForwardedInfo.forwardedEdits` in lib/proxy/headers.ts).
 */
type WithForwardedEdits = { forwardedEdits?: Map<string, string | null> };

const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// deno-lint-ignore no-control-regex
const BAD_VALUE = /[\x00\r\n]/;

/**
 * Builds `headers`, with Traefik's semantics:
 *
 * - `customRequestHeaders` / `customResponseHeaders`: a value sets the
 *   header, an empty value removes it; `Host` in the request table changes
 *   the Host sent upstream (and the one `allowedHosts` checks).
 * - CORS: a preflight (OPTIONS with `Origin` and
 *   `Access-Control-Request-Method`) is answered 200 by the proxy with the
 *   configured allow headers and never forwarded; `Access-Control-Max-Age`
 *   only when `accessControlMaxAge` is set. Other responses get
 *   `Access-Control-Allow-Origin` when the origin is in
 *   `accessControlAllowOriginList` or matches
 *   `accessControlAllowOriginListRegex` (RE2, unanchored), and
 *   `Access-Control-Allow-Credentials` / `-Expose-Headers` / `Vary:
 *   Origin` whenever configured. `*` with credentials echoes the origin
 *   (and `*` in allow headers/methods echoes the preflight's request).
 * - Security: `allowedHosts` (case-insensitive, after `hostsProxyHeaders`)
 *   answers 500 "Bad Host"; `Strict-Transport-Security` and
 *   `Public-Key-Pins` only on HTTPS requests (or a `sslProxyHeaders` match)
 *   unless `forceSTSHeader`; `isDevelopment` turns those three off;
 *   `$NONCE` in a CSP becomes a fresh `'nonce-…'` per response.
 *
 * A middleware with no option set is refused, as Traefik does; so are the
 * options Traefik v3 removed (`sslRedirect`, `featurePolicy`, …).
 *
 * @example
 * ```toml
 * [http.middlewares.cors.headers]
 * accessControlAllowMethods = ["GET", "POST"]
 * accessControlAllowOriginList = ["https://app.example.com"]
 * accessControlMaxAge = 100
 * addVaryHeader = true
 * [http.middlewares.cors.headers.customResponseHeaders]
 * X-Powered-By = ""   # removed
 * ```
 */
export const headers: MiddlewareFactory = (options, context) => {
  const o = readOptions(context.name, options);
  for (const [key, instead] of Object.entries(REMOVED_IN_V3)) {
    if (o.raw(key) !== undefined) {
      o.fail(key, `was removed in Traefik v3 (Traefik ignores it, Portico refuses it); ${instead}`);
    }
  }
  o.unknownKeysCheck(OPTION_NAMES);

  const headerTable = (key: string) => {
    const table = o.record(key, { default: {} });
    for (const [name, value] of Object.entries(table)) {
      if (!HEADER_NAME.test(name)) o.fail(`${key}.${name}`, "is not a valid header name");
      if (BAD_VALUE.test(value)) o.fail(`${key}.${name}`, "must not contain CR, LF or NUL");
    }
    return Object.entries(table);
  };
  const requestHeaders = headerTable("customRequestHeaders");
  const responseHeaders = headerTable("customResponseHeaders");
  const hasCustom = requestHeaders.length > 0 || responseHeaders.length > 0;
  const { cors, configured: hasCors } = readCors(o);
  const { secure, configured: hasSecure } = readSecure(o);
  if (!hasCustom && !hasCors && !hasSecure) {
    throw new MiddlewareConfigError(
      context.name,
      "no option set; Traefik refuses an empty headers middleware (set at least one option)",
    );
  }
  // Go's req.Host is not in the header map: an empty Host value leaves it alone.
  const hostOverride = requestHeaders.find(([name, value]) =>
    name.toLowerCase() === "host" && value !== ""
  )?.[1];
  const requestEdits = requestHeaders
    .filter(([name, value]) => !(name.toLowerCase() === "host" && value === ""))
    .map(([name, value]) => [name.toLowerCase(), value] as const);
  // A value for X-Forwarded-For is appended to, as in Traefik; every other
  // edit of a header the forwarder writes must be final.
  const forwardedEdits = requestEdits
    .filter(([name, value]) =>
      FORWARDER_WRITES.has(name) && !(name === "x-forwarded-for" && value !== "")
    )
    .map(([name, value]) => [name, value === "" ? null : value] as const);
  const recordForwardedEdits = (request: object) => {
    const edits = (request as WithForwardedEdits).forwardedEdits ??= new Map();
    for (const [name, value] of forwardedEdits) edits.set(name, value);
  };

  const handler: PorticoMiddleware = async (c, next) => {
    const proxy = c.get("proxy");
    if (hasCors) {
      const preflight = preflightResponse(cors, proxy.request.method, proxy.headers);
      if (preflight) return preflight;
    }
    if (requestEdits.length) {
      const h = writableRequestHeaders(proxy);
      for (const [name, value] of requestEdits) {
        if (value === "") h.delete(name);
        else h.set(name, value);
      }
      if (forwardedEdits.length) recordForwardedEdits(proxy);
    }
    // Custom response headers and CORS wrap the security part, so they also
    // apply to its "Bad Host" answer and override its headers.
    const finish = (out: Headers) => {
      for (const [name, value] of responseHeaders) {
        if (value === "") out.delete(name);
        else out.set(name, value);
      }
      if (hasCors) decorateResponse(cors, proxy.headers.get("origin") ?? "", out);
    };
    const decision = hasSecure
      ? secureRequest(secure, proxy, hostOverride ?? proxy.host)
      : undefined;
    if (decision?.badHost) {
      const bad = badHostResponse();
      finish(bad.headers);
      return bad;
    }
    await next();
    if (c.res.status === 101) return;
    const res = writableResponse(c.res);
    if (decision) { for (const [name, value] of decision.headers) res.headers.set(name, value); }
    finish(res.headers);
    if (res !== c.res) replaceResponse(c, res);
  };

  // Without CORS or per-request security decisions, the middleware only
  // edits headers: it has a byte-level twin whose final say per response
  // header is fixed.
  if (hasCors || (hasSecure && secureIsPerRequest(secure))) return handler;
  const responseFinal = new Map<string, string | null>();
  if (hasSecure) {
    for (const [name, value] of fixedSecureHeaders(secure)) responseFinal.set(name, value);
  }
  for (const [name, value] of responseHeaders) {
    responseFinal.set(name.toLowerCase(), value === "" ? null : value);
  }
  return withFastStep(handler, (request) => {
    for (const [name, value] of requestEdits) {
      if (value === "") request.headers.delete(name);
      else request.headers.set(name, value);
    }
    if (forwardedEdits.length) recordForwardedEdits(request);
    if (responseFinal.size) {
      const edits = request.responseEdits ??= new ResponseEdits();
      for (const [name, value] of responseFinal) edits.offer(name, value);
    }
    return undefined;
  });
};

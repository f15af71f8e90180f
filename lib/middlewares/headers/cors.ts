/**
 * The CORS part of the `headers` middleware, with Traefik's rules: a
 * preflight (OPTIONS with `Origin` and `Access-Control-Request-Method`) is
 * answered by the proxy; other responses get `Access-Control-Allow-Origin`
 * when the origin matches, and the credentials, expose and `Vary` headers
 * whenever they are configured.
 *
 * @module
 */

import { compileRe2 } from "../../rules/re2.ts";
import type { OptionReader } from "../options.ts";

/** The CORS options, read and checked once. */
export interface CorsOptions {
  allowCredentials: boolean;
  allowHeaders: string[];
  allowMethods: string[];
  originList: string[];
  originRegexes: RegExp[];
  exposeHeaders: string[];
  /** Seconds, or undefined when `accessControlMaxAge` is not set (no header at all). */
  maxAge: number | undefined;
  addVary: boolean;
}

/** Reads the CORS options; `configured` is Traefik's `HasCorsHeadersDefined`. */
export function readCors(o: OptionReader): { cors: CorsOptions; configured: boolean } {
  const cors: CorsOptions = {
    allowCredentials: o.bool("accessControlAllowCredentials", { default: false }),
    allowHeaders: o.stringList("accessControlAllowHeaders", { default: [] }),
    allowMethods: o.stringList("accessControlAllowMethods", { default: [] }),
    originList: o.stringList("accessControlAllowOriginList", { default: [] }),
    originRegexes: o.stringList("accessControlAllowOriginListRegex", { default: [] }).map(
      (src, i) => {
        try {
          return compileRe2(src);
        } catch (err) {
          return o.fail(
            `accessControlAllowOriginListRegex[${i}]`,
            `${JSON.stringify(src)}: ${(err as Error).message}`,
          );
        }
      },
    ),
    exposeHeaders: o.stringList("accessControlExposeHeaders", { default: [] }),
    maxAge: o.int("accessControlMaxAge"),
    addVary: o.bool("addVaryHeader", { default: false }),
  };
  const configured = cors.allowCredentials || cors.allowHeaders.length > 0 ||
    cors.allowMethods.length > 0 || cors.originList.length > 0 || cors.originRegexes.length > 0 ||
    cors.exposeHeaders.length > 0 || cors.maxAge !== undefined || cors.addVary;
  return { cors, configured };
}

/**
 * The `Access-Control-Allow-Origin` value for `origin` (the empty string
 * when the request has none), or undefined when it is not allowed. `*`
 * with credentials echoes the origin: browsers refuse `*` with credentials.
 */
export function matchOrigin(cors: CorsOptions, origin: string): string | undefined {
  for (const item of cors.originList) {
    if (item === origin) return item;
    if (item === "*") return cors.allowCredentials ? origin : item;
  }
  for (const re of cors.originRegexes) if (re.test(origin)) return origin;
  return undefined;
}

/** The expose header value, unless `*` is listed with credentials (browsers ignore it then). */
function exposeValue(cors: CorsOptions): string | undefined {
  if (cors.exposeHeaders.length === 0) return undefined;
  if (cors.exposeHeaders.includes("*") && cors.allowCredentials) return undefined;
  return cors.exposeHeaders.join(",");
}

/** The preflight answer for a request, or undefined when it is not a preflight. */
export function preflightResponse(
  cors: CorsOptions,
  method: string,
  headers: { get(name: string): string | null },
): Response | undefined {
  const requestMethod = firstValue(headers.get("access-control-request-method"));
  const origin = firstValue(headers.get("origin"));
  if (method !== "OPTIONS" || !requestMethod || !origin) return undefined;
  const out = new Headers({ "content-length": "0" });
  if (cors.allowCredentials) out.set("access-control-allow-credentials", "true");
  if (cors.allowHeaders.includes("*") && cors.allowCredentials) {
    const asked = headers.get("access-control-request-headers");
    if (asked) out.set("access-control-allow-headers", asked);
  } else if (cors.allowHeaders.length > 0) {
    out.set("access-control-allow-headers", cors.allowHeaders.join(","));
  }
  if (cors.allowMethods.includes("*") && cors.allowCredentials) {
    out.set("access-control-allow-methods", requestMethod);
  } else if (cors.allowMethods.length > 0) {
    out.set("access-control-allow-methods", cors.allowMethods.join(","));
  }
  const allowed = matchOrigin(cors, origin);
  if (allowed !== undefined) out.set("access-control-allow-origin", allowed);
  if (cors.maxAge !== undefined) out.set("access-control-max-age", String(cors.maxAge));
  const expose = exposeValue(cors);
  if (expose !== undefined) out.set("access-control-expose-headers", expose);
  return new Response(null, { status: 200, headers: out });
}

/** Adds the CORS headers of a non-preflight response, in Traefik's order. */
export function decorateResponse(cors: CorsOptions, origin: string, out: Headers): void {
  const allowed = matchOrigin(cors, origin);
  if (allowed !== undefined) out.set("access-control-allow-origin", allowed);
  if (cors.allowCredentials) out.set("access-control-allow-credentials", "true");
  const expose = exposeValue(cors);
  if (expose !== undefined) out.set("access-control-expose-headers", expose);
  if (!cors.addVary) return;
  // Traefik reads the first Vary value and appends ",Origin" unless it is exactly "Origin".
  const vary = out.get("vary") ?? "";
  if (vary === "Origin") return;
  out.set("vary", vary === "" ? "Origin" : `${vary},Origin`);
}

/**
 * The first value of a header that Web `Headers` joined with ", ", as Go's
 * `Header.Get` returns it; exact for single-token values (a method, an
 * origin), so not used for `Access-Control-Request-Headers`.
 */
function firstValue(joined: string | null): string | null {
  if (joined === null) return null;
  const comma = joined.indexOf(", ");
  return comma === -1 ? joined : joined.slice(0, comma);
}

/**
 * The `stripPrefix` middleware: removes the first matching prefix from the
 * path and records it in `X-Forwarded-Prefix`, as Traefik does.
 *
 * @module
 */

import { readOptions } from "../options.ts";
import { type MiddlewareFactory, writableRequestHeaders } from "../types.ts";
import { fastAnswer, withFastStep } from "../fast.ts";
import { plainResponse } from "../shared/responses.ts";
import { splitPathQuery } from "../shared/raw_path.ts";
import {
  encodedPrefixLength,
  goEnsureLeadingSlash,
  type GoPath,
  goPathFromRaw,
  joinPathChanges,
  requestPath,
  utf8Bytes,
} from "../shared/go_path.ts";

/** What a path rewrite decided: go on unchanged, refuse with 400, or forward a new target. */
export type Rewrite = undefined | "reject" | { pathAndQuery: string; header: string };

/**
 * Builds `stripPrefix` from `{ prefixes, forceSlash? }`. Prefixes are
 * whitespace-trimmed and tried in order against the decoded path; the
 * first match is removed from the decoded and the raw path alike (so
 * `/stat/a%2Fb` becomes `/a%2Fb`) and sent in `X-Forwarded-Prefix`. A
 * result that path cleaning would change (`/api./foo` leaves `/./foo`)
 * gets 400, never reaches the upstream. No prefixes is a valid no-op, as
 * in Traefik. `forceSlash` (deprecated in Traefik) keeps Traefik's old
 * rule of one leading slash; on the wire both rules send the same path.
 *
 * @example
 * ```toml
 * [http.middlewares.strip.stripPrefix]
 * prefixes = ["/api", "/v1"]   # GET /api/users goes upstream as /users
 * ```
 */
export const stripPrefix: MiddlewareFactory = (options, context) => {
  const o = readOptions(context.name, options);
  o.unknownKeysCheck(["prefixes", "forceSlash"]);
  const prefixes = o.stringList("prefixes", { default: [] }).map((p) => p.trim());
  const prefixBytes = prefixes.map(utf8Bytes);
  const forceSlash = o.bool("forceSlash", { default: false });
  const lead = forceSlash
    ? (s: string) => "/" + (s.startsWith("/") ? s.slice(1) : s)
    : goEnsureLeadingSlash;

  const strip = (pathAndQuery: string): Rewrite => {
    const { path: raw, query } = splitPathQuery(pathAndQuery);
    const u = goPathFromRaw(raw);
    if (!u) return undefined;
    for (let i = 0; i < prefixBytes.length; i++) {
      const prefix = prefixBytes[i];
      if (!u.path.startsWith(prefix)) continue;
      const out: GoPath = { path: lead(u.path.slice(prefix.length)), rawPath: "" };
      if (u.rawPath !== "") {
        out.rawPath = lead(u.rawPath.slice(encodedPrefixLength(u.rawPath, prefix.length)));
      }
      if (joinPathChanges(out)) return "reject";
      return { pathAndQuery: requestPath(out) + query, header: prefix };
    }
    return undefined;
  };

  return withFastStep(async (c, next) => {
    const proxy = c.get("proxy");
    const result = strip(proxy.pathAndQuery);
    if (result === "reject") return plainResponse(400);
    if (result) {
      proxy.pathAndQuery = result.pathAndQuery;
      writableRequestHeaders(proxy).append("x-forwarded-prefix", result.header);
    }
    await next();
  }, (request) => {
    const result = strip(request.pathAndQuery);
    if (result === "reject") return fastAnswer(400, {}, request.exchange.head.keepAlive);
    if (result) {
      request.pathAndQuery = result.pathAndQuery;
      request.headers.append("x-forwarded-prefix", result.header);
    }
    return undefined;
  });
};

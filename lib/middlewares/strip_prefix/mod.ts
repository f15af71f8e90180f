/**
 * The `stripPrefix` middleware: removes the first matching prefix from the
 * path and records it in `X-Forwarded-Prefix`, as Traefik does.
 *
 * @module
 */

import { readOptions } from "../options.ts";
import { type MiddlewareFactory, writableRequestHeaders } from "../types.ts";
import { withFastStep } from "../fast.ts";
import { ensureLeadingSlash, rawPrefixLength, splitPathQuery } from "./raw_path.ts";

/**
 * Builds `stripPrefix` from `{ prefixes, forceSlash? }`. Prefixes are tried
 * in order and compared with the decoded path (so "/a b" strips "/a%20b");
 * the rest of the path keeps its bytes and always starts with "/".
 * `forceSlash` is accepted for compatibility (deprecated in Traefik) and
 * changes nothing, since the path always keeps its leading slash.
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
  const prefixes = o.stringList("prefixes", { required: true });
  o.bool("forceSlash");
  if (prefixes.length === 0) {
    o.fail("prefixes", "expected at least one prefix, found an empty list");
  }
  prefixes.forEach((p, i) => {
    if (p.trim() === "") o.fail(`prefixes[${i}]`, "must not be empty");
  });
  /** The stripped path and the prefix that matched, or undefined. */
  const strip = (pathAndQuery: string): [string, string] | undefined => {
    const { path, query } = splitPathQuery(pathAndQuery);
    for (const prefix of prefixes) {
      const n = rawPrefixLength(path, prefix);
      if (n === -1) continue;
      return [ensureLeadingSlash(path.slice(n)) + query, prefix.trim()];
    }
    return undefined;
  };
  return withFastStep(async (c, next) => {
    const proxy = c.get("proxy");
    const stripped = strip(proxy.pathAndQuery);
    if (stripped) {
      proxy.pathAndQuery = stripped[0];
      writableRequestHeaders(proxy).append("x-forwarded-prefix", stripped[1]);
    }
    await next();
  }, (request) => {
    const stripped = strip(request.pathAndQuery);
    if (stripped) {
      request.pathAndQuery = stripped[0];
      request.headers.append("x-forwarded-prefix", stripped[1]);
    }
    return undefined;
  });
};

/**
 * The `stripPrefix` middleware: removes the first matching prefix from the
 * path and records it in `X-Forwarded-Prefix`, as Traefik does.
 *
 * @module
 */

import { readOptions } from "../options.ts";
import { type MiddlewareFactory, writableRequestHeaders } from "../types.ts";
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
  return async (c, next) => {
    const proxy = c.get("proxy");
    const { path, query } = splitPathQuery(proxy.pathAndQuery);
    for (const prefix of prefixes) {
      const n = rawPrefixLength(path, prefix);
      if (n === -1) continue;
      proxy.pathAndQuery = ensureLeadingSlash(path.slice(n)) + query;
      writableRequestHeaders(proxy).append("x-forwarded-prefix", prefix.trim());
      break;
    }
    await next();
  };
};

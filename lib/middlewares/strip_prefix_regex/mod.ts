/**
 * The `stripPrefixRegex` middleware: removes the part of the path matched by
 * the first matching RE2 expression, when that match is a prefix.
 *
 * @module
 */

import { compileRe2 } from "../../rules/re2.ts";
import { readOptions } from "../options.ts";
import {
  decodePath,
  ensureLeadingSlash,
  rawPrefixLength,
  splitPathQuery,
} from "../strip_prefix/raw_path.ts";
import { type MiddlewareFactory, writableRequestHeaders } from "../types.ts";

/**
 * Builds `stripPrefixRegex` from `{ regex }` (a list of Go RE2 patterns),
 * matched against the decoded path as Traefik does. The stripped prefix goes
 * to `X-Forwarded-Prefix`.
 *
 * @example
 * ```toml
 * [http.middlewares.strip-tenant.stripPrefixRegex]
 * regex = ["^/tenant/[a-z0-9]+"]   # /tenant/acme/app -> /app
 * ```
 */
export const stripPrefixRegex: MiddlewareFactory = (options, context) => {
  const o = readOptions(context.name, options);
  o.unknownKeysCheck(["regex"]);
  const sources = o.stringList("regex", { required: true });
  if (sources.length === 0) {
    o.fail("regex", "expected at least one expression, found an empty list");
  }
  const expressions = sources.map((src, i) => {
    try {
      return compileRe2(src);
    } catch (err) {
      return o.fail(`regex[${i}]`, `${JSON.stringify(src)}: ${(err as Error).message}`);
    }
  });
  return async (c, next) => {
    const proxy = c.get("proxy");
    const { path, query } = splitPathQuery(proxy.pathAndQuery);
    const decoded = decodePath(path);
    for (const re of expressions) {
      const m = re.exec(decoded);
      if (!m || m[0] === "" || m.index !== 0) continue;
      const n = rawPrefixLength(path, m[0]);
      if (n === -1) continue;
      writableRequestHeaders(proxy).append("x-forwarded-prefix", m[0]);
      proxy.pathAndQuery = ensureLeadingSlash(path.slice(n)) + query;
      break;
    }
    await next();
  };
};

/**
 * The `stripPrefixRegex` middleware: removes the part of the path matched by
 * the first matching RE2 expression, when that match is a prefix.
 *
 * @module
 */

import { compileRe2 } from "../../rules/re2.ts";
import { readOptions } from "../options.ts";
import { plainResponse } from "../shared/responses.ts";
import { splitPathQuery } from "../shared/raw_path.ts";
import {
  encodedPrefixLength,
  fromUtf8Bytes,
  goEnsureLeadingSlash,
  type GoPath,
  goPathFromRaw,
  joinPathChanges,
  requestPath,
  utf8Bytes,
} from "../shared/go_path.ts";
import { type MiddlewareFactory, writableRequestHeaders } from "../types.ts";

/**
 * Builds `stripPrefixRegex` from `{ regex }` (a list of Go RE2 patterns,
 * whitespace-trimmed), matched against the decoded path as Traefik does.
 * The first expression whose match is non-empty and starts the path wins;
 * the match goes to `X-Forwarded-Prefix` and is removed from the decoded
 * and the raw path. A result that path cleaning would change gets 400. An
 * empty list is a valid no-op, as in Traefik.
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
  const sources = o.stringList("regex", { default: [] });
  const expressions = sources.map((src, i) => {
    try {
      return compileRe2(src.trim());
    } catch (err) {
      return o.fail(`regex[${i}]`, `${JSON.stringify(src)}: ${(err as Error).message}`);
    }
  });
  return async (c, next) => {
    const proxy = c.get("proxy");
    const { path: raw, query } = splitPathQuery(proxy.pathAndQuery);
    const u = expressions.length ? goPathFromRaw(raw) : undefined;
    if (u) {
      const decoded = fromUtf8Bytes(u.path);
      for (const re of expressions) {
        const m = re.exec(decoded);
        if (!m || m[0] === "") continue;
        const prefix = utf8Bytes(m[0]);
        if (!u.path.startsWith(prefix)) continue;
        const out: GoPath = {
          path: goEnsureLeadingSlash(u.path.slice(prefix.length)),
          rawPath: "",
        };
        if (u.rawPath !== "") {
          out.rawPath = goEnsureLeadingSlash(
            u.rawPath.slice(encodedPrefixLength(u.rawPath, prefix.length)),
          );
        }
        if (joinPathChanges(out)) return plainResponse(400);
        writableRequestHeaders(proxy).append("x-forwarded-prefix", prefix);
        proxy.pathAndQuery = requestPath(out) + query;
        break;
      }
    }
    await next();
  };
};

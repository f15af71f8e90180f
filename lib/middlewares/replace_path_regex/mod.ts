/**
 * The `replacePathRegex` middleware: rewrites the path with an RE2
 * expression and a Go-style replacement, keeping the old path in
 * `X-Replaced-Path`, as Traefik does.
 *
 * @module
 */

import { readOptions } from "../options.ts";
import { plainResponse } from "../shared/responses.ts";
import { splitPathQuery } from "../shared/raw_path.ts";
import {
  escapedPath,
  goPathFromRaw,
  joinPathChanges,
  requestPath,
  unescapePath,
} from "../shared/go_path.ts";
import { type MiddlewareFactory, writableRequestHeaders } from "../types.ts";
import { compileGoReplacement, goReplaceAll } from "../shared/go_replace.ts";

/**
 * Builds `replacePathRegex` from `{ regex, replacement }`, both
 * whitespace-trimmed as in Traefik. The expression is matched against the
 * encoded path (Traefik's `EscapedPath`); every match is replaced, with
 * `$1`/`${1}`/`${name}` groups, and the result is an encoded path. The
 * query is kept. An empty replacement is valid. A result with a malformed
 * `%` escape gets 500, one that path cleaning would change (`/foo../bar`
 * with `^/foo(.*)` → `/../bar`) gets 400, as in Traefik.
 *
 * @example
 * ```toml
 * [http.middlewares.v1.replacePathRegex]
 * regex = "^/foo/(.*)"
 * replacement = "/bar/$1"   # /foo/x?y=1 -> /bar/x?y=1
 * ```
 */
export const replacePathRegex: MiddlewareFactory = (options, context) => {
  const o = readOptions(context.name, options);
  o.unknownKeysCheck(["regex", "replacement"]);
  const source = o.string("regex", { default: "" }).trim();
  const replacement = o.string("replacement", { default: "" }).trim();
  const { re, scan, template } = compileGoReplacement(
    source,
    replacement,
    (message) => o.fail("regex", message),
  );
  return async (c, next) => {
    const proxy = c.get("proxy");
    const { path: raw, query } = splitPathQuery(proxy.pathAndQuery);
    const u = goPathFromRaw(raw);
    const current = u ? u.rawPath || escapedPath(u) : raw;
    if (re.test(current)) {
      writableRequestHeaders(proxy).append("x-replaced-path", current);
      const rawPath = goReplaceAll(scan, current, template);
      const path = unescapePath(rawPath);
      if (path === undefined) return malformedEscape(rawPath);
      const out = { path, rawPath };
      if (joinPathChanges(out)) return plainResponse(400);
      proxy.pathAndQuery = requestPath(out) + query;
    }
    await next();
  };
};

/** Traefik's answer when the rewritten path cannot be decoded: 500 with Go's error text. */
function malformedEscape(rawPath: string): Response {
  const at = /%(?![0-9a-fA-F]{2})/.exec(rawPath)!.index;
  const text = `invalid URL escape ${JSON.stringify(rawPath.slice(at, at + 3))}\n`;
  return new Response(text, {
    status: 500,
    headers: { "content-type": "text/plain; charset=utf-8", "x-content-type-options": "nosniff" },
  });
}

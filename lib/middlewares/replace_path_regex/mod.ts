/**
 * The `replacePathRegex` middleware: rewrites the path with an RE2
 * expression and a Go-style replacement, keeping the old path in
 * `X-Replaced-Path`, as Traefik does.
 *
 * @module
 */

import { readOptions } from "../options.ts";
import { escapePath, splitPathQuery } from "../strip_prefix/raw_path.ts";
import { type MiddlewareFactory, writableRequestHeaders } from "../types.ts";
import { compileGoReplacement, goReplaceAll } from "./go_replace.ts";

/**
 * Builds `replacePathRegex` from `{ regex, replacement }`. The expression is
 * matched against the percent-encoded path (Traefik's `EscapedPath`); every
 * match is replaced, with `$1`/`${1}`/`${name}` groups. The query is kept.
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
  const source = o.string("regex", { required: true });
  const replacement = o.string("replacement", { required: true });
  const { re, scan, template } = compileGoReplacement(
    source,
    replacement,
    (message) => o.fail("regex", message),
  );
  return async (c, next) => {
    const proxy = c.get("proxy");
    const { path, query } = splitPathQuery(proxy.pathAndQuery);
    if (re.test(path)) {
      writableRequestHeaders(proxy).append("x-replaced-path", path);
      proxy.pathAndQuery = (escapePath(goReplaceAll(scan, path, template)) || "/") + query;
    }
    await next();
  };
};

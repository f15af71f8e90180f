/**
 * The `replacePath` middleware: replaces the whole path, keeping the old one
 * in `X-Replaced-Path`, as Traefik does.
 *
 * @module
 */

import { readOptions } from "../options.ts";
import { splitPathQuery } from "../shared/raw_path.ts";
import { escapedPath, goPathFromRaw, requestPath, utf8Bytes } from "../shared/go_path.ts";
import { type MiddlewareFactory, writableRequestHeaders } from "../types.ts";

/**
 * Builds `replacePath` from `{ path }`: the option is an encoded path
 * (`/foo%2Fbar` keeps its `%2F`), sent as it is when it is valid
 * encoding and encoded as Go would otherwise (`/a b` goes as `/a%20b`).
 * The old encoded path goes to `X-Replaced-Path`; the query is kept. An
 * empty path sends `/`, as in Traefik. A malformed `%` escape is refused
 * at build (Traefik would answer 500 to every request).
 *
 * @example
 * ```toml
 * [http.middlewares.to-foo.replacePath]
 * path = "/foo"   # GET /anything?x=1 goes upstream as /foo?x=1
 * ```
 */
export const replacePath: MiddlewareFactory = (options, context) => {
  const o = readOptions(context.name, options);
  o.unknownKeysCheck(["path"]);
  const option = o.string("path", { default: "" });
  const target = goPathFromRaw(utf8Bytes(option));
  const replacement = target ? requestPath(target) : o.fail(
    "path",
    `${JSON.stringify(option)} has a malformed %-escape; write "%25" for a literal "%"`,
  );
  return async (c, next) => {
    const proxy = c.get("proxy");
    const { path: raw, query } = splitPathQuery(proxy.pathAndQuery);
    const current = goPathFromRaw(raw);
    const old = current ? current.rawPath || escapedPath(current) : raw;
    writableRequestHeaders(proxy).append("x-replaced-path", old);
    proxy.pathAndQuery = replacement + query;
    await next();
  };
};

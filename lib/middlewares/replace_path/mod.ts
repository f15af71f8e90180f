/**
 * The `replacePath` middleware: replaces the whole path, keeping the old one
 * in `X-Replaced-Path`, as Traefik does.
 *
 * @module
 */

import { readOptions } from "../options.ts";
import { escapePath, splitPathQuery } from "../strip_prefix/raw_path.ts";
import { type MiddlewareFactory, writableRequestHeaders } from "../types.ts";

/**
 * Builds `replacePath` from `{ path }`. The query is kept as sent.
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
  const replacement = escapePath(o.string("path", { required: true }));
  return async (c, next) => {
    const proxy = c.get("proxy");
    const { path, query } = splitPathQuery(proxy.pathAndQuery);
    writableRequestHeaders(proxy).append("x-replaced-path", path);
    proxy.pathAndQuery = replacement + query;
    await next();
  };
};

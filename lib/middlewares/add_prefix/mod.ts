/**
 * The `addPrefix` middleware: puts a prefix in front of the path before
 * forwarding, as Traefik's `addPrefix` does.
 *
 * @module
 */

import { readOptions } from "../options.ts";
import { ensureLeadingSlash, escapePath, splitPathQuery } from "../strip_prefix/raw_path.ts";
import type { MiddlewareFactory } from "../types.ts";
import { withFastStep } from "../fast.ts";

/**
 * Builds `addPrefix` from `{ prefix }`. The query is kept as sent.
 *
 * @example
 * ```toml
 * [http.middlewares.api.addPrefix]
 * prefix = "/api"   # GET /users?x=1 goes upstream as /api/users?x=1
 * ```
 */
export const addPrefix: MiddlewareFactory = (options, context) => {
  const o = readOptions(context.name, options);
  o.unknownKeysCheck(["prefix"]);
  const prefix = escapePath(o.string("prefix", { required: true }));
  const add = (pathAndQuery: string) => {
    const { path, query } = splitPathQuery(pathAndQuery);
    return ensureLeadingSlash(prefix + path) + query;
  };
  return withFastStep(async (c, next) => {
    const proxy = c.get("proxy");
    proxy.pathAndQuery = add(proxy.pathAndQuery);
    await next();
  }, (request) => {
    request.pathAndQuery = add(request.pathAndQuery);
    return undefined;
  });
};

/**
 * The `addPrefix` middleware: puts a prefix in front of the path before
 * forwarding, as Traefik's `addPrefix` does.
 *
 * @module
 */

import { readOptions } from "../options.ts";
import { splitPathQuery } from "../shared/raw_path.ts";
import {
  goEnsureLeadingSlash,
  type GoPath,
  goPathFromRaw,
  requestPath,
  utf8Bytes,
} from "../shared/go_path.ts";
import type { MiddlewareFactory } from "../types.ts";
import { withFastStep } from "../fast.ts";

/**
 * Builds `addPrefix` from `{ prefix }` (required, not empty, as in
 * Traefik). The prefix is a decoded path put before the decoded and the
 * raw path, so `/a` on `/b%2Fc` sends `/a/b%2Fc`, and a prefix lacking
 * its leading `/` gets one. The query is kept as sent.
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
  const prefix = utf8Bytes(o.string("prefix", { required: true }));
  const add = (pathAndQuery: string) => {
    const { path: raw, query } = splitPathQuery(pathAndQuery);
    const u = goPathFromRaw(raw);
    if (!u) return pathAndQuery;
    const out: GoPath = {
      path: goEnsureLeadingSlash(prefix + u.path),
      rawPath: u.rawPath === "" ? "" : goEnsureLeadingSlash(prefix + u.rawPath),
    };
    return requestPath(out) + query;
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

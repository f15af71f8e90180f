/**
 * The `contentType` middleware: sets `Content-Type` from the body's first
 * bytes when the upstream sent none, as Traefik v3 does for routers using it.
 *
 * @module
 */

import { peekBody } from "../peek_body.ts";
import { replaceResponse } from "../shared/replace_response.ts";
import { readOptions } from "../options.ts";
import type { MiddlewareFactory } from "../types.ts";
import { sniffContentType } from "../shared/sniff.ts";

const SNIFF_BYTES = 512;

/**
 * Builds `contentType` from `{ autoDetect? }`. Portico never sniffs on its
 * own, so, as in Traefik v3, declaring the middleware enables detection;
 * the deprecated `autoDetect = false` turns it off (a no-op middleware).
 * Only the first 512 bytes are held; an empty body gets no type.
 *
 * @example
 * ```toml
 * [http.middlewares.sniff.contentType]
 * ```
 */
export const contentType: MiddlewareFactory = (options, context) => {
  const o = readOptions(context.name, options);
  o.unknownKeysCheck(["autoDetect"]);
  const autoDetect = o.bool("autoDetect", { default: true });
  if (!autoDetect) return async (_c, next) => await next();
  return async (c, next) => {
    await next();
    const res = c.res;
    if (
      !res.body || res.headers.has("content-type") || res.status === 101 || res.status === 204 ||
      res.status === 304
    ) return;
    if (c.get("proxy").request.method === "HEAD") return;
    const { head: first, stream: body } = await peekBody(res.body, SNIFF_BYTES);
    const held = first.length;
    const headers = new Headers(res.headers);
    if (held > 0) headers.set("content-type", sniffContentType(first));
    replaceResponse(
      c,
      new Response(body, { status: res.status, statusText: res.statusText, headers }),
    );
  };
};

/**
 * The `contentType` middleware: sets `Content-Type` from the body's first
 * bytes when the upstream sent none, as Traefik v3 does for routers using it.
 *
 * @module
 */

import { replaceResponse } from "../headers/replace_response.ts";
import { readOptions } from "../options.ts";
import type { MiddlewareFactory } from "../types.ts";
import { sniffContentType } from "./sniff.ts";

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
    const reader = res.body.getReader();
    const head: Uint8Array[] = [];
    let held = 0;
    let ended = false;
    while (held < SNIFF_BYTES) {
      const { done, value } = await reader.read();
      if (done) {
        ended = true;
        break;
      }
      head.push(value);
      held += value.length;
    }
    const first = new Uint8Array(held);
    let at = 0;
    for (const chunk of head) {
      first.set(chunk, at);
      at += chunk.length;
    }
    const body = new ReadableStream<Uint8Array>({
      start(ctl) {
        if (held > 0) ctl.enqueue(first);
        if (ended) ctl.close();
      },
      async pull(ctl) {
        if (ended) return;
        const { done, value } = await reader.read();
        if (done) ctl.close();
        else ctl.enqueue(value);
      },
      cancel(reason) {
        return reader.cancel(reason);
      },
    }, { highWaterMark: 0 });
    const headers = new Headers(res.headers);
    if (held > 0) headers.set("content-type", sniffContentType(first));
    replaceResponse(
      c,
      new Response(body, { status: res.status, statusText: res.statusText, headers }),
    );
  };
};

/**
 * `inFlightReq`: at most `amount` requests open at once per source. A slot
 * is held until the response body has been sent in full (or failed), not
 * merely until the headers are out, so slow downloads count as they do in
 * Traefik.
 *
 * @module
 */

import { readOptions } from "../options.ts";
import { readSourceCriterion } from "../source_criterion.ts";
import type { MiddlewareFactory } from "../types.ts";
import { plainResponse } from "../access_common.ts";
import { InFlightCounter, onBodyDone } from "./counter.ts";

/**
 * Builds an `inFlightReq` middleware.
 *
 * @example
 * ```toml
 * [http.middlewares.limit-conns.inFlightReq]
 * amount = 10
 * [http.middlewares.limit-conns.inFlightReq.sourceCriterion]
 * requestHost = true
 * ```
 */
export const inFlightReq: MiddlewareFactory = (options, context) => {
  const o = readOptions(context.name, options);
  o.unknownKeysCheck(["amount", "sourceCriterion"]);
  const amount = o.int("amount", { required: true });
  if (amount < 1) o.fail("amount", `must be 1 or more, found ${amount}`);
  const sourceOf = readSourceCriterion(o.object("sourceCriterion"));
  const counter = new InFlightCounter(amount);

  return async (c, next) => {
    const release = counter.acquire(sourceOf(c.get("proxy")));
    if (!release) return plainResponse(429);
    try {
      await next();
    } catch (err) {
      release();
      throw err;
    }
    const res = c.res;
    // A WebSocket upgrade's body is not ours to wrap; its slot ends here.
    if (!res.body || res.status === 101) {
      release();
      return;
    }
    c.res = new Response(onBodyDone(res.body, release), {
      status: res.status,
      statusText: res.statusText,
      headers: res.headers,
    });
  };
};

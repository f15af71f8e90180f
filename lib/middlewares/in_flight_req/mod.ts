/**
 * `inFlightReq`: at most `amount` requests open at once per source. A slot
 * is held until the response body has been sent in full (or failed), not
 * merely until the headers are out, so slow downloads count as they do in
 * Traefik. Requests are grouped by Host unless `sourceCriterion` says
 * otherwise (Traefik's default for this middleware), and `amount = 0`
 * refuses everything, as oxy's connection limiter does.
 *
 * @module
 */

import { readOptions } from "../options.ts";
import type { MiddlewareFactory } from "../types.ts";
import { InFlightCounter, onBodyDone } from "./counter.ts";
import { inFlightSource } from "./source.ts";

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
  if (amount < 0) o.fail("amount", `must be 0 or more, found ${amount}`);
  const sourceOf = inFlightSource(o.object("sourceCriterion"));
  const counter = new InFlightCounter(amount);
  // oxy's answer, word for word; Go sniffs the type of the bare text.
  const refusal = `max connections reached: ${amount}`;
  const tooMany = () =>
    new Response(refusal, {
      status: 429,
      headers: { "content-type": "text/plain; charset=utf-8" },
    });

  return async (c, next) => {
    const release = counter.acquire(sourceOf(c.get("proxy")));
    if (!release) return tooMany();
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

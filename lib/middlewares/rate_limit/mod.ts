/**
 * `rateLimit`: a token bucket per source (client IP by default, or what
 * `sourceCriterion` picks). Over the limit the client gets 429 with
 * `Retry-After` (whole seconds, rounded up) and `X-Retry-In`.
 *
 * @module
 */

import { readOptions } from "../options.ts";
import { readSourceCriterion } from "../source_criterion.ts";
import type { MiddlewareFactory } from "../types.ts";
import { fastAnswer, withFastStep } from "../fast.ts";
import { plainResponse } from "../access_common.ts";
import { goDuration, maxDelayFor, TokenBuckets } from "./token_bucket.ts";

/**
 * Builds a `rateLimit` middleware.
 *
 * @example
 * ```toml
 * [http.middlewares.api-limit.rateLimit]
 * average = 100
 * period = "1s"
 * burst = 50
 * [http.middlewares.api-limit.rateLimit.sourceCriterion]
 * requestHeaderName = "X-Api-Key"
 * ```
 */
export const rateLimit: MiddlewareFactory = (options, context) => {
  const o = readOptions(context.name, options);
  o.unknownKeysCheck(["average", "period", "burst", "sourceCriterion", "redis"]);
  if (o.has("redis")) {
    o.fail(
      "redis",
      "a Redis-backed rate limit is not supported yet by Portico; remove it to limit per instance",
    );
  }
  const average = o.number("average", { default: 0 });
  if (average < 0) o.fail("average", `must be 0 (no limit) or more, found ${average}`);
  const period = o.duration("period", { default: 1000 }) || 1000;
  const burstOption = o.int("burst", { default: 1 });
  if (burstOption < 0) o.fail("burst", `must be 1 or more, found ${burstOption}`);
  const burst = Math.max(1, burstOption);
  const sourceOf = readSourceCriterion(o.object("sourceCriterion"));
  // Traefik: an average of 0 means no limit.
  if (average === 0) return async (_c, next) => await next();

  const ratePerSecond = (average * 1000) / period;
  const buckets = new TokenBuckets({
    ratePerMs: ratePerSecond / 1000,
    burst,
    maxDelayMs: maxDelayFor(ratePerSecond),
  });
  const refusal = (retryAfterMs: number) => ({
    "retry-after": String(Math.max(1, Math.ceil(retryAfterMs / 1000))),
    "x-retry-in": goDuration(retryAfterMs),
  });
  return withFastStep(async (c, next) => {
    const decision = buckets.take(sourceOf(c.get("proxy")), performance.now());
    if (!decision.allowed) return plainResponse(429, refusal(decision.retryAfterMs));
    if (decision.delayMs > 0) await new Promise((r) => setTimeout(r, decision.delayMs));
    await next();
  }, (request) => {
    const decision = buckets.take(sourceOf(request), performance.now());
    if (!decision.allowed) return fastAnswer(429, refusal(decision.retryAfterMs), request.exchange.head.keepAlive);
    if (decision.delayMs > 0) return new Promise((r) => setTimeout(() => r(undefined), decision.delayMs));
    return undefined;
  });
};

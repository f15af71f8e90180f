/**
 * `rateLimit`: a token bucket per source (client IP by default, or what
 * `sourceCriterion` picks). Over the limit the client gets 429 with
 * `Retry-After` (whole seconds, rounded up) and `X-Retry-In` (a Go
 * duration). With `redis`, the buckets live in Redis and every instance
 * shares them (see `redis_limiter.ts`); without, each instance counts alone.
 *
 * @module
 */

import { readOptions } from "../options.ts";
import { readSourceCriterion } from "../source_criterion.ts";
import type { MiddlewareFactory } from "../types.ts";
import { type FastAnswer, fastAnswer, withFastStep } from "../fast.ts";
import { plainResponse } from "../shared/responses.ts";
import { encodeLatin1, httpDate } from "../../engine/response_head.ts";
import { goDuration, maxDelayFor, TokenBuckets } from "./token_bucket.ts";
import { readRedisOptions } from "./redis_options.ts";
import { type Outcome, RedisRateLimiter } from "./redis_limiter.ts";

/** Traefik's answer when the bucket store fails (`http.Error` adds the newline). */
export const BUCKET_ERROR_BODY = "Could not insert/update bucket\n";

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
 * [http.middlewares.api-limit.rateLimit.redis]
 * endpoints = ["10.0.0.5:6379"]
 * ```
 */
export const rateLimit: MiddlewareFactory = (options, context) => {
  const o = readOptions(context.name, options);
  o.unknownKeysCheck(["average", "period", "burst", "sourceCriterion", "redis"]);
  const average = o.number("average", { default: 0 });
  // Traefik reads a negative average as "no limit"; a typo should not switch a limit off.
  if (average < 0) o.fail("average", `must be 0 (no limit) or more, found ${average}`);
  const period = o.duration("period", { default: 1000 }) || 1000;
  const burstOption = o.int("burst", { default: 1 });
  if (burstOption < 0) o.fail("burst", `must be 1 or more (0 means 1), found ${burstOption}`);
  const burst = Math.max(1, burstOption);
  const sourceOf = readSourceCriterion(o.object("sourceCriterion"));
  const redisReader = o.object("redis");
  const redis = redisReader ? readRedisOptions(redisReader) : undefined;
  // Traefik: an average of 0 means no limit, and then Redis is never asked.
  if (average === 0) return withFastStep(async (_c, next) => await next(), () => undefined);

  const ratePerSecond = (average * 1000) / period;
  const maxDelayMs = maxDelayFor(ratePerSecond);

  if (!redis) {
    const buckets = new TokenBuckets({ ratePerMs: ratePerSecond / 1000, burst, maxDelayMs });
    return withFastStep(async (c, next) => {
      const decision = buckets.take(sourceOf(c.get("proxy")), performance.now());
      if (!decision.allowed) return plainResponse(429, refusalHeaders(decision.retryAfterMs));
      if (decision.delayMs > 0) await sleep(decision.delayMs);
      await next();
    }, (request) => {
      const decision = buckets.take(sourceOf(request), performance.now());
      if (!decision.allowed) {
        return fastAnswer(
          429,
          refusalHeaders(decision.retryAfterMs),
          request.exchange.head.keepAlive,
        );
      }
      if (decision.delayMs > 0) return sleep(decision.delayMs).then(() => undefined);
      return undefined;
    });
  }

  const limiter = new RedisRateLimiter(context.name, { ratePerSecond, burst, maxDelayMs }, redis);
  // Connect as soon as this generation exists, not at its first request, so a
  // refused password is logged at once. Deferred: `check` builds and stops
  // a generation without ever serving it, and must not dial Redis.
  const warmUp = setTimeout(() => limiter.warmUp(), 0);
  context.onStop(() => {
    clearTimeout(warmUp);
    limiter.retire();
  });
  return withFastStep(async (c, next) => {
    const outcome = await limiter.take(sourceOf(c.get("proxy")));
    if (isFailure(outcome)) return bucketErrorResponse();
    if (!outcome.allowed) return plainResponse(429, refusalHeaders(outcome.retryAfterMs));
    if (outcome.delayMs > 0) await sleep(outcome.delayMs);
    await next();
  }, async (request) => {
    const outcome = await limiter.take(sourceOf(request));
    const keepAlive = request.exchange.head.keepAlive;
    if (isFailure(outcome)) return bucketErrorAnswer(keepAlive);
    if (!outcome.allowed) return fastAnswer(429, refusalHeaders(outcome.retryAfterMs), keepAlive);
    if (outcome.delayMs > 0) await sleep(outcome.delayMs);
    return undefined;
  });
};

function isFailure(outcome: Outcome): outcome is { allowed: false; failed: true } {
  return "failed" in outcome;
}

/** `Retry-After` and `X-Retry-In` as Traefik sets them on a 429. */
export function refusalHeaders(retryAfterMs: number): Record<string, string> {
  return {
    "retry-after": String(Math.max(1, Math.ceil(retryAfterMs / 1000))),
    // Go writes "µs" as UTF-8; header strings here are bytes, one per char.
    "x-retry-in": utf8Bytes(goDuration(retryAfterMs)),
  };
}

function utf8Bytes(text: string): string {
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) > 0x7f) return String.fromCharCode(...new TextEncoder().encode(text));
  }
  return text;
}

function bucketErrorResponse(): Response {
  return new Response(BUCKET_ERROR_BODY, {
    status: 500,
    headers: { "content-type": "text/plain; charset=utf-8", "x-content-type-options": "nosniff" },
  });
}

function bucketErrorAnswer(keepAlive: boolean): FastAnswer {
  const head = "HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain; charset=utf-8\r\n" +
    `x-content-type-options: nosniff\r\ndate: ${httpDate()}\r\ncontent-length: ${BUCKET_ERROR_BODY.length}\r\n` +
    (keepAlive ? "" : "connection: close\r\n");
  return { status: 500, bytes: encodeLatin1(head + "\r\n" + BUCKET_ERROR_BODY) };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * The token bucket as one Lua script, so Redis evaluates each request's
 * read-refill-take-write atomically and every node of a cluster shares the
 * same bucket. The semantics are those of the local {@linkcode TokenBuckets}
 * (Go's `x/time/rate` reservation, as Traefik uses it): refill since the
 * last request, capped at `burst`; take one token; when that leaves the
 * bucket short, the request may wait up to `maxDelay` for its token, and
 * beyond that it is refused and takes nothing.
 *
 * Choices that differ from Traefik's script, and why:
 * - The clock is Redis's (`TIME`), not the caller's: nodes whose clocks
 *   disagree would otherwise mint or lose tokens for each other.
 * - `last` never moves backwards, so a clock step back cannot mint tokens.
 * - `last` and `tokens` are written with full precision (`%.0f`, `%.17g`);
 *   Lua's default number format keeps 14 digits, which rounds a microsecond
 *   timestamp to 100 µs.
 * - The key lives until the bucket would be full again, so its expiry never
 *   changes an answer (Traefik's 2 s expiry refills a large burst early).
 *
 * The key and its fields are Traefik's: `rate:<middleware>:<source>`, a hash
 * with `last` (µs) and `tokens`.
 *
 * @module
 */

import { createHash } from "node:crypto";

/**
 * KEYS[1] the bucket. ARGV: [1] tokens per second, [2] burst, [3] longest
 * hold in µs, [4] key TTL in ms. Returns {1 allowed or 0 refused, µs to wait
 * for the token (allowed) or until one would come (refused)}.
 */
export const BUCKET_SCRIPT = `
local key = KEYS[1]
local rate = tonumber(ARGV[1]) / 1000000
local burst = tonumber(ARGV[2])
local max_delay = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local state = redis.call('HMGET', key, 'last', 'tokens')
local last = tonumber(state[1])
local tokens = tonumber(state[2])
if last == nil or tokens == nil then
  last = now
  tokens = burst
elseif now > last then
  tokens = math.min(burst, tokens + (now - last) * rate)
  last = now
end
local left = tokens - 1
local wait = 0
local allowed = 1
if left < 0 then
  wait = -left / rate
  if wait > max_delay then
    allowed = 0
    left = tokens
  end
end
redis.call('HSET', key, 'last', string.format('%.0f', last), 'tokens', string.format('%.17g', left))
redis.call('PEXPIRE', key, ttl)
return {allowed, math.ceil(wait)}
`;

/** SHA-1 of the script, as `EVALSHA` names it. */
export const BUCKET_SCRIPT_SHA1: string = createHash("sha1").update(BUCKET_SCRIPT).digest("hex");

/** The prefix of every bucket key, Traefik's. */
export const BUCKET_KEY_PREFIX = "rate:";

/**
 * How long a bucket must outlive its last request so that forgetting it
 * never changes an answer: the time to refill from the lowest level it can
 * reach (a token short of empty for each held request) to full, plus a second.
 */
export function bucketTtlMs(ratePerSecond: number, burst: number, maxDelayMs: number): number {
  const refillMs = ((burst + 1) * 1000) / ratePerSecond + maxDelayMs;
  return Math.ceil(Math.min(refillMs, 365 * 24 * 3600 * 1000)) + 1000;
}

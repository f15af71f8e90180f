/**
 * The pure core of `rateLimit`: one token bucket per source, with the
 * semantics of Go's `golang.org/x/time/rate` that Traefik uses. A request
 * reserves a token; when the bucket is short, it may wait up to `maxDelayMs`
 * for the token to arrive, and beyond that it is refused with the time
 * after which it would succeed. Time is passed in; nothing here does I/O.
 *
 * Memory is bounded: at most `maxSources` buckets are kept, least recently
 * used first out. An evicted bucket comes back full, which only ever favours
 * a source that has been idle longest.
 *
 * @module
 */

/** What a request gets from the limiter. */
export type Decision =
  | { allowed: true; /** ms to wait before forwarding (within maxDelay) */ delayMs: number }
  | { allowed: false; /** ms until a token would be available */ retryAfterMs: number };

interface Bucket {
  tokens: number;
  last: number;
}

export interface TokenBucketOptions {
  /** Tokens added per millisecond (average / period). */
  ratePerMs: number;
  /** Bucket size: how many requests may pass at once after idling. */
  burst: number;
  /** Longest a request may be held for its token instead of refused. */
  maxDelayMs: number;
  /** Most buckets kept at once. */
  maxSources?: number;
}

/**
 * Token buckets keyed by source.
 *
 * @example
 * ```ts
 * const limiter = new TokenBuckets({ ratePerMs: 0.1, burst: 1, maxDelayMs: 5 });
 * limiter.take("10.0.0.1", 0); // { allowed: true, delayMs: 0 }
 * limiter.take("10.0.0.1", 1); // { allowed: false, retryAfterMs: 9 }
 * ```
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>();
  readonly maxSources: number;

  constructor(readonly options: TokenBucketOptions) {
    this.maxSources = options.maxSources ?? 65_536;
  }

  /** Reserves one token for `source` at time `now` (ms). */
  take(source: string, now: number): Decision {
    const { ratePerMs, burst, maxDelayMs } = this.options;
    let bucket = this.buckets.get(source);
    if (bucket) {
      this.buckets.delete(source); // re-inserted below as most recently used
      const elapsed = Math.max(0, now - bucket.last);
      bucket.tokens = Math.min(burst, bucket.tokens + elapsed * ratePerMs);
      bucket.last = Math.max(bucket.last, now);
    } else {
      if (this.buckets.size >= this.maxSources) {
        this.buckets.delete(this.buckets.keys().next().value!);
      }
      bucket = { tokens: burst, last: now };
    }
    this.buckets.set(source, bucket);
    const after = bucket.tokens - 1;
    if (after >= 0) {
      bucket.tokens = after;
      return { allowed: true, delayMs: 0 };
    }
    const waitMs = -after / ratePerMs;
    if (waitMs <= maxDelayMs) {
      bucket.tokens = after;
      return { allowed: true, delayMs: waitMs };
    }
    return { allowed: false, retryAfterMs: waitMs };
  }

  /** Number of buckets held (for tests and metrics). */
  get size(): number {
    return this.buckets.size;
  }
}

/**
 * Traefik's longest wait for a token: half the interval between two tokens
 * when more than one token comes per second, else 500 ms.
 */
export function maxDelayFor(ratePerSecond: number): number {
  return ratePerSecond < 1 ? 500 : 1000 / (2 * Math.floor(ratePerSecond));
}

/**
 * A duration the way Go's `time.Duration.String` prints it, for
 * `X-Retry-In`: "9.5ms", "1.2s", "1m0.5s", "1h0m0s"; nanosecond precision.
 */
export function goDuration(ms: number): string {
  const ns = Math.round(ms * 1e6);
  if (ns <= 0) return "0s";
  if (ns < 1e3) return `${ns}ns`;
  if (ns < 1e6) return `${withFraction(ns, 3)}µs`;
  if (ns < 1e9) return `${withFraction(ns, 6)}ms`;
  const seconds = Math.floor(ns / 1e9);
  let text = `${seconds % 60}${fraction(ns % 1e9, 9)}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes > 0) {
    text = `${minutes % 60}m${text}`;
    const hours = Math.floor(minutes / 60);
    if (hours > 0) text = `${hours}h${text}`;
  }
  return text;
}

/** `value` with its last `digits` digits as a decimal fraction, trailing zeros dropped. */
function withFraction(value: number, digits: number): string {
  const unit = 10 ** digits;
  return `${Math.floor(value / unit)}${fraction(value % unit, digits)}`;
}

function fraction(part: number, digits: number): string {
  if (part === 0) return "";
  return "." + String(part).padStart(digits, "0").replace(/0+$/, "");
}

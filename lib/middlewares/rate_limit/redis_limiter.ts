/**
 * The cluster-wide limiter behind `rateLimit.redis`: one token bucket per
 * (middleware, source) in Redis, so every instance that uses the same Redis
 * and the same middleware name draws from the same bucket.
 *
 * When Redis cannot answer, a request gets what `failureMode` says:
 * - `"error"` (default, Traefik's behaviour): 500 "Could not insert/update bucket".
 * - `"local"` (Portico): this node's own token bucket, with the rate and the
 *   burst divided by the number of cluster members, so the cluster as a
 *   whole stays near the configured budget while Redis is away.
 *
 * An outage is logged once when it starts (and again only if its cause
 * changes, e.g. from "refused connection" to "wrong password"), and once
 * when Redis is back; never once per request. Passwords are never logged.
 *
 * @module
 */

import { orAfter } from "../../deadline.ts";
import { type Decision, maxDelayFor, TokenBuckets } from "./token_bucket.ts";
import { connectTimeoutMessage, type RedisLimiterOptions } from "./redis_options.ts";
import { BUCKET_KEY_PREFIX, bucketTtlMs } from "./redis_script.ts";
import type { RedisBucketPool } from "./redis_pool.ts";
import { clusterMembers, rateLimitLog } from "./runtime.ts";

/** What a request gets: a bucket decision, or `failed` (answer 500). */
export type Outcome = Decision | { allowed: false; failed: true };

/** The limit itself, as `rateLimit` computed it. */
export interface LimitParams {
  ratePerSecond: number;
  burst: number;
  maxDelayMs: number;
}

/** One cause of an outage, for logging once per cause. */
interface Cause {
  kind: "credentials" | "db" | "unavailable";
  message: string;
}

/** The rate limiter of one `rateLimit.redis` middleware. */
export class RedisRateLimiter {
  readonly #args: string[];
  readonly #endpoint: string;
  #pool: RedisBucketPool | undefined;
  #loading: Promise<RedisBucketPool | undefined> | undefined;
  #retired = false;
  #outage: Cause | undefined;
  #lastError: Cause | undefined;
  #fallback: { members: number; buckets: TokenBuckets } | undefined;

  constructor(
    readonly name: string,
    readonly params: LimitParams,
    readonly options: RedisLimiterOptions,
  ) {
    const { ratePerSecond, burst, maxDelayMs } = params;
    this.#args = [
      String(ratePerSecond),
      String(burst),
      String(Math.round(maxDelayMs * 1000)),
      String(bucketTtlMs(ratePerSecond, burst, maxDelayMs)),
    ];
    this.#endpoint = options.endpoints.map((e) =>
      `${e.host.includes(":") ? `[${e.host}]` : e.host}:${e.port}`
    ).join(", ");
  }

  /** Loads the Redis client and opens the connections, without waiting. */
  warmUp(): void {
    void this.#load();
  }

  /** Takes one token from `source`'s bucket. Resolves within the configured timeouts. */
  take(source: string): Promise<Outcome> {
    const pool = this.#pool;
    // The common case, without an async frame of its own: one script call.
    if (pool?.ready) {
      return pool.run(this.#key(source), this.#args).then(
        this.#decided,
        (err) => this.#failed(source, classify(err)),
      );
    }
    return this.#takeWhenConnected(source);
  }

  async #takeWhenConnected(source: string): Promise<Outcome> {
    const pool = this.#pool ?? await this.#loadWithin(this.options.dialTimeoutMs);
    if (!pool) {
      return this.#failed(
        source,
        this.#lastError ?? unavailable("the Redis client could not be loaded in time"),
      );
    }
    // Only a first connection is worth waiting for; during an outage, answer now.
    if (!pool.ready && !(await pool.whenReady())) {
      return this.#failed(
        source,
        this.#lastError ?? unavailable(connectTimeoutMessage(this.options.dialTimeoutMs)),
      );
    }
    try {
      return this.#decided(await pool.run(this.#key(source), this.#args));
    } catch (err) {
      return this.#failed(source, classify(err as Error));
    }
  }

  #key(source: string): string {
    return BUCKET_KEY_PREFIX + this.name + ":" + source;
  }

  readonly #decided = ([allowed, micros]: [number, number]): Outcome => {
    this.#recovered();
    return allowed === 1
      ? { allowed: true, delayMs: micros / 1000 }
      : { allowed: false, retryAfterMs: micros / 1000 };
  };

  /** Closes the connections once in-flight commands have their answer. */
  retire(): void {
    this.#retired = true;
    this.#pool?.retire();
  }

  #load(): Promise<RedisBucketPool | undefined> {
    this.#loading ??= import("./redis_pool.ts").then(({ RedisBucketPool }) => {
      if (this.#retired) return undefined;
      const pool = new RedisBucketPool(this.options, {
        onError: (err) => this.#noteError(classify(err)),
        onReady: () => this.#recovered(),
      });
      pool.connect();
      this.#pool = pool;
      return pool;
    }).catch((err) => {
      this.#noteError(
        unavailable(`the Redis client could not be loaded: ${(err as Error).message}`),
      );
      this.#loading = undefined;
      return undefined;
    });
    return this.#loading;
  }

  async #loadWithin(ms: number): Promise<RedisBucketPool | undefined> {
    return await orAfter(this.#load(), ms, undefined);
  }

  #failed(source: string, cause: Cause): Outcome {
    this.#noteError(cause);
    if (this.options.failureMode !== "local") return { allowed: false, failed: true };
    return this.#localBuckets().take(source, performance.now());
  }

  #localBuckets(): TokenBuckets {
    const members = clusterMembers();
    if (this.#fallback?.members !== members) {
      const rate = this.params.ratePerSecond / members;
      this.#fallback = {
        members,
        buckets: new TokenBuckets({
          ratePerMs: rate / 1000,
          burst: Math.max(1, Math.floor(this.params.burst / members)),
          maxDelayMs: maxDelayFor(rate),
        }),
      };
    }
    return this.#fallback.buckets;
  }

  #noteError(cause: Cause): void {
    this.#lastError = cause;
    if (this.#retired) return;
    const previous = this.#outage;
    this.#outage = cause;
    if (previous && previous.kind === cause.kind) return;
    const fields = { middleware: this.name, redis: this.#endpoint, reason: cause.message };
    if (cause.kind === "credentials") {
      rateLimitLog(
        "error",
        `middleware "${this.name}": option redis.password: Redis at ${this.#endpoint} refused the credentials (${cause.message}); ${this.#mode()}`,
        fields,
      );
    } else if (cause.kind === "db") {
      rateLimitLog(
        "error",
        `middleware "${this.name}": option redis.db: Redis at ${this.#endpoint} refused it (${cause.message}); ${this.#mode()}`,
        fields,
      );
    } else {
      rateLimitLog(
        "error",
        `middleware "${this.name}": Redis at ${this.#endpoint} is unavailable (${cause.message}); ${this.#mode()}`,
        fields,
      );
    }
  }

  #mode(): string {
    if (this.options.failureMode !== "local") {
      return 'answering 500 "Could not insert/update bucket" until it answers';
    }
    const members = clusterMembers();
    return members > 1
      ? `limiting on this node alone, at 1/${members} of the budget, until it answers`
      : "limiting on this node alone until it answers";
  }

  #recovered(): void {
    if (!this.#outage || this.#retired) return;
    this.#outage = undefined;
    this.#lastError = undefined;
    rateLimitLog(
      "info",
      `middleware "${this.name}": Redis at ${this.#endpoint} answers again; the bucket is shared again`,
      {
        middleware: this.name,
        redis: this.#endpoint,
      },
    );
  }
}

function unavailable(message: string): Cause {
  return { kind: "unavailable", message };
}

/** Sorts a Redis or socket error into what the operator has to fix. */
function classify(err: Error): Cause {
  const message = String(err?.message ?? err).replace(/\s+/g, " ").trim();
  if (/^(WRONGPASS|NOAUTH|NOPERM)\b|invalid password|invalid username-password/i.test(message)) {
    return { kind: "credentials", message };
  }
  if (/DB index is out of range/i.test(message)) return { kind: "db", message };
  return unavailable(message);
}

/**
 * `circuitBreaker`: stops sending traffic to a service whose recent
 * responses match `expression`, answering `responseCode` instead for
 * `fallbackDuration`, then lets a growing share through during
 * `recoveryDuration` (see breaker.ts).
 *
 * Latency is measured until the response headers arrive (oxy measures until
 * the handler returns, which includes sending the body). The expression is
 * typed as oxy types it (see expression.ts): what Traefik refuses at load,
 * Portico refuses at build.
 *
 * @module
 */

import { UpstreamError } from "../../proxy/upstream.ts";
import { readOptions } from "../options.ts";
import type { MiddlewareFactory } from "../types.ts";
import { validStatus } from "../shared/responses.ts";
import { STATUS_TEXT } from "../../http_status.ts";
import { Breaker } from "./breaker.ts";
import { ExpressionError, parseExpression, type Predicate } from "./expression.ts";

/**
 * Builds a `circuitBreaker` middleware.
 *
 * @example
 * ```toml
 * [http.middlewares.cb.circuitBreaker]
 * expression = "ResponseCodeRatio(500, 600, 0, 600) > 0.25 || NetworkErrorRatio() > 0.10"
 * checkPeriod = "100ms"
 * fallbackDuration = "10s"
 * recoveryDuration = "10s"
 * responseCode = 503
 * ```
 */
export const circuitBreaker: MiddlewareFactory = (options, context) => {
  const o = readOptions(context.name, options);
  o.unknownKeysCheck([
    "expression",
    "checkPeriod",
    "fallbackDuration",
    "recoveryDuration",
    "responseCode",
  ]);
  const text = o.string("expression", { required: true });
  let condition: Predicate;
  try {
    condition = parseExpression(text);
  } catch (err) {
    if (!(err instanceof ExpressionError)) throw err;
    return o.fail("expression", `${err.message} in ${JSON.stringify(text)}`);
  }
  const positive = (key: string, fallback: number) => {
    const ms = o.duration(key, { default: fallback });
    return ms > 0 ? ms : fallback; // Traefik treats 0 as "use the default"
  };
  const breaker = new Breaker({
    condition,
    checkPeriodMs: positive("checkPeriod", 100),
    fallbackDurationMs: positive("fallbackDuration", 10_000),
    recoveryDurationMs: positive("recoveryDuration", 10_000),
  });
  const responseCode = o.int("responseCode", { default: 503 });
  if (!validStatus(responseCode)) {
    o.fail(
      "responseCode",
      `expected an HTTP status code between 100 and 599, found ${responseCode}`,
    );
  }

  // Traefik's fallback writes the bare status text (no newline, Go sniffs the type).
  const fallbackText = responseCode === 204 || responseCode === 304 || responseCode < 200
    ? null
    : STATUS_TEXT[responseCode] ?? "";
  const fallback = () =>
    new Response(fallbackText, {
      status: responseCode,
      headers: { "content-type": "text/plain; charset=utf-8" },
    });

  return async (c, next) => {
    const started = performance.now();
    if (!breaker.admit(started)) return fallback();
    try {
      await next();
    } catch (err) {
      const now = performance.now();
      breaker.record(
        now,
        err instanceof UpstreamError ? err.status : 500,
        now - started,
        err instanceof UpstreamError,
      );
      throw err;
    }
    const now = performance.now();
    const status = c.res.status;
    // oxy counts 502 and 504 answers as network errors, whoever produced them.
    breaker.record(now, status, now - started, status === 502 || status === 504);
  };
};

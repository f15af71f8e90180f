/**
 * The circuit breaker's expression language (Traefik's oxy cbreaker):
 * `NetworkErrorRatio()`, `ResponseCodeRatio(from, to, dividedByFrom,
 * dividedByTo)`, `LatencyAtQuantileMS(quantile)` and `RequestThreshold()`,
 * compared with `> < >= <= == !=` against a literal and joined with `&&`,
 * `||` and parentheses. Typed as oxy types it: ratios are float64 (compare
 * with `0.5`, never `1`), the latency in ms and the request count are
 * integers (`> 100`, never `> 100.5`), the quantile is a float (`50.0`) and
 * the status codes are integers. Parsed once into a predicate over a
 * {@link Metrics} view; no I/O, no time.
 *
 * @module
 */

import { compilePredicate, type PredicateFunction } from "../shared/predicate.ts";

export { ExpressionError } from "../shared/predicate.ts";

/** What an expression can ask about the recent traffic. */
export interface Metrics {
  /** Share of requests that failed at the network level (502/504), 0..1. */
  networkErrorRatio(): number;
  /** Responses with a code in [from, to) divided by those in [dividedByFrom, dividedByTo); 0 when the latter is 0. */
  responseCodeRatio(from: number, to: number, dividedByFrom: number, dividedByTo: number): number;
  /** Latency in ms at quantile q (0..100). */
  latencyAtQuantileMS(q: number): number;
  /** Requests recorded in the window. */
  requestCount(): number;
}

export type Predicate = (m: Metrics) => boolean;

const FUNCTIONS: Record<string, PredicateFunction<Metrics>> = {
  NetworkErrorRatio: {
    params: [],
    returns: "float64",
    bind: () => (m) => m.networkErrorRatio(),
  },
  ResponseCodeRatio: {
    params: ["int", "int", "int", "int"],
    returns: "float64",
    bind: ([from, to, dFrom, dTo]) => (m) =>
      m.responseCodeRatio(from as number, to as number, dFrom as number, dTo as number),
  },
  LatencyAtQuantileMS: {
    params: ["float64"],
    returns: "int",
    // oxy converts the histogram's duration to whole milliseconds.
    bind: ([q]) => {
      const quantile = Math.min(q as number, 100);
      return (m) => Math.trunc(m.latencyAtQuantileMS(quantile));
    },
  },
  RequestThreshold: {
    params: [],
    returns: "int64",
    bind: () => (m) => m.requestCount(),
  },
};

/**
 * Parses an expression into a predicate.
 *
 * @throws {ExpressionError} naming what was expected and where.
 * @example
 * ```ts
 * const tripped = parseExpression("NetworkErrorRatio() > 0.5 || LatencyAtQuantileMS(50.0) > 100");
 * ```
 */
export function parseExpression(src: string): Predicate {
  return compilePredicate(src, FUNCTIONS);
}

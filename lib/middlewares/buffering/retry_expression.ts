/**
 * The `retryExpression` language of Traefik's buffering middleware (oxy's
 * buffer predicates): `IsNetworkError()` (a condition), `Attempts()` and
 * `ResponseCode()` (integers), `RequestMethod()` (a string, compared with
 * `==` or `!=`), joined with `&&`, `||` and parentheses. Typed and refused
 * as oxy does it (no `!`, integers only for counts and codes). Compiled
 * once to a function; a pure core with no I/O.
 *
 * @module
 */

import { compilePredicate, type PredicateFunction } from "../shared/predicate.ts";

/** What a retry decision looks at. */
export interface RetryFacts {
  /** 1 for the first try. */
  attempts: number;
  /** The status of the last attempt (a 502/504 written by the proxy when the upstream failed). */
  responseCode: number;
  /** The client's request method. */
  method: string;
}

const FUNCTIONS: Record<string, PredicateFunction<RetryFacts>> = {
  // oxy: "the last attempt ended with a network error" means it ended with 502 or 504.
  IsNetworkError: {
    params: [],
    returns: "condition",
    bind: () => (f) => f.responseCode === 502 || f.responseCode === 504,
  },
  Attempts: { params: [], returns: "int", bind: () => (f) => f.attempts },
  ResponseCode: { params: [], returns: "int", bind: () => (f) => f.responseCode },
  RequestMethod: { params: [], returns: "string", bind: () => (f) => f.method },
};

/**
 * Compiles `source` to a predicate, or throws an ExpressionError saying where it stopped.
 *
 * @example
 * ```ts
 * const retry = compileRetryExpression("IsNetworkError() && Attempts() < 2");
 * retry({ attempts: 1, responseCode: 502, method: "GET" }); // true
 * ```
 */
export function compileRetryExpression(source: string): (facts: RetryFacts) => boolean {
  return compilePredicate(source, FUNCTIONS);
}

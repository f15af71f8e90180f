/**
 * Traefik's retry backoff: exponential, starting at `initialInterval`, with
 * the multiplier chosen so the last wait is about twice the first
 * (2^(1/(attempts-1))), whatever the number of attempts. Pure.
 *
 * @module
 */

/**
 * Milliseconds to wait before retry number `retry` (1 = the first retry).
 *
 * @example
 * ```ts
 * backoffDelay(100, 3, 1); // 100
 * backoffDelay(100, 3, 2); // ~141
 * ```
 */
export function backoffDelay(initialIntervalMs: number, attempts: number, retry: number): number {
  if (attempts < 2 || initialIntervalMs <= 0) return 0;
  const multiplier = Math.pow(2, 1 / (attempts - 1));
  return initialIntervalMs * Math.pow(multiplier, retry - 1);
}

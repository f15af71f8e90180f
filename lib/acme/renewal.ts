/**
 * When to renew and how long to wait after a failure. Pure: time is an
 * argument.
 *
 * @module
 */

/** How often the manager re-checks every certificate (Traefik: 24 h; the issue asks 12 h). */
export const RENEWAL_CHECK_INTERVAL_MS = 12 * 3600_000;

/**
 * True when a third of the certificate's lifetime or less remains (30 days
 * for a 90-day certificate), or it has already expired.
 */
export function renewalDue(notBefore: Date, notAfter: Date, now: Date): boolean {
  const lifetime = notAfter.getTime() - notBefore.getTime();
  return notAfter.getTime() - now.getTime() <= lifetime / 3;
}

/** Base and cap of the retry delay after a failed order. */
export const BACKOFF_BASE_MS = 60_000;
export const BACKOFF_MAX_MS = 24 * 3600_000;

/**
 * Delay before retry number `failures` (1 = after the first failure):
 * exponential from {@linkcode BACKOFF_BASE_MS}, capped, and never shorter
 * than a `Retry-After` the CA sent.
 */
export function retryDelayMs(
  failures: number,
  retryAfterMs?: number,
  baseMs = BACKOFF_BASE_MS,
): number {
  const exp = Math.min(BACKOFF_MAX_MS, baseMs * 2 ** Math.max(0, failures - 1));
  return Math.max(exp, retryAfterMs ?? 0);
}

/** Reads a `Retry-After` header value (seconds or HTTP date) as milliseconds from `now`. */
export function parseRetryAfter(value: string | undefined | null, now: Date): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now.getTime());
}

/**
 * When to renew and how long to wait after a failure. Pure: time is an
 * argument.
 *
 * @module
 */

import { TEST_HOOKS_ENV, TEST_RENEWAL_CHECK_ENV } from "../env.ts";


/** How often the manager re-checks every certificate (Traefik: 24 h; the issue asks 12 h). */
export const RENEWAL_CHECK_INTERVAL_MS = 12 * 3600_000;

/** The shortest interval the test hook accepts: every check walks every certificate. */
export const MIN_RENEWAL_CHECK_MS = 100;

/**
 * The manager's check interval: {@linkcode RENEWAL_CHECK_INTERVAL_MS}, unless
 * the test hooks are on and `PORTICO_TEST_RENEWAL_CHECK_MS` is set, so a
 * process test can watch a short-lived certificate renew. Without the switch
 * the variable is ignored: an operator cannot shorten it by accident.
 *
 * @example
 * ```ts
 * const ms = renewalCheckIntervalMs((name) => Deno.env.get(name));
 * ```
 */
export function renewalCheckIntervalMs(env: (name: string) => string | undefined): number {
  const raw = env(TEST_HOOKS_ENV) === "1" ? env(TEST_RENEWAL_CHECK_ENV)?.trim() : undefined;
  if (!raw) return RENEWAL_CHECK_INTERVAL_MS;
  const ms = Number(raw);
  if (!/^\d+$/.test(raw) || ms < MIN_RENEWAL_CHECK_MS || ms > RENEWAL_CHECK_INTERVAL_MS) {
    throw new Error(
      `${TEST_RENEWAL_CHECK_ENV}: expected whole milliseconds from ${MIN_RENEWAL_CHECK_MS} to ${RENEWAL_CHECK_INTERVAL_MS}, found "${raw}"`,
    );
  }
  return ms;
}

/**
 * True when a third of the certificate's lifetime or less remains (30 days
 * for a 90-day certificate), or it has already expired.
 */
export function renewalDue(notBefore: Date, notAfter: Date, now: Date): boolean {
  const lifetime = notAfter.getTime() - notBefore.getTime();
  return notAfter.getTime() - now.getTime() <= lifetime / 3;
}

/** The Retry-After parser lives with the retry policy that uses it. */
export { parseRetryAfter } from "./retry_policy.ts";

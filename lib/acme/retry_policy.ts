/**
 * When to try a certificate again after a failed order, as a pure function
 * of the previous retry state, the failure and the time (passed in).
 *
 * Why each rule:
 * - A challenge the CA could not reach, or a network error, is usually
 *   transient (a node still starting, a CA blip): retry soon, then back off
 *   exponentially (5 s, 10 s, 20 s, … capped at 1 h).
 * - Let's Encrypt allows 5 failed validations per account, hostname and
 *   hour, and every failed authorization kills its order. So no attempt is
 *   allowed that could be the sixth failed authorization within an hour:
 *   after 5 in the window the next attempt waits until the oldest leaves it.
 * - A `Retry-After` from the CA is a floor, in both its forms (seconds and
 *   HTTP-date, see {@linkcode parseRetryAfter}).
 * - A CA rejection (the CA will not issue for this name: `rejectedIdentifier`,
 *   `caa`, `unauthorized`, …) does not get better by asking again; it is not
 *   retried in a loop but re-checked once a day, so an operator's fix
 *   (DNS, CAA record, router) is picked up without a restart.
 *
 * @module
 */

import { storedObject } from "./stored_json.ts";

/** How a failure is treated. */
export type FailureKind = "unreachable" | "network" | "rateLimited" | "rejected";

/** An RFC 7807 problem document, as the CA sent it (fields kept as strings). */
export interface ProblemDocument {
  type?: string;
  detail?: string;
  status?: number;
  /** Per-identifier problems of a compound error. */
  subproblems?: { type?: string; detail?: string; identifier?: string }[];
}

/** One failed order attempt, as the retry policy needs it. */
export interface Failure {
  kind: FailureKind;
  message: string;
  /** Authorizations that went invalid in this attempt (each counts against the hourly limit). */
  failedAuthorizations: number;
  /** From the CA's Retry-After, already converted to milliseconds from `now`. */
  retryAfterMs?: number;
  problem?: ProblemDocument;
}

/** Per-certificate retry state; stored in the KV so a new manager continues it. */
export interface RetryState {
  /** Consecutive failed attempts. */
  failures: number;
  /** Epoch ms of each failed authorization within the last hour. */
  failedAuthzAt: number[];
  /** Epoch ms before which no new attempt is made. */
  nextAttempt: number;
  kind: FailureKind;
  lastError: string;
  problem?: ProblemDocument;
}

export const RETRY_BASE_MS = 5_000;
export const RETRY_CAP_MS = 3600_000;
/** Let's Encrypt's failed-validation limit: per account, hostname and hour. */
export const MAX_FAILED_AUTHZ_PER_HOUR = 5;
export const FAILED_AUTHZ_WINDOW_MS = 3600_000;
/** A CA rejection is looked at again after this long (not a loop: once a day). */
export const REJECTED_RECHECK_MS = 24 * 3600_000;

const ACME_ERROR = "urn:ietf:params:acme:error:";

/** Problem types meaning "the CA could not reach or read the challenge": worth retrying. */
const UNREACHABLE = new Set(["connection", "dns", "tls", "incorrectResponse", "timeout"]);
/** Problem types of a transient CA or transport condition. */
const TRANSIENT = new Set(["serverInternal", "badNonce"]);

/**
 * Classifies an ACME problem type (with or without the `urn:ietf:params:acme:error:`
 * prefix) and HTTP status. No problem at all (a socket error, a timeout) is
 * `network`. Anything the CA says that is not known to be transient is a
 * rejection: retrying an unknown refusal in a loop is what must not happen.
 */
export function classifyProblem(type: string | undefined, status?: number): FailureKind {
  if (!type) {
    if (status === 429) return "rateLimited";
    if (status === undefined || status >= 500) return "network";
    return "rejected";
  }
  const t = type.startsWith(ACME_ERROR) ? type.slice(ACME_ERROR.length) : type;
  if (t === "rateLimited" || status === 429) return "rateLimited";
  if (UNREACHABLE.has(t)) return "unreachable";
  if (TRANSIENT.has(t) || (status !== undefined && status >= 500)) return "network";
  return "rejected";
}

/** Exponential backoff for consecutive failure number `failures` (1 = first). */
export function backoffMs(failures: number): number {
  return Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** Math.max(0, Math.min(30, failures - 1)));
}

/**
 * The retry state after `failure` at `now` (epoch ms). Pure.
 *
 * @example
 * ```ts
 * const s1 = afterFailure(undefined, { kind: "unreachable", message: "refused", failedAuthorizations: 1 }, 0);
 * s1.nextAttempt; // 5000
 * ```
 */
export function afterFailure(
  previous: RetryState | undefined,
  failure: Failure,
  now: number,
): RetryState {
  const failures = (previous?.failures ?? 0) + 1;
  const window = (previous?.failedAuthzAt ?? []).filter((t) => t > now - FAILED_AUTHZ_WINDOW_MS);
  for (let i = 0; i < failure.failedAuthorizations; i++) window.push(now);
  let next = failure.kind === "rejected" ? now + REJECTED_RECHECK_MS : now + backoffMs(failures);
  if (failure.retryAfterMs !== undefined && failure.retryAfterMs > 0) {
    next = Math.max(next, now + failure.retryAfterMs);
  }
  if (window.length >= MAX_FAILED_AUTHZ_PER_HOUR) {
    // The next attempt may fail again; it must not be the sixth in an hour.
    const oldestThatMustExpire = window[window.length - MAX_FAILED_AUTHZ_PER_HOUR];
    next = Math.max(next, oldestThatMustExpire + FAILED_AUTHZ_WINDOW_MS);
  }
  return {
    failures,
    failedAuthzAt: window,
    nextAttempt: next,
    kind: failure.kind,
    lastError: failure.message,
    ...(failure.problem ? { problem: failure.problem } : {}),
  };
}

/** Whether an attempt may start at `now`. */
export function mayAttempt(state: RetryState | undefined, now: number): boolean {
  return !state || state.nextAttempt <= now;
}

/** Reads a `Retry-After` header value (seconds or HTTP-date) as milliseconds from `now`. */
export function parseRetryAfter(value: string | undefined | null, now: Date): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now.getTime());
}

/** Encodes a retry state for the KV. */
export function encodeRetryState(state: RetryState): string {
  return JSON.stringify(state);
}

/** Decodes a stored retry state; throws naming the key and the field. */
export function decodeRetryState(where: string, text: string): RetryState {
  const { v, need: field } = storedObject(where, text);
  field("failures", Number.isSafeInteger(v.failures) && (v.failures as number) >= 0);
  field(
    "failedAuthzAt",
    Array.isArray(v.failedAuthzAt) && v.failedAuthzAt.every((t) => Number.isFinite(t)),
  );
  field("nextAttempt", Number.isFinite(v.nextAttempt));
  field("kind", ["unreachable", "network", "rateLimited", "rejected"].includes(v.kind as string));
  field("lastError", typeof v.lastError === "string");
  return {
    failures: v.failures as number,
    failedAuthzAt: v.failedAuthzAt as number[],
    nextAttempt: v.nextAttempt as number,
    kind: v.kind as FailureKind,
    lastError: v.lastError as string,
    ...(typeof v.problem === "object" && v.problem !== null
      ? { problem: v.problem as ProblemDocument }
      : {}),
  };
}

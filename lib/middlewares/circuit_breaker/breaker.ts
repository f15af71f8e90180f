/**
 * The circuit breaker's state machine, as oxy's cbreaker runs it for
 * Traefik. Pure: time is passed in.
 *
 * - standby: every request passes; after each response, at most once per
 *   `checkPeriod`, the expression is evaluated over the recent metrics and,
 *   when true, the breaker trips (and the metrics are reset).
 * - tripped: every request gets the fallback until `fallbackDuration` has
 *   passed, then the breaker is recovering.
 * - recovering: a share of requests growing linearly from 0 to 1 over
 *   `recoveryDuration` passes, the rest get the fallback; then standby.
 *
 * @module
 */

import type { Predicate } from "./expression.ts";
import { RollingMetrics } from "./metrics.ts";

export type BreakerState = "standby" | "tripped" | "recovering";

export interface BreakerOptions {
  condition: Predicate;
  checkPeriodMs: number;
  fallbackDurationMs: number;
  recoveryDurationMs: number;
}

/**
 * One breaker.
 *
 * @example
 * ```ts
 * const b = new Breaker({ condition, checkPeriodMs: 100, fallbackDurationMs: 10_000, recoveryDurationMs: 10_000 });
 * if (b.admit(now)) { ...; b.record(later, status, latencyMs, networkError); }
 * ```
 */
export class Breaker {
  state: BreakerState = "standby";
  readonly metrics = new RollingMetrics();
  private until = 0;
  private nextCheck = -Infinity;
  private recoveryStart = 0;
  private allowed = 0;
  private denied = 0;

  constructor(readonly options: BreakerOptions) {}

  /** True when the request may go to the service; false means answer with the fallback. */
  admit(now: number): boolean {
    if (this.state === "standby") return true;
    if (this.state === "tripped") {
      if (now < this.until) return false;
      this.state = "recovering";
      this.recoveryStart = now;
      this.until = now + this.options.recoveryDurationMs;
      this.allowed = 0;
      this.denied = 0;
    }
    if (now >= this.until) {
      this.state = "standby";
      this.metrics.reset();
      return true;
    }
    // oxy's ratio controller: allow this one if the cumulative allowed share
    // stays under half the elapsed fraction. With steady traffic a cumulative
    // share of x/2 means the share of requests let through right now is x,
    // a linear ramp from 0 to 1 over recoveryDuration.
    const target = 0.5 * (now - this.recoveryStart) / this.options.recoveryDurationMs;
    if ((this.allowed + 1) / (this.allowed + 1 + this.denied) <= target) {
      this.allowed++;
      return true;
    }
    this.denied++;
    return false;
  }

  /** Records a finished request and, in standby, checks the condition. */
  record(now: number, status: number, latencyMs: number, networkError: boolean): void {
    this.metrics.record(now, status, latencyMs, networkError);
    if (this.state !== "standby" || now < this.nextCheck) return;
    this.nextCheck = now + this.options.checkPeriodMs;
    if (this.options.condition(this.metrics.view(now))) {
      this.state = "tripped";
      this.until = now + this.options.fallbackDurationMs;
      this.metrics.reset();
    }
  }
}

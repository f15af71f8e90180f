/**
 * Rolling request metrics for the circuit breaker, like oxy's RTMetrics:
 * counts, network errors, status codes and a latency histogram over a
 * window of `buckets` × `resolutionMs` (10 × 1 s by default). Time is passed
 * in. Latencies go into log-scaled bins (1 % wide), so memory per bucket is
 * bounded whatever the traffic, and quantiles are within about 1 %.
 *
 * @module
 */

import type { Metrics } from "./expression.ts";

interface Bucket {
  /** Index of the time slot this bucket holds (time / resolution). */
  slot: number;
  total: number;
  netErrors: number;
  codes: Map<number, number>;
  latency: Map<number, number>;
}

const GROWTH = Math.log(1.01);

function latencyBin(ms: number): number {
  return ms <= 0.001 ? 0 : Math.max(0, Math.ceil(Math.log(ms * 1000) / GROWTH));
}

function binValue(bin: number): number {
  return bin === 0 ? 0 : Math.exp(bin * GROWTH) / 1000;
}

/**
 * Sliding-window metrics.
 *
 * @example
 * ```ts
 * const m = new RollingMetrics();
 * m.record(now, 502, 3, true);
 * m.view(now).networkErrorRatio(); // 1
 * ```
 */
export class RollingMetrics {
  private readonly buckets: Bucket[];

  constructor(readonly bucketCount = 10, readonly resolutionMs = 1000) {
    this.buckets = Array.from({ length: bucketCount }, () => emptyBucket(-Infinity));
  }

  /** Records one finished request at `now`. */
  record(now: number, status: number, latencyMs: number, networkError: boolean): void {
    const b = this.bucketAt(now);
    b.total++;
    if (networkError) b.netErrors++;
    b.codes.set(status, (b.codes.get(status) ?? 0) + 1);
    const bin = latencyBin(latencyMs);
    b.latency.set(bin, (b.latency.get(bin) ?? 0) + 1);
  }

  /** Forgets everything (after the breaker trips, as oxy does). */
  reset(): void {
    for (let i = 0; i < this.buckets.length; i++) this.buckets[i] = emptyBucket(-Infinity);
  }

  /** The metrics of the window ending at `now`, for an expression to read. */
  view(now: number): Metrics {
    const current = Math.floor(now / this.resolutionMs);
    const live = this.buckets.filter((b) =>
      b.slot > current - this.bucketCount && b.slot <= current
    );
    const total = live.reduce((n, b) => n + b.total, 0);
    const codesIn = (from: number, to: number) => {
      let n = 0;
      for (const b of live) {
        for (const [code, count] of b.codes) if (code >= from && code < to) n += count;
      }
      return n;
    };
    return {
      networkErrorRatio:
        () => (total === 0 ? 0 : live.reduce((n, b) => n + b.netErrors, 0) / total),
      responseCodeRatio: (from, to, dFrom, dTo) => {
        const denominator = codesIn(dFrom, dTo);
        return denominator === 0 ? 0 : codesIn(from, to) / denominator;
      },
      latencyAtQuantileMS: (q) => {
        const merged = new Map<number, number>();
        for (const b of live) {
          for (const [bin, count] of b.latency) merged.set(bin, (merged.get(bin) ?? 0) + count);
        }
        if (total === 0) return 0;
        // HdrHistogram's rank, which oxy reads: round half up; 0 means "nothing yet".
        const rank = Math.floor((q / 100) * total + 0.5);
        if (rank <= 0) return 0;
        let seen = 0;
        for (const bin of [...merged.keys()].sort((a, b) => a - b)) {
          seen += merged.get(bin)!;
          if (seen >= rank) return binValue(bin);
        }
        return 0;
      },
      requestCount: () => total,
    };
  }

  private bucketAt(now: number): Bucket {
    const slot = Math.floor(now / this.resolutionMs);
    const index = ((slot % this.bucketCount) + this.bucketCount) % this.bucketCount;
    if (this.buckets[index].slot !== slot) this.buckets[index] = emptyBucket(slot);
    return this.buckets[index];
  }
}

function emptyBucket(slot: number): Bucket {
  return { slot, total: 0, netErrors: 0, codes: new Map(), latency: new Map() };
}

/** The token bucket core, deterministically: time is passed in. */

import assert from "node:assert/strict";
import { goDuration, maxDelayFor, TokenBuckets } from "../lib/middlewares/rate_limit/token_bucket.ts";

Deno.test("token bucket: burst, refill, delay window, refusal and retry time", () => {
  // 10 per second, burst 3, may wait up to 20 ms.
  const b = new TokenBuckets({ ratePerMs: 0.01, burst: 3, maxDelayMs: 20 });
  const steps: {
    at: number;
    source?: string;
    allowed: boolean;
    delay?: number;
    retry?: number;
    name: string;
  }[] = [
    { name: "burst 1", at: 0, allowed: true, delay: 0 },
    { name: "burst 2", at: 0, allowed: true, delay: 0 },
    { name: "burst 3", at: 0, allowed: true, delay: 0 },
    { name: "empty: next token in 100 ms, too far", at: 0, allowed: false, retry: 100 },
    { name: "refusal did not consume", at: 50, allowed: false, retry: 50 },
    { name: "within delay window", at: 85, allowed: true, delay: 15 },
    { name: "reserved token pushes the next one out", at: 85, allowed: false, retry: 115 },
    { name: "other sources are independent", at: 85, source: "b", allowed: true, delay: 0 },
    { name: "refill after idling is capped at burst", at: 10_000, allowed: true, delay: 0 },
    { name: "capped 2", at: 10_000, allowed: true, delay: 0 },
    { name: "capped 3", at: 10_000, allowed: true, delay: 0 },
    { name: "capped: 4th refused", at: 10_000, allowed: false, retry: 100 },
    { name: "clock going back does not mint tokens", at: 5_000, allowed: false, retry: 100 },
  ];
  for (const s of steps) {
    const d = b.take(s.source ?? "a", s.at);
    assert.equal(d.allowed, s.allowed, s.name);
    if (d.allowed) {
      assert.ok(Math.abs(d.delayMs - s.delay!) < 1e-9, `${s.name}: delay ${d.delayMs}`);
    } else {assert.ok(
        Math.abs(d.retryAfterMs - s.retry!) < 1e-9,
        `${s.name}: retry ${d.retryAfterMs}`,
      );}
  }
});

Deno.test("token bucket: sources are bounded, least recently used evicted", () => {
  const b = new TokenBuckets({ ratePerMs: 0.001, burst: 1, maxDelayMs: 0, maxSources: 3 });
  for (const s of ["a", "b", "c"]) assert.equal(b.take(s, 0).allowed, true);
  assert.equal(b.take("a", 1).allowed, false); // a is now most recently used
  assert.equal(b.take("d", 1).allowed, true); // evicts b
  assert.equal(b.size, 3);
  assert.equal(b.take("a", 2).allowed, false, "a kept its empty bucket");
  assert.equal(b.take("b", 2).allowed, true, "b was evicted and comes back full");
});

Deno.test("token bucket: helpers", () => {
  const cases: [number, number][] = [[0.5, 500], [1, 500], [100, 5], [3.7, 1000 / 6]];
  for (const [rate, max] of cases) assert.equal(maxDelayFor(rate), max, `maxDelay(${rate})`);
  // What Go's time.Duration.String prints for these durations.
  const durations: [number, string][] = [
    [0, "0s"],
    [0.0005, "500ns"],
    [0.5, "500µs"],
    [0.7505, "750.5µs"],
    [9.5, "9.5ms"],
    [1.2345678, "1.234568ms"],
    [1500, "1.5s"],
    [59_999.9, "59.9999s"],
    [60_000, "1m0s"],
    [61_250, "1m1.25s"],
    [3_600_000, "1h0m0s"],
    [3_723_000.000001, "1h2m3.000000001s"],
  ];
  for (const [ms, text] of durations) assert.equal(goDuration(ms), text);
});

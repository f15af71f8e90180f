/** The circuit breaker's pure parts: expression language, rolling metrics, state machine. */

import assert from "node:assert/strict";
import { Breaker } from "../lib/middlewares/circuit_breaker/breaker.ts";
import { ExpressionError, type Metrics, parseExpression } from "../lib/middlewares/circuit_breaker/expression.ts";
import { RollingMetrics } from "../lib/middlewares/circuit_breaker/metrics.ts";

const fixed = (net: number, codes: number, latency: number, count = 0): Metrics => ({
  networkErrorRatio: () => net,
  responseCodeRatio: () => codes,
  latencyAtQuantileMS: () => latency,
  requestCount: () => count,
});

Deno.test("expression: evaluates comparisons, logic and precedence", () => {
  const cases: {
    expr: string;
    net: number;
    codes?: number;
    latency?: number;
    count?: number;
    expected: boolean;
  }[] = [
    { expr: "NetworkErrorRatio() > 0.5", net: 0.6, expected: true },
    { expr: "NetworkErrorRatio() > 0.5", net: 0.5, expected: false },
    { expr: "NetworkErrorRatio() >= 0.5", net: 0.5, expected: true },
    { expr: "NetworkErrorRatio() < 0.5", net: 0.1, expected: true },
    { expr: "NetworkErrorRatio() <= 0.1", net: 0.1, expected: true },
    { expr: "NetworkErrorRatio() == 0.0", net: 0, expected: true },
    { expr: "NetworkErrorRatio() != 0.0", net: 0, expected: false },
    { expr: "ResponseCodeRatio(500, 600, 0, 600) > 0.25", net: 0, codes: 0.3, expected: true },
    { expr: "LatencyAtQuantileMS(50.0) > 100", net: 0, latency: 150, expected: true },
    // oxy reads whole milliseconds: 100.9 ms is 100.
    { expr: "LatencyAtQuantileMS(50.0) > 100", net: 0, latency: 100.9, expected: false },
    { expr: "RequestThreshold() >= 20", net: 0, count: 20, expected: true },
    { expr: "RequestThreshold() >= 20", net: 0, count: 19, expected: false },
    {
      expr: "LatencyAtQuantileMS(99.0) > 100 && NetworkErrorRatio() > 0.1",
      net: 0,
      latency: 150,
      expected: false,
    },
    {
      expr: "LatencyAtQuantileMS(99.0) > 100 || NetworkErrorRatio() > 0.1",
      net: 0,
      latency: 150,
      expected: true,
    },
    // && binds tighter than ||
    {
      expr:
        "NetworkErrorRatio() > 0.1 || NetworkErrorRatio() < 0.0 && LatencyAtQuantileMS(50.0) > 1",
      net: 0.2,
      latency: 0,
      expected: true,
    },
    {
      expr:
        "(NetworkErrorRatio() > 0.1 || NetworkErrorRatio() < 0.0) && LatencyAtQuantileMS(50.0) > 1",
      net: 0.2,
      latency: 0,
      expected: false,
    },
    { expr: "  NetworkErrorRatio()>.5  ", net: 0.6, expected: true },
    { expr: "(NetworkErrorRatio()) > (0.5)", net: 0.6, expected: true },
    { expr: "NetworkErrorRatio() > 5e-1", net: 0.6, expected: true },
    { expr: "NetworkErrorRatio() > 0x1p-1", net: 0.6, expected: true },
    {
      expr: "NetworkErrorRatio() > 0.5 &&\n  RequestThreshold() > 010",
      net: 0.6,
      count: 11,
      expected: true,
    },
    { expr: "NetworkErrorRatio() > 0.5 /* half */", net: 0.6, expected: true },
  ];
  for (const tc of cases) {
    assert.equal(
      parseExpression(tc.expr)(fixed(tc.net, tc.codes ?? 0, tc.latency ?? 0, tc.count ?? 0)),
      tc.expected,
      tc.expr,
    );
  }
});

Deno.test("expression: refuses what oxy refuses, naming the problem and the offset", () => {
  const cases: { expr: string; error: RegExp }[] = [
    { expr: "", error: /empty expression/ },
    { expr: "NetworkErrorRatio()", error: /is a value, not a condition/ },
    {
      expr: "NetworkErrorRate() > 1.0",
      error: /unsupported function NetworkErrorRate; valid: NetworkErrorRatio/,
    },
    { expr: "NetworkErrorRatio(1) > 1.0", error: /takes 0 arguments, found 1/ },
    { expr: "ResponseCodeRatio(500, 600) > 1.0", error: /takes 4 arguments, found 2/ },
    {
      expr: "NetworkErrorRatio() > 1",
      error: /decimal number .* found the integer 1 at offset 22/,
    },
    { expr: "LatencyAtQuantileMS(50.0) > 50.5", error: /integer .* found the decimal number 50.5/ },
    { expr: "LatencyAtQuantileMS(50) > 50", error: /argument 1 of LatencyAtQuantileMS\(float64\)/ },
    {
      expr: "ResponseCodeRatio(500.0, 600, 0, 600) > 0.5",
      error: /argument 1 of ResponseCodeRatio/,
    },
    { expr: "RequestThreshold() > 1.5", error: /integer/ },
    { expr: "0.5 < NetworkErrorRatio()", error: /left side of < must be a function/ },
    { expr: "1 > 2", error: /left side of > must be a function/ },
    { expr: "!(NetworkErrorRatio() > 0.1)", error: /operator ! is not supported/ },
    { expr: "NetworkErrorRatio() > -0.5", error: /operator - is not supported/ },
    { expr: "NetworkErrorRatio() + 0.1 > 0.5", error: /operator \+ is not supported/ },
    { expr: "NetworkErrorRatio() && RequestThreshold() > 1", error: /&& joins conditions/ },
    { expr: "NetworkErrorRatio() > 0.5 > 0.2", error: /left side of > must be a function/ },
    { expr: 'NetworkErrorRatio() > "0.5"', error: /found the string "0.5"/ },
    { expr: "LatencyAtQuantileMS((50.0)) > 1", error: /plain literals/ },
    { expr: "ratio > 0.5", error: /ratio is not defined/ },
    { expr: "NetworkErrorRatio() > 0x10", error: /only decimal integers|decimal number/ },
    { expr: "NetworkErrorRatio() > 0.5 &&", error: /unexpected end/ },
    { expr: "(NetworkErrorRatio() > 0.5", error: /expected "\)"/ },
    { expr: "NetworkErrorRatio() > 0.5 0.3", error: /unexpected text after/ },
    { expr: "NetworkErrorRatio() > 0.5\n&& RequestThreshold() > 1", error: /line break/ },
    { expr: "RequestThreshold() > 08", error: /octal/ },
  ];
  for (const tc of cases) {
    assert.throws(
      () => parseExpression(tc.expr),
      (e: unknown) => e instanceof ExpressionError && tc.error.test(e.message),
      tc.expr,
    );
  }
});

Deno.test("rolling metrics: ratios, quantiles and the sliding window", () => {
  const m = new RollingMetrics(10, 1000);
  for (let i = 0; i < 8; i++) m.record(100, 200, 10, false);
  m.record(200, 502, 1, true);
  m.record(300, 500, 1000, false);
  const v = m.view(500);
  assert.equal(v.networkErrorRatio(), 0.1);
  assert.equal(v.responseCodeRatio(500, 600, 0, 600), 0.2);
  assert.equal(v.responseCodeRatio(500, 600, 300, 400), 0, "empty denominator");
  const near = (a: number, b: number) => Math.abs(a - b) <= b * 0.011;
  assert.ok(near(v.latencyAtQuantileMS(50), 10), `p50 ${v.latencyAtQuantileMS(50)}`);
  assert.ok(near(v.latencyAtQuantileMS(100), 1000), `p100 ${v.latencyAtQuantileMS(100)}`);
  assert.ok(near(v.latencyAtQuantileMS(5), 1), `p5 ${v.latencyAtQuantileMS(5)}`);
  // 9.5 s later the first second has left the 10 s window.
  m.record(10_050, 200, 5, false);
  const later = m.view(10_050);
  assert.equal(later.networkErrorRatio(), 0);
  assert.equal(later.responseCodeRatio(200, 300, 0, 600), 1);
  assert.equal(new RollingMetrics().view(0).latencyAtQuantileMS(50), 0);
});

Deno.test("breaker: standby → tripped → recovering → standby", () => {
  const b = new Breaker({
    condition: parseExpression("NetworkErrorRatio() > 0.5"),
    checkPeriodMs: 100,
    fallbackDurationMs: 1000,
    recoveryDurationMs: 1000,
  });
  assert.equal(b.admit(0), true);
  b.record(0, 200, 1, false); // first check: healthy
  b.record(10, 502, 1, true);
  b.record(20, 502, 1, true); // ratio 2/3 but within checkPeriod
  assert.equal(b.state, "standby");
  b.record(100, 502, 1, true);
  assert.equal(b.state, "tripped");
  assert.equal(b.admit(500), false);
  assert.equal(b.admit(1099), false);
  // Recovery: the admitted share follows the elapsed share of recoveryDuration.
  const perQuarter = [0, 0, 0, 0];
  for (let t = 1100; t < 2100; t += 10) if (b.admit(t)) perQuarter[Math.floor((t - 1100) / 250)]++;
  assert.equal(b.state, "recovering");
  assert.ok(
    perQuarter[0] >= 1 && perQuarter[0] <= 6,
    `first quarter lets a few through: ${perQuarter}`,
  );
  for (let q = 1; q < 4; q++) {
    assert.ok(perQuarter[q] > perQuarter[q - 1], `share grows: ${perQuarter}`);
  }
  assert.ok(
    perQuarter[3] >= 19 && perQuarter[3] < 25,
    `last quarter lets most through: ${perQuarter}`,
  );
  assert.equal(b.admit(2100), true);
  assert.equal(b.state, "standby");
  // Healthy traffic keeps it in standby.
  for (let t = 2100; t < 2600; t += 50) b.record(t, 200, 1, false);
  assert.equal(b.state, "standby");
});

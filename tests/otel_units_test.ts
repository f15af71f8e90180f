/**
 * The pure parts of tracing: W3C traceparent parsing, the ratio sampler,
 * the export queue's bound and drop counting, query redaction and span
 * status rules (Traefik's), and the OTLP metrics snapshot.
 */

import assert from "node:assert/strict";
import {
  formatTraceparent,
  IdSource,
  parseTraceparent,
  sampledByRatio,
} from "../lib/tracing/trace_context.ts";
import { SpanQueue } from "../lib/tracing/span_queue.ts";
import { hrTime, redactQuery, spanStatus } from "../lib/tracing/span_records.ts";
import { toResourceMetrics } from "../lib/metrics/otlp_metrics.ts";
import { RequestMetrics } from "../lib/metrics/request_metrics.ts";

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN = "00f067aa0ba902b7";

Deno.test("traceparent: valid and invalid values (W3C Trace Context)", () => {
  const cases: [string, string | null, ReturnType<typeof parseTraceparent>][] = [
    ["sampled", `00-${TRACE}-${SPAN}-01`, { traceId: TRACE, spanId: SPAN, sampled: true }],
    ["not sampled", `00-${TRACE}-${SPAN}-00`, { traceId: TRACE, spanId: SPAN, sampled: false }],
    ["other flag bits", `00-${TRACE}-${SPAN}-03`, { traceId: TRACE, spanId: SPAN, sampled: true }],
    ["later version with more fields", `01-${TRACE}-${SPAN}-01-extra`, {
      traceId: TRACE,
      spanId: SPAN,
      sampled: true,
    }],
    ["surrounding spaces", ` 00-${TRACE}-${SPAN}-01 `, {
      traceId: TRACE,
      spanId: SPAN,
      sampled: true,
    }],
    ["absent", null, undefined],
    ["version ff", `ff-${TRACE}-${SPAN}-01`, undefined],
    ["version 00 too long", `00-${TRACE}-${SPAN}-01-x`, undefined],
    ["zero trace id", `00-${"0".repeat(32)}-${SPAN}-01`, undefined],
    ["zero span id", `00-${TRACE}-${"0".repeat(16)}-01`, undefined],
    ["upper-case hex", `00-${TRACE.toUpperCase()}-${SPAN}-01`, undefined],
    ["short trace id", `00-${TRACE.slice(2)}-${SPAN}-01`, undefined],
    ["bad separator", `00_${TRACE}-${SPAN}-01`, undefined],
  ];
  for (const [name, input, expected] of cases) {
    assert.deepEqual(parseTraceparent(input), expected, name);
  }
  assert.equal(formatTraceparent(TRACE, SPAN, true), `00-${TRACE}-${SPAN}-01`);
  assert.deepEqual(parseTraceparent(formatTraceparent(TRACE, SPAN, false)), {
    traceId: TRACE,
    spanId: SPAN,
    sampled: false,
  });
});

Deno.test("ids: right length, lower-case hex, never all zero, distinct", () => {
  const ids = new IdSource();
  const seen = new Set<string>();
  for (let i = 0; i < 2000; i++) {
    const t = ids.traceId(), s = ids.spanId();
    assert.match(t, /^[0-9a-f]{32}$/);
    assert.match(s, /^[0-9a-f]{16}$/);
    seen.add(t);
  }
  assert.equal(seen.size, 2000);
});

Deno.test("ratio sampler: deterministic by trace id, close to the rate", () => {
  const ids = new IdSource();
  let hits = 0;
  const n = 20_000;
  for (let i = 0; i < n; i++) {
    const id = ids.traceId();
    const a = sampledByRatio(id, 0.1);
    assert.equal(sampledByRatio(id, 0.1), a);
    if (a) hits++;
    assert.equal(sampledByRatio(id, 0), false);
    assert.equal(sampledByRatio(id, 1), true);
    assert.equal(sampledByRatio(id, 42), true);
  }
  assert.ok(Math.abs(hits / n - 0.1) < 0.02, `sampled ${hits / n}`);
});

Deno.test("span queue: bounded, drops and counts when full, one export at a time", () => {
  const q = new SpanQueue<string>(10, 4);
  q.add("a", 4);
  q.add("b", 4);
  q.add("c", 4); // 12 > 10: dropped
  assert.equal(q.counters.dropped, 4);
  assert.equal(q.pending, 8);
  const first = q.take()!;
  assert.deepEqual(first, { items: ["a"], spans: 4 });
  assert.equal(q.take(), undefined, "one export in flight");
  q.settle(first.spans, false);
  assert.equal(q.counters.dropped, 8);
  assert.equal(q.counters.failedExports, 1);
  const second = q.take()!;
  assert.deepEqual(second.items, ["b"]);
  q.settle(second.spans, true);
  assert.equal(q.counters.exported, 4);
  assert.equal(q.take(), undefined, "empty");
  // One item larger than a batch still goes out alone.
  q.add("big", 6);
  assert.deepEqual(q.take(), { items: ["big"], spans: 6 });
});

Deno.test("spans: query redaction and status rules match Traefik's", () => {
  const safe = new Set(["keep"]);
  assert.equal(redactQuery("", safe), "");
  assert.equal(
    redactQuery("z=1&keep=a%20b&a=2&a=3", safe),
    "a=REDACTED&a=REDACTED&keep=a+b&z=REDACTED",
  );
  // Server and internal spans: errors from 500; client spans from 400; nonsense codes always.
  assert.deepEqual(spanStatus(404, 1), { code: 0 });
  assert.deepEqual(spanStatus(500, 1), { code: 2 });
  assert.deepEqual(spanStatus(404, 2), { code: 2 });
  assert.deepEqual(spanStatus(399, 2), { code: 0 });
  assert.deepEqual(spanStatus(404, 0), { code: 0 });
  assert.deepEqual(spanStatus(42, 0), { code: 2, message: "Invalid HTTP status code 42" });
  // A double holds epoch milliseconds to a fraction of a microsecond.
  const [sec, ns] = hrTime(1_700_000_000_123.4567);
  assert.equal(sec, 1_700_000_000);
  assert.ok(Math.abs(ns - 123_456_700) < 1000, String(ns));
  assert.deepEqual(hrTime(999.9999999), [1, 0]);
});

Deno.test("otlp metrics: the snapshot carries Prometheus names, attributes, cumulative values", () => {
  const m = new RequestMetrics([0.1, 1], { entryPoints: true, routers: false, services: true });
  const rec = (status: number, seconds: number) =>
    m.recordArgs("web", "GET", status, 0, "app@file", "app@file", seconds, 1000);
  rec(200, 0.05);
  rec(200, 0.5);
  rec(503, 5);
  // deno-lint-ignore no-explicit-any
  const rm = toResourceMetrics({
    resource: {},
    cells: m.snapshot(),
    bounds: m.bounds,
    openConnections: m.openConnections(1000),
    reloads: { success: 2, failure: 0 },
    startMs: 0,
    nowMs: 2000,
  }) as any;
  const metrics = rm.scopeMetrics[0].metrics;
  const names = metrics.map((x: { descriptor: { name: string } }) => x.descriptor.name);
  assert.deepEqual(names, [
    "traefik_entrypoint_requests_total",
    "traefik_entrypoint_request_duration_seconds",
    "traefik_service_requests_total",
    "traefik_service_request_duration_seconds",
    "traefik_config_reloads_total",
    "traefik_open_connections",
  ]);
  const counter = metrics[0];
  assert.equal(counter.dataPointType, 3);
  assert.equal(counter.aggregationTemporality, 1);
  const ok = counter.dataPoints.find((p: { attributes: Record<string, string> }) =>
    p.attributes.code === "200"
  );
  assert.deepEqual(ok.attributes, {
    code: "200",
    method: "GET",
    protocol: "http",
    entrypoint: "web",
  });
  assert.equal(ok.value, 2);
  const hist = metrics[3].dataPoints.find((p: { attributes: Record<string, string> }) =>
    p.attributes.code === "200"
  );
  assert.deepEqual(hist.value.buckets, { boundaries: [0.1, 1], counts: [1, 1, 0] });
  assert.equal(hist.value.count, 2);
  assert.ok(Math.abs(hist.value.sum - 0.55) < 1e-9);
  assert.equal(metrics[4].dataPoints[0].value, 2);
});

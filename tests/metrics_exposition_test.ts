/**
 * The hand-written exposition format: escaping, histograms, and the strict
 * parser that checks it (which must itself reject malformed input).
 */

import assert from "node:assert/strict";
import {
  escapeHelp,
  escapeLabelValue,
  formatFamily,
  formatValue,
} from "../lib/metrics/exposition.ts";
import { RequestMetrics } from "../lib/metrics/request_metrics.ts";
import { parsePrometheusText } from "../lib/metrics/text_parser.ts";
import { dashboardCertificates, dashboardCluster } from "../lib/api/dashboard/views.ts";
import { emptyClusterCounters, RoleHistory } from "../lib/cluster/view.ts";

Deno.test("exposition: escaping and values", () => {
  const cases: [string, string, string][] = [
    ["plain", "web", "web"],
    ["quote", 'a"b', 'a\\"b'],
    ["backslash", "a\\b", "a\\\\b"],
    ["newline", "a\nb", "a\\nb"],
    ["all", '\\"\n', '\\\\\\"\\n'],
  ];
  for (const [name, input, expected] of cases) {
    assert.equal(escapeLabelValue(input), expected, name);
  }
  assert.equal(escapeHelp('say "x"\\\n'), 'say "x"\\\\\\n');
  assert.equal(formatValue(Infinity), "+Inf");
  assert.equal(formatValue(-Infinity), "-Inf");
  assert.equal(formatValue(NaN), "NaN");
  assert.equal(formatValue(0.25), "0.25");
  assert.equal(formatFamily("x", "gauge", "h", []), "");
});

Deno.test("exposition: labels with hostile values round-trip through the strict parser", () => {
  const hostile = 'we"ird\\name\nwith newline';
  const text = formatFamily("traefik_service_server_up", "gauge", "help with \\ and\nnewline", [
    { labels: [["service", hostile], ["url", "http://a:1"]], value: 1 },
  ]);
  const family = parsePrometheusText(text).get("traefik_service_server_up")!;
  assert.equal(family.type, "gauge");
  assert.equal(family.help, "help with \\ and\nnewline");
  assert.deepEqual(family.samples[0].labels, { service: hostile, url: "http://a:1" });
});

/** One request on web through app@file, without its duration. */
const SAMPLE = {
  entryPoint: "web",
  method: "GET",
  status: 200,
  protocol: 0 as const,
  router: "app@file",
  service: "app@file",
  nowMs: 10_000,
};

Deno.test("request metrics: counters, cumulative histogram buckets and per-target labels", () => {
  const m = new RequestMetrics([0.1, 0.3, 1.2, 5]);
  const base = SAMPLE;
  const durations = [0.05, 0.2, 0.2, 2, 10];
  for (const d of durations) m.record({ ...base, durationSeconds: d });
  m.record({ ...base, status: 502, method: "PROPFIND", durationSeconds: 0.01 });
  m.record({ ...base, router: undefined, service: undefined, status: 404, durationSeconds: 0.001 });
  const families = parsePrometheusText(m.render());

  const ep = families.get("traefik_entrypoint_requests_total")!;
  assert.equal(ep.type, "counter");
  const find = (f: string, labels: Record<string, string>) =>
    families.get(f)!.samples.find((s) =>
      Object.entries(labels).every(([k, v]) => s.labels[k] === v)
    );
  assert.equal(
    find("traefik_entrypoint_requests_total", {
      code: "200",
      entrypoint: "web",
      method: "GET",
      protocol: "http",
    })!.value,
    5,
  );
  assert.equal(
    find("traefik_entrypoint_requests_total", { code: "502", method: "EXTENSION_METHOD" })!.value,
    1,
  );
  assert.equal(find("traefik_entrypoint_requests_total", { code: "404" })!.value, 1);
  // The unmatched 404 has no router, so it is not in the router family.
  assert.equal(find("traefik_router_requests_total", { code: "404" }), undefined);
  assert.equal(
    find("traefik_router_requests_total", { code: "200", router: "app@file", service: "app@file" })!
      .value,
    5,
  );
  assert.equal(
    find("traefik_service_requests_total", { code: "200", service: "app@file" })!.value,
    5,
  );

  const bucket = (le: string) =>
    find("traefik_entrypoint_request_duration_seconds", { code: "200", le })!.value;
  assert.deepEqual(["0.1", "0.3", "1.2", "5", "+Inf"].map(bucket), [1, 3, 3, 4, 5]);
  const sum = find("traefik_entrypoint_request_duration_seconds", { code: "200" });
  assert.ok(sum);
  const sumSample = families.get("traefik_entrypoint_request_duration_seconds")!.samples
    .find((s) => s.name.endsWith("_sum") && s.labels.code === "200")!;
  assert.ok(Math.abs(sumSample.value - durations.reduce((a, b) => a + b)) < 1e-9);
});

Deno.test("request metrics: a router whose service changes gets a new series", () => {
  const m = new RequestMetrics([1]);
  const base = {
    entryPoint: "web",
    method: "GET",
    status: 200,
    protocol: 0 as const,
    router: "r@file",
    durationSeconds: 0.1,
    nowMs: 0,
  };
  m.record({ ...base, service: "a@file" });
  m.record({ ...base, service: "b@file" });
  m.record({ ...base, service: "b@file" });
  const samples = parsePrometheusText(m.render()).get("traefik_router_requests_total")!.samples;
  assert.deepEqual(samples.map((s) => [s.labels.service, s.value]).sort(), [["a@file", 1], [
    "b@file",
    2,
  ]]);
});

Deno.test("request metrics: in-flight estimate follows Little's law over 10 s", () => {
  const m = new RequestMetrics([1]);
  const base = {
    entryPoint: "web",
    method: "GET",
    status: 200,
    protocol: 0 as const,
    nowMs: 100_000,
  };
  // 20 requests of 0.5 s each in a 10 s window: a mean of 1 in flight.
  for (let i = 0; i < 20; i++) {
    m.record({ ...base, durationSeconds: 0.5, nowMs: 100_000 + i * 400 });
  }
  const now = 100_000 + 19 * 400;
  const http = m.openConnections(now).find((o) => o.entryPoint === "web" && o.protocol === "http")!;
  assert.ok(Math.abs(http.value - 1) < 1e-9, String(http.value));
  // Eleven seconds later the window has emptied.
  assert.equal(m.openConnections(now + 11_000).find((o) => o.protocol === "http")!.value, 0);
});

Deno.test("strict parser rejects malformed expositions", () => {
  const bad: [string, string][] = [
    ["no final newline", "# TYPE a gauge\na 1"],
    ["bad metric name", "# TYPE 1a gauge\n"],
    ["bad escape", '# TYPE a gauge\na{x="\\q"} 1\n'],
    ["unquoted label", "# TYPE a gauge\na{x=1} 1\n"],
    ["duplicate label", '# TYPE a gauge\na{x="1",x="2"} 1\n'],
    ["duplicate series", '# TYPE a gauge\na{x="1"} 1\na{x="1"} 2\n'],
    ["bad value", "# TYPE a gauge\na one\n"],
    ["type after samples", "a 1\n# TYPE a gauge\n"],
    ["split family", '# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na{x="1"} 2\n'],
    ["negative counter", "# TYPE a_total counter\na_total -1\n"],
    ["empty line", "# TYPE a gauge\n\na 1\n"],
    ["unknown type", "# TYPE a thing\n"],
    [
      "non-cumulative buckets",
      '# TYPE h histogram\nh_bucket{le="1"} 3\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 2\n',
    ],
    ["+Inf differs from count", '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 3\n'],
    ["no +Inf bucket", '# TYPE h histogram\nh_bucket{le="1"} 2\nh_sum 1\nh_count 2\n'],
    ["bucket without le", "# TYPE h histogram\nh_bucket 2\nh_sum 1\nh_count 2\n"],
  ];
  for (const [name, text] of bad) assert.throws(() => parsePrometheusText(text), Error, name);
  const good =
    '# HELP h d\n# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 3.5\nh_count 2\n# TYPE up gauge\nup NaN\n';
  assert.equal(parsePrometheusText(good).get("h")!.samples.length, 4);
});

Deno.test("dashboard views: cluster and certificates from the typed views, absent ones shown as off", () => {
  assert.equal(dashboardCluster(undefined).enabled, false);
  assert.equal(dashboardCertificates(undefined, 0).enabled, false);
  const history = new RoleHistory();
  const at = (s: number) => new Date(s * 1000);
  history.record("worker", 1, "start", at(1));
  history.record("candidate", 2, "election timeout", at(3));
  history.record("manager", 2, "won", at(4));
  const c = dashboardCluster({
    id: "n1",
    address: "127.0.0.1:7946",
    role: "manager",
    term: 2,
    manager: { nodeId: "n1", address: "127.0.0.1:7946", term: 2 },
    peers: [{ address: "127.0.0.1:7947", lastContact: null, reachable: false }],
    clustered: true,
    isManager: true,
    roleChanges: history.list(),
    counters: { elections: 2, rejected: { ...emptyClusterCounters().rejected, stale: 1 } },
    elections: 2,
  });
  assert.deepEqual([c.enabled, c.id, c.role, c.term, c.elections, c.rejected.stale], [
    true,
    "n1",
    "manager",
    2,
    2,
    1,
  ]);
  assert.deepEqual(c.roleChanges.map((r) => `${r.from}->${r.to}@${r.term}`), [
    "null->worker@1",
    "worker->candidate@2",
    "candidate->manager@2",
  ]);
  const now = Date.parse("2030-01-01T00:00:00Z");
  const v = dashboardCertificates([
    {
      resolver: "le",
      domains: ["a.test", "b.test"],
      notAfter: new Date(now + 10 * 86_400_000 + 1000).toISOString(),
      issuer: "Pebble",
      state: "backoff",
      failures: 1,
      lastError: "urn:ietf:params:acme:error:rateLimited",
      routers: [],
    },
    { resolver: "le", domains: ["c.test"], state: "missing", failures: 0, routers: [] },
  ], now);
  assert.deepEqual(v.certificates.map((x) => [x.domains.join(","), x.daysLeft, x.renewal, x.lastError]), [
    ["a.test,b.test", 10, "backoff", "urn:ietf:params:acme:error:rateLimited"],
    ["c.test", null, "missing", null],
  ]);
});

Deno.test("role history keeps the newest changes only", () => {
  const history = new RoleHistory();
  for (let i = 0; i < 60; i++) history.record(i % 2 ? "worker" : "candidate", i, "", new Date(i));
  const list = history.list();
  assert.equal(list.length, 50);
  assert.equal(list[0].term, 10);
  assert.equal(list.at(-1)!.term, 59);
});

Deno.test("request metrics: addEntryPointsLabels/addRoutersLabels/addServicesLabels = false drop that family", async () => {
  const sample = { ...SAMPLE, durationSeconds: 0.01 };
  const names = (families: { entryPoints: boolean; routers: boolean; services: boolean }) => {
    const m = new RequestMetrics([0.1], families);
    m.record(sample);
    return [...parsePrometheusText(m.render()).keys()].filter((n) => n.endsWith("_requests_total")).sort();
  };
  assert.deepEqual(names({ entryPoints: true, routers: true, services: true }), [
    "traefik_entrypoint_requests_total",
    "traefik_router_requests_total",
    "traefik_service_requests_total",
  ]);
  assert.deepEqual(names({ entryPoints: true, routers: false, services: true }), [
    "traefik_entrypoint_requests_total",
    "traefik_service_requests_total",
  ]);
  assert.deepEqual(names({ entryPoints: false, routers: true, services: false }), ["traefik_router_requests_total"]);
  const { validateStatic } = await import("../lib/config/static.ts");
  const prometheus = validateStatic({ metrics: { prometheus: { addRoutersLabels: false } } }, "p.toml").metrics!.prometheus!;
  assert.deepEqual([prometheus.addEntryPointsLabels, prometheus.addRoutersLabels, prometheus.addServicesLabels], [true, false, true]);
});

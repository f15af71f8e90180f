/**
 * `/metrics` over real HTTP on a running instance: Traefik's names and
 * labels, counts that match the traffic sent, server health, reloads, and
 * the certificate and cluster families from registered views.
 */

import { emptyClusterCounters } from "../lib/cluster/view.ts";
import assert from "node:assert/strict";
import { startEchoBackend } from "./fixtures/backend.ts";
import { startTestProxy } from "./fixtures/proxy.ts";
import { rawGet } from "./fixtures/http_client.ts";
import { freePort } from "./fixtures/ports.ts";
import { type ParsedFamily, parsePrometheusText } from "../lib/metrics/text_parser.ts";

function value(
  families: Map<string, ParsedFamily>,
  family: string,
  labels: Record<string, string>,
  name = family,
) {
  const f = families.get(family);
  return f?.samples.find((s) =>
    s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)
  )?.value;
}

Deno.test("metrics: /metrics serves Traefik's families with counts matching the traffic", async () => {
  const backend = startEchoBackend("b");
  const deadPort = freePort();
  const proxy = await startTestProxy({
    entryPoints: ["web", "traefik"],
    extraStatic: `[metrics.prometheus]\nbuckets = [0.05, 0.5, 2]\n`,
    dynamic: `
[http.routers.app]
rule = "Host(\`app.test\`)"
service = "app"
entryPoints = ["web"]
[http.services.app.loadBalancer]
servers = [{ url = "${backend.url}" }]
[http.routers.dead]
rule = "Host(\`dead.test\`)"
service = "dead"
entryPoints = ["web"]
[http.services.dead.loadBalancer]
servers = [{ url = "http://127.0.0.1:${deadPort}" }]
[http.services.dead.loadBalancer.healthCheck]
path = "/health"
interval = "100ms"
timeout = "100ms"
`,
  });
  try {
    const port = proxy.port("web");
    for (let i = 0; i < 7; i++) {
      assert.equal((await rawGet(port, "/", { host: "app.test" })).status, 200);
    }
    assert.equal((await rawGet(port, "/status/503", { host: "app.test" }, "POST")).status, 503);
    assert.equal((await rawGet(port, "/", { host: "nowhere.test" })).status, 404);
    await new Promise((r) => setTimeout(r, 400)); // health check marks the dead server DOWN

    const res = await fetch(`${proxy.url("traefik")}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type")!, /^text\/plain; version=0\.0\.4/);
    const families = parsePrometheusText(await res.text());

    const ep = { entrypoint: "web", protocol: "http" };
    assert.equal(
      value(families, "traefik_entrypoint_requests_total", { ...ep, code: "200", method: "GET" }),
      7,
    );
    assert.equal(
      value(families, "traefik_entrypoint_requests_total", { ...ep, code: "503", method: "POST" }),
      1,
    );
    assert.equal(
      value(families, "traefik_entrypoint_requests_total", { ...ep, code: "404", method: "GET" }),
      1,
    );
    assert.equal(
      value(families, "traefik_router_requests_total", {
        router: "app@file",
        service: "app@file",
        code: "200",
      }),
      7,
    );
    assert.equal(
      value(families, "traefik_service_requests_total", { service: "app@file", code: "503" }),
      1,
    );
    const buckets = families.get("traefik_entrypoint_request_duration_seconds")!.samples
      .filter((s) => s.name.endsWith("_bucket") && s.labels.code === "200")
      .map((s) => s.labels.le);
    assert.deepEqual(buckets, ["0.05", "0.5", "2", "+Inf"]);
    assert.equal(
      value(families, "traefik_service_server_up", { service: "app@file", url: backend.url }),
      1,
    );
    assert.equal(
      value(families, "traefik_service_server_up", {
        service: "dead@file",
        url: `http://127.0.0.1:${deadPort}`,
      }),
      0,
    );
    assert.equal(
      value(families, "traefik_open_connections", { entrypoint: "traefik", protocol: "http" }),
      0,
    );
    assert.ok(
      value(families, "traefik_open_connections", { entrypoint: "web", protocol: "http" })! > 0,
    );
    // /metrics itself is an internal router: not counted.
    assert.equal(
      value(families, "traefik_entrypoint_requests_total", { entrypoint: "traefik" }),
      undefined,
    );
    const reloads = value(families, "traefik_config_reloads_total", {})!;
    assert.equal(reloads, proxy.server.state.reloadCounts().success);
    const startedAt = value(families, "traefik_config_last_reload_success", {})!;
    assert.ok(Math.abs(startedAt - Date.now() / 1000) < 60);

    // A rejected reload shows in the failure family; an accepted one in the counter.
    await proxy.writeDynamic(`[http.routers.x]\nrule = 1\n`);
    await proxy.writeDynamic(
      `[http.routers.y]\nrule = "Path(\`/y\`)"\nservice = "s"\n[http.services.s.loadBalancer]\nservers = [{ url = "${backend.url}" }]\n`,
    );
    const after = parsePrometheusText(
      await (await fetch(`${proxy.url("traefik")}/metrics`)).text(),
    );
    assert.equal(value(after, "traefik_config_reloads_total", {}), reloads + 1);
    assert.equal(value(after, "traefik_config_reloads_failure_total", {}), 1);
    assert.ok(value(after, "traefik_config_last_reload_failure", {})! > 0);
  } finally {
    await proxy.close();
    await backend.close();
  }
});

Deno.test("metrics: certificate and cluster families come from registered views; absent views emit nothing", async () => {
  const proxy = await startTestProxy({
    entryPoints: ["web", "traefik"],
    extraStatic: `[metrics.prometheus]\n`,
    dynamic: "",
  });
  try {
    const scrape = async () =>
      parsePrometheusText(await (await fetch(`${proxy.url("traefik")}/metrics`)).text());
    const before = await scrape();
    assert.equal(before.has("traefik_tls_certs_not_after"), false);
    assert.equal([...before.keys()].some((k) => k.startsWith("portico_cluster_")), false);

    const notAfter = Date.parse("2031-05-01T00:00:00Z");
    proxy.server.state.views.certificates = () => [{
      resolver: "file",
      domains: ["a.test", "www.a.test"],
      notAfter: new Date(notAfter).toISOString(),
      serial: "0a1b",
      state: "valid",
      failures: 0,
      routers: [],
    }];
    proxy.server.state.views.cluster = () => ({
      clustered: true,
      isManager: false,
      roleChanges: [],
      elections: 3,
      id: "n1",
      address: "127.0.0.1:1",
      role: "worker",
      term: 4,
      manager: { nodeId: "n2", address: "127.0.0.1:2", term: 4 },
      peers: [{ address: "127.0.0.1:2", lastContact: new Date().toISOString(), reachable: true }],
      counters: {
        elections: 3,
        rejected: { ...emptyClusterCounters().rejected, stale: 2, forged: 1 },
      },
    });
    const f = await scrape();
    assert.equal(
      value(f, "traefik_tls_certs_not_after", {
        cn: "a.test",
        sans: "a.test,www.a.test",
        serial: "0a1b",
      }),
      notAfter / 1000,
    );
    assert.equal(value(f, "portico_cluster_role", { role: "worker" }), 1);
    assert.equal(value(f, "portico_cluster_role", { role: "manager" }), 0);
    assert.equal(value(f, "portico_cluster_term", {}), 4);
    assert.equal(value(f, "portico_cluster_elections_total", {}), 3);
    assert.equal(value(f, "portico_cluster_peer_messages_rejected_total", { reason: "stale" }), 2);
    assert.equal(value(f, "portico_cluster_peer_reachable", { peer: "127.0.0.1:2" }), 1);
  } finally {
    await proxy.close();
  }
});

Deno.test("metrics: without [metrics.prometheus] there is no /metrics router", async () => {
  const proxy = await startTestProxy({
    entryPoints: ["web", "traefik"],
    extraStatic: `[ping]\n`,
    dynamic: "",
  });
  try {
    assert.equal((await rawGet(proxy.port("traefik"), "/metrics")).status, 404);
  } finally {
    await proxy.close();
  }
});

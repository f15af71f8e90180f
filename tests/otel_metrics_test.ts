/**
 * `[metrics.otlp]` end to end: a running instance pushes the Prometheus
 * request families, under the same names, to an OTLP receiver decoding
 * with the official protobuf definitions; over HTTP and over gRPC.
 */

import assert from "node:assert/strict";
import { startEchoBackend } from "./fixtures/backend.ts";
import { OtlpReceiver, type ReceivedPoint } from "./fixtures/otlp_receiver.ts";
import { startTestProxy } from "./fixtures/proxy.ts";
import { parsePrometheusText } from "../lib/metrics/text_parser.ts";

const dynamic = (url: string) => `
[http.routers.app]
rule = "PathPrefix(\`/\`)"
service = "app"
[http.services.app.loadBalancer]
[[http.services.app.loadBalancer.servers]]
url = "${url}"
`;

/** The latest pushed point of `metric` whose attributes include `attrs`. */
function latest(
  points: ReceivedPoint[],
  metric: string,
  attrs: Record<string, string>,
): ReceivedPoint | undefined {
  return points.findLast((p) =>
    p.metric === metric && Object.entries(attrs).every(([k, v]) => p.attributes[k] === v)
  );
}

for (const transport of ["http", "grpc"] as const) {
  Deno.test(`metrics.otlp (${transport}): Prometheus names and values, pushed periodically`, async () => {
    const receiver = await OtlpReceiver.start();
    const backend = startEchoBackend("b1");
    const target = transport === "http"
      ? `[metrics.otlp.http]\nendpoint = "${receiver.url}"\n`
      : `[metrics.otlp.grpc]\nendpoint = "${receiver.grpcEndpoint}"\ninsecure = true\n`;
    const proxy = await startTestProxy({
      entryPoints: ["web", "traefik"],
      dynamic: dynamic(backend.url),
      extraStatic:
        `[metrics.prometheus]\n[metrics.otlp]\npushInterval = "200ms"\naddRoutersLabels = true\n` +
        `explicitBoundaries = [0.05, 0.5, 2]\nserviceName = "edge-metrics"\n` + target,
    });
    try {
      for (let i = 0; i < 3; i++) await (await fetch(`${proxy.url()}/ok`)).body?.cancel();
      await (await fetch(`${proxy.url()}/status/404`)).body?.cancel();

      const ok = { code: "200", method: "GET", protocol: "http" };
      const ep = await receiver.waitFor("entrypoint counter at 3", () => {
        const p = latest(receiver.points, "traefik_entrypoint_requests_total", {
          ...ok,
          entrypoint: "web",
        });
        return p && p.value === 3 ? p : undefined;
      });
      assert.equal(ep.type, "sum");
      const notFound = latest(receiver.points, "traefik_service_requests_total", {
        code: "404",
        service: "app@file",
      });
      assert.equal(notFound?.value, 1);
      const router = latest(receiver.points, "traefik_router_requests_total", {
        ...ok,
        router: "app@file",
        service: "app@file",
      });
      assert.equal(router?.value, 3);
      const hist = latest(receiver.points, "traefik_service_request_duration_seconds", {
        ...ok,
        service: "app@file",
      });
      assert.equal(hist?.type, "histogram");
      assert.equal(hist?.value, 3);
      assert.deepEqual(hist?.explicitBounds, [0.05, 0.5, 2]);
      assert.equal(hist?.bucketCounts?.reduce((a, b) => a + b, 0), 3);
      assert.ok(latest(receiver.points, "traefik_config_reloads_total", {}));

      // The same names and values as the Prometheus exposition of the same instance.
      const families = parsePrometheusText(
        await (await fetch(`${proxy.url("traefik")}/metrics`)).text(),
      );
      const prom = families.get("traefik_entrypoint_requests_total")!.samples.find((s) =>
        s.labels.code === "200" && s.labels.entrypoint === "web"
      );
      assert.equal(prom?.value, 3);
      for (
        const name of [
          "traefik_entrypoint_requests_total",
          "traefik_service_requests_total",
          "traefik_router_requests_total",
        ]
      ) {
        assert.ok(families.has(name), name);
        assert.ok(receiver.points.some((p) => p.metric === name), name);
      }
      // Periodic: more pushes keep coming.
      const seen = receiver.requests;
      await receiver.waitFor("another push", () => receiver.requests > seen);
    } finally {
      await proxy.close();
      await backend.close();
      await receiver.close();
    }
  });
}

Deno.test("metrics.otlp: requests are answered while the receiver is down", async () => {
  const receiver = await OtlpReceiver.start();
  await receiver.pause();
  const backend = startEchoBackend("b1");
  const proxy = await startTestProxy({
    dynamic: dynamic(backend.url),
    extraStatic:
      `[metrics.otlp]\npushInterval = "100ms"\n[metrics.otlp.http]\nendpoint = "${receiver.url}"\n`,
  });
  try {
    const t0 = performance.now();
    for (let i = 0; i < 50; i++) await (await fetch(`${proxy.url()}/ok`)).body?.cancel();
    assert.ok(performance.now() - t0 < 10_000);
    await receiver.resume();
    await receiver.waitFor("counts once the receiver is back", () => {
      const p = latest(receiver.points, "traefik_entrypoint_requests_total", {
        code: "200",
        entrypoint: "web",
      });
      return p && p.value === 50;
    });
  } finally {
    await proxy.close();
    await backend.close();
    await receiver.close();
  }
});

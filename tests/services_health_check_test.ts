import assert from "node:assert/strict";
import type { HealthCheckConfig } from "../lib/config/types.ts";
import { HealthChecker, probePasses, probeUrl } from "../lib/services/health_check.ts";

const base: HealthCheckConfig = { path: "/health", interval: 30_000, timeout: 1000, status: 0, headers: {} };

Deno.test("health check: probe URL honours path, query, scheme and port", () => {
  const cases: { name: string; server: string; config: Partial<HealthCheckConfig>; url: string }[] = [
    { name: "path replaces the server's", server: "http://10.0.0.1:8080/app", config: {}, url: "http://10.0.0.1:8080/health" },
    { name: "query kept", server: "http://a:1", config: { path: "/ping?full=1" }, url: "http://a:1/ping?full=1" },
    { name: "relative path", server: "http://a:1", config: { path: "ready" }, url: "http://a:1/ready" },
    { name: "scheme override", server: "http://a:1", config: { scheme: "https" }, url: "https://a:1/health" },
    { name: "port override", server: "http://a:1", config: { port: 9999 }, url: "http://a:9999/health" },
  ];
  for (const tc of cases) assert.equal(probeUrl(tc.server, { ...base, ...tc.config }).href, tc.url, tc.name);
});

Deno.test("health check: which statuses pass", () => {
  const cases: [number, number, boolean][] = [
    [200, 0, true], [302, 0, true], [399, 0, true], [400, 0, false], [500, 0, false], [204, 204, true], [200, 204, false],
  ];
  for (const [status, expected, passes] of cases) assert.equal(probePasses(status, expected), passes, `${status} vs ${expected}`);
});

Deno.test("health check: hostname, headers and expected status reach the probe", async () => {
  const seen: { host: string | null; token: string | null }[] = [];
  let status = 204;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    seen.push({ host: req.headers.get("host"), token: req.headers.get("x-probe") });
    return new Response(null, { status });
  });
  const url = `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}`;
  const changes: string[] = [];
  const checker = new HealthChecker([url], { ...base, interval: 30, hostname: "health.internal", headers: { "x-probe": "1" }, status: 204 }, (_s, st) => changes.push(st));
  try {
    checker.start();
    const deadline = Date.now() + 3000;
    while (seen.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(seen[0], { host: "health.internal", token: "1" });
    assert.equal(checker.isUp(url), true, "204 is the expected status");
    status = 200; // now not the configured status
    while (!changes.includes("DOWN") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(changes, ["DOWN"]);
    assert.equal(checker.isUp(url), false);
  } finally {
    checker.stop();
    await server.shutdown();
  }
});

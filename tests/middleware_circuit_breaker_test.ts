/**
 * circuitBreaker over real HTTP: trips on network errors, status codes and
 * latency, answers the fallback code, closes again after fallback and
 * recovery, stays closed for healthy traffic, and rejects bad config.
 */

import assert from "node:assert/strict";
import { startEchoBackend } from "./fixtures/backend.ts";
import { startTestProxy } from "./fixtures/proxy.ts";
import { assertBadMiddlewaresDisableRouters, type BadMiddlewareCase } from "./fixtures/bad_middleware.ts";
import { rawGet } from "./fixtures/http_client.ts";
import { freePort } from "./fixtures/ports.ts";

Deno.test("circuitBreaker: trips, falls back, recovers and rejects bad config over real HTTP", async () => {
  const backend = startEchoBackend("echo");
  const dead = `http://127.0.0.1:${freePort()}`;
  const routers: Record<string, { url: string; cb: string }> = {
    net: {
      url: dead,
      cb: `expression = "NetworkErrorRatio() > 0.5"\nresponseCode = 418\nfallbackDuration = "10s"`,
    },
    codes: { url: backend.url, cb: `expression = "ResponseCodeRatio(500, 600, 0, 600) > 0.5"` },
    recover: {
      url: backend.url,
      cb:
        `expression = "ResponseCodeRatio(500, 600, 0, 600) > 0.5"\nfallbackDuration = "300ms"\nrecoveryDuration = "100ms"`,
    },
    latency: { url: backend.url, cb: `expression = "LatencyAtQuantileMS(50.0) > 30"` },
    healthy: {
      url: backend.url,
      cb: `expression = "NetworkErrorRatio() > 0.5 || ResponseCodeRatio(500, 600, 0, 600) > 0.5"`,
    },
    kv: {
      url: backend.url,
      cb:
        `expression = "ResponseCodeRatio(400, 500, 0, 600) >= 1.0"\nresponsecode = "429"\ncheckperiod = "1ms"`,
    },
    bad_missing: { url: backend.url, cb: `responseCode = 503` },
    bad_expr: { url: backend.url, cb: `expression = "NetworkErrorRatio() > "` },
    bad_func: { url: backend.url, cb: `expression = "ErrorRatio() > 0.5"` },
    bad_code: {
      url: backend.url,
      cb: `expression = "NetworkErrorRatio() > 0.5"\nresponseCode = 42`,
    },
    bad_period: {
      url: backend.url,
      cb: `expression = "NetworkErrorRatio() > 0.5"\ncheckPeriod = "often"`,
    },
    bad_key: { url: backend.url, cb: `expresion = "NetworkErrorRatio() > 0.5"` },
  };
  let toml = "";
  for (const [name, r] of Object.entries(routers)) {
    toml += `[http.services.${name}.loadBalancer]\nservers = [{ url = "${r.url}" }]\n`;
    toml +=
      `[http.routers.${name}]\nrule = "Host(\`${name}.test\`)"\nservice = "${name}"\nmiddlewares = ["${name}"]\n`;
    toml += `[http.middlewares.${name}.circuitBreaker]\n${r.cb}\n`;
  }
  const proxy = await startTestProxy({ dynamic: toml });
  const port = proxy.port();
  const get = async (
    host: string,
    path = "/",
  ) => (await rawGet(port, path, { host: `${host}.test` }));
  try {
    const sequences: {
      name: string;
      host: string;
      path: string;
      statuses: number[];
      fallbackBody?: string;
    }[] = [
      {
        name: "network errors trip it; fallback code after",
        host: "net",
        path: "/",
        statuses: [502, 418, 418],
        fallbackBody: "I'm a teapot",
      },
      {
        name: "5xx ratio trips it",
        host: "codes",
        path: "/status/500",
        statuses: [500, 503, 503],
        fallbackBody: "Service Unavailable",
      },
      { name: "latency trips it", host: "latency", path: "/slow/60", statuses: [200, 503] },
      {
        name: "healthy traffic never trips",
        host: "healthy",
        path: "/",
        statuses: Array(8).fill(200),
      },
      { name: "KV-style options", host: "kv", path: "/status/404", statuses: [404, 429] },
    ];
    for (const s of sequences) {
      const got: number[] = [];
      let lastBody = "";
      for (let i = 0; i < s.statuses.length; i++) {
        const res = await get(s.host, s.path);
        got.push(res.status);
        lastBody = res.body;
      }
      assert.deepEqual(got, s.statuses, s.name);
      if (s.fallbackBody) assert.equal(lastBody, s.fallbackBody, s.name);
    }

    // fallbackDuration 300ms, then recoveryDuration 100ms: closed again after.
    assert.equal((await get("recover", "/status/500")).status, 500);
    const hitsBefore = backend.hits;
    assert.equal((await get("recover", "/status/500")).status, 503, "tripped");
    assert.equal(backend.hits, hitsBefore, "a tripped breaker does not reach the backend");
    await new Promise((r) => setTimeout(r, 350));
    // As in oxy, recovery starts with the first request after the fallback
    // period, when the share let through is still 0.
    assert.equal((await get("recover", "/status/200")).status, 503, "recovery starts closed");
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(
      (await get("recover", "/status/200")).status,
      200,
      "closed after fallback and recovery",
    );
    assert.equal(backend.hits, hitsBefore + 1);

    const bad: BadMiddlewareCase[] = [
      { router: "bad_missing", error: /option expression: is required/ },
      {
        router: "bad_expr",
        error:
          /option expression: unexpected end of expression at offset 22 in "NetworkErrorRatio\(\) > "/,
      },
      {
        router: "bad_func",
        error:
          /option expression: unsupported function ErrorRatio; valid: NetworkErrorRatio, ResponseCodeRatio, LatencyAtQuantileMS, RequestThreshold/,
      },
      { router: "bad_code", error: /option responseCode: expected an HTTP status code/ },
      { router: "bad_period", error: /option checkPeriod: expected a duration/ },
      { router: "bad_key", error: /unknown option expresion \(did you mean "expression"\?\)/ },
    ];
    assertBadMiddlewaresDisableRouters(proxy, bad);
    assert.equal((await get("healthy")).status, 200);
  } finally {
    await proxy.close();
    await backend.close();
  }
});

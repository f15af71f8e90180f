/**
 * rateLimit over real HTTP: limits, Retry-After, each source criterion, bad
 * config, and a bounded load test asserting the served rate within 10 %.
 */

import assert from "node:assert/strict";
import { startEchoBackend } from "../../../tests/fixtures/backend.ts";
import { startTestProxy } from "../../../tests/fixtures/proxy.ts";
import { rawGet } from "../../../tests/fixtures/http_client.ts";

/** One router per middleware, matched by `Host(<name>.test)` unless a rule is given. */
function dynamic(
  backendUrl: string,
  middlewares: Record<string, string>,
  rules: Record<string, string> = {},
): string {
  let toml = `[http.services.echo.loadBalancer]\nservers = [{ url = "${backendUrl}" }]\n`;
  for (const [name, body] of Object.entries(middlewares)) {
    const rule = rules[name] ?? `Host(\`${name}.test\`)`;
    toml +=
      `[http.routers.${name}]\nrule = "${rule}"\nservice = "echo"\nmiddlewares = ["${name}"]\n`;
    toml += `[http.middlewares.${name}.rateLimit]\n${body}\n`;
  }
  return toml;
}

Deno.test("rateLimit: limits, headers, source criteria and bad config over real HTTP", async () => {
  const backend = startEchoBackend("echo");
  const middlewares: Record<string, string> = {
    // One token per minute: after the burst, the next one is ~60 s away.
    slow: `average = 1\nperiod = "1m"\nburst = 2`,
    header: `average = 1\nperiod = "1m"\nsourceCriterion = { requestHeaderName = "X-Api-Key" }`,
    byhost: `average = 1\nperiod = "1m"\nsourceCriterion = { requestHost = true }`,
    depth: `average = 1\nperiod = "1m"\nsourceCriterion = { ipStrategy = { depth = 1 } }`,
    unlimited: `average = 0`,
    kv: `average = "1"\nperiod = "60"\nburst = "1"`,
    bad_average: `average = -1`,
    bad_burst: `average = 10\nburst = -2`,
    bad_period: `average = 10\nperiod = "soon"`,
    bad_exclusive:
      `average = 10\nsourceCriterion = { requestHost = true, requestHeaderName = "X-A" }`,
    bad_header: `average = 10\nsourceCriterion = { requestHeaderName = "bad header" }`,
    bad_redis: `average = 10\nredis = { endpoints = ["127.0.0.1:6379"] }`,
    bad_key: `averag = 10`,
  };
  const proxy = await startTestProxy({
    dynamic: dynamic(backend.url, middlewares, { byhost: "HostRegexp(`^byhost`)" }),
    entryPointExtra: { web: "forwardedHeaders.insecure = true" },
  });
  try {
    const steps: {
      name: string;
      host: string;
      headers?: Record<string, string>;
      status: number;
    }[] = [
      { name: "burst 1", host: "slow.test", status: 200 },
      { name: "burst 2", host: "slow.test", status: 200 },
      { name: "over the limit", host: "slow.test", status: 429 },
      { name: "header key a", host: "header.test", headers: { "x-api-key": "a" }, status: 200 },
      {
        name: "header key a again",
        host: "header.test",
        headers: { "x-api-key": "a" },
        status: 429,
      },
      {
        name: "header key b has its own bucket",
        host: "header.test",
        headers: { "x-api-key": "b" },
        status: 200,
      },
      { name: "no header is one shared source", host: "header.test", status: 200 },
      { name: "no header again", host: "header.test", status: 429 },
      { name: "host 1", host: "byhost1.test", status: 200 },
      { name: "host 1 again", host: "byhost1.test", status: 429 },
      { name: "host 2 has its own bucket", host: "byhost2.test", status: 200 },
      {
        name: "forwarded IP 1",
        host: "depth.test",
        headers: { "x-forwarded-for": "1.1.1.1" },
        status: 200,
      },
      {
        name: "forwarded IP 1 again",
        host: "depth.test",
        headers: { "x-forwarded-for": "9.9.9.9, 1.1.1.1" },
        status: 429,
      },
      {
        name: "forwarded IP 2",
        host: "depth.test",
        headers: { "x-forwarded-for": "1.1.1.1, 2.2.2.2" },
        status: 200,
      },
      { name: "KV-style values", host: "kv.test", status: 200 },
      { name: "KV-style values limit", host: "kv.test", status: 429 },
      ...Array.from(
        { length: 5 },
        (_, i) => ({ name: `unlimited ${i}`, host: "unlimited.test", status: 200 }),
      ),
    ];
    for (const s of steps) {
      const res = await rawGet(proxy.port(), "/", { host: s.host, ...s.headers });
      assert.equal(res.status, s.status, s.name);
      if (s.status === 429) {
        const retryAfter = Number(res.headers["retry-after"]);
        assert.ok(
          retryAfter >= 59 && retryAfter <= 60,
          `${s.name}: Retry-After ${res.headers["retry-after"]}`,
        );
        assert.match(String(res.headers["x-retry-in"]), /^\d+(\.\d+)?s$/, s.name);
        assert.equal(res.body, "Too Many Requests", s.name);
      }
    }

    const bad: { router: string; error: RegExp }[] = [
      { router: "bad_average", error: /option average: must be 0 \(no limit\) or more/ },
      { router: "bad_burst", error: /option burst: must be 1 or more/ },
      { router: "bad_period", error: /option period: expected a duration/ },
      { router: "bad_exclusive", error: /sourceCriterion\.ipStrategy: .*mutually exclusive/ },
      {
        router: "bad_header",
        error: /sourceCriterion\.requestHeaderName: expected an HTTP header name/,
      },
      { router: "bad_redis", error: /option redis: .*not supported/ },
      { router: "bad_key", error: /unknown option averag \(did you mean "average"\?\)/ },
    ];
    for (const tc of bad) {
      const state = proxy.server.watcher.current!.routers.get(`${tc.router}@file`)!;
      assert.equal(state.status, "disabled", tc.router);
      assert.match(
        state.errors.join("\n"),
        new RegExp(`middleware "${tc.router}@file"`),
        tc.router,
      );
      assert.match(state.errors.join("\n"), tc.error, tc.router);
    }
    assert.equal((await rawGet(proxy.port(), "/", { host: "unlimited.test" })).status, 200);
  } finally {
    await proxy.close();
    await backend.close();
  }
});

Deno.test("rateLimit under load: average=100/s burst=1 over 2 s with 20 clients serves 200 ±10 %", async () => {
  const backend = startEchoBackend("echo");
  const proxy = await startTestProxy({
    dynamic: dynamic(backend.url, { load: `average = 100\nburst = 1` }, {
      load: "PathPrefix(`/`)",
    }),
  });
  try {
    const url = proxy.url() + "/";
    let served = 0;
    let refused = 0;
    const started = performance.now();
    const deadline = started + 2000;
    const client = async () => {
      // Bounded in time and in count.
      for (let i = 0; i < 10_000 && performance.now() < deadline; i++) {
        const res = await fetch(url);
        await res.body?.cancel();
        if (res.status === 200) served++;
        else if (res.status === 429) refused++;
        else throw new Error(`unexpected status ${res.status}`);
      }
    };
    await Promise.all(Array.from({ length: 20 }, client));
    const elapsed = performance.now() - started;
    // Tokens available over the window: the initial burst plus 100 per second.
    const expected = 1 + (100 * elapsed) / 1000;
    if (Deno.env.get("LOAD_DEBUG")) console.log({ served, refused, elapsed, expected });
    assert.ok(
      refused > served,
      `the clients must actually exceed the limit (served ${served}, refused ${refused})`,
    );
    assert.ok(
      Math.abs(served - expected) <= expected * 0.1,
      `served ${served} in ${elapsed.toFixed(0)} ms, expected ${expected.toFixed(0)} ±10 %`,
    );
    assert.equal(backend.hits, served, "the backend saw exactly the served requests");
  } finally {
    await proxy.close();
    await backend.close();
  }
});

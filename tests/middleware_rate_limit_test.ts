/**
 * rateLimit over real HTTP: limits, Retry-After, each source criterion, bad
 * config, and a bounded load test asserting the served rate within 10 %.
 */

import assert from "node:assert/strict";
import { startEchoBackend } from "./fixtures/backend.ts";
import { startTestProxy } from "./fixtures/proxy.ts";
import { middlewarePerRouterToml } from "./fixtures/host_routes.ts";
import { assertBadMiddlewaresDisableRouters, type BadMiddlewareCase } from "./fixtures/bad_middleware.ts";
import { rawGet } from "./fixtures/http_client.ts";
import { readOptions } from "../lib/middlewares/options.ts";
import { readRedisOptions } from "../lib/middlewares/rate_limit/redis_options.ts";

/** One router per middleware, matched by `Host(<name>.test)` unless a rule is given. */
function dynamic(
  backendUrl: string,
  middlewares: Record<string, string>,
  rules: Record<string, string> = {},
): string {
  return middlewarePerRouterToml(backendUrl, "rateLimit", middlewares, rules);
}

/** `rateLimit.redis` tables refused at build (none of them dials Redis). */
const badRedis: { router: string; redis: string; error: RegExp }[] = [
  {
    router: "redis_cluster_db",
    redis: `{ endpoints = ["10.0.0.1:6379", "10.0.0.2:6379"], db = 2 }`,
    error:
      /option redis\.db: must be 0 with several endpoints: they are a Redis Cluster, which has only db 0; found 2/,
  },
  {
    router: "redis_scheme",
    redis: `{ endpoints = ["http://10.0.0.1:6379"] }`,
    error:
      /option redis\.endpoints\[0\]: expected host:port, redis:\/\/host:port or rediss:\/\/host:port/,
  },
  {
    router: "redis_url_password",
    redis: `{ endpoints = ["redis://:pw@10.0.0.1:6379"] }`,
    error: /option redis\.endpoints\[0\]: expected host:port/,
  },
  {
    router: "redis_db",
    redis: `{ db = -1 }`,
    error: /option redis\.db: must be 0 or more, found -1/,
  },
  {
    router: "redis_db_type",
    redis: `{ db = "one" }`,
    error: /option redis\.db: expected an integer/,
  },
  {
    router: "redis_pool",
    redis: `{ poolSize = -2 }`,
    error: /option redis\.poolSize: must be 0 or more/,
  },
  {
    router: "redis_idle",
    redis: `{ minIdleConns = 5, maxActiveConns = 2 }`,
    error: /option redis\.minIdleConns: must not exceed maxActiveConns \(2\)/,
  },
  {
    router: "redis_timeout",
    redis: `{ readTimeout = "soon" }`,
    error: /option redis\.readTimeout: expected a duration/,
  },
  {
    router: "redis_dial",
    redis: `{ dialTimeout = "-1s" }`,
    error: /option redis\.dialTimeout: must not be negative/,
  },
  {
    router: "redis_mode",
    redis: `{ failureMode = "open" }`,
    error: /option redis\.failureMode: expected "error" \(answer 500, as Traefik does\) or "local"/,
  },
  {
    router: "redis_user",
    redis: `{ username = "limiter" }`,
    error: /option redis\.password: is required when username is set/,
  },
  {
    router: "redis_ca",
    redis: `{ tls = { ca = "/nonexistent/ca.pem" } }`,
    error:
      /option redis\.tls\.ca: must be PEM text or a readable PEM file, cannot read "\/nonexistent\/ca\.pem"/,
  },
  {
    router: "redis_pair",
    redis: `{ tls = { cert = "-----BEGIN CERTIFICATE-----" } }`,
    error: /option redis\.tls\.key: cert and key go together/,
  },
  {
    router: "redis_skip",
    redis: `{ tls = { insecureSkipVerify = true } }`,
    error: /option redis\.tls\.insecureSkipVerify: is not supported/,
  },
  {
    router: "redis_key",
    redis: `{ endpoint = ["10.0.0.1:6379"] }`,
    error: /unknown option redis\.endpoint \(did you mean "endpoints"\?\)/,
  },
];

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
    zero_burst: `average = 1\nperiod = "1m"\nburst = 0`,
    bad_key: `averag = 10`,
    ...Object.fromEntries(badRedis.map((b) => [b.router, `average = 10\nredis = ${b.redis}`])),
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
        // Go's Header.Get: the first line. A second line must not mint a fresh bucket.
        name: "header key a with a second line is still a",
        host: "header.test",
        headers: { "x-api-key": ["a", "fresh"] as unknown as string },
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
      { name: "burst 0 means 1", host: "zero_burst.test", status: 200 },
      { name: "burst 0 means 1: the second waits", host: "zero_burst.test", status: 429 },
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

    const bad: BadMiddlewareCase[] = [
      { router: "bad_average", error: /option average: must be 0 \(no limit\) or more/ },
      { router: "bad_burst", error: /option burst: must be 1 or more/ },
      { router: "bad_period", error: /option period: expected a duration/ },
      {
        router: "bad_exclusive",
        error:
          /sourceCriterion\.requestHost: requestHost and requestHeaderName are mutually exclusive/,
      },
      {
        router: "bad_header",
        error: /sourceCriterion\.requestHeaderName: expected an HTTP header name/,
      },
      { router: "bad_key", error: /unknown option averag \(did you mean "average"\?\)/ },
      ...badRedis,
    ];
    assertBadMiddlewaresDisableRouters(proxy, bad);
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

Deno.test("rateLimit.redis options: Traefik's defaults, and KV-style keys and values", () => {
  const defaults = readRedisOptions(readOptions("m@file", {}));
  assert.deepEqual(defaults, {
    endpoints: [{ host: "localhost", port: 6379, tls: false }],
    username: undefined,
    password: undefined,
    db: 0,
    tls: undefined,
    connections: 1,
    readTimeoutMs: 3000,
    writeTimeoutMs: 3000,
    dialTimeoutMs: 5000,
    failureMode: "error",
  });
  // As a KV store delivers them: lower-case keys, strings, lists keyed "0", "1".
  const kv = readRedisOptions(readOptions("m@redis", {
    endpoints: { "1": "rediss://[::1]:6380", "0": "10.0.0.5:6379" },
    username: "limiter",
    password: "pw",
    poolsize: "2",
    maxactiveconns: "1",
    readtimeout: "200ms",
    writetimeout: "0",
    dialtimeout: "0",
    failuremode: "local",
  }));
  assert.deepEqual(kv.endpoints, [
    { host: "10.0.0.5", port: 6379, tls: false },
    { host: "::1", port: 6380, tls: true },
  ]);
  assert.equal(kv.connections, 1, "maxActiveConns caps poolSize");
  assert.deepEqual([kv.readTimeoutMs, kv.writeTimeoutMs, kv.dialTimeoutMs], [200, 0, 5000]);
  assert.equal(kv.failureMode, "local");
  assert.equal(kv.username, "limiter");
});

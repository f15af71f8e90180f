/**
 * retry over real HTTP: dead and resetting servers are retried on the next
 * server, bodies already sent and responses already started are never
 * replayed, backoff waits, and bad config is rejected.
 */

import assert from "node:assert/strict";
import { type Echo, startEchoBackend } from "./fixtures/backend.ts";
import { startTestProxy } from "./fixtures/proxy.ts";
import { assertBadMiddlewaresDisableRouters, type BadMiddlewareCase } from "./fixtures/bad_middleware.ts";
import { rawGet } from "./fixtures/http_client.ts";
import { freePort } from "./fixtures/ports.ts";
import http from "node:http";
import { backoffDelay } from "../lib/middlewares/retry/backoff.ts";
import type { ProxyRequest } from "../lib/services/types.ts";

/** A TCP server that reads a request and then answers with `reply` (or nothing) and closes. */
function rawServer(reply: string) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const server = {
    connections: 0,
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    close: () => listener.close(),
  };
  (async () => {
    for await (const conn of listener) {
      server.connections++;
      (async () => {
        const buf = new Uint8Array(65536);
        let seen = "";
        try {
          while (!seen.includes("\r\n\r\n")) {
            const n = await conn.read(buf);
            if (n === null) break;
            seen += new TextDecoder().decode(buf.subarray(0, n));
          }
          // Give a request body a moment to arrive so it is consumed too.
          await new Promise((r) => setTimeout(r, 20));
          if (reply) await conn.write(new TextEncoder().encode(reply));
        } catch { /* the client went away */ }
        try {
          conn.close();
        } catch { /* already closed */ }
      })();
    }
  })().catch(() => {});
  return server;
}

function post(port: number, host: string, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        path: "/",
        method: "POST",
        headers: { host, "content-length": String(body.length) },
        agent: false,
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode!));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** A GET that resolves when the connection closes, however it ends (bounded to 5 s). */
function getUntilClosed(port: number, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: "127.0.0.1",
      port,
      path: "/",
      headers: { host },
      agent: false,
      timeout: 5000,
    }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c) => (body += c));
      res.on("error", () => {});
      res.on("close", () => resolve({ status: res.statusCode!, body }));
    });
    req.on("timeout", () => req.destroy(new Error("no close within 5 s")));
    req.on("error", reject);
    req.end();
  });
}

Deno.test("retry backoff: exponential, doubling over the attempts", () => {
  const cases: { initial: number; attempts: number; retry: number; expected: number }[] = [
    { initial: 100, attempts: 1, retry: 1, expected: 0 },
    { initial: 0, attempts: 5, retry: 2, expected: 0 },
    { initial: 100, attempts: 2, retry: 1, expected: 100 },
    { initial: 100, attempts: 3, retry: 1, expected: 100 },
    { initial: 100, attempts: 3, retry: 2, expected: 100 * Math.SQRT2 },
    { initial: 100, attempts: 5, retry: 4, expected: 200 / Math.pow(2, 1 / 4) },
    { initial: 100, attempts: 5, retry: 5, expected: 200 },
  ];
  for (const tc of cases) {
    const got = backoffDelay(tc.initial, tc.attempts, tc.retry);
    assert.ok(Math.abs(got - tc.expected) < 1e-9, `${JSON.stringify(tc)} got ${got}`);
  }
});

Deno.test("retry: retries only unreachable or silent upstreams, over real HTTP", async () => {
  const live = startEchoBackend("live");
  const reset = rawServer("");
  const reset2 = rawServer("");
  const midBody = rawServer("HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nabc");
  const dead = `http://127.0.0.1:${freePort()}`;
  const dead2 = `http://127.0.0.1:${freePort()}`;
  const services: Record<string, string[]> = {
    deadlive: [dead, live.url],
    resetlive: [reset.url, live.url],
    postreset: [reset2.url, live.url],
    alldead: [dead, dead2],
    liveonly: [live.url],
    midbody: [midBody.url],
  };
  const routers: Record<string, { service: string; retry?: string }> = {
    deadlive: { service: "deadlive", retry: `attempts = 2\ninitialInterval = "1ms"` },
    noretry: { service: "deadlive" },
    resetlive: { service: "resetlive", retry: `attempts = 3\ninitialInterval = "1ms"` },
    postreset: { service: "postreset", retry: `attempts = 3\ninitialInterval = "1ms"` },
    alldead: { service: "alldead", retry: `attempts = 3\ninitialInterval = "60ms"` },
    status500: { service: "liveonly", retry: `attempts = 3` },
    midbody: { service: "midbody", retry: `attempts = 3\ninitialInterval = "1ms"` },
    kv: { service: "deadlive", retry: `attempts = "2"\ninitialinterval = "0"` },
    bad_missing: { service: "liveonly", retry: `initialInterval = "1s"` },
    bad_zero: { service: "liveonly", retry: `attempts = 0` },
    bad_interval: { service: "liveonly", retry: `attempts = 2\ninitialInterval = "soon"` },
    bad_negative: { service: "liveonly", retry: `attempts = 2\ninitialInterval = "-1s"` },
  };
  let toml = "";
  for (const [name, urls] of Object.entries(services)) {
    toml += `[http.services.${name}.loadBalancer]\nservers = [${
      urls.map((u) => `{ url = "${u}" }`).join(", ")
    }]\n`;
  }
  for (const [name, r] of Object.entries(routers)) {
    toml += `[http.routers.${name}]\nrule = "Host(\`${name}.test\`)"\nservice = "${r.service}"\n`;
    if (r.retry !== undefined) {
      toml += `middlewares = ["${name}"]\n[http.middlewares.${name}.retry]\n${r.retry}\n`;
    }
  }
  const proxy = await startTestProxy({ dynamic: toml });
  const port = proxy.port();
  try {
    // Table: [router, requests, expected statuses]
    const cases: { name: string; host: string; n: number; expect: (statuses: number[]) => void }[] =
      [
        {
          name: "dead then live: every request served by the live server",
          host: "deadlive",
          n: 6,
          expect: (s) => assert.deepEqual(s, Array(6).fill(200)),
        },
        {
          name: "without retry the dead server shows",
          host: "noretry",
          n: 4,
          expect: (s) => assert.ok(s.includes(502) && s.includes(200), String(s)),
        },
        {
          name: "server that hangs up after reading the request is retried",
          host: "resetlive",
          n: 4,
          expect: (s) => assert.deepEqual(s, Array(4).fill(200)),
        },
        {
          name: "KV-style options",
          host: "kv",
          n: 4,
          expect: (s) => assert.deepEqual(s, Array(4).fill(200)),
        },
      ];
    for (const tc of cases) {
      const statuses: number[] = [];
      for (let i = 0; i < tc.n; i++) {
        const res = await rawGet(port, "/", { host: `${tc.host}.test` });
        if (res.status === 200) {
          assert.equal((JSON.parse(res.body) as Echo).backend, "live", tc.name);
        }
        statuses.push(res.status);
      }
      tc.expect(statuses);
    }
    assert.ok(reset.connections >= 2, `the resetting server was tried (${reset.connections})`);

    // A request whose body went out is never replayed.
    const liveBeforePosts = live.hits;
    const postStatuses: number[] = [];
    for (let i = 0; i < 4; i++) postStatuses.push(await post(port, "postreset.test", "hello"));
    assert.equal(
      postStatuses.filter((s) => s === 502).length,
      reset2.connections,
      `POST statuses ${postStatuses}`,
    );
    assert.ok(reset2.connections >= 1);
    assert.equal(
      live.hits - liveBeforePosts,
      postStatuses.filter((s) => s === 200).length,
      "no replay reached the live server",
    );

    // All servers dead: the attempts run out, with backoff between them.
    const started = performance.now();
    assert.equal((await rawGet(port, "/", { host: "alldead.test" })).status, 502);
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 60 + 60 * Math.SQRT2 - 5, `backoff waited ${elapsed.toFixed(0)} ms`);

    // An answer, even an error status, is never retried.
    const before = live.hits;
    assert.equal((await rawGet(port, "/status/500", { host: "status500.test" })).status, 500);
    assert.equal(live.hits - before, 1);

    // Once the upstream's response started, a broken body is not retried. A
    // small body with a known length is read whole before answering, so the
    // client sees a 502 rather than a truncated 200.
    const truncated = await getUntilClosed(port, "midbody.test");
    assert.equal(truncated.status, 502);
    assert.equal(midBody.connections, 1, "not retried");

    const bad: BadMiddlewareCase[] = [
      { router: "bad_missing", error: /option attempts: is required/ },
      { router: "bad_zero", error: /option attempts: must be 1 or more/ },
      { router: "bad_interval", error: /option initialInterval: expected a duration/ },
      { router: "bad_negative", error: /option initialInterval: must not be negative/ },
    ];
    assertBadMiddlewaresDisableRouters(proxy, bad);
  } finally {
    await proxy.close();
    await live.close();
    reset.close();
    reset2.close();
    midBody.close();
  }
});

Deno.test("retry handler: which failures are retried, with a scripted downstream", async () => {
  const { retry } = await import("../lib/middlewares/retry/mod.ts");
  const { UpstreamError } = await import("../lib/proxy/upstream.ts");
  const context = {
    name: "r@file",
    provider: "file",
    service: () => {
      throw new Error();
    },
    middleware: () => {
      throw new Error();
    },
    onStop: () => {},
  };
  const handler = retry({ attempts: 3, initialInterval: "0s" }, context);
  const cases: {
    name: string;
    method?: string;
    body?: string;
    consumeBody?: boolean;
    failures: Error[];
    calls: number;
    ok: boolean;
  }[] = [
    { name: "success needs one call", failures: [], calls: 1, ok: true },
    {
      name: "unreachable twice then success",
      failures: [new UpstreamError("refused", 502, true), new UpstreamError("refused", 502, true)],
      calls: 3,
      ok: true,
    },
    {
      name: "attempts run out",
      failures: Array(5).fill(new UpstreamError("refused", 502, true)),
      calls: 3,
      ok: false,
    },
    {
      name: "body already sent",
      failures: [new UpstreamError("reset", 502, false)],
      calls: 1,
      ok: false,
    },
    {
      name: "timeout after sending",
      failures: [new UpstreamError("timeout", 504, false)],
      calls: 1,
      ok: false,
    },
    { name: "other errors are not retried", failures: [new Error("bug")], calls: 1, ok: false },
    {
      name: "consumed body is never replayed",
      method: "POST",
      body: "x",
      consumeBody: true,
      failures: [new UpstreamError("refused", 502, true)],
      calls: 1,
      ok: false,
    },
  ];
  for (const tc of cases) {
    const request = new Request("http://x/p", { method: tc.method ?? "GET", body: tc.body });
    const proxy = {
      request,
      pathAndQuery: "/p",
      headers: request.headers,
    } as unknown as ProxyRequest;
    const c = { get: () => proxy, res: undefined as unknown as Response } as unknown as Parameters<
      typeof handler
    >[0];
    let calls = 0;
    const next = async () => {
      calls++;
      // A downstream middleware rewriting the path must not compound across attempts.
      proxy.pathAndQuery = "/prefix" + proxy.pathAndQuery;
      if (tc.consumeBody) await request.text().catch(() => "");
      const failure = tc.failures[calls - 1];
      if (failure) throw failure;
      (c as unknown as { res: Response }).res = new Response("ok");
    };
    let ok = true;
    try {
      await handler(c, next);
    } catch {
      ok = false;
    }
    assert.equal(calls, tc.calls, tc.name);
    assert.equal(ok, tc.ok, tc.name);
    assert.equal(proxy.pathAndQuery, "/prefix/p", `${tc.name}: path restored before each attempt`);
  }
});

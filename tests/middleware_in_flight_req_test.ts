/**
 * inFlightReq over real HTTP: the limit per source, that a slot is held
 * until the body is fully sent, source criteria, bad config, and a bounded
 * load test measuring concurrency at the backend.
 */

import assert from "node:assert/strict";
import { startEchoBackend } from "./fixtures/backend.ts";
import { startTestProxy } from "./fixtures/proxy.ts";
import { middlewarePerRouterToml } from "./fixtures/host_routes.ts";
import { assertBadMiddlewaresDisableRouters, type BadMiddlewareCase } from "./fixtures/bad_middleware.ts";
import { rawGet } from "./fixtures/http_client.ts";
import { InFlightCounter, onBodyDone } from "../lib/middlewares/in_flight_req/counter.ts";
import http from "node:http";

/** Starts a GET and resolves at the response headers, leaving the body unread. */
function openGet(port: number, path: string, host: string): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: "127.0.0.1", port, path, headers: { host }, agent: false },
      resolve,
    );
    req.on("error", reject);
    req.end();
  });
}

/** One router per middleware, matched by `Host(<name>.test)` unless a rule is given. */
function dynamic(
  backendUrl: string,
  middlewares: Record<string, string>,
  rules: Record<string, string> = {},
): string {
  return middlewarePerRouterToml(backendUrl, "inFlightReq", middlewares, rules);
}

async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`not true within 2 s: ${what}`);
}

Deno.test("inFlightReq counter: limit per source and one-shot release", () => {
  const c = new InFlightCounter(2);
  const r1 = c.acquire("a")!;
  const r2 = c.acquire("a")!;
  assert.equal(c.acquire("a"), undefined);
  assert.ok(c.acquire("b"), "other sources are independent");
  r1();
  r1(); // a second call must not free another slot
  assert.equal(c.count("a"), 1);
  assert.ok(c.acquire("a"));
  assert.equal(c.acquire("a"), undefined);
  r2();
  assert.equal(c.count("a"), 1);
});

Deno.test("inFlightReq onBodyDone: fires once on end, on error and on cancel", async () => {
  const cases: {
    name: string;
    body: () => ReadableStream<Uint8Array>;
    consume: (s: ReadableStream<Uint8Array>) => Promise<void>;
  }[] = [
    {
      name: "end",
      body: () => new Blob(["abc"]).stream(),
      consume: async (s) => void (await new Response(s).text()),
    },
    {
      name: "error",
      body: () => new ReadableStream({ pull: (c) => c.error(new Error("boom")) }),
      consume: async (s) => void (await new Response(s).text().catch(() => "")),
    },
    {
      name: "cancel",
      body: () => new ReadableStream({ pull: (c) => c.enqueue(new Uint8Array(1)) }),
      consume: (s) => s.cancel(),
    },
  ];
  for (const tc of cases) {
    let calls = 0;
    await tc.consume(onBodyDone(tc.body(), () => calls++));
    assert.equal(calls, 1, tc.name);
  }
});

Deno.test("inFlightReq: limits, body-held slots, source criteria and bad config over real HTTP", async () => {
  const backend = startEchoBackend("echo");
  const proxy = await startTestProxy({
    dynamic: dynamic(backend.url, {
      one: `amount = 1`,
      header: `amount = 1\nsourceCriterion = { requestHeaderName = "X-User" }`,
      kv: `amount = "1"`,
      bad_missing: ``,
      zero: `amount = 0`,
      bad_negative: `amount = -1`,
      bad_type: `amount = "many"`,
      bad_criterion: `amount = 1\nsourceCriterion = { ipStrategy = { depth = "x" } }`,
    }),
  });
  try {
    const port = proxy.port();
    // Sequential requests never collide.
    for (let i = 0; i < 3; i++) {
      assert.equal((await rawGet(port, "/", { host: "one.test" })).status, 200);
    }

    // A slot is held while the body is still streaming.
    const big = await openGet(port, `/bytes/${32 * 1024 * 1024}`, "one.test");
    assert.equal(big.statusCode, 200);
    big.pause();
    const held = await rawGet(port, "/", { host: "one.test" });
    assert.equal(held.status, 429, "second request while the first body is unread");
    assert.equal(held.body, "max connections reached: 1", "oxy's words");
    big.destroy();
    await eventually(
      async () => (await rawGet(port, "/", { host: "one.test" })).status === 200,
      "slot freed after the client cancelled",
    );

    // Slow requests from different header sources do not block each other; the same source does.
    const slowA = rawGet(port, "/slow/300", { host: "header.test", "x-user": "a" });
    await new Promise((r) => setTimeout(r, 50));
    const cases: { name: string; user: string; status: number }[] = [
      { name: "same source while busy", user: "a", status: 429 },
      { name: "other source", user: "b", status: 200 },
    ];
    for (const tc of cases) {
      assert.equal(
        (await rawGet(port, "/", { host: "header.test", "x-user": tc.user })).status,
        tc.status,
        tc.name,
      );
    }
    assert.equal((await slowA).status, 200);
    assert.equal(
      (await rawGet(port, "/", { host: "header.test", "x-user": "a" })).status,
      200,
      "released after the slow one",
    );

    const slowKv = rawGet(port, "/slow/200", { host: "kv.test" });
    await new Promise((r) => setTimeout(r, 50));
    assert.equal((await rawGet(port, "/", { host: "kv.test" })).status, 429, "KV-style amount");
    await slowKv;

    const bad: BadMiddlewareCase[] = [
      { router: "bad_missing", error: /option amount: is required/ },
      { router: "bad_negative", error: /option amount: must be 0 or more, found -1/ },
      { router: "bad_type", error: /option amount: expected an integer, found "many"/ },
      {
        router: "bad_criterion",
        error: /option sourceCriterion\.ipStrategy\.depth: expected an integer/,
      },
    ];
    assertBadMiddlewaresDisableRouters(proxy, bad);
    assert.equal((await rawGet(port, "/", { host: "one.test" })).status, 200);
    // amount = 0 is valid and refuses everything, as oxy's limiter does.
    const zero = await rawGet(port, "/", { host: "zero.test" });
    assert.equal(zero.status, 429);
    assert.equal(zero.body, "max connections reached: 0");
  } finally {
    await proxy.close();
    await backend.close();
  }
});

Deno.test("inFlightReq under load: amount=5 never lets more than 5 reach a slow backend", async () => {
  let current = 0;
  let peak = 0;
  let hits = 0;
  const backend = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async () => {
    hits++;
    current++;
    peak = Math.max(peak, current);
    await new Promise((r) => setTimeout(r, 50));
    current--;
    return new Response("x".repeat(1024));
  });
  const backendUrl = `http://127.0.0.1:${(backend.addr as Deno.NetAddr).port}`;
  const proxy = await startTestProxy({
    dynamic: dynamic(backendUrl, { load: `amount = 5` }, { load: "PathPrefix(`/`)" }),
  });
  try {
    const url = proxy.url() + "/";
    let served = 0;
    let refused = 0;
    const deadline = performance.now() + 1500;
    const client = async () => {
      for (let i = 0; i < 5000 && performance.now() < deadline; i++) {
        const res = await fetch(url);
        await res.arrayBuffer();
        if (res.status === 200) served++;
        else if (res.status === 429) refused++;
        else throw new Error(`unexpected status ${res.status}`);
      }
    };
    await Promise.all(Array.from({ length: 20 }, client));
    assert.ok(refused > 0, "the clients must exceed the limit");
    assert.equal(peak, 5, `peak concurrency at the backend was ${peak}`);
    assert.equal(hits, served);
    // 5 slots × 50 ms per request over 1.5 s is ~150 at most; the limit must not starve either.
    assert.ok(served >= 150 * 0.9 * 0.5 && served <= 150 * 1.1, `served ${served}`);
  } finally {
    await proxy.close();
    await backend.shutdown();
  }
});

import assert from "node:assert/strict";
import http from "node:http";
import type { Echo } from "./fixtures/backend.ts";
import { startTestProxy } from "./fixtures/proxy.ts";
import { startHostRoutedProxy } from "./fixtures/host_routes.ts";
import { rawGet } from "./fixtures/http_client.ts";
import { compileRetryExpression } from "../lib/middlewares/buffering/retry_expression.ts";

/** Sends a body, optionally chunked (no Content-Length), and returns status and body. */
function send(
  port: number,
  host: string,
  path: string,
  body: Uint8Array,
  chunked: boolean,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { host };
    if (!chunked) headers["content-length"] = String(body.length);
    const req = http.request({
      host: "127.0.0.1",
      port,
      path,
      method: "POST",
      headers,
      agent: false,
    }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c) => (text += c));
      res.on("end", () => resolve({ status: res.statusCode!, body: text }));
    });
    req.on("error", reject);
    if (chunked) {
      req.write(body.subarray(0, 10));
      req.end(body.subarray(10));
    } else req.end(body);
  });
}

Deno.test("retryExpression: compiles oxy's language, rejects the rest", () => {
  const facts = { attempts: 1, responseCode: 502, method: "POST" };
  const ok: [string, boolean][] = [
    ["IsNetworkError()", true],
    ["IsNetworkError() && Attempts() < 2", true],
    ["Attempts() >= 2 || ResponseCode() == 502", true],
    ['RequestMethod() == "POST" && IsNetworkError()', true],
    ["RequestMethod() != `POST`", false],
    ["(ResponseCode() != 502) || (Attempts() <= 0)", false],
  ];
  for (const [src, want] of ok) assert.equal(compileRetryExpression(src)(facts), want, src);
  for (
    const bad of [
      "Attempts()",
      "IsNetworkError(",
      "Foo()",
      "IsNetworkError() &&",
      "1 < IsNetworkError()",
      // oxy's buffer predicates have no negation, and compare counts with integers.
      "!IsNetworkError()",
      "Attempts() < 2.0",
      'RequestMethod() < "POST"',
      'ResponseCode() == "502"',
    ]
  ) {
    assert.throws(() => compileRetryExpression(bad), Error, bad);
  }
});

Deno.test("buffering: 413 over maxRequestBodyBytes, 500 over maxResponseBodyBytes, body replayed on retry", async () => {
  const routed = await startHostRoutedProxy(
    {
      limit: ["limit"],
      resp: ["resp"],
      retry: ["retry"],
      bad: ["badexpr"],
      neg: ["neg"],
    },
    `
[http.middlewares.limit.buffering]
maxRequestBodyBytes = 100
[http.middlewares.resp.buffering]
maxResponseBodyBytes = "1000"
[http.middlewares.retry.buffering]
retryExpression = "ResponseCode() == 503 && Attempts() < 3"
[http.middlewares.badexpr.buffering]
retryExpression = "Attempts() <"
[http.middlewares.neg.buffering]
maxRequestBodyBytes = -1
`,
  );
  const { be, proxy } = routed;
  try {
    const port = proxy.port();
    const cases = [
      { name: "under the limit", size: 100, chunked: false, status: 200 },
      { name: "over, declared by Content-Length", size: 101, chunked: false, status: 413 },
      { name: "under, chunked", size: 60, chunked: true, status: 200 },
      { name: "over, chunked", size: 5000, chunked: true, status: 413 },
    ];
    for (const tc of cases) {
      const before = be.hits;
      const res = await send(
        port,
        "limit.test",
        "/",
        new Uint8Array(tc.size).fill(120),
        tc.chunked,
      );
      assert.equal(res.status, tc.status, tc.name);
      if (tc.status === 200) {
        const echo = JSON.parse(res.body) as Echo;
        assert.equal(echo.bodyLength, tc.size, tc.name);
        assert.equal(
          echo.headers["content-length"],
          String(tc.size),
          `${tc.name}: sent with a length`,
        );
      } else assert.equal(be.hits, before, `${tc.name}: not forwarded`);
    }

    const responses = [
      { path: "/bytes/1000", status: 200, length: 1000 },
      { path: "/bytes/1001", status: 500, length: undefined },
      { path: "/bytes/300000", status: 500, length: undefined },
    ];
    for (const tc of responses) {
      const res = await rawGet(port, tc.path, { host: "resp.test" });
      assert.equal(res.status, tc.status, tc.path);
      if (tc.length) assert.equal(res.body.length, tc.length, tc.path);
    }

    const before = be.hits;
    const retried = await send(port, "retry.test", "/status/503", new Uint8Array(50).fill(1), true);
    assert.equal(retried.status, 503);
    assert.equal(be.hits - before, 3, "tried while Attempts() < 3");
    assert.equal(
      (JSON.parse(retried.body) as Echo).bodyLength,
      50,
      "body replayed on the last attempt",
    );
    const once = be.hits;
    assert.equal((await send(port, "retry.test", "/ok", new Uint8Array(5), false)).status, 200);
    assert.equal(be.hits - once, 1);

    const routers = proxy.server.watcher.current.routers;
    assert.match(
      routers.get("bad@file")!.errors.join(),
      /middleware "badexpr@file": option retryExpression: "Attempts\(\) <"/,
    );
    assert.match(
      routers.get("neg@file")!.errors.join(),
      /middleware "neg@file": option maxRequestBodyBytes: must be 0 or more bytes, found -1/,
    );
  } finally {
    await routed.close();
  }
});

Deno.test("buffering: a GET body goes upstream with its length, a gRPC error loses its body", async () => {
  const seen: { method: string; body: string; length?: string }[] = [];
  const upstream = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      seen.push({ method: req.method!, body, length: req.headers["content-length"] });
      if (req.url === "/grpc") {
        res.writeHead(200, { "grpc-status": "10", "content-length": "18" });
        res.end("not for the client");
        return;
      }
      res.writeHead(200, { "content-length": "2" }).end("ok");
    });
  });
  await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", () => r()));
  const proxy = await startTestProxy({
    dynamic: `
[http.routers.all]
rule = "PathPrefix(\`/\`)"
service = "up"
middlewares = ["buf"]
[http.middlewares.buf.buffering]
maxRequestBodyBytes = 100
[http.services.up.loadBalancer]
servers = [{ url = "http://127.0.0.1:${(upstream.address() as { port: number }).port}" }]
`,
  });
  try {
    const withBody = await rawGet(
      proxy.port(),
      "/",
      { host: "a.test", "content-length": "5" },
      "GET",
      "hello",
    );
    assert.equal(withBody.status, 200);
    assert.deepEqual(seen.at(-1), { method: "GET", body: "hello", length: "5" });
    const empty = await rawGet(proxy.port(), "/", { host: "a.test" }, "POST");
    assert.equal(empty.status, 200);
    assert.deepEqual(
      seen.at(-1),
      { method: "POST", body: "", length: "0" },
      "Go sends Content-Length: 0 for an empty POST",
    );
    const grpc = await rawGet(proxy.port(), "/grpc", { host: "a.test" });
    assert.equal(grpc.status, 200);
    assert.equal(grpc.body, "", "oxy copies no body after a gRPC error status");
  } finally {
    await proxy.close();
    await new Promise<void>((r) => upstream.close(() => r()));
  }
});

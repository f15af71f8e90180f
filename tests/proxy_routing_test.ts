/**
 * Integration tests over real sockets: routing, priorities, header rules,
 * byte-exact paths and error statuses.
 */

import assert from "node:assert/strict";
import { type Echo, startEchoBackend } from "./fixtures/backend.ts";
import { startTestProxy } from "./fixtures/proxy.ts";
import { freePort } from "./fixtures/ports.ts";
import { rawGet } from "./fixtures/http_client.ts";

Deno.test("routing: host, path, priority and 404 over real HTTP", async () => {
  const a = startEchoBackend("a");
  const b = startEchoBackend("b");
  const c = startEchoBackend("c");
  const proxy = await startTestProxy({
    dynamic: `
[http.routers.host-a]
rule = "Host(\`a.example.com\`)"
service = "a"
[http.routers.host-a-api]
rule = "Host(\`a.example.com\`) && PathPrefix(\`/api\`)"
service = "b"
[http.routers.low]
rule = "PathPrefix(\`/\`)"
service = "c"
priority = 1
[http.routers.explicit]
rule = "Path(\`/pinned\`)"
service = "b"
priority = 1000
[http.services.a.loadBalancer]
servers = [{ url = "${a.url}" }]
[http.services.b.loadBalancer]
servers = [{ url = "${b.url}" }]
[http.services.c.loadBalancer]
servers = [{ url = "${c.url}" }]
`,
  });
  try {
    const port = proxy.port();
    const cases: { name: string; host: string; path: string; backend: string | null }[] = [
      { name: "exact host", host: "a.example.com", path: "/x", backend: "a" },
      { name: "host is case-insensitive and ignores the port", host: "A.Example.COM:8443", path: "/x", backend: "a" },
      { name: "longer rule wins", host: "a.example.com", path: "/api/v1", backend: "b" },
      { name: "catch-all for other hosts", host: "other.test", path: "/api", backend: "c" },
      { name: "explicit priority beats longer rules", host: "a.example.com", path: "/pinned", backend: "b" },
    ];
    for (const tc of cases) {
      const res = await rawGet(port, tc.path, { host: tc.host });
      assert.equal(res.status, 200, tc.name);
      assert.equal((JSON.parse(res.body) as Echo).backend, tc.backend, tc.name);
    }
  } finally {
    await proxy.close();
    await Promise.all([a.close(), b.close(), c.close()]);
  }
});

Deno.test("routing: nothing matches gives 404 with a plain body", async () => {
  const a = startEchoBackend("a");
  const proxy = await startTestProxy({
    dynamic: `
[http.routers.only]
rule = "Host(\`only.test\`)"
service = "a"
[http.services.a.loadBalancer]
servers = [{ url = "${a.url}" }]
`,
  });
  try {
    const res = await rawGet(proxy.port(), "/", { host: "nope.test" });
    assert.equal(res.status, 404);
    assert.equal(res.body, "404 page not found");
    assert.equal(a.hits, 0);
  } finally {
    await proxy.close();
    await a.close();
  }
});

Deno.test("proxying: path and query reach the backend byte for byte", async () => {
  const a = startEchoBackend("a");
  const proxy = await startTestProxy({
    dynamic: `
[http.routers.all]
rule = "PathPrefix(\`/\`)"
service = "a"
[http.services.a.loadBalancer]
servers = [{ url = "${a.url}" }]
`,
  });
  try {
    const paths = [
      "/a/%2e%2e/b/../c",
      "/x%2Fy/%7e?q=%20a+b&q=2&empty=&x=%2F",
      "/caf%C3%A9/%E2%82%AC?name=%C3%A9t%C3%A9",
      "/double//slash/./dot",
      "/;matrix=1?a=1;b=2",
    ];
    for (const path of paths) {
      const res = await rawGet(proxy.port(), path, { host: "any.test" });
      assert.equal(res.status, 200, path);
      assert.equal((JSON.parse(res.body) as Echo).path, path);
      // A request with a body takes the read-timeout wrapper; the path must survive it too.
      const post = await rawGet(proxy.port(), path, { host: "any.test", "content-length": "2" }, "POST", "hi");
      assert.equal((JSON.parse(post.body) as Echo).path, path, `POST ${path}`);
    }
  } finally {
    await proxy.close();
    await a.close();
  }
});

Deno.test("proxying: forwarded headers, hop-by-hop removal and Host handling", async () => {
  const a = startEchoBackend("a");
  const proxy = await startTestProxy({
    dynamic: `
[http.routers.keep]
rule = "Host(\`keep.test\`)"
service = "keep"
[http.routers.rewrite]
rule = "Host(\`rewrite.test\`)"
service = "rewrite"
[http.services.keep.loadBalancer]
servers = [{ url = "${a.url}" }]
[http.services.rewrite.loadBalancer]
passHostHeader = false
servers = [{ url = "${a.url}" }]
`,
  });
  try {
    const res = await rawGet(proxy.port(), "/h", {
      host: "keep.test:1234",
      connection: "keep-alive, x-drop-me",
      "x-drop-me": "1",
      "keep-alive": "timeout=5",
      "proxy-authorization": "secret",
      "x-forwarded-for": "6.6.6.6",
      "x-real-ip": "6.6.6.6",
      "x-custom": "kept",
    });
    const echo = JSON.parse(res.body) as Echo;
    assert.equal(echo.headers["host"], "keep.test:1234");
    assert.equal(echo.headers["x-custom"], "kept");
    assert.equal(echo.headers["x-drop-me"], undefined, "header named in Connection is removed");
    assert.equal(echo.headers["keep-alive"], undefined);
    assert.equal(echo.headers["proxy-authorization"], undefined);
    assert.equal(echo.headers["x-forwarded-for"], "127.0.0.1", "untrusted X-Forwarded-For is replaced");
    assert.equal(echo.headers["x-real-ip"], "127.0.0.1");
    assert.equal(echo.headers["x-forwarded-proto"], "http");
    assert.equal(echo.headers["x-forwarded-host"], "keep.test:1234");
    assert.equal(echo.headers["x-forwarded-port"], String(proxy.port()));
    assert.equal(echo.headers["x-forwarded-server"], Deno.hostname());
    // The backend's own hop-by-hop answer headers do not reach the client.
    assert.equal(res.headers["x-hop"], undefined);
    assert.equal(res.headers["x-backend"], "a");

    const rewritten = JSON.parse((await rawGet(proxy.port(), "/h", { host: "rewrite.test" })).body) as Echo;
    assert.equal(rewritten.headers["host"], `127.0.0.1:${a.port}`);
  } finally {
    await proxy.close();
    await a.close();
  }
});

Deno.test("proxying: trusted clients keep X-Forwarded-For and it is appended", async () => {
  const a = startEchoBackend("a");
  const proxy = await startTestProxy({
    entryPointExtra: { web: `[entryPoints.web.forwardedHeaders]\ntrustedIPs = ["127.0.0.0/8"]\n` },
    dynamic: `
[http.routers.all]
rule = "PathPrefix(\`/\`)"
service = "a"
[http.services.a.loadBalancer]
servers = [{ url = "${a.url}" }]
`,
  });
  try {
    const echo = JSON.parse((await rawGet(proxy.port(), "/", { host: "t.test", "x-forwarded-for": "203.0.113.9", "x-forwarded-proto": "https" })).body) as Echo;
    assert.equal(echo.headers["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
    assert.equal(echo.headers["x-forwarded-proto"], "https");
  } finally {
    await proxy.close();
    await a.close();
  }
});

Deno.test("errors: 502 when the upstream refuses, 503 with no server, 504 on timeout", async () => {
  const slow = startEchoBackend("slow");
  const dead = `http://127.0.0.1:${freePort()}`;
  const proxy = await startTestProxy({
    dynamic: `
[http.routers.refused]
rule = "Path(\`/refused\`)"
service = "refused"
[http.routers.empty]
rule = "Path(\`/empty\`)"
service = "empty"
[http.routers.slow]
rule = "PathPrefix(\`/slow\`)"
service = "slow"
[http.services.refused.loadBalancer]
servers = [{ url = "${dead}" }]
[http.services.empty.loadBalancer]
servers = []
[http.services.slow.loadBalancer]
serversTransport = "fast"
servers = [{ url = "${slow.url}" }]
[http.serversTransports.fast.forwardingTimeouts]
responseHeaderTimeout = "200ms"
`,
  });
  try {
    const refused = await rawGet(proxy.port(), "/refused", { host: "e.test" });
    assert.equal(refused.status, 502);
    assert.equal(refused.body, "Bad Gateway");
    const empty = await rawGet(proxy.port(), "/empty", { host: "e.test" });
    assert.equal(empty.status, 503);
    const timeout = await rawGet(proxy.port(), "/slow/1000", { host: "e.test" });
    assert.equal(timeout.status, 504);
    assert.equal(timeout.body, "Gateway Timeout");
    const fast = await rawGet(proxy.port(), "/slow/10", { host: "e.test" });
    assert.equal(fast.status, 200);
  } finally {
    await proxy.close();
    await slow.close();
  }
});

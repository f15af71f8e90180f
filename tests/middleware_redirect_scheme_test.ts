import assert from "node:assert/strict";
import { startEchoBackend } from "./fixtures/backend.ts";
import { startTestProxy } from "./fixtures/proxy.ts";
import { rawGet } from "./fixtures/http_client.ts";

Deno.test("redirectScheme: status by method and permanence, port handling, already-there passes, bad config", async () => {
  const be = startEchoBackend("be");
  const proxy = await startTestProxy({
    entryPoints: ["web", "trusted"],
    entryPointExtra: { trusted: "forwardedHeaders.insecure = true" },
    dynamic: `
[http.routers.https]
rule = "Host(\`a.test\`)"
service = "be"
middlewares = ["to-https"]
[http.routers.perm]
rule = "Host(\`b.test\`)"
service = "be"
middlewares = ["to-https-8443"]
[http.routers.http]
rule = "Host(\`c.test\`)"
service = "be"
middlewares = ["to-http-80"]
[http.routers.bad]
rule = "Host(\`bad.test\`)"
service = "be"
middlewares = ["badport"]
[http.routers.noscheme]
rule = "Host(\`noscheme.test\`)"
service = "be"
middlewares = ["noscheme"]
[http.middlewares.to-https.redirectScheme]
scheme = "https"
[http.middlewares.to-https-8443.redirectScheme]
scheme = "https"
port = 8443
permanent = true
[http.middlewares.to-http-80.redirectScheme]
scheme = "http"
port = "80"
[http.middlewares.badport.redirectScheme]
scheme = "https"
port = "http"
[http.middlewares.noscheme.redirectScheme]
permanent = true
[http.services.be.loadBalancer]
servers = [{ url = "${be.url}" }]
`,
  });
  try {
    const cases: {
      name: string;
      ep?: string;
      host: string;
      path: string;
      method?: string;
      headers?: Record<string, string>;
      status: number;
      location?: string;
    }[] = [
      {
        name: "GET temporary",
        host: "a.test:8000",
        path: "/x?y=1",
        status: 302,
        location: "https://a.test/x?y=1",
      },
      {
        name: "POST temporary",
        host: "a.test",
        path: "/x",
        method: "POST",
        status: 307,
        location: "https://a.test/x",
      },
      {
        name: "GET permanent with port",
        host: "b.test",
        path: "/p",
        status: 301,
        location: "https://b.test:8443/p",
      },
      {
        name: "PUT permanent",
        host: "b.test",
        path: "/p",
        method: "PUT",
        status: 308,
        location: "https://b.test:8443/p",
      },
      {
        name: "default port dropped",
        host: "c.test:8080",
        path: "/",
        status: 302,
        location: "http://c.test/",
      },
      { name: "already http on :80", host: "c.test:80", path: "/", status: 200 },
      {
        name: "untrusted X-Forwarded-Proto is ignored",
        host: "a.test",
        path: "/",
        headers: { "x-forwarded-proto": "https" },
        status: 302,
        location: "https://a.test/",
      },
      {
        name: "trusted X-Forwarded-Proto https passes",
        ep: "trusted",
        host: "a.test",
        path: "/",
        headers: { "x-forwarded-proto": "https" },
        status: 200,
      },
      {
        name: "trusted wss counts as https",
        ep: "trusted",
        host: "a.test",
        path: "/",
        headers: { "x-forwarded-proto": "wss" },
        status: 200,
      },
    ];
    for (const tc of cases) {
      const before = be.hits;
      const res = await rawGet(
        proxy.port(tc.ep),
        tc.path,
        { host: tc.host, ...tc.headers },
        tc.method ?? "GET",
      );
      assert.equal(res.status, tc.status, tc.name);
      assert.equal(res.headers.location, tc.location, tc.name);
      assert.equal(be.hits - before, tc.status === 200 ? 1 : 0, `${tc.name}: forwarded`);
    }
    const routers = proxy.server.watcher.current.routers;
    assert.match(
      routers.get("bad@file")!.errors.join(),
      /middleware "badport@file": option port: expected a port number/,
    );
    assert.match(
      routers.get("noscheme@file")!.errors.join(),
      /middleware "noscheme@file": option scheme: is required/,
    );
  } finally {
    await proxy.close();
    await be.close();
  }
});

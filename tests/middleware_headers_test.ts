import assert from "node:assert/strict";
import { type Echo, startEchoBackend } from "./fixtures/backend.ts";
import { startTestProxy } from "./fixtures/proxy.ts";
import { rawGet } from "./fixtures/http_client.ts";

const DYNAMIC = (url: string) => `
[http.routers.custom]
rule = "Host(\`custom.test\`)"
service = "be"
middlewares = ["custom"]
[http.routers.cors]
rule = "Host(\`cors.test\`)"
service = "be"
middlewares = ["cors"]
[http.routers.secure]
rule = "Host(\`secure.test\`)"
service = "be"
middlewares = ["secure"]
[http.routers.forced]
rule = "Host(\`forced.test\`)"
service = "be"
middlewares = ["forced"]
[http.routers.hosts]
rule = "HostRegexp(\`^.+\\\\.hosts\\\\.test$\`)"
service = "be"
middlewares = ["hosts"]
[http.routers.badre]
rule = "Host(\`badre.test\`)"
service = "be"
middlewares = ["badre"]
[http.routers.badbool]
rule = "Host(\`badbool.test\`)"
service = "be"
middlewares = ["badbool"]
[http.middlewares.custom.headers.customRequestHeaders]
X-Added = "yes"
User-Agent = ""
[http.middlewares.custom.headers.customResponseHeaders]
X-Backend = ""
X-Resp = "r"
[http.middlewares.cors.headers]
accessControlAllowMethods = ["GET", "PUT"]
accessControlAllowHeaders = ["X-A", "X-B"]
accessControlAllowOriginList = ["https://a.example"]
accessControlAllowOriginListRegex = ["^https://[a-z]+\\\\.b\\\\.example$"]
accessControlExposeHeaders = ["X-Exp"]
accessControlAllowCredentials = true
accessControlMaxAge = 100
addVaryHeader = true
[http.middlewares.secure.headers]
stsSeconds = 31536000
stsIncludeSubdomains = true
stsPreload = true
frameDeny = true
contentTypeNosniff = true
browserXssFilter = true
contentSecurityPolicy = "default-src 'self'"
referrerPolicy = "no-referrer"
permissionsPolicy = "camera=()"
[http.middlewares.secure.headers.sslProxyHeaders]
X-Forwarded-Proto = "https"
[http.middlewares.forced.headers]
stsSeconds = "60"
forceSTSHeader = "true"
customFrameOptionsValue = "SAMEORIGIN"
frameDeny = true
[http.middlewares.forced.headers.customResponseHeaders]
X-Content-Type-Options = "overridden"
[http.middlewares.hosts.headers]
allowedHosts = ["ok.hosts.test"]
[http.middlewares.badre.headers]
accessControlAllowOriginListRegex = ["(?<=x)"]
[http.middlewares.badbool.headers]
frameDeny = "sometimes"
[http.services.be.loadBalancer]
servers = [{ url = "${url}" }]
`;

Deno.test("headers: custom request and response headers, empty value removes", async () => {
  const be = startEchoBackend("be");
  const proxy = await startTestProxy({ dynamic: DYNAMIC(be.url) });
  try {
    const res = await rawGet(proxy.port(), "/", {
      host: "custom.test",
      "user-agent": "ua/1",
      "x-added": "client",
    });
    const echo = JSON.parse(res.body) as Echo;
    assert.equal(echo.headers["x-added"], "yes");
    assert.equal(echo.headers["user-agent"], undefined);
    assert.equal(res.headers["x-backend"], undefined);
    assert.equal(res.headers["x-resp"], "r");
    assert.equal(res.headers["content-type"], "application/json");
  } finally {
    await proxy.close();
    await be.close();
  }
});

Deno.test("headers: CORS preflight answered by the proxy, actual requests decorated, foreign origins get no Allow-Origin", async () => {
  const be = startEchoBackend("be");
  const proxy = await startTestProxy({ dynamic: DYNAMIC(be.url) });
  try {
    const cases: {
      name: string;
      method: string;
      headers: Record<string, string>;
      forwarded: boolean;
      want: Record<string, string | undefined>;
    }[] = [
      {
        name: "preflight from a listed origin",
        method: "OPTIONS",
        headers: { origin: "https://a.example", "access-control-request-method": "PUT" },
        forwarded: false,
        want: {
          "access-control-allow-origin": "https://a.example",
          "access-control-allow-methods": "GET,PUT",
          "access-control-allow-headers": "X-A,X-B",
          "access-control-allow-credentials": "true",
          "access-control-max-age": "100",
          "access-control-expose-headers": "X-Exp",
          vary: undefined,
        },
      },
      {
        name: "preflight from a regex origin",
        method: "OPTIONS",
        headers: { origin: "https://x.b.example", "access-control-request-method": "GET" },
        forwarded: false,
        want: {
          "access-control-allow-origin": "https://x.b.example",
          "access-control-max-age": "100",
        },
      },
      {
        name: "preflight from a foreign origin: everything but Allow-Origin (Traefik's rule)",
        method: "OPTIONS",
        headers: { origin: "https://evil.example", "access-control-request-method": "GET" },
        forwarded: false,
        want: {
          "access-control-allow-origin": undefined,
          "access-control-allow-methods": "GET,PUT",
          "access-control-allow-credentials": "true",
        },
      },
      {
        name: "OPTIONS without Access-Control-Request-Method is forwarded",
        method: "OPTIONS",
        headers: { origin: "https://a.example" },
        forwarded: true,
        want: { "access-control-allow-origin": "https://a.example" },
      },
      {
        name: "actual request from a listed origin",
        method: "GET",
        headers: { origin: "https://a.example" },
        forwarded: true,
        want: {
          "access-control-allow-origin": "https://a.example",
          "access-control-allow-credentials": "true",
          "access-control-expose-headers": "X-Exp",
          "access-control-allow-methods": undefined,
          vary: "Origin",
        },
      },
      {
        name: "actual request from a foreign origin: no Allow-Origin, the rest as configured",
        method: "GET",
        headers: { origin: "https://evil.example" },
        forwarded: true,
        want: {
          "access-control-allow-origin": undefined,
          "access-control-allow-credentials": "true",
          "access-control-expose-headers": "X-Exp",
          vary: "Origin",
        },
      },
      {
        name: "regex is anchored by the pattern: suffix does not match",
        method: "GET",
        headers: { origin: "https://x.b.example.evil" },
        forwarded: true,
        want: { "access-control-allow-origin": undefined },
      },
    ];
    for (const tc of cases) {
      const hitsBefore = be.hits;
      const res = await rawGet(proxy.port(), "/", { host: "cors.test", ...tc.headers }, tc.method);
      assert.equal(res.status, 200, tc.name);
      assert.equal(be.hits - hitsBefore, tc.forwarded ? 1 : 0, `${tc.name}: forwarded`);
      for (const [k, v] of Object.entries(tc.want)) {
        assert.equal(res.headers[k], v, `${tc.name}: ${k}`);
      }
    }
  } finally {
    await proxy.close();
    await be.close();
  }
});

Deno.test("headers: security headers, STS only on HTTPS unless forced, allowedHosts, bad config", async () => {
  const be = startEchoBackend("be");
  const proxy = await startTestProxy({
    dynamic: DYNAMIC(be.url),
    entryPoints: ["web", "trusted"],
    entryPointExtra: { trusted: "forwardedHeaders.insecure = true" },
  });
  try {
    const cases: {
      name: string;
      host: string;
      ep?: string;
      headers?: Record<string, string>;
      status?: number;
      want: Record<string, string | undefined>;
    }[] = [
      {
        name: "plain HTTP: no STS",
        host: "secure.test",
        want: {
          "strict-transport-security": undefined,
          "x-frame-options": "DENY",
          "x-content-type-options": "nosniff",
          "x-xss-protection": "1; mode=block",
          "content-security-policy": "default-src 'self'",
          "referrer-policy": "no-referrer",
          "permissions-policy": "camera=()",
        },
      },
      {
        name: "X-Forwarded-Proto from an untrusted client does not count",
        host: "secure.test",
        headers: { "x-forwarded-proto": "https" },
        want: { "strict-transport-security": undefined },
      },
      {
        name: "sslProxyHeaders match from a trusted client counts as HTTPS",
        host: "secure.test",
        ep: "trusted",
        headers: { "x-forwarded-proto": "https" },
        want: { "strict-transport-security": "max-age=31536000; includeSubDomains; preload" },
      },
      {
        name: "forceSTSHeader, custom frame options, custom header overrides a security header",
        host: "forced.test",
        want: {
          "strict-transport-security": "max-age=60",
          "x-frame-options": "SAMEORIGIN",
          "x-content-type-options": "overridden",
        },
      },
      { name: "allowed host", host: "ok.hosts.test", want: {} },
      { name: "host not allowed", host: "no.hosts.test", status: 500, want: {} },
    ];
    for (const tc of cases) {
      const res = await rawGet(proxy.port(tc.ep), "/", { host: tc.host, ...tc.headers });
      assert.equal(res.status, tc.status ?? 200, tc.name);
      for (const [k, v] of Object.entries(tc.want)) {
        assert.equal(res.headers[k], v, `${tc.name}: ${k}`);
      }
    }
    const routers = proxy.server.watcher.current.routers;
    assert.match(
      routers.get("badre@file")!.errors.join(),
      /middleware "badre@file": option accessControlAllowOriginListRegex\[0\]/,
    );
    assert.match(
      routers.get("badbool@file")!.errors.join(),
      /middleware "badbool@file": option frameDeny: expected true or false, found "sometimes"/,
    );
    assert.equal(routers.get("custom@file")!.status, "enabled");
  } finally {
    await proxy.close();
    await be.close();
  }
});

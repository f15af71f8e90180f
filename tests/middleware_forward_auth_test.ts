/**
 * forwardAuth over real HTTP against a real auth server: what the auth
 * server receives, what passes on 2xx, what the client gets otherwise,
 * cookies, redirects that are not followed, an unreachable auth server and
 * bad config.
 */

import assert from "node:assert/strict";
import http from "node:http";
import { type Echo, startEchoBackend } from "./fixtures/backend.ts";
import { startTestProxy } from "./fixtures/proxy.ts";
import { assertBadMiddlewaresDisableRouters, type BadMiddlewareCase } from "./fixtures/bad_middleware.ts";
import { rawGet } from "./fixtures/http_client.ts";
import { freePort } from "./fixtures/ports.ts";
import { canonicalHeaderKey } from "../lib/middlewares/forward_auth/auth_request.ts";

interface Seen {
  method: string;
  path: string;
  headers: Record<string, string>;
}

function startAuthServer() {
  const seen: Seen[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const url = new URL(req.url);
    seen.push({
      method: req.method,
      path: url.pathname + url.search,
      headers: Object.fromEntries(req.headers),
    });
    switch (url.pathname) {
      case "/ok": {
        const headers = new Headers({
          "x-auth-user": "alice",
          "x-secret-group": "admins",
          "x-unlisted": "u",
        });
        headers.append("set-cookie", "session=abc; Path=/");
        headers.append("set-cookie", "other=x");
        return new Response("ignored body", { headers });
      }
      case "/deny":
        return new Response("nope", {
          status: 401,
          headers: { "www-authenticate": 'Bearer realm="x"', "x-reason": "expired" },
        });
      case "/redirect":
        return new Response(null, { status: 302, headers: { location: "/login?next=1" } });
      default:
        return new Response("?", { status: 404 });
    }
  });
  const url = `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}`;
  return { seen, url, close: () => server.shutdown() };
}

function request(
  port: number,
  path: string,
  headers: Record<string, string>,
  method = "GET",
  body?: string,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: "127.0.0.1", port, path, method, headers, agent: false },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c) => (text += c));
        res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: text }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

Deno.test("forwardAuth canonicalHeaderKey matches Go", () => {
  const cases: [string, string][] = [["x-auth-user", "X-Auth-User"], ["ETAG", "Etag"], [
    "a--b",
    "A--B",
  ], ["www-authenticate", "Www-Authenticate"]];
  for (const [input, expected] of cases) assert.equal(canonicalHeaderKey(input), expected);
});

Deno.test("forwardAuth: auth request, pass, deny, cookies, redirects and bad config over real HTTP", async () => {
  const backend = startEchoBackend("echo");
  const auth = startAuthServer();
  const dir = await Deno.makeTempDir({ prefix: "portico-fwd-" });
  const middlewares: Record<string, string> = {
    ok:
      `address = "${auth.url}/ok"\nauthResponseHeaders = ["X-Auth-User", "X-Auth-Missing"]\naddAuthCookiesToResponse = ["session"]`,
    regex: `address = "${auth.url}/ok"\nauthResponseHeadersRegex = "^X-Secret-"`,
    filtered: `address = "${auth.url}/ok"\nauthRequestHeaders = ["Authorization"]`,
    trusting: `address = "${auth.url}/ok"\ntrustForwardHeader = true`,
    deny: `address = "${auth.url}/deny"`,
    redirect: `address = "${auth.url}/redirect"`,
    down: `address = "http://127.0.0.1:${freePort()}/x"`,
    kv:
      `address = "${auth.url}/ok"\nauthresponseheaders = "X-Auth-User"\ntrustforwardheader = "false"`,
    bad_missing: `trustForwardHeader = true`,
    bad_url: `address = "not a url"`,
    bad_scheme: `address = "ftp://auth/"`,
    bad_regex: `address = "${auth.url}/ok"\nauthResponseHeadersRegex = "(?<=x)"`,
    bad_tls_http: `address = "${auth.url}/ok"\ntls = { insecureSkipVerify = true }`,
    bad_tls_file: `address = "https://127.0.0.1:1/"\ntls = { ca = "${dir}/missing.pem" }`,
    bad_tls_pair:
      `address = "https://127.0.0.1:1/"\ntls = { cert = "-----BEGIN CERTIFICATE-----" }`,
    bad_key: `adress = "${auth.url}"`,
    bad_max_body: `address = "${auth.url}/ok"\nforwardBody = true\nmaxBodySize = "big"`,
    // Deprecated in Traefik, which ignores it with a warning: accepted.
    ca_optional: `address = "https://127.0.0.1:1/"\ntls = { caOptional = true }`,
  };
  let toml = `[http.services.echo.loadBalancer]\nservers = [{ url = "${backend.url}" }]\n`;
  for (const [name, body] of Object.entries(middlewares)) {
    toml +=
      `[http.routers.${name}]\nrule = "Host(\`${name}.test\`)"\nservice = "echo"\nmiddlewares = ["${name}"]\n`;
    toml += `[http.middlewares.${name}.forwardAuth]\n${body}\n`;
  }
  const proxy = await startTestProxy({
    dynamic: toml,
    entryPointExtra: { web: "forwardedHeaders.insecure = true" },
  });
  const port = proxy.port();
  const authHost = new URL(auth.url).host;
  try {
    const cases: {
      name: string;
      host: string;
      method?: string;
      path?: string;
      headers?: Record<string, string>;
      body?: string;
      status: number;
      authSaw?: Record<string, string | undefined>;
      backendSaw?: Record<string, string | undefined>;
      backendBody?: number;
      client?: Record<string, string | string[] | undefined>;
      clientBody?: string;
    }[] = [
      {
        name: "2xx passes and copies authResponseHeaders over the client's",
        host: "ok",
        method: "POST",
        path: "/app?q=1",
        headers: {
          "x-auth-user": "mallory",
          "x-auth-missing": "forged",
          "x-forwarded-for": "6.6.6.6",
          "content-length": "5",
        },
        body: "hello",
        status: 200,
        authSaw: {
          host: authHost,
          "x-forwarded-method": "POST",
          "x-forwarded-uri": "/app?q=1",
          "x-forwarded-host": "ok.test",
          "x-forwarded-proto": "http",
          "x-forwarded-for": "127.0.0.1",
          "content-length": undefined,
          "x-auth-user": "mallory",
        },
        backendSaw: {
          "x-auth-user": "alice",
          "x-auth-missing": undefined,
          "x-unlisted": undefined,
        },
        backendBody: 5,
        client: { "set-cookie": ["session=abc; Path=/"] },
      },
      {
        name: "regex copies matching headers and drops the client's",
        host: "regex",
        headers: { "x-secret-forged": "1" },
        status: 200,
        backendSaw: {
          "x-secret-group": "admins",
          "x-secret-forged": undefined,
          "x-auth-user": undefined,
        },
        client: { "set-cookie": undefined },
      },
      {
        name: "authRequestHeaders filters what the auth server sees",
        host: "filtered",
        headers: { authorization: "Bearer t", "x-other": "o" },
        status: 200,
        authSaw: {
          authorization: "Bearer t",
          "x-other": undefined,
          "x-forwarded-host": "filtered.test",
        },
        backendSaw: { "x-other": "o" },
      },
      {
        name: "trustForwardHeader keeps the client's forwarded values",
        host: "trusting",
        headers: {
          "x-forwarded-for": "1.2.3.4",
          "x-forwarded-method": "PUT",
          "x-forwarded-uri": "/orig",
        },
        status: 200,
        authSaw: {
          "x-forwarded-for": "1.2.3.4, 127.0.0.1",
          "x-forwarded-method": "PUT",
          "x-forwarded-uri": "/orig",
        },
      },
      {
        name: "without trustForwardHeader the proxy's own values win",
        host: "kv",
        headers: { "x-forwarded-for": "1.2.3.4", "x-forwarded-method": "PUT" },
        status: 200,
        authSaw: { "x-forwarded-for": "127.0.0.1", "x-forwarded-method": "GET" },
        backendSaw: { "x-auth-user": "alice" },
      },
      {
        name: "non-2xx goes back to the client as sent",
        host: "deny",
        status: 401,
        client: { "www-authenticate": 'Bearer realm="x"', "x-reason": "expired" },
        clientBody: "nope",
      },
      {
        name: "redirects are returned, not followed, with an absolute Location",
        host: "redirect",
        status: 302,
        client: { location: `${auth.url}/login?next=1` },
      },
      { name: "unreachable auth server", host: "down", status: 500 },
    ];
    for (const tc of cases) {
      const before = { auth: auth.seen.length, backend: backend.hits };
      const res = await request(
        port,
        tc.path ?? "/",
        { host: `${tc.host}.test`, ...tc.headers },
        tc.method,
        tc.body,
      );
      assert.equal(
        res.status,
        tc.status,
        `${tc.name}: ${proxy.server.watcher.current!.routers.get(`${tc.host}@file`)?.errors}`,
      );
      if (tc.host !== "down") {
        assert.equal(auth.seen.length - before.auth, 1, `${tc.name}: one auth request`);
      }
      const asked = auth.seen[auth.seen.length - 1];
      if (tc.authSaw) {
        assert.equal(asked.method, "GET", tc.name);
        for (const [k, v] of Object.entries(tc.authSaw)) {
          assert.equal(asked.headers[k], v, `${tc.name}: auth saw ${k}`);
        }
      }
      if (tc.status === 200) {
        const echo = JSON.parse(res.body) as Echo;
        for (const [k, v] of Object.entries(tc.backendSaw ?? {})) {
          assert.equal(echo.headers[k], v, `${tc.name}: backend saw ${k}`);
        }
        if (tc.backendBody !== undefined) assert.equal(echo.bodyLength, tc.backendBody, tc.name);
      } else {
        assert.equal(backend.hits, before.backend, `${tc.name}: backend not reached`);
      }
      for (const [k, v] of Object.entries(tc.client ?? {})) {
        assert.deepEqual(res.headers[k], v, `${tc.name}: client got ${k}`);
      }
      if (tc.clientBody !== undefined) assert.equal(res.body, tc.clientBody, tc.name);
    }
    assert.ok(!auth.seen.some((s) => s.path.startsWith("/login")), "the redirect was not followed");

    const bad: BadMiddlewareCase[] = [
      { router: "bad_missing", error: /option address: is required/ },
      {
        router: "bad_url",
        error: /option address: expected an http:\/\/ or https:\/\/ URL, found "not a url"/,
      },
      { router: "bad_scheme", error: /option address: expected an http/ },
      { router: "bad_regex", error: /option authResponseHeadersRegex: invalid regexp/ },
      { router: "bad_tls_http", error: /option tls: only applies to an https/ },
      { router: "bad_tls_file", error: /option tls\.ca: cannot read ".*missing\.pem"/ },
      { router: "bad_tls_pair", error: /option tls\.key: cert and key must be given together/ },
      { router: "bad_key", error: /unknown option adress \(did you mean "address"\?\)/ },
      { router: "bad_max_body", error: /option maxBodySize: expected an integer, found "big"/ },
    ];
    assertBadMiddlewaresDisableRouters(proxy, bad);
    assert.equal((await rawGet(port, "/", { host: "ok.test" })).status, 200);
    assert.equal(proxy.server.watcher.current!.routers.get("ca_optional@file")!.status, "enabled");
  } finally {
    await proxy.close();
    await backend.close();
    await auth.close();
    await Deno.remove(dir, { recursive: true });
  }
});

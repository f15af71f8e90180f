/**
 * The dashboard over plain HTTP: redirects, embedded assets, the
 * `/api/portico/*` endpoints, and protection: with `api.insecure = false`
 * the API and dashboard are reachable only through a user router to
 * `api@internal`, which basicAuth guards.
 */

import assert from "node:assert/strict";
import { startTestProxy } from "./fixtures/proxy.ts";
import { rawGet } from "./fixtures/http_client.ts";

Deno.test("dashboard: redirects, embedded assets and portico endpoints on the API entrypoint", async () => {
  const proxy = await startTestProxy({
    entryPoints: ["web", "traefik"],
    extraStatic: `[api]\ninsecure = true\ndashboard = true\n`,
    dynamic:
      `[http.routers.app]\nrule = "Host(\`a.test\`)"\nservice = "s"\n[http.services.s.loadBalancer]\nservers = [{ url = "http://127.0.0.1:9" }]\n`,
  });
  try {
    const port = proxy.port("traefik");
    for (const path of ["/dashboard", "/"]) {
      const res = await rawGet(port, path);
      assert.equal(res.status, 302, path);
      assert.equal(res.headers.location, "/dashboard/", path);
    }
    const cases: [string, RegExp, RegExp][] = [
      ["/dashboard/", /^text\/html/, /<nav id="nav">/],
      ["/dashboard/app.js", /^text\/javascript/, /POLL_MS = 2000/],
      ["/dashboard/app.css", /^text\/css/, /\.badge/],
    ];
    for (const [path, type, body] of cases) {
      const res = await rawGet(port, path);
      assert.equal(res.status, 200, path);
      assert.match(String(res.headers["content-type"]), type, path);
      assert.match(res.body, body, path);
      assert.doesNotMatch(
        res.body,
        /https?:\/\/(cdn|unpkg|jsdelivr)/,
        `${path} loads nothing from a CDN`,
      );
    }
    assert.equal((await rawGet(port, "/dashboard/nope.js")).status, 404);
    // The page's own script parses (no stray template interpolation in the embedded string).
    const js = (await rawGet(port, "/dashboard/app.js")).body;
    new Function(js);
    // The TCP tab: a nav link, a view of that name, and every API path the script reads answers JSON.
    assert.match(
      (await rawGet(port, "/dashboard/")).body,
      /<a href="#\/tcp" data-nav="tcp">TCP<\/a>/,
    );
    assert.match(js, /\btcp: \{\s+searchable: true,/);
    const paths = [...js.matchAll(/getJson\("([^"]+)"\)/g)].map((m) => m[1]);
    for (
      const path of [
        "tcp/routers?per_page=10000",
        "tcp/services?per_page=10000",
        "tcp/middlewares?per_page=10000",
      ]
    ) {
      assert.ok(paths.includes(path), `app.js reads ${path}: ${paths.join(", ")}`);
    }
    for (const path of paths) {
      const res = await rawGet(port, `/api/${path}`);
      assert.equal(res.status, 200, path);
      JSON.parse(res.body);
    }

    const overview = JSON.parse((await rawGet(port, "/api/portico/overview")).body);
    assert.deepEqual(
      overview.providerConnections.map((
        p: { provider: string; state: string },
      ) => [p.provider, p.state]),
      [["file", "connected"]],
    );
    assert.equal(overview.lastReload.success, true);
    const cluster = JSON.parse((await rawGet(port, "/api/portico/cluster")).body);
    assert.equal(cluster.enabled, false);
    // The TLS extension always registers its (here empty) certificate view.
    const certs = JSON.parse((await rawGet(port, "/api/portico/certificates")).body);
    assert.equal(certs.enabled, true);
    assert.deepEqual(certs.certificates, []);
    proxy.server.state.views.certificates = () => [{
      resolver: "file",
      domains: ["x.test"],
      notAfter: new Date(Date.now() + 3 * 86_400_000 + 5000).toISOString(),
      state: "valid",
      failures: 0,
      routers: [],
    }];
    const certs2 = JSON.parse((await rawGet(port, "/api/portico/certificates")).body);
    assert.deepEqual([
      certs2.enabled,
      certs2.certificates[0].domains,
      certs2.certificates[0].daysLeft,
    ], [true, ["x.test"], 3]);
    // The Traefik API still answers through the wrapped api@internal.
    assert.equal(
      JSON.parse((await rawGet(port, "/api/http/routers/app@file")).body).name,
      "app@file",
    );
  } finally {
    await proxy.close();
  }
});

Deno.test("dashboard: api.dashboard = false serves the API but no dashboard", async () => {
  const proxy = await startTestProxy({
    entryPoints: ["web", "traefik"],
    extraStatic: `[api]\ninsecure = true\ndashboard = false\n`,
    dynamic: "",
  });
  try {
    assert.equal((await rawGet(proxy.port("traefik"), "/dashboard/")).status, 404);
    assert.equal((await rawGet(proxy.port("traefik"), "/api/version")).status, 200);
  } finally {
    await proxy.close();
  }
});

Deno.test("dashboard: with api.insecure = false only a user router reaches it, and basicAuth guards it", async () => {
  const proxy = await startTestProxy({
    entryPoints: ["web", "traefik"],
    extraStatic: `[api]\ninsecure = false\ndashboard = true\n`,
    dynamic: `
[http.routers.dash]
rule = "Host(\`admin.test\`) && (PathPrefix(\`/api\`) || PathPrefix(\`/dashboard\`))"
service = "api@internal"
entryPoints = ["web"]
middlewares = ["auth"]
[http.middlewares.auth.basicAuth]
users = ["bob:{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M="]
`,
  });
  try {
    const router = JSON.parse(
      (await rawGet(proxy.port("web"), "/api/http/routers/dash@file", {
        host: "admin.test",
        authorization: `Basic ${btoa("bob:test")}`,
      })).body,
    );
    assert.equal(router.status, "enabled", JSON.stringify(router.error));
    // Nothing on the API entrypoint: no internal router without insecure.
    for (const path of ["/api/overview", "/dashboard/", "/api/portico/overview"]) {
      assert.equal((await rawGet(proxy.port("traefik"), path)).status, 404, `traefik ${path}`);
    }
    for (
      const path of ["/api/overview", "/dashboard/", "/dashboard/app.js", "/api/portico/cluster"]
    ) {
      assert.equal(
        (await rawGet(proxy.port("web"), path, { host: "admin.test" })).status,
        401,
        `no credentials ${path}`,
      );
      const wrong = await rawGet(proxy.port("web"), path, {
        host: "admin.test",
        authorization: `Basic ${btoa("bob:nope")}`,
      });
      assert.equal(wrong.status, 401, `wrong password ${path}`);
      const ok = await rawGet(proxy.port("web"), path, {
        host: "admin.test",
        authorization: `Basic ${btoa("bob:test")}`,
      });
      assert.equal(ok.status, 200, `with credentials ${path}`);
    }
    assert.equal(
      (await rawGet(proxy.port("web"), "/dashboard/", { host: "other.test" })).status,
      404,
    );
  } finally {
    await proxy.close();
  }
});

/**
 * The API in Traefik's shapes, ping, entrypoint redirections and access logs,
 * over real HTTP.
 */

import assert from "node:assert/strict";
import { startEchoBackend } from "./fixtures/backend.ts";
import { startTestProxy } from "./fixtures/proxy.ts";
import { rawGet } from "./fixtures/http_client.ts";

Deno.test("api: Traefik-shaped routers, services, middlewares, overview, version, entrypoints, rawdata", async () => {
  const backend = startEchoBackend("b");
  const proxy = await startTestProxy({
    entryPoints: ["web", "traefik"],
    extraStatic: `[api]\ninsecure = true\n[ping]\n`,
    dynamic: `
[http.routers.app]
rule = "Host(\`app.test\`)"
service = "app"
entryPoints = ["web"]
[http.services.app.loadBalancer]
servers = [{ url = "${backend.url}" }]
`,
  });
  const api = async (path: string) => {
    const res = await rawGet(proxy.port("traefik"), path, { host: "localhost" });
    return { status: res.status, json: res.status === 200 ? JSON.parse(res.body) : res.body };
  };
  try {
    const router = (await api("/api/http/routers/app@file")).json;
    assert.deepEqual(router, {
      entryPoints: ["web"],
      service: "app",
      rule: "Host(`app.test`)",
      priority: 16,
      status: "enabled",
      using: ["web"],
      name: "app@file",
      provider: "file",
    });
    const service = (await api("/api/http/services/app@file")).json;
    assert.equal(service.type, "loadbalancer");
    assert.equal(service.status, "enabled");
    assert.deepEqual(service.usedBy, ["app@file"]);
    assert.deepEqual(service.serverStatus, { [backend.url]: "UP" });
    assert.deepEqual(service.loadBalancer.servers, [{ url: backend.url, weight: 1 }]);

    const overview = (await api("/api/overview")).json;
    assert.deepEqual(overview.http.routers, { total: 1, warnings: 0, errors: 0 });
    assert.deepEqual(overview.providers, ["File"]);
    assert.equal(overview.lastReload.success, true);

    assert.equal((await api("/api/version")).json.Version, "0.1.0");
    const eps = (await api("/api/entrypoints")).json as { name: string }[];
    assert.deepEqual(eps.map((e) => e.name).sort(), ["traefik", "web"]);
    const raw = (await api("/api/rawdata")).json;
    assert.ok(raw.routers["app@file"]);
    assert.ok(raw.services["app@file"]);
    assert.equal((await api("/api/http/routers/nope@file")).status, 404);
    assert.equal((await api("/api/http/middlewares")).status, 200);

    const ping = await rawGet(proxy.port("traefik"), "/ping", { host: "localhost" });
    assert.deepEqual([ping.status, ping.body], [200, "OK"]);
    // The API is not on the public entrypoint.
    assert.equal((await rawGet(proxy.port("web"), "/api/overview", { host: "app.test" })).status, 200);
    assert.equal(JSON.parse((await rawGet(proxy.port("web"), "/api/overview", { host: "app.test" })).body).backend, "b");
  } finally {
    await proxy.close();
    await backend.close();
  }
});

Deno.test("api: absent unless enabled", async () => {
  const proxy = await startTestProxy({ entryPoints: ["web"], dynamic: "" });
  try {
    assert.equal((await rawGet(proxy.port(), "/api/overview", { host: "x" })).status, 404);
    assert.equal((await rawGet(proxy.port(), "/ping", { host: "x" })).status, 404);
  } finally {
    await proxy.close();
  }
});

Deno.test("entrypoint redirection sends http to the https entrypoint's port", async () => {
  const proxy = await startTestProxy({
    entryPoints: ["web", "websecure"],
    entryPointExtra: {
      web: `[entryPoints.web.http.redirections.entryPoint]\nto = "websecure"\nscheme = "https"\n`,
    },
    dynamic: "",
  });
  try {
    const get = await rawGet(proxy.port("web"), "/a%20b?x=1", { host: "site.test:80" });
    assert.equal(get.status, 301);
    assert.equal(get.headers.location, `https://site.test:${proxy.port("websecure")}/a%20b?x=1`);
    const post = await rawGet(proxy.port("web"), "/form", { host: "site.test" }, "POST");
    assert.equal(post.status, 308);
  } finally {
    await proxy.close();
  }
});

Deno.test("access log: Traefik common format lines in the configured file", async () => {
  const backend = startEchoBackend("b");
  const dir = await Deno.makeTempDir();
  const proxy = await startTestProxy({
    extraStatic: `[accessLog]\nfilePath = "${dir}/access.log"\n`,
    dynamic: `
[http.routers.app]
rule = "PathPrefix(\`/\`)"
service = "app"
[http.services.app.loadBalancer]
servers = [{ url = "${backend.url}" }]
`,
  });
  try {
    await rawGet(proxy.port(), "/logged?q=1", { host: "a.test", "user-agent": "tester/1", referer: "http://r.test/" });
    await rawGet(proxy.port(), "/status/404", { host: "a.test" });
    await new Promise((r) => setTimeout(r, 100));
    const lines = (await Deno.readTextFile(`${dir}/access.log`)).trim().split("\n");
    assert.equal(lines.length, 2);
    assert.match(
      lines[0],
      /^127\.0\.0\.1 - - \[\d{2}\/\w{3}\/\d{4}:\d{2}:\d{2}:\d{2} \+0000\] "GET \/logged\?q=1 HTTP\/1\.1" 200 \d+ "http:\/\/r\.test\/" "tester\/1" 1 "app@file" "-" \d+ms$/,
    );
    assert.match(lines[1], /"GET \/status\/404 HTTP\/1\.1" 404 /);
  } finally {
    await proxy.close();
    await backend.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("api: TCP routers, services and middlewares in Traefik's shapes, counted in the overview", async () => {
  const proxy = await startTestProxy({
    entryPoints: ["db", "traefik"],
    extraStatic: `[api]\ninsecure = true\n`,
    dynamic: `
[tcp.routers.pg]
rule = "HostSNI(\`*\`)"
service = "pg"
entryPoints = ["db"]
middlewares = ["office"]
[tcp.routers.broken]
rule = "HostSNI(\`x.test\`)"
service = "pg"
entryPoints = ["db"]
[tcp.services.pg.loadBalancer]
[[tcp.services.pg.loadBalancer.servers]]
address = "10.0.0.5:5432"
[tcp.middlewares.office.ipAllowList]
sourceRange = ["10.0.0.0/8"]
`,
  });
  const api = async (path: string) => {
    const res = await rawGet(proxy.port("traefik"), path, { host: "localhost" });
    return { status: res.status, json: res.status === 200 ? JSON.parse(res.body) : res.body };
  };
  try {
    assert.deepEqual((await api("/api/tcp/routers/pg@file")).json, {
      entryPoints: ["db"],
      middlewares: ["office@file"],
      service: "pg",
      rule: "HostSNI(`*`)",
      priority: -1,
      status: "enabled",
      using: ["db"],
      name: "pg@file",
      provider: "file",
    });
    const broken = (await api("/api/tcp/routers/broken@file")).json;
    assert.equal(broken.status, "disabled");
    assert.match(broken.error[0], /HostSNI matcher, but the router has no tls/);
    assert.deepEqual((await api("/api/tcp/routers?status=disabled")).json.map((r: { name: string }) => r.name), ["broken@file"]);
    const service = (await api("/api/tcp/services/pg@file")).json;
    assert.deepEqual(service.loadBalancer.servers, [{ address: "10.0.0.5:5432", tls: false, weight: 1 }]);
    assert.deepEqual([service.type, service.status, service.usedBy], ["loadbalancer", "enabled", ["pg@file", "broken@file"]]);
    const mw = (await api("/api/tcp/middlewares/office@file")).json;
    assert.deepEqual([mw.type, mw.ipAllowList, mw.usedBy], ["ipallowlist", { sourceRange: ["10.0.0.0/8"] }, ["pg@file"]]);
    assert.equal((await api("/api/tcp/routers/nope@file")).status, 404);
    const overview = (await api("/api/overview")).json;
    assert.deepEqual(overview.tcp.routers, { total: 2, warnings: 0, errors: 1 });
    assert.deepEqual(overview.tcp.services, { total: 1, warnings: 0, errors: 0 });
    assert.ok((await api("/api/rawdata")).json.tcpRouters["pg@file"]);
  } finally {
    await proxy.close();
  }
});

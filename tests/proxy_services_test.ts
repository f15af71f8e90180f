/**
 * Integration tests for services over real sockets: weighted round robin,
 * health checks, sticky cookies, weighted and failover services.
 */

import assert from "node:assert/strict";
import { type Echo, startEchoBackend } from "./fixtures/backend.ts";
import { startTestProxy } from "./fixtures/proxy.ts";
import { freePort } from "./fixtures/ports.ts";
import { rawGet } from "./fixtures/http_client.ts";

async function backendsOf(port: number, n: number, headers: Record<string, string> = {}): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const res = await rawGet(port, "/", { host: "svc.test", ...headers });
    out.push(res.status === 200 ? (JSON.parse(res.body) as Echo).backend : `status-${res.status}`);
  }
  return out;
}

function count(list: string[]): Record<string, number> {
  const c: Record<string, number> = {};
  for (const x of list) c[x] = (c[x] ?? 0) + 1;
  return c;
}

Deno.test("load balancer: smooth weighted round robin honours weights", async () => {
  const a = startEchoBackend("a");
  const b = startEchoBackend("b");
  const proxy = await startTestProxy({
    dynamic: `
[http.routers.r]
rule = "PathPrefix(\`/\`)"
service = "s"
[http.services.s.loadBalancer]
servers = [{ url = "${a.url}", weight = 3 }, { url = "${b.url}", weight = 1 }]
`,
  });
  try {
    const seen = await backendsOf(proxy.port(), 8);
    assert.deepEqual(count(seen), { a: 6, b: 2 });
    // Smooth: b never comes twice in a row, and a never three times... within one cycle of 4.
    assert.notDeepEqual(seen.slice(0, 4), ["a", "a", "a", "b"], "picks are spread, not bunched");
  } finally {
    await proxy.close();
    await Promise.all([a.close(), b.close()]);
  }
});

Deno.test("health checks: a failing server leaves rotation and returns when it passes", async () => {
  let bHealth = 200;
  const a = startEchoBackend("a");
  const b = startEchoBackend("b", { healthStatus: () => bHealth });
  const proxy = await startTestProxy({
    dynamic: `
[http.routers.r]
rule = "PathPrefix(\`/\`)"
service = "s"
[http.services.s.loadBalancer]
servers = [{ url = "${a.url}" }, { url = "${b.url}" }]
[http.services.s.loadBalancer.healthCheck]
path = "/health"
interval = "50ms"
timeout = "500ms"
`,
  });
  const waitFor = async (cond: () => Promise<boolean>) => {
    const deadline = Date.now() + 3000;
    while (!(await cond())) {
      if (Date.now() > deadline) throw new Error("condition not reached in 3 s");
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  try {
    assert.deepEqual(count(await backendsOf(proxy.port(), 4)), { a: 2, b: 2 });
    bHealth = 500;
    await waitFor(async () => (await backendsOf(proxy.port(), 4)).every((x) => x === "a"));
    const api = proxy.server.watcher.current.services.get("s@file")!.serverStatus();
    assert.equal(api[b.url], "DOWN");
    assert.equal(api[a.url], "UP");
    bHealth = 200;
    await waitFor(async () => (await backendsOf(proxy.port(), 4)).includes("b"));
  } finally {
    await proxy.close();
    await Promise.all([a.close(), b.close()]);
  }
});

Deno.test("health checks: 503 when no server in the service is healthy", async () => {
  const a = startEchoBackend("a", { healthStatus: () => 503 });
  const proxy = await startTestProxy({
    dynamic: `
[http.routers.r]
rule = "PathPrefix(\`/\`)"
service = "s"
[http.services.s.loadBalancer]
servers = [{ url = "${a.url}" }]
[http.services.s.loadBalancer.healthCheck]
path = "/health"
interval = "50ms"
`,
  });
  try {
    const deadline = Date.now() + 3000;
    let status = 0;
    while (Date.now() < deadline) {
      status = (await rawGet(proxy.port(), "/", { host: "svc.test" })).status;
      if (status === 503) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(status, 503);
  } finally {
    await proxy.close();
    await a.close();
  }
});

Deno.test("sticky cookie pins a client to one server", async () => {
  const a = startEchoBackend("a");
  const b = startEchoBackend("b");
  const proxy = await startTestProxy({
    dynamic: `
[http.routers.r]
rule = "PathPrefix(\`/\`)"
service = "s"
[http.services.s.loadBalancer]
servers = [{ url = "${a.url}" }, { url = "${b.url}" }]
[http.services.s.loadBalancer.sticky.cookie]
name = "lb"
httpOnly = true
`,
  });
  try {
    const first = await rawGet(proxy.port(), "/", { host: "svc.test" });
    const setCookie = first.headers["set-cookie"]?.[0] ?? "";
    assert.match(setCookie, /^lb=[0-9a-f]{16}; Path=\/; HttpOnly$/);
    assert.ok(!setCookie.includes("127.0.0.1"), "the cookie does not reveal the backend address");
    const pinned = (JSON.parse(first.body) as Echo).backend;
    const cookie = setCookie.split(";")[0];
    const seen = await backendsOf(proxy.port(), 6, { cookie });
    assert.deepEqual(count(seen), { [pinned]: 6 });
  } finally {
    await proxy.close();
    await Promise.all([a.close(), b.close()]);
  }
});

Deno.test("weighted and failover services reference other services", async () => {
  const a = startEchoBackend("a");
  const b = startEchoBackend("b");
  const dead = `http://127.0.0.1:${freePort()}`;
  const proxy = await startTestProxy({
    dynamic: `
[http.routers.w]
rule = "Path(\`/w\`)"
service = "w"
[http.routers.f]
rule = "Path(\`/f\`)"
service = "f"
[http.services.w.weighted]
services = [{ name = "sa", weight = 1 }, { name = "sb", weight = 2 }]
[http.services.f.failover]
service = "main"
fallback = "sb"
[http.services.sa.loadBalancer]
servers = [{ url = "${a.url}" }]
[http.services.sb.loadBalancer]
servers = [{ url = "${b.url}" }]
[http.services.main.loadBalancer]
servers = [{ url = "${dead}" }]
[http.services.main.loadBalancer.healthCheck]
path = "/health"
interval = "50ms"
timeout = "200ms"
`,
  });
  try {
    const seen: string[] = [];
    for (let i = 0; i < 6; i++) seen.push((JSON.parse((await rawGet(proxy.port(), "/w", { host: "x" })).body) as Echo).backend);
    assert.deepEqual(count(seen), { a: 2, b: 4 });
    const deadline = Date.now() + 3000;
    let backend = "";
    while (Date.now() < deadline) {
      const res = await rawGet(proxy.port(), "/f", { host: "x" });
      if (res.status === 200) {
        backend = (JSON.parse(res.body) as Echo).backend;
        break;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(backend, "b", "failover goes to the fallback once main is down");
  } finally {
    await proxy.close();
    await Promise.all([a.close(), b.close()]);
  }
});

Deno.test("a service referencing a missing service disables only its routers", async () => {
  const a = startEchoBackend("a");
  const proxy = await startTestProxy({
    dynamic: `
[http.routers.good]
rule = "Path(\`/good\`)"
service = "sa"
[http.routers.bad]
rule = "Path(\`/bad\`)"
service = "w"
[http.services.w.weighted]
services = [{ name = "missing", weight = 1 }]
[http.services.sa.loadBalancer]
servers = [{ url = "${a.url}" }]
`,
  });
  try {
    assert.equal((await rawGet(proxy.port(), "/good", { host: "x" })).status, 200);
    assert.equal((await rawGet(proxy.port(), "/bad", { host: "x" })).status, 404);
    const bad = proxy.server.watcher.current.routers.get("bad@file")!;
    assert.equal(bad.status, "disabled");
    assert.match(bad.errors.join(), /missing@file/);
  } finally {
    await proxy.close();
    await a.close();
  }
});

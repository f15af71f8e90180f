/**
 * Hot reload: config rewrites under load swap whole router generations,
 * requests never fail, and a bad config is rejected while the last good one
 * keeps serving.
 */

import assert from "node:assert/strict";
import http from "node:http";
import { type Echo, startEchoBackend } from "./fixtures/backend.ts";
import { startTestProxy } from "./fixtures/proxy.ts";
import { rawGet } from "./fixtures/http_client.ts";

function configVersion(backendUrl: string, version: number): string {
  // Both routers point at the same generation prefix; a half-applied config
  // would show a mismatch between the router's header and the path prefix.
  return `
[http.routers.main]
rule = "Host(\`reload.test\`) && PathPrefix(\`/check\`)"
service = "v${version}"
[http.routers.extra${version}]
rule = "Host(\`reload.test\`) && Path(\`/extra\`)"
service = "v${version}"
[http.services.v${version}.loadBalancer]
servers = [{ url = "${backendUrl}/gen${version}" }]
`;
}

Deno.test("hot reload: 20 rewrites under 50 connections, no failed or mixed request", async () => {
  const backend = startEchoBackend("b");
  const proxy = await startTestProxy({ dynamic: configVersion(backend.url, 0) });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 50 });
  let running = true;
  const failures: string[] = [];
  let total = 0;
  const client = async (id: number) => {
    let lastGen = 0;
    while (running) {
      const path = id % 2 ? "/check" : "/extra";
      const res = await new Promise<{ status: number; body: string }>((resolve) => {
        http.get({ host: "127.0.0.1", port: proxy.port(), path, agent, headers: { host: "reload.test" } }, (r) => {
          let body = "";
          r.on("data", (c) => (body += c));
          r.on("end", () => resolve({ status: r.statusCode!, body }));
        }).on("error", (e) => resolve({ status: 0, body: String(e) }));
      });
      total++;
      if (res.status !== 200) {
        failures.push(`client ${id}: ${res.status} ${res.body}`);
        continue;
      }
      const echo = JSON.parse(res.body) as Echo;
      const m = /^\/gen(\d+)\/(check|extra)$/.exec(echo.path);
      if (!m || m[2] !== path.slice(1)) {
        failures.push(`client ${id}: unexpected upstream path ${echo.path}`);
        continue;
      }
      const gen = Number(m[1]);
      if (gen < lastGen) failures.push(`client ${id}: went back from generation ${lastGen} to ${gen}`);
      lastGen = gen;
    }
  };
  try {
    const clients = Array.from({ length: 50 }, (_, i) => client(i));
    for (let v = 1; v <= 20; v++) {
      await proxy.writeDynamic(configVersion(backend.url, v));
      await new Promise((r) => setTimeout(r, 30));
    }
    running = false;
    await Promise.all(clients);
    assert.deepEqual(failures.slice(0, 5), [], `${failures.length} of ${total} requests failed`);
    assert.ok(total > 200, `load was applied (${total} requests)`);
    assert.equal(proxy.server.watcher.reloads.failure, 0);
    const final = JSON.parse((await rawGet(proxy.port(), "/check", { host: "reload.test" })).body) as Echo;
    assert.equal(final.path, "/gen20/check");
  } finally {
    running = false;
    agent.destroy();
    await proxy.close();
    await backend.close();
  }
});

Deno.test("hot reload: an invalid file is rejected whole and the last good config keeps serving", async () => {
  const backend = startEchoBackend("b");
  const proxy = await startTestProxy({ dynamic: configVersion(backend.url, 1) });
  try {
    const cases = [
      { name: "TOML syntax error", toml: `[http.routers.main\nrule = "x"`, error: /dynamic\.toml/ },
      { name: "bad URL", toml: configVersion(backend.url, 2).replace(`${backend.url}/gen2`, "not a url"), error: /servers\[0\]\.url|servers\.0\.url/ },
      { name: "unknown key", toml: configVersion(backend.url, 2).replace("rule =", "rul ="), error: /rul/ },
    ];
    for (const tc of cases) {
      await proxy.writeDynamic(tc.toml);
      const last = proxy.server.watcher.lastReload!;
      assert.equal(last.success, false, tc.name);
      assert.match(last.error ?? "", tc.error, tc.name);
      const res = await rawGet(proxy.port(), "/check", { host: "reload.test" });
      assert.equal(res.status, 200, `${tc.name}: still serving`);
      assert.equal((JSON.parse(res.body) as Echo).path, "/gen1/check", `${tc.name}: old config in force`);
      const overview = JSON.parse((await rawGet(proxy.port(), "/check", { host: "reload.test" })).body);
      assert.ok(overview);
    }
    assert.ok(proxy.logs.some((l) => l.includes("configuration rejected")), "the rejection is logged");
    // A valid file after the bad ones applies again.
    await proxy.writeDynamic(configVersion(backend.url, 3));
    assert.equal((JSON.parse((await rawGet(proxy.port(), "/check", { host: "reload.test" })).body) as Echo).path, "/gen3/check");
  } finally {
    await proxy.close();
    await backend.close();
  }
});

Deno.test("a rule that does not parse disables only its router, with router, column and text in the API", async () => {
  const backend = startEchoBackend("b");
  const proxy = await startTestProxy({
    entryPoints: ["web", "traefik"],
    extraStatic: `[api]\ninsecure = true\n`,
    dynamic: `
[http.routers.good]
rule = "Path(\`/good\`)"
service = "s"
[http.routers.broken]
rule = "Path(\`/x\`) && Pth(\`/y\`)"
service = "s"
[http.services.s.loadBalancer]
servers = [{ url = "${backend.url}" }]
`,
  });
  try {
    assert.equal((await rawGet(proxy.port(), "/good", { host: "x" })).status, 200);
    const res = await rawGet(proxy.port("traefik"), "/api/http/routers/broken@file", { host: "x" });
    assert.equal(res.status, 200);
    const router = JSON.parse(res.body);
    assert.equal(router.status, "disabled");
    const error = router.error.join("\n");
    assert.match(error, /column 15/);
    assert.match(error, /Pth/);
    assert.ok(proxy.logs.some((l) => l.includes("broken@file") && l.includes("Pth")), "the error is logged with the router");
    const list = JSON.parse((await rawGet(proxy.port("traefik"), "/api/http/routers", { host: "x" })).body) as { name: string; status: string }[];
    assert.deepEqual(
      list.filter((r) => r.name.endsWith("@file") || r.name === "api@internal").map((r) => `${r.name}:${r.status}`),
      ["api@internal:enabled", "broken@file:disabled", "good@file:enabled"],
    );
  } finally {
    await proxy.close();
    await backend.close();
  }
});

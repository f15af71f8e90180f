/**
 * Middleware ordering over real HTTP: entrypoint middlewares
 * (`entryPoints.NAME.http.middlewares`) run before the router's own, which
 * run in the listed order.
 */

import assert from "node:assert/strict";
import { type Echo, startEchoBackend } from "./fixtures/backend.ts";
import { startTestProxy } from "./fixtures/proxy.ts";
import { rawGet } from "./fixtures/http_client.ts";

Deno.test("middleware order: entrypoint middlewares first, then the router's in listed order", async () => {
  const be = startEchoBackend("be");
  const proxy = await startTestProxy({
    entryPoints: ["web", "other"],
    entryPointExtra: { web: `http.middlewares = ["ep-prefix@file", "ep-header"]` },
    dynamic: `
[http.routers.r]
rule = "PathPrefix(\`/\`)"
service = "be"
middlewares = ["r1", "r2"]
[http.routers.none]
rule = "Host(\`none.test\`)"
service = "be"
[http.middlewares.ep-prefix.addPrefix]
prefix = "/ep"
[http.middlewares.ep-header.headers.customResponseHeaders]
X-Order = "entrypoint"
[http.middlewares.r1.addPrefix]
prefix = "/r1"
[http.middlewares.r2.addPrefix]
prefix = "/r2"
[http.services.be.loadBalancer]
servers = [{ url = "${be.url}" }]
`,
  });
  try {
    const cases = [
      // addPrefix prepends, so the last middleware to run is outermost in the path.
      {
        name: "entrypoint then router, in order",
        ep: "web",
        host: "x.test",
        want: "/r2/r1/ep/x",
        order: "entrypoint",
      },
      {
        name: "router without middlewares still gets the entrypoint's",
        ep: "web",
        host: "none.test",
        want: "/ep/x",
        order: "entrypoint",
      },
      {
        name: "other entrypoint: router middlewares only",
        ep: "other",
        host: "x.test",
        want: "/r2/r1/x",
        order: undefined,
      },
    ];
    for (const tc of cases) {
      const res = await rawGet(proxy.port(tc.ep), "/x", { host: tc.host });
      assert.equal(res.status, 200, tc.name);
      assert.equal((JSON.parse(res.body) as Echo).path, tc.want, tc.name);
      assert.equal(res.headers["x-order"], tc.order, tc.name);
    }
  } finally {
    await proxy.close();
    await be.close();
  }
});

Deno.test("middleware order: a bad entrypoint middleware disables the routers on that entrypoint only", async () => {
  const be = startEchoBackend("be");
  const proxy = await startTestProxy({
    entryPoints: ["web", "other"],
    entryPointExtra: { web: `http.middlewares = ["broken"]` },
    dynamic: `
[http.routers.onweb]
rule = "PathPrefix(\`/\`)"
service = "be"
entryPoints = ["web"]
[http.routers.onother]
rule = "PathPrefix(\`/\`)"
service = "be"
entryPoints = ["other"]
[http.middlewares.broken.stripPrefix]
prefixes = ["/a"]
forceSlash = "sometimes"
[http.services.be.loadBalancer]
servers = [{ url = "${be.url}" }]
`,
  });
  try {
    const routers = proxy.server.watcher.current.routers;
    assert.equal(routers.get("onweb@file")!.status, "disabled");
    assert.match(
      routers.get("onweb@file")!.errors.join(),
      /middleware "broken@file": option forceSlash/,
    );
    assert.equal(routers.get("onother@file")!.status, "enabled");
    assert.equal((await rawGet(proxy.port("web"), "/", {})).status, 404);
    assert.equal((await rawGet(proxy.port("other"), "/", {})).status, 200);
  } finally {
    await proxy.close();
    await be.close();
  }
});

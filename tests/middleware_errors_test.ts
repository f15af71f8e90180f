import assert from "node:assert/strict";
import { type Echo, startEchoBackend } from "./fixtures/backend.ts";
import { startTestProxy } from "./fixtures/proxy.ts";
import { rawGet } from "./fixtures/http_client.ts";
import { freePort } from "./fixtures/ports.ts";

Deno.test("errors: pages from another service with the original status, ranges, {status}/{url}, bad config", async () => {
  const be = startEchoBackend("be");
  const pages = startEchoBackend("pages");
  const dead = freePort();
  const proxy = await startTestProxy({
    dynamic: `
[http.routers.app]
rule = "Host(\`app.test\`)"
service = "be"
middlewares = ["pages"]
[http.routers.down]
rule = "Host(\`down.test\`)"
service = "dead"
middlewares = ["pages"]
[http.routers.rewrite]
rule = "Host(\`rewrite.test\`)"
service = "be"
middlewares = ["rewrite"]
[http.routers.badstatus]
rule = "Host(\`badstatus.test\`)"
service = "be"
middlewares = ["badstatus"]
[http.routers.noservice]
rule = "Host(\`noservice.test\`)"
service = "be"
middlewares = ["noservice"]
[http.middlewares.pages.errors]
status = ["500-599", "404", "418,429"]
service = "pages"
query = "/err/{status}?from={url}"
[http.middlewares.rewrite.errors]
status = ["500-503"]
service = "pages"
query = "/{status}-{originalStatus}.html"
[http.middlewares.rewrite.errors.statusRewrites]
"500-503" = 503
[http.middlewares.badstatus.errors]
status = ["5xx"]
service = "pages"
[http.middlewares.noservice.errors]
status = ["500"]
service = "nope"
[http.services.be.loadBalancer]
servers = [{ url = "${be.url}" }]
[http.services.pages.loadBalancer]
servers = [{ url = "${pages.url}" }]
[http.services.dead.loadBalancer]
servers = [{ url = "http://127.0.0.1:${dead}" }]
`,
  });
  try {
    const cases = [
      {
        name: "5xx",
        host: "app.test",
        path: "/status/503",
        status: 503,
        page: "/err/503?from=http%3A%2F%2Fapp.test%2Fstatus%2F503",
      },
      {
        name: "single code",
        host: "app.test",
        path: "/status/404?a=b%20c",
        status: 404,
        page: "/err/404?from=http%3A%2F%2Fapp.test%2Fstatus%2F404%3Fa%3Db%2520c",
      },
      {
        name: "comma list",
        host: "app.test",
        path: "/status/429",
        status: 429,
        page: "/err/429?from=http%3A%2F%2Fapp.test%2Fstatus%2F429",
      },
      { name: "not in range", host: "app.test", path: "/status/403", status: 403, page: undefined },
      { name: "success untouched", host: "app.test", path: "/ok", status: 200, page: undefined },
      {
        name: "unreachable upstream counts as 502",
        host: "down.test",
        path: "/x",
        status: 502,
        page: "/err/502?from=http%3A%2F%2Fdown.test%2Fx",
      },
      {
        name: "statusRewrites",
        host: "rewrite.test",
        path: "/status/500",
        status: 503,
        page: "/503-500.html",
      },
    ];
    for (const tc of cases) {
      const res = await rawGet(proxy.port(), tc.path, { host: tc.host, "x-client": "c1" });
      assert.equal(res.status, tc.status, tc.name);
      const echo = JSON.parse(res.body) as Echo;
      if (tc.page === undefined) {
        assert.equal(echo.backend, "be", tc.name);
        continue;
      }
      assert.equal(echo.backend, "pages", tc.name);
      assert.equal(echo.method, "GET", tc.name);
      assert.equal(echo.path, tc.page, tc.name);
      assert.equal(echo.headers["x-client"], "c1", `${tc.name}: request headers are passed`);
      assert.equal(
        Number(res.headers["content-length"]),
        new TextEncoder().encode(res.body).length,
        tc.name,
      );
    }
    const routers = proxy.server.watcher.current.routers;
    assert.match(
      routers.get("badstatus@file")!.errors.join(),
      /middleware "badstatus@file": option status\[0\]: expected a status such as "404" or a range such as "500-599", found "5xx"/,
    );
    assert.match(
      routers.get("noservice@file")!.errors.join(),
      /middleware "noservice@file": option service: service "nope@file" does not exist/,
    );
  } finally {
    await proxy.close();
    await Promise.all([be.close(), pages.close()]);
  }
});

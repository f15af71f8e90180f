import assert from "node:assert/strict";
import { type Echo, startEchoBackend } from "../../../tests/fixtures/backend.ts";
import { startTestProxy } from "../../../tests/fixtures/proxy.ts";
import { rawGet } from "../../../tests/fixtures/http_client.ts";
import { rawPrefixLength } from "./raw_path.ts";

Deno.test("rawPrefixLength: matches decoded prefixes against raw bytes", () => {
  const cases: [string, string, number][] = [
    ["/api/x", "/api", 4],
    ["/a%20b/c", "/a b", 6],
    ["/%C3%A9t%C3%A9/x", "/été", 14],
    ["/apx", "/api", -1],
    ["/a", "/api", -1],
    ["/a%2", "/a%2", 4],
  ];
  for (const [raw, prefix, want] of cases) {
    assert.equal(rawPrefixLength(raw, prefix), want, `${raw} ${prefix}`);
  }
});

Deno.test("stripPrefix: strips the first matching prefix, sets X-Forwarded-Prefix, rejects bad config", async () => {
  const be = startEchoBackend("be");
  const proxy = await startTestProxy({
    // lib/proxy/headers.ts drops X-Forwarded-Prefix from untrusted clients
    // AFTER middlewares ran, which also drops ours; trust loopback until the
    // strip moves before the middlewares (reported).
    entryPointExtra: { web: "forwardedHeaders.insecure = true" },
    dynamic: `
[http.routers.strip]
rule = "Host(\`strip.test\`)"
service = "be"
middlewares = ["strip"]
[http.routers.bad]
rule = "Host(\`bad.test\`)"
service = "be"
middlewares = ["nolist"]
[http.routers.bad2]
rule = "Host(\`bad2.test\`)"
service = "be"
middlewares = ["emptylist"]
[http.middlewares.strip.stripPrefix]
prefixes = ["/api", "/v1/", "/a b"]
[http.middlewares.nolist.stripPrefix]
forceSlash = true
[http.middlewares.emptylist.stripPrefix]
prefixes = []
[http.services.be.loadBalancer]
servers = [{ url = "${be.url}" }]
`,
  });
  try {
    const cases = [
      { path: "/api/users?x=1", want: "/users?x=1", prefix: "/api" },
      { path: "/api", want: "/", prefix: "/api" },
      { path: "/api?x=/api", want: "/?x=/api", prefix: "/api" },
      { path: "/apiary", want: "/ary", prefix: "/api" },
      { path: "/v1/x", want: "/x", prefix: "/v1/" },
      { path: "/v1", want: "/v1", prefix: undefined },
      { path: "/a%20b/c", want: "/c", prefix: "/a b" },
      { path: "/other/api", want: "/other/api", prefix: undefined },
    ];
    for (const tc of cases) {
      const res = await rawGet(proxy.port(), tc.path, { host: "strip.test" });
      const echo = JSON.parse(res.body) as Echo;
      assert.equal(echo.path, tc.want, tc.path);
      assert.equal(echo.headers["x-forwarded-prefix"], tc.prefix, tc.path);
    }
    const routers = proxy.server.watcher.current.routers;
    assert.equal(routers.get("strip@file")!.status, "enabled");
    assert.match(
      routers.get("bad@file")!.errors.join(),
      /middleware "nolist@file": option prefixes: is required/,
    );
    assert.match(
      routers.get("bad2@file")!.errors.join(),
      /middleware "emptylist@file": option prefixes: expected at least one prefix/,
    );
  } finally {
    await proxy.close();
    await be.close();
  }
});

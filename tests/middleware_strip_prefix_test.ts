import assert from "node:assert/strict";
import type { Echo } from "./fixtures/backend.ts";
import { startHostRoutedProxy } from "./fixtures/host_routes.ts";
import { rawGet } from "./fixtures/http_client.ts";
import {
  cleanPath,
  encodedPrefixLength,
  escapedPath,
  goPathFromRaw,
  joinPath,
  joinPathChanges,
} from "../lib/middlewares/shared/go_path.ts";

Deno.test("go_path: Go's Path/RawPath split, EscapedPath, Clean and JoinPath", () => {
  assert.deepEqual(goPathFromRaw("/a%2Fb"), { path: "/a/b", rawPath: "/a%2Fb" });
  assert.deepEqual(goPathFromRaw("/a%20b"), { path: "/a b", rawPath: "" });
  assert.deepEqual(goPathFromRaw("/ap%69"), { path: "/api", rawPath: "/ap%69" });
  assert.equal(goPathFromRaw("/a%zz"), undefined);
  // A RawPath that is not valid encoding falls back to Go's own encoding.
  assert.equal(escapedPath({ path: "/a b(c)", rawPath: "/a b(c)" }), "/a%20b%28c%29");
  assert.equal(escapedPath({ path: "/a/b", rawPath: "/a%2Fb" }), "/a%2Fb");
  const cleaned: [string, string][] = [
    ["", "."],
    ["/", "/"],
    ["/a/./b", "/a/b"],
    ["/a/../../b", "/b"],
    ["a/../../b", "../b"],
    ["//a//", "/a"],
  ];
  for (const [input, want] of cleaned) assert.equal(cleanPath(input), want, input);
  assert.equal(joinPath("/a/b/"), "/a/b/");
  assert.equal(joinPath("../x"), "x");
  assert.equal(joinPathChanges({ path: "/./foo", rawPath: "" }), true);
  assert.equal(joinPathChanges({ path: "/a//b", rawPath: "" }), true);
  assert.equal(joinPathChanges({ path: "/a/./", rawPath: "/a/%2E/" }), false);
  assert.equal(joinPathChanges({ path: "/x/", rawPath: "" }), false);
  assert.equal(encodedPrefixLength("/ap%69/a%2Fb", 5), 7);
});

Deno.test("stripPrefix: strips the first matching prefix, sets X-Forwarded-Prefix, rejects bad config", async () => {
  const routed = await startHostRoutedProxy(
    {
      strip: ["strip"],
      bad: ["nolist"],
      bad2: ["emptylist"],
    },
    `
[http.middlewares.strip.stripPrefix]
prefixes = ["/api", "/v1/", "/a b"]
[http.middlewares.nolist.stripPrefix]
forceSlash = true
[http.middlewares.emptylist.stripPrefix]
prefixes = ["/x"]
forceSlash = "sometimes"
`,
    {
      // lib/proxy/headers.ts drops X-Forwarded-Prefix from untrusted clients
      // AFTER middlewares ran, which also drops ours; trust loopback until the
      // strip moves before the middlewares (reported).
      entryPointExtra: { web: "forwardedHeaders.insecure = true" },
    },
  );
  const { proxy } = routed;
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
    // No prefixes is a valid no-op in Traefik.
    assert.equal(routers.get("bad@file")!.status, "enabled");
    const untouched = JSON.parse(
      (await rawGet(proxy.port(), "/api/x", { host: "bad.test" })).body,
    ) as Echo;
    assert.equal(untouched.path, "/api/x");
    assert.match(
      routers.get("bad2@file")!.errors.join(),
      /middleware "emptylist@file": option forceSlash: expected true or false, found "sometimes"/,
    );
  } finally {
    await routed.close();
  }
});

import assert from "node:assert/strict";
import type { Echo } from "./fixtures/backend.ts";
import { startHostRoutedProxy } from "./fixtures/host_routes.ts";
import { rawGet } from "./fixtures/http_client.ts";
import { captureNames, globalRegExp, goReplaceAll, parseTemplate } from "../lib/middlewares/shared/go_replace.ts";
import { compileRe2 } from "../lib/rules/re2.ts";

Deno.test("goReplaceAll: Go template expansion and empty-match rules", () => {
  const cases: [string, string, string, string][] = [
    ["^/foo/(.*)", "/foo/bar", "/baz/$1", "/baz/bar"],
    ["^/foo/(.*)", "/foo/bar", "/baz/${1}x", "/baz/barx"],
    ["^/foo/(.*)", "/foo/bar", "/baz/$1x", "/baz/"], // Go reads $1x as a group named "1x"
    ["^/(?P<v>v[0-9]+)/", "/v2/x", "/api/${v}/", "/api/v2/x"],
    ["a", "banana", "$$", "b$n$n$"],
    ["b*", "abc", "-", "-a-c-"], // JS would give "-a--c-"
    ["^/x", "/y", "/z", "/y"],
    ["(a)", "a", "$", "$"],
    ["(x)(?P<a>[a-z])[(](?<b>[0-9])", "xq(7", "${b}${a}${nope}", "7q"],
  ];
  for (const [re, src, tpl, want] of cases) {
    assert.equal(
      goReplaceAll(globalRegExp(compileRe2(re)), src, parseTemplate(tpl, captureNames(re))),
      want,
      `${re} ${src} ${tpl}`,
    );
  }
});

Deno.test("replacePathRegex: rewrites the path over HTTP, keeps the query", async () => {
  const routed = await startHostRoutedProxy(
    {
      rx: ["rx"],
      bad: ["bad"],
      missing: ["missing"],
    },
    `
[http.middlewares.rx.replacePathRegex]
regex = "^/foo/(.*)"
replacement = "/bar/$1"
[http.middlewares.bad.replacePathRegex]
regex = "(a"
replacement = "/x"
[http.middlewares.missing.replacePathRegex]
regex = "^/drop"
`,
  );
  const { proxy } = routed;
  try {
    const cases = [
      { path: "/foo/x/y?q=/foo/", want: "/bar/x/y?q=/foo/", replaced: "/foo/x/y" },
      { path: "/foo/a%20b", want: "/bar/a%20b", replaced: "/foo/a%20b" },
      { path: "/other", want: "/other", replaced: undefined },
    ];
    for (const tc of cases) {
      const echo = JSON.parse(
        (await rawGet(proxy.port(), tc.path, { host: "rx.test" })).body,
      ) as Echo;
      assert.equal(echo.path, tc.want, tc.path);
      assert.equal(echo.headers["x-replaced-path"], tc.replaced, tc.path);
    }
    const routers = proxy.server.watcher.current.routers;
    assert.match(
      routers.get("bad@file")!.errors.join(),
      /middleware "bad@file": option regex: "\(a"/,
    );
    // No replacement is valid in Traefik: the match is removed.
    assert.equal(routers.get("missing@file")!.status, "enabled");
    const dropped = JSON.parse(
      (await rawGet(proxy.port(), "/drop/me", { host: "missing.test" })).body,
    ) as Echo;
    assert.equal(dropped.path, "/me");
  } finally {
    await routed.close();
  }
});

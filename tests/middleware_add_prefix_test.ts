import assert from "node:assert/strict";
import type { Echo } from "./fixtures/backend.ts";
import { startHostRoutedProxy } from "./fixtures/host_routes.ts";
import { assertBadMiddlewaresDisableRouters } from "./fixtures/bad_middleware.ts";
import { rawGet } from "./fixtures/http_client.ts";

Deno.test("addPrefix: prefixes the path, keeps the query bytes, rejects bad config", async () => {
  const routed = await startHostRoutedProxy(
    {
      api: ["api"],
      noslash: ["noslash"],
      bad: ["empty"],
      typo: ["typo"],
    },
    `
[http.middlewares.api.addPrefix]
prefix = "/api"
[http.middlewares.noslash.addPrefix]
prefix = "v1"
[http.middlewares.empty.addPrefix]
prefix = ""
[http.middlewares.typo.addPrefix]
prefx = "/x"
`,
  );
  const { proxy } = routed;
  try {
    const cases = [
      { host: "api.test", path: "/users", want: "/api/users" },
      { host: "api.test", path: "/", want: "/api/" },
      { host: "api.test", path: "/a%2Fb?q=%20x&y", want: "/api/a%2Fb?q=%20x&y" },
      { host: "noslash.test", path: "/x", want: "/v1/x" },
    ];
    for (const tc of cases) {
      const res = await rawGet(proxy.port(), tc.path, { host: tc.host });
      assert.equal(res.status, 200, tc.path);
      assert.equal((JSON.parse(res.body) as Echo).path, tc.want, `${tc.host}${tc.path}`);
    }
    assertBadMiddlewaresDisableRouters(proxy, [
      {
        router: "bad",
        middleware: "empty",
        error: /middleware "empty@file": option prefix: must not be empty/,
      },
      {
        router: "typo",
        error: /middleware "typo@file": unknown option prefx \(did you mean "prefix"\?\)/,
      },
    ]);
    assert.equal((await rawGet(proxy.port(), "/", { host: "bad.test" })).status, 404);
  } finally {
    await routed.close();
  }
});

import assert from "node:assert/strict";
import type { Echo } from "./fixtures/backend.ts";
import { startHostRoutedProxy } from "./fixtures/host_routes.ts";
import { rawGet } from "./fixtures/http_client.ts";

Deno.test("replacePath: replaces the path, keeps the query, sets X-Replaced-Path", async () => {
  const routed = await startHostRoutedProxy(
    {
      rp: ["rp"],
      space: ["space"],
      bad: ["bad"],
    },
    `
[http.middlewares.rp.replacePath]
path = "/foo"
[http.middlewares.space.replacePath]
path = "/a b"
[http.middlewares.bad.replacePath]
path = ["/x"]
`,
  );
  const { proxy } = routed;
  try {
    const cases = [
      { host: "rp.test", path: "/anything", want: "/foo", replaced: "/anything" },
      { host: "rp.test", path: "/x%2Fy?q=1&r", want: "/foo?q=1&r", replaced: "/x%2Fy" },
      { host: "space.test", path: "/", want: "/a%20b", replaced: "/" },
    ];
    for (const tc of cases) {
      const echo = JSON.parse(
        (await rawGet(proxy.port(), tc.path, { host: tc.host })).body,
      ) as Echo;
      assert.equal(echo.path, tc.want, tc.path);
      assert.equal(echo.headers["x-replaced-path"], tc.replaced, tc.path);
    }
    assert.match(
      proxy.server.watcher.current.routers.get("bad@file")!.errors.join(),
      /middleware "bad@file": option path: expected a string, found a list/,
    );
  } finally {
    await routed.close();
  }
});

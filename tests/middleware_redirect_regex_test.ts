import assert from "node:assert/strict";
import { startHostRoutedProxy } from "./fixtures/host_routes.ts";
import { rawGet } from "./fixtures/http_client.ts";

Deno.test("redirectRegex: Go-style groups, status by method, same URL passes, bad config", async () => {
  const routed = await startHostRoutedProxy(
    {
      www: { rule: "HostRegexp(`^www\\.`)", middlewares: ["www"] },
      docs: ["docs"],
      same: ["same"],
      bad: ["bad"],
    },
    `
[http.middlewares.www.redirectRegex]
regex = "^http://www\\\\.([^/]+)/(.*)"
replacement = "https://\${1}/$2"
permanent = true
[http.middlewares.docs.redirectRegex]
regex = "^(?P<base>http://[^/]+)/v(?P<n>[0-9]+)/"
replacement = "\${base}/docs/\${n}/"
[http.middlewares.same.redirectRegex]
regex = "^(.*)$"
replacement = "$1"
[http.middlewares.bad.redirectRegex]
regex = "\\\\p{Nope}"
replacement = "x"
`,
  );
  const { proxy } = routed;
  try {
    const cases: {
      name: string;
      host: string;
      path: string;
      method?: string;
      status: number;
      location?: string;
    }[] = [
      {
        name: "www to apex, permanent GET",
        host: "www.example.com",
        path: "/a?b=1",
        status: 301,
        location: "https://example.com/a?b=1",
      },
      {
        name: "permanent POST",
        host: "www.example.com",
        path: "/a",
        method: "POST",
        status: 308,
        location: "https://example.com/a",
      },
      {
        name: "named groups, temporary",
        host: "docs.test",
        path: "/v2/intro",
        status: 302,
        location: "http://docs.test/docs/2/intro",
      },
      {
        name: "temporary DELETE",
        host: "docs.test",
        path: "/v2/",
        method: "DELETE",
        status: 307,
        location: "http://docs.test/docs/2/",
      },
      { name: "no match passes", host: "docs.test", path: "/intro", status: 200 },
      { name: "same URL passes", host: "same.test", path: "/x", status: 200 },
    ];
    for (const tc of cases) {
      const res = await rawGet(proxy.port(), tc.path, { host: tc.host }, tc.method ?? "GET");
      assert.equal(res.status, tc.status, tc.name);
      assert.equal(res.headers.location, tc.location, tc.name);
    }
    const bad = proxy.server.watcher.current.routers.get("bad@file")!;
    assert.equal(bad.status, "disabled");
    assert.match(bad.errors.join(), /middleware "bad@file": option regex:/);
  } finally {
    await routed.close();
  }
});

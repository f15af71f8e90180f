import assert from "node:assert/strict";
import type { Echo } from "./fixtures/backend.ts";
import { startHostRoutedProxy } from "./fixtures/host_routes.ts";
import { rawGet } from "./fixtures/http_client.ts";

Deno.test("chain: runs members in order, nests, rejects cycles with the cycle named", async () => {
  const routed = await startHostRoutedProxy(
    {
      ok: ["outer"],
      short: ["redirecting"],
      self: ["self"],
      loop: ["loop-a"],
      missing: ["missing"],
    },
    `
[http.middlewares.outer.chain]
middlewares = ["strip", "inner"]
[http.middlewares.inner.chain]
middlewares = ["add-v2", "hdr@file"]
[http.middlewares.strip.stripPrefix]
prefixes = ["/api"]
[http.middlewares.add-v2.addPrefix]
prefix = "/v2"
[http.middlewares.hdr.headers.customResponseHeaders]
X-Chain = "done"
[http.middlewares.redirecting.chain]
middlewares = ["hdr", "to-https", "add-v2"]
[http.middlewares.to-https.redirectScheme]
scheme = "https"
[http.middlewares.self.chain]
middlewares = ["self"]
[http.middlewares.loop-a.chain]
middlewares = ["loop-b"]
[http.middlewares.loop-b.chain]
middlewares = ["add-v2", "loop-a"]
[http.middlewares.missing.chain]
middlewares = ["nope"]
`,
  );
  const { be, proxy } = routed;
  try {
    // Order matters: strip then add gives /v2/x; the reverse would give /v2/api/x.
    const res = await rawGet(proxy.port(), "/api/x?q", { host: "ok.test" });
    assert.equal((JSON.parse(res.body) as Echo).path, "/v2/x?q");
    assert.equal(res.headers["x-chain"], "done");

    const before = be.hits;
    const short = await rawGet(proxy.port(), "/p", { host: "short.test" });
    assert.equal(short.status, 302);
    assert.equal(short.headers.location, "https://short.test/p");
    assert.equal(
      short.headers["x-chain"],
      "done",
      "outer members still see the short-circuit response",
    );
    assert.equal(be.hits, before);

    const routers = proxy.server.watcher.current.routers;
    const bad = [
      { router: "self@file", error: "middleware cycle: self@file -> self@file" },
      { router: "loop@file", error: "middleware cycle: loop-a@file -> loop-b@file -> loop-a@file" },
      { router: "missing@file", error: 'middleware "nope@file" does not exist' },
    ];
    for (const tc of bad) {
      const state = routers.get(tc.router)!;
      assert.equal(state.status, "disabled", tc.router);
      assert.ok(state.errors.some((e) => e.includes(tc.error)), `${tc.router}: ${state.errors}`);
    }
    assert.equal((await rawGet(proxy.port(), "/", { host: "loop.test" })).status, 404);
    assert.equal(routers.get("ok@file")!.status, "enabled");
  } finally {
    await routed.close();
  }
});

/**
 * `sticky.cookie.domain`: the Set-Cookie carries the Domain attribute (a
 * leading dot dropped, as Go's http.Cookie does), and a malformed domain is
 * refused with the key named.
 */

import assert from "node:assert/strict";
import { validateDynamic } from "../lib/config/dynamic.ts";
import { startTestProxy } from "./fixtures/proxy.ts";
import { rawGet } from "./fixtures/http_client.ts";

Deno.test({
  name: "sticky.cookie.domain over sockets: the cookie names the domain and still pins the server",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const backends = [0, 1].map((i) =>
      Deno.serve(
        { hostname: "127.0.0.1", port: 0, onListen: () => {} },
        () => new Response(`b${i}`),
      )
    );
    const proxy = await startTestProxy({
      dynamic: `
[http.routers.r]
rule = "Host(\`app.test\`)"
service = "s"
[http.services.s.loadBalancer]
servers = [{ url = "http://127.0.0.1:${backends[0].addr.port}" }, { url = "http://127.0.0.1:${
        backends[1].addr.port
      }" }]
[http.services.s.loadBalancer.sticky.cookie]
name = "pin"
domain = ".example.com"
`,
    });
    try {
      const first = await rawGet(proxy.port(), "/", { host: "app.test" });
      const cookie = String(first.headers["set-cookie"]);
      assert.match(cookie, /^pin=[^;]+; Path=\/; Domain=example\.com$/);
      const pinned = cookie.split(";")[0];
      for (let i = 0; i < 4; i++) {
        const again = await rawGet(proxy.port(), "/", { host: "app.test", cookie: pinned });
        assert.equal(again.body, first.body);
      }
    } finally {
      await proxy.close();
      for (const b of backends) await b.shutdown();
    }
  },
});

Deno.test("sticky.cookie.domain: a malformed domain is refused, naming the key", () => {
  const raw = (domain: string) => ({
    http: {
      services: {
        s: { loadBalancer: { servers: [{ url: "http://a" }], sticky: { cookie: { domain } } } },
      },
    },
  });
  assert.throws(
    () => validateDynamic(raw("bad domain;x"), "d.toml"),
    /http\.services\.s\.loadBalancer\.sticky\.cookie\.domain: expected a domain name/,
  );
  validateDynamic(raw("example.com"), "d.toml");
});

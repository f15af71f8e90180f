/**
 * `mirroring.mirrorBody`: by default (true) the mirror gets the request body
 * too; with false it gets the method, path and headers only, while the main
 * service still gets the whole body.
 */

import assert from "node:assert/strict";
import { startTestProxy } from "./fixtures/proxy.ts";
import { rawGet } from "./fixtures/http_client.ts";

function recorder() {
  const seen: { path: string; body: string }[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    seen.push({ path: new URL(req.url).pathname, body: await req.text() });
    return new Response("ok");
  });
  return { url: `http://127.0.0.1:${server.addr.port}`, seen, close: () => server.shutdown() };
}

Deno.test({
  name:
    "mirrorBody over sockets: true copies the body to the mirror, false sends the mirror no body",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const main = recorder();
    const mirror = recorder();
    const service = (name: string, mirrorBody: boolean) => `
[http.routers.${name}]
rule = "Host(\`${name}.test\`)"
service = "${name}"
[http.services.${name}.mirroring]
service = "main"
mirrorBody = ${mirrorBody}
mirrors = [{ name = "mirror", percent = 100 }]
`;
    const proxy = await startTestProxy({
      dynamic: service("with", true) + service("without", false) + `
[http.services.main.loadBalancer]
servers = [{ url = "${main.url}" }]
[http.services.mirror.loadBalancer]
servers = [{ url = "${mirror.url}" }]
`,
    });
    try {
      for (const name of ["with", "without"]) {
        const r = await rawGet(
          proxy.port(),
          `/${name}`,
          { host: `${name}.test`, "content-length": "5" },
          "POST",
          "hello",
        );
        assert.equal(r.status, 200);
      }
      for (let i = 0; i < 50 && mirror.seen.length < 2; i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
      const byPath = (list: { path: string; body: string }[], p: string) =>
        list.find((s) => s.path === p)?.body;
      assert.equal(byPath(main.seen, "/with"), "hello");
      assert.equal(byPath(main.seen, "/without"), "hello");
      assert.equal(byPath(mirror.seen, "/with"), "hello");
      assert.equal(byPath(mirror.seen, "/without"), "");
    } finally {
      await proxy.close();
      await main.close();
      await mirror.close();
    }
  },
});

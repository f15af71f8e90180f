/**
 * `failover.errors`: a main-service answer whose status is in `status` is
 * replayed, body included, on the fallback; other statuses are returned as
 * they are; a body over `maxRequestBodyBytes` gets 413; bad blocks are
 * refused naming the key.
 */

import assert from "node:assert/strict";
import { validateDynamic } from "../lib/config/dynamic.ts";
import { startTestProxy } from "./fixtures/proxy.ts";
import { rawGet } from "./fixtures/http_client.ts";

function backend(name: string) {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const status = Number(new URL(req.url).searchParams.get("status") ?? "200");
    return new Response(`${name}:${await req.text()}`, { status: name === "main" ? status : 200 });
  });
  return { url: `http://127.0.0.1:${server.addr.port}`, close: () => server.shutdown() };
}

Deno.test({
  name:
    "failover.errors over sockets: listed statuses go to the fallback with the body, others do not",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const main = backend("main");
    const spare = backend("spare");
    const proxy = await startTestProxy({
      dynamic: `
[http.routers.r]
rule = "Host(\`app.test\`)"
service = "fo"
[http.services.fo.failover]
service = "main"
fallback = "spare"
[http.services.fo.failover.errors]
status = ["500-503", "418"]
maxRequestBodyBytes = 8
[http.services.main.loadBalancer]
servers = [{ url = "${main.url}" }]
[http.services.spare.loadBalancer]
servers = [{ url = "${spare.url}" }]
`,
    });
    try {
      const post = (status: number, body: string) =>
        rawGet(
          proxy.port(),
          `/?status=${status}`,
          { host: "app.test", "content-length": String(body.length) },
          "POST",
          body,
        );
      assert.deepEqual([(await post(502, "hi")).body, (await post(418, "yo")).body], [
        "spare:hi",
        "spare:yo",
      ]);
      const kept = await post(404, "hi");
      assert.deepEqual([kept.status, kept.body], [404, "main:hi"]);
      assert.equal((await post(200, "ok")).body, "main:ok");
      assert.equal((await post(500, "123456789")).status, 413);
    } finally {
      await proxy.close();
      await main.close();
      await spare.close();
    }
  },
});

Deno.test("failover.errors: a malformed status block is refused, naming the key", () => {
  const raw = {
    http: {
      services: { s: { failover: { service: "a", fallback: "b", errors: { status: ["5xx"] } } } },
    },
  };
  assert.throws(
    () => validateDynamic(raw, "d.toml"),
    /http\.services\.s\.failover\.errors\.status\[0\]: expected a status/,
  );
});

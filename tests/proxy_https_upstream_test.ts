/**
 * HTTPS upstreams on Portico's own client (`Deno.connectTls`): the chain is
 * verified against the servers transport's `rootCAs`, connections are
 * pooled and kept alive, bodies stream both ways, an untrusted certificate
 * is a 502, and `insecureSkipVerify` (which Deno's TLS client cannot do)
 * still works through node:https.
 */

import assert from "node:assert/strict";
import { startTestProxy } from "./fixtures/proxy.ts";
import { makePki } from "./fixtures/pki.ts";
import { rawGet } from "./fixtures/http_client.ts";

async function startHttpsBackend(dir: string) {
  const ports = new Set<number>();
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    cert: await Deno.readTextFile(`${dir}/server.pem`),
    key: await Deno.readTextFile(`${dir}/server.key`),
    onListen: () => {},
  }, async (request, info) => {
    ports.add(info.remoteAddr.port);
    const body = request.body ? (await request.arrayBuffer()).byteLength : 0;
    const url = new URL(request.url);
    return Response.json({
      path: url.pathname + url.search,
      proto: request.headers.get("x-forwarded-proto"),
      host: request.headers.get("host"),
      received: body,
    });
  });
  return { port: server.addr.port, connections: ports, close: () => server.shutdown() };
}

Deno.test({
  name: "HTTPS upstream: verified with rootCAs, pooled, bodies both ways; untrusted is 502; insecureSkipVerify works",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "portico-https-upstream-" });
    await makePki(dir);
    const backend = await startHttpsBackend(dir);
    const upstream = `https://127.0.0.1:${backend.port}`;
    const proxy = await startTestProxy({
      dynamic: `
[http.routers.trusted]
rule = "Host(\`trusted.test\`)"
service = "trusted"
[http.routers.untrusted]
rule = "Host(\`untrusted.test\`)"
service = "untrusted"
[http.routers.skip]
rule = "Host(\`skip.test\`)"
service = "skip"
[http.serversTransports.ca]
rootCAs = ["${dir}/ca.pem"]
[http.serversTransports.insecure]
insecureSkipVerify = true
[http.services.trusted.loadBalancer]
serversTransport = "ca"
servers = [{ url = "${upstream}/base" }]
[http.services.untrusted.loadBalancer]
servers = [{ url = "${upstream}" }]
[http.services.skip.loadBalancer]
serversTransport = "insecure"
servers = [{ url = "${upstream}" }]
`,
    });
    try {
      for (let i = 0; i < 20; i++) {
        const res = await rawGet(proxy.port(), `/a%2Fb?n=${i}`, { host: "trusted.test" });
        assert.equal(res.status, 200, res.body);
        const echo = JSON.parse(res.body);
        assert.equal(echo.path, `/base/a%2Fb?n=${i}`, "the raw path goes upstream as sent");
        assert.equal(echo.proto, "http");
        assert.equal(echo.host, "trusted.test");
      }
      assert.equal(backend.connections.size, 1, "20 sequential requests share one pooled TLS connection");

      const big = "x".repeat(300_000);
      const posted = await rawGet(proxy.port(), "/upload", { host: "trusted.test", "content-type": "text/plain" }, "POST", big);
      assert.equal(posted.status, 200);
      assert.equal(JSON.parse(posted.body).received, 300_000, "the whole request body arrived over TLS");

      const refused = await rawGet(proxy.port(), "/", { host: "untrusted.test" });
      assert.equal(refused.status, 502, "a certificate from an unknown CA is refused");

      const skipped = await rawGet(proxy.port(), "/s", { host: "skip.test" });
      assert.equal(skipped.status, 200, proxy.logs.slice(-5).join("\n"));
      assert.equal(JSON.parse(skipped.body).path, "/s");
    } finally {
      await proxy.close();
      await backend.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

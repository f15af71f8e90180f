/**
 * One entrypoint, one port, TLS and plain HTTP together (Traefik's
 * behaviour): the first byte of a connection decides. A router with `tls`
 * takes TLS connections, one without takes plain ones; before, a TLS
 * router on an entrypoint without `http.tls` was never served.
 */

import assert from "node:assert/strict";
import { startEchoBackend } from "./fixtures/backend.ts";
import { rawExchange } from "./fixtures/raw_backend.ts";
import { startTestProxy } from "./fixtures/proxy.ts";
import { tlsGet } from "./fixtures/http_client.ts";

Deno.test({
  name: "same port: TLS connections reach tls routers, plain ones the others; the client is known on both",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const secure = startEchoBackend("secure");
    const plain = startEchoBackend("plain");
    const proxy = await startTestProxy({
      dynamic: `
[http.routers.secure]
rule = "Host(\`a.test\`)"
service = "secure"
[http.routers.secure.tls]
[http.routers.plain]
rule = "Host(\`a.test\`)"
service = "plain"
[http.services.secure.loadBalancer]
servers = [{ url = "${secure.url}" }]
[http.services.plain.loadBalancer]
servers = [{ url = "${plain.url}" }]
`,
    });
    try {
      const port = proxy.port();
      for (let i = 0; i < 3; i++) {
        const overTls = await tlsGet(port, "/x", "a.test");
        assert.match(overTls, /^HTTP\/1\.1 200 /, overTls.slice(0, 60));
        const body = JSON.parse(overTls.slice(overTls.indexOf("\r\n\r\n") + 4));
        assert.equal(body.backend, "secure");
        assert.equal(body.headers["x-forwarded-proto"], "https");
        assert.equal(body.headers["x-forwarded-for"], "127.0.0.1");
        assert.equal(body.headers["x-forwarded-port"], String(port));
        const overPlain = await rawExchange(port, "GET /y HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n");
        assert.match(overPlain, /^HTTP\/1\.1 200 /);
        assert.match(overPlain, /"backend":"plain"/);
        assert.match(overPlain, /"x-forwarded-proto":"http"/);
      }
    } finally {
      await proxy.close();
      await secure.close();
      await plain.close();
    }
  },
});

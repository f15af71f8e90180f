/**
 * One TLS entrypoint serves HTTP/2 and HTTP/1.1 side by side: a client
 * that negotiates `h2` by ALPN is served by the native server for its
 * connection, one that offers only `http/1.1` by the connection engine;
 * both reach the same routers, middlewares and upstream.
 */

import assert from "node:assert/strict";
import http2 from "node:http2";
import tls from "node:tls";
import { startEchoBackend } from "./fixtures/backend.ts";
import { startTestProxy } from "./fixtures/proxy.ts";

function h2Get(port: number, path: string): Promise<{ status: number; body: string; alpn: string }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://127.0.0.1:${port}`, { servername: "a.test", rejectUnauthorized: false });
    session.on("error", reject);
    const req = session.request({ ":path": path, ":authority": "a.test" });
    let status = 0;
    let body = "";
    req.on("response", (h) => (status = Number(h[":status"])));
    req.on("data", (d: Uint8Array) => (body += new TextDecoder().decode(d)));
    req.on("end", () => {
      const alpn = String((session.socket as tls.TLSSocket).alpnProtocol);
      session.close();
      resolve({ status, body, alpn });
    });
    req.on("error", reject);
    req.end();
  });
}

function http1Get(port: number, path: string): Promise<{ head: string; alpn: string }> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: "127.0.0.1", port, servername: "a.test", rejectUnauthorized: false, ALPNProtocols: ["http/1.1"] });
    let text = "";
    s.on("secureConnect", () => s.write(`GET ${path} HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n`));
    s.on("data", (d: Uint8Array) => (text += new TextDecoder().decode(d)));
    s.on("close", () => resolve({ head: text, alpn: String(s.alpnProtocol) }));
    s.on("error", reject);
  });
}

Deno.test({
  name: "one TLS entrypoint: h2 by ALPN goes to the native server, http/1.1 to the engine; same routing",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const backend = startEchoBackend("b");
    const proxy = await startTestProxy({
      entryPoints: ["websecure"],
      entryPointExtra: { websecure: "[entryPoints.websecure.http.tls]\n" },
      dynamic: `
[http.routers.a]
rule = "Host(\`a.test\`) && PathPrefix(\`/api\`)"
service = "b"
middlewares = ["strip"]
[http.middlewares.strip.stripPrefix]
prefixes = ["/api"]
[http.services.b.loadBalancer]
servers = [{ url = "${backend.url}" }]
`,
    });
    try {
      const port = proxy.port("websecure");
      const two = await h2Get(port, "/api/x?y=1");
      assert.equal(two.alpn, "h2");
      assert.equal(two.status, 200);
      assert.equal(JSON.parse(two.body).path, "/x?y=1", `h2 body ${two.body}`);
      // h2 has no Host field; the HTTP/1.1 upstream must still get one (nginx answers 400 without it).
      assert.equal(JSON.parse(two.body).headers.host, "a.test");
      assert.equal(JSON.parse(two.body).headers["x-forwarded-host"], "a.test");
      const one = await http1Get(port, "/api/x?y=2");
      assert.equal(one.alpn, "http/1.1");
      assert.match(one.head, /^HTTP\/1\.1 200 /);
      assert.match(one.head, /"path":"\/x\?y=2"/);
      const miss = await h2Get(port, "/other");
      assert.equal(miss.status, 404);
    } finally {
      await proxy.close();
      await backend.close();
    }
  },
});

/**
 * PROXY protocol v1 and v2 on entrypoints (`entryPoints.NAME.proxyProtocol`):
 * the parser on its own, then over real sockets: a trusted peer's header
 * sets the client address that X-Forwarded-For and ClientIP see; an
 * untrusted peer that sends one is refused; a connection without one is
 * served as usual.
 */

import assert from "node:assert/strict";
import { parseProxyHeader } from "../lib/engine/proxy_protocol.ts";
import { validateStatic } from "../lib/config/static.ts";
import { startEchoBackend } from "./fixtures/backend.ts";
import { rawExchange } from "./fixtures/raw_backend.ts";
import { startTestProxy } from "./fixtures/proxy.ts";

const text = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const parse = (b: Uint8Array) => parseProxyHeader(b, b.length);

function v2(command: number, family: number, addresses: number[]): Uint8Array {
  const signature = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
  return new Uint8Array([...signature, 0x20 | command, family, addresses.length >> 8, addresses.length & 0xff, ...addresses]);
}

const V2_TCP4 = v2(1, 0x11, [203, 0, 113, 7, 127, 0, 0, 1, 0x30, 0x39, 0x00, 0x50]);
const V2_TCP6 = v2(1, 0x21, [
  0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
  0x30, 0x39, 0x00, 0x50,
]);

Deno.test("PROXY header parser: v1 and v2, addresses, LOCAL/UNKNOWN, incomplete and refused input", () => {
  assert.deepEqual(parse(text("PROXY TCP4 203.0.113.7 127.0.0.1 12345 80\r\nGET")), {
    kind: "header",
    end: 43,
    source: { address: "203.0.113.7", port: 12345 },
  });
  assert.deepEqual(parse(text("PROXY TCP6 2001:db8::1 ::1 12345 80\r\n")).kind, "header");
  assert.deepEqual(parse(text("PROXY UNKNOWN\r\n")), { kind: "header", end: 15 });
  assert.deepEqual(parse(text("PROXY TCP4 203.0.113.7")), { kind: "incomplete" });
  assert.deepEqual(parse(text("PRO")), { kind: "incomplete" });
  assert.deepEqual(parse(text("GET / HTTP/1.1\r\n")), { kind: "none" });
  assert.deepEqual(parse(new Uint8Array([0x16, 3, 1])), { kind: "none" });
  assert.equal(parse(text("PROXY TCP4 999.0.113.7 127.0.0.1 1 80\r\n")).kind, "error");
  assert.equal(parse(text("PROXY TCP4 203.0.113.7 127.0.0.1 70000 80\r\n")).kind, "error");
  assert.equal(parse(text("PROXY TCP4 203.0.113.7 127.0.0.1 1 80\n")).kind, "error", "bare LF");
  assert.equal(parse(text("PROXY TCP5 a b 1 2\r\n")).kind, "error");
  assert.equal(parse(text("PROXY " + "x".repeat(120))).kind, "error", "over 107 bytes without an end");

  assert.deepEqual(parse(V2_TCP4), { kind: "header", end: 28, source: { address: "203.0.113.7", port: 12345 } });
  assert.deepEqual(parse(V2_TCP6), { kind: "header", end: 52, source: { address: "2001:db8::1", port: 12345 } });
  assert.deepEqual(parse(v2(0, 0x00, [])), { kind: "header", end: 16 }, "LOCAL keeps the peer address");
  assert.deepEqual(parse(V2_TCP4.subarray(0, 20)), { kind: "incomplete" });
  assert.equal(parse(new Uint8Array([...V2_TCP4.subarray(0, 12), 0x31, ...V2_TCP4.subarray(13)])).kind, "error", "version 3");
  assert.equal(parse(v2(1, 0x11, [1, 2, 3])).kind, "error", "address block too short");
});

Deno.test("proxyProtocol config: refused on a TLS-only entrypoint, with the key named", () => {
  assert.throws(
    () => validateStatic({ entryPoints: { s: { address: ":443", http: { tls: {} }, proxyProtocol: { insecure: true } } } }, "p.toml"),
    /p\.toml: entryPoints\.s\.proxyProtocol: not supported yet on an entrypoint with http\.tls/,
  );
  const ok = validateStatic({ entryPoints: { w: { address: ":80", proxyProtocol: { trustedIPs: ["10.0.0.0/8"] } } } }, "p.toml");
  assert.deepEqual(ok.entryPoints.w.proxyProtocol, { trustedIPs: ["10.0.0.0/8"], insecure: false });
});

Deno.test({
  name: "PROXY protocol over sockets: trusted header sets the client for X-Forwarded-For and ClientIP; untrusted is refused",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const backend = startEchoBackend("b");
    const proxy = await startTestProxy({
      entryPoints: ["web", "strict"],
      entryPointExtra: {
        web: `[entryPoints.web.proxyProtocol]\ntrustedIPs = ["127.0.0.1"]\n`,
        strict: `[entryPoints.strict.proxyProtocol]\ntrustedIPs = ["10.0.0.0/8"]\n`,
      },
      dynamic: `
[http.routers.doc]
rule = "ClientIP(\`203.0.113.0/24\`)"
service = "b"
[http.routers.other]
rule = "PathPrefix(\`/\`)"
priority = 1
service = "b"
middlewares = ["tag"]
[http.middlewares.tag.headers.customRequestHeaders]
X-Route = "other"
[http.services.b.loadBalancer]
servers = [{ url = "${backend.url}" }]
`,
    });
    const get = "GET /who HTTP/1.1\r\nHost: pp.test\r\nConnection: close\r\n\r\n";
    const echoOf = (answer: string) => JSON.parse(answer.slice(answer.indexOf("\r\n\r\n") + 4));
    try {
      const v1 = await rawExchange(proxy.port(), `PROXY TCP4 203.0.113.7 127.0.0.1 12345 80\r\n${get}`);
      assert.match(v1, /^HTTP\/1\.1 200 /, v1);
      assert.equal(echoOf(v1).headers["x-forwarded-for"], "203.0.113.7");
      assert.equal(echoOf(v1).headers["x-route"], undefined, "ClientIP saw the address from the header");

      const v2 = await rawExchange(proxy.port(), new Uint8Array([...V2_TCP6, ...text(get)]));
      assert.match(v2, /^HTTP\/1\.1 200 /, v2);
      assert.equal(echoOf(v2).headers["x-forwarded-for"], "2001:db8::1");
      assert.equal(echoOf(v2).headers["x-route"], "other", "2001:db8::1 is outside the ClientIP range");

      const none = await rawExchange(proxy.port(), get);
      assert.equal(echoOf(none).headers["x-forwarded-for"], "127.0.0.1", "no header: the peer is the client");

      const hits = backend.hits;
      const refused = await rawExchange(proxy.port("strict"), `PROXY TCP4 203.0.113.7 127.0.0.1 12345 80\r\n${get}`);
      assert.equal(refused, "", "a header from an untrusted peer closes the connection unanswered");
      assert.equal(backend.hits, hits, "nothing reached the backend");
      const plain = await rawExchange(proxy.port("strict"), get);
      assert.equal(echoOf(plain).headers["x-forwarded-for"], "127.0.0.1");
    } finally {
      await proxy.close();
      await backend.close();
    }
  },
});

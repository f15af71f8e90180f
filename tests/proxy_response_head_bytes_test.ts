/**
 * The byte-level path copies the upstream's response header lines as they
 * arrived (names in their case, values byte for byte, obs-text included),
 * leaves out hop-by-hop lines and those the upstream's Connection names,
 * drops what a headers middleware removes, and adds its own lines and the
 * client connection's framing.
 */

import assert from "node:assert/strict";
import { startTestProxy } from "./fixtures/proxy.ts";
import { rawExchange, startRawBackend } from "./fixtures/raw_backend.ts";

const latin1 = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));

Deno.test("response head: kept lines are the upstream's bytes; hop-by-hop and dropped lines go; middleware lines come", async () => {
  const body = "hello";
  const answer = "HTTP/1.1 200 Fine By Me\r\n" +
    "Server: upstream/1.0\r\n" +
    "Connection: keep-alive, X-Hop\r\n" +
    "X-Hop: secret\r\n" +
    "Keep-Alive: timeout=5\r\n" +
    "Set-Cookie: a=1\r\n" +
    "set-cookie: b=2\r\n" +
    // The fixture sends its answer as UTF-8: é is two bytes, both obs-text, passed on as they are.
    "X-Latin: caf\xe9\r\n" +
    "X-Spaced:   padded value\t\r\n" +
    "X-Remove-Me: 1\r\n" +
    `Content-Length: ${body.length}\r\n\r\n${body}`;
  const backend = startRawBackend(answer);
  const proxy = await startTestProxy({
    dynamic: `
[http.routers.r]
rule = "Host(\`h.test\`)"
service = "s"
middlewares = ["edit"]
[http.middlewares.edit.headers.customResponseHeaders]
X-Added = "yes"
X-Remove-Me = ""
[http.services.s.loadBalancer]
servers = [{ url = "http://127.0.0.1:${backend.port}" }]
`,
  });
  try {
    const got = await rawExchange(proxy.port(), latin1("GET / HTTP/1.1\r\nHost: h.test\r\n\r\n"));
    const [head, rest] = [got.slice(0, got.indexOf("\r\n\r\n")), got.slice(got.indexOf("\r\n\r\n") + 4)];
    const lines = head.split("\r\n");
    assert.equal(lines[0], "HTTP/1.1 200 Fine By Me", "the status line as the upstream sent it");
    for (const kept of ["Server: upstream/1.0", "Set-Cookie: a=1", "set-cookie: b=2", "X-Latin: caf\xc3\xa9", "X-Spaced:   padded value\t", "Content-Length: 5"]) {
      assert.ok(lines.includes(kept), `${JSON.stringify(kept)} kept as sent in ${JSON.stringify(lines)}`);
    }
    for (const gone of [/^connection:/i, /^x-hop:/i, /^keep-alive:/i, /^x-remove-me:/i]) {
      assert.ok(!lines.some((l) => gone.test(l)), `${gone} must not reach the client: ${JSON.stringify(lines)}`);
    }
    assert.ok(lines.some((l) => /^x-added: yes$/i.test(l)), JSON.stringify(lines));
    assert.equal(rest, body);
  } finally {
    await proxy.close();
    backend.close();
  }
});

Deno.test("response head: an HTTP/1.0 upstream, or one without a reason phrase, gets Portico's status line", async () => {
  for (const [status, expected] of [["HTTP/1.0 201 Made\r\n", "HTTP/1.1 201 Made"], ["HTTP/1.1 404\r\n", "HTTP/1.1 404 Not Found"]]) {
    const backend = startRawBackend(`${status}Content-Length: 0\r\n\r\n`);
    const proxy = await startTestProxy({
      dynamic: `
[http.routers.r]
rule = "Host(\`h.test\`)"
service = "s"
[http.services.s.loadBalancer]
servers = [{ url = "http://127.0.0.1:${backend.port}" }]
`,
    });
    try {
      const got = await rawExchange(proxy.port(), "GET / HTTP/1.1\r\nHost: h.test\r\n\r\n");
      assert.equal(got.split("\r\n")[0], expected);
    } finally {
      await proxy.close();
      backend.close();
    }
  }
});

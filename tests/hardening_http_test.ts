/**
 * Hostile HTTP: request-smuggling shapes are refused with 400 and never
 * reach the backend; what does reach it is canonical HTTP/1.1.
 */

import assert from "node:assert/strict";
import { rawExchange, startRawBackend } from "./fixtures/raw_backend.ts";
import { startCatchAllProxy } from "./fixtures/proxy.ts";

const SMUGGLING: { name: string; request: string }[] = [
  {
    name: "Content-Length and Transfer-Encoding together",
    request: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
  },
  { name: "conflicting Content-Length", request: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd" },
  { name: "repeated identical Content-Length", request: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd" },
  { name: "Content-Length list", request: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4, 4\r\n\r\nabcd" },
  { name: "signed Content-Length", request: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +4\r\n\r\nabcd" },
  { name: "obfuscated Transfer-Encoding value", request: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n" },
  { name: "Transfer-Encoding list ending in identity", request: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" },
  { name: "space before the colon", request: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n" },
  { name: "Transfer-Encoding twice", request: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" },
  { name: "bare CR inside a header line", request: "GET / HTTP/1.1\r\nHost: a\r\nX: 1\rY: 2\r\n\r\n" },
  { name: "bare LF line endings", request: "GET /lf HTTP/1.1\nHost: a\nX-Test: 1\n\n" },
  { name: "bare LF after one header", request: "GET / HTTP/1.1\r\nHost: a\nX-Test: 1\r\n\r\n" },
  { name: "obs-fold continuation line", request: "GET / HTTP/1.1\r\nHost: a\r\nX-Test: 1\r\n 2\r\n\r\n" },
  { name: "missing Host on HTTP/1.1", request: "GET / HTTP/1.1\r\nX: 1\r\n\r\n" },
  { name: "two Host headers", request: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n" },
  { name: "invalid method byte", request: "G(T / HTTP/1.1\r\nHost: a\r\n\r\n" },
  { name: "space inside the target", request: "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n" },
  { name: "Transfer-Encoding on HTTP/1.0", request: "POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" },
  { name: "chunk size with a bare LF", request: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4\nabcd\r\n0\r\n\r\n" },
];

Deno.test("smuggling shapes get 400 and nothing reaches the backend", async () => {
  const backend = startRawBackend();
  const proxy = await startCatchAllProxy(`http://127.0.0.1:${backend.port}`);
  try {
    for (const tc of SMUGGLING) {
      const answer = await rawExchange(proxy.port(), tc.request);
      assert.match(answer, /^HTTP\/1\.1 400 /, tc.name);
    }
    assert.deepEqual(backend.received().filter((r) => r.length > 0), [], "no smuggling attempt reached the backend");
    // A clean request on the same proxy still goes through.
    const ok = await rawExchange(proxy.port(), "POST /ok HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nabcd");
    assert.match(ok, /^HTTP\/1\.1 200 /);
  } finally {
    await proxy.close();
    backend.close();
  }
});

Deno.test("what reaches the backend is canonical: CRLF lines, one framing header, body intact", async () => {
  const backend = startRawBackend();
  const proxy = await startCatchAllProxy(`http://127.0.0.1:${backend.port}`);
  try {
    const cases = [
      { name: "plain GET", request: "GET /plain HTTP/1.1\r\nHost: a\r\nX-Test: 1\r\n\r\n", body: "" },
      { name: "chunked body", request: "POST /chunked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n", body: "abcd" },
      { name: "content-length body", request: "POST /cl HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nabcd", body: "abcd" },
    ];
    for (const tc of cases) {
      const before = backend.received().length;
      const answer = await rawExchange(proxy.port(), tc.request);
      assert.match(answer, /^HTTP\/1\.1 200 /, tc.name);
      const forwarded = backend.received().slice(before).join("") || backend.received().join("");
      const head = forwarded.slice(0, forwarded.indexOf("\r\n\r\n"));
      assert.ok(!/[^\r]\n/.test(head), `${tc.name}: every header line ends in CRLF`);
      const framing = head.split("\r\n").filter((l) => /^(content-length|transfer-encoding):/i.test(l));
      assert.ok(framing.length <= 1, `${tc.name}: at most one framing header, got ${framing.join(" | ")}`);
      if (tc.body) assert.ok(forwarded.includes(tc.body), `${tc.name}: body forwarded`);
    }
  } finally {
    await proxy.close();
    backend.close();
  }
});

/**
 * The engine's pure parsers, deterministically: the request-head parser
 * (accepted shapes and every refusal with its status), the chunked
 * decoder and the response-head parser. Fuzzing is in
 * fuzz_engine_parsers_test.ts.
 */

import assert from "node:assert/strict";
import { ChunkedDecoder, ChunkedError, encodeChunk, LAST_CHUNK } from "../lib/engine/chunked.ts";
import { parseRequestHead } from "../lib/engine/request_head.ts";
import { parseResponseHead } from "../lib/engine/response_parser.ts";

const bytes = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const parse = (s: string) => parseRequestHead(bytes(s), 0, s.length);

Deno.test("request head: accepted shapes and what they mean", () => {
  const table: { name: string; head: string; want: Record<string, unknown> }[] = [
    { name: "origin form", head: "GET /a?b=1 HTTP/1.1\r\nHost: a.test\r\n\r\n", want: { method: "GET", target: "/a?b=1", host: "a.test", keepAlive: true, minor: 1 } },
    { name: "absolute form", head: "GET http://x.test/p HTTP/1.1\r\nHost: a.test\r\n\r\n", want: { target: "http://x.test/p" } },
    { name: "asterisk for OPTIONS", head: "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", want: { target: "*" } },
    { name: "authority form for CONNECT", head: "CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n", want: { target: "a.test:443" } },
    { name: "HTTP/1.0 closes by default", head: "GET / HTTP/1.0\r\n\r\n", want: { keepAlive: false, minor: 0, host: "" } },
    { name: "HTTP/1.0 keep-alive when asked", head: "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", want: { keepAlive: true } },
    { name: "HTTP/1.1 close", head: "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", want: { keepAlive: false } },
    { name: "upgrade", head: "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n", want: { upgrade: "websocket" } },
    { name: "Upgrade without Connection: upgrade is no upgrade", head: "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n", want: { upgrade: undefined } },
    { name: "expect", head: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-Continue\r\n\r\n", want: { expectContinue: true, contentLength: 3 } },
    { name: "chunked", head: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n", want: { chunked: true, contentLength: -1 } },
    { name: "leading empty lines are skipped", head: "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", want: { method: "GET" } },
    { name: "values trimmed, names lower-cased", head: "GET / HTTP/1.1\r\nHOST:  a  \r\nX-Y:\tz\t\r\n\r\n", want: { host: "a", headers: ["host", "a", "x-y", "z"] } },
    { name: "obs-text kept as latin1", head: "GET / HTTP/1.1\r\nHost: a\r\nX: caf\xe9\r\n\r\n", want: { headers: ["host", "a", "x", "caf\xe9"] } },
    { name: "lower-case method kept as sent", head: "get / HTTP/1.1\r\nHost: a\r\n\r\n", want: { method: "get" } },
  ];
  for (const tc of table) {
    const r = parse(tc.head);
    assert.equal(r.kind, "head", `${tc.name}: ${JSON.stringify(r)}`);
    if (r.kind !== "head") continue;
    assert.equal(r.end, tc.head.length, `${tc.name}: end`);
    for (const [k, v] of Object.entries(tc.want)) {
      assert.deepEqual((r.head as unknown as Record<string, unknown>)[k], v, `${tc.name}: ${k}`);
    }
  }
});

Deno.test("request head: every refusal has its status", () => {
  const table: [string, string, number][] = [
    ["bare LF", "GET / HTTP/1.1\nHost: a\n\n", 400],
    ["bare LF after the request line", "GET / HTTP/1.1\r\nHost: a\n\r\n", 400],
    ["bare CR in a value", "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r2\r\n\r\n", 400],
    ["obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n", 400],
    ["space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400],
    ["tab before colon", "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", 400],
    ["empty header name", "GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n", 400],
    ["CL and TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400],
    ["two CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", 400],
    ["CL list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\n", 400],
    ["signed CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n", 400],
    ["hex CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x1\r\n\r\n", 400],
    ["TE not chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400],
    ["TE list", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 400],
    ["TE twice", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400],
    ["TE on 1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400],
    ["no Host on 1.1", "GET / HTTP/1.1\r\n\r\n", 400],
    ["two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400],
    ["Host with a slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400],
    ["Host with userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400],
    ["bad method byte", "G@T / HTTP/1.1\r\nHost: a\r\n\r\n", 400],
    ["two spaces", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400],
    ["relative target", "GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", 400],
    ["asterisk for GET", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400],
    ["NUL in a value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", 400],
    ["lower-case version", "GET / http/1.1\r\nHost: a\r\n\r\n", 400],
    ["HTTP/0.9 style", "GET /\r\n\r\n", 400],
    ["HTTP/2.0 on the wire", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505],
    ["HTTP/1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505],
    ["long request line", `GET /${"a".repeat(20_000)} HTTP/1.1\r\nHost: a\r\n\r\n`, 414],
    ["big head", `GET / HTTP/1.1\r\nHost: a\r\nX: ${"a".repeat(40_000)}\r\n\r\n`, 431],
  ];
  for (const [name, head, status] of table) {
    const r = parse(head);
    assert.equal(r.kind, "error", `${name}: ${JSON.stringify(r).slice(0, 120)}`);
    if (r.kind === "error") assert.equal(r.status, status, `${name}: ${r.reason}`);
  }
  // Limits apply while the head is still arriving, too.
  const partial = `GET /${"a".repeat(20_000)}`;
  assert.deepEqual(parse(partial).kind, "error");
  assert.equal(parse("GET / HTTP/1.1\r\nHost: a\r\n").kind, "incomplete");
});

Deno.test("request head: fed in pieces, resuming the scan, gives the same head as all at once", () => {
  const head = "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nX-Long: " + "v".repeat(100) + "\r\n\r\nhello";
  const all = parse(head);
  assert.equal(all.kind, "head");
  const b = bytes(head);
  for (let cut = 1; cut < head.length - 5; cut++) {
    const first = parseRequestHead(b, 0, cut);
    assert.equal(first.kind, "incomplete", `cut ${cut}`);
    const again = parseRequestHead(b, 0, b.length, undefined, first.kind === "incomplete" ? first.scanned : 0);
    assert.deepEqual(again, all, `cut ${cut}`);
  }
});

function decodeAll(input: string, split = input.length): { body: string; consumed: number; done: boolean } {
  const b = bytes(input);
  const d = new ChunkedDecoder();
  let body = "";
  const collect = (from: number, to: number) => (body += String.fromCharCode(...b.subarray(from, to)));
  let consumed = d.decode(b, 0, Math.min(split, b.length), collect);
  if (!d.done && split < b.length) consumed = d.decode(b, consumed, b.length, collect);
  return { body, consumed, done: d.done };
}

Deno.test("chunked: framing, extensions, trailers, refusals, and any split point", () => {
  const ok = "4;ext=1\r\nWiki\r\n5 ;x\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nTrailer: t\r\n\r\nNEXT";
  const whole = decodeAll(ok);
  assert.equal(whole.body, "Wikipedia in\r\n\r\nchunks.");
  assert.equal(whole.done, true);
  assert.equal(ok.slice(whole.consumed), "NEXT", "stops at the end of the body");
  for (let split = 0; split <= ok.length; split++) assert.deepEqual(decodeAll(ok, split), whole, `split ${split}`);
  const bad: [string, string][] = [
    ["bare LF after size", "4\nWiki\r\n0\r\n\r\n"],
    ["no CRLF after data", "4\r\nWikiX\r\n0\r\n\r\n"],
    ["0x prefix", "0x4\r\nWiki\r\n0\r\n\r\n"],
    ["negative", "-4\r\nWiki\r\n0\r\n\r\n"],
    ["empty size", "\r\nWiki\r\n0\r\n\r\n"],
    ["overlong size", "00000000000000001\r\nW\r\n0\r\n\r\n"],
    ["space then garbage", "4 x\r\nWiki\r\n0\r\n\r\n"],
    ["bare LF in trailers", "0\r\nT: 1\n\r\n"],
  ];
  for (const [name, input] of bad) assert.throws(() => decodeAll(input), ChunkedError, name);
  const round = new TextEncoder().encode("héllo");
  const framed = new Uint8Array([...encodeChunk(round), ...LAST_CHUNK]);
  const out: number[] = [];
  const d = new ChunkedDecoder();
  d.decode(framed, 0, framed.length, (f, t) => out.push(...framed.subarray(f, t)));
  assert.deepEqual(new Uint8Array(out), round);
});

Deno.test("response head: framing, 1xx, and refusals", () => {
  const resp = (t: string) => parseResponseHead(bytes(t), 0, t.length);
  const r = resp("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX: y\r\n\r\nok");
  assert.equal(r.kind, "head");
  if (r.kind === "head") {
    assert.equal(r.head.status, 200);
    assert.equal(r.head.contentLength, 2);
    assert.equal(r.head.keepAlive, true);
  }
  const both = resp("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n");
  assert.ok(both.kind === "head" && both.head.chunked && !both.head.keepAlive, "both framings: chunked, not reused");
  const noReason = resp("HTTP/1.0 204\r\n\r\n");
  assert.ok(noReason.kind === "head" && noReason.head.status === 204 && !noReason.head.keepAlive);
  const bad = [
    "HTTP/1.1 abc nonsense\r\n\r\n",
    "\x00\x01\x02 not http\r\n\r\n",
    "HTTP/1.1 200 OK\nX: y\n\n",
    "HTTP/1.1 200 OK\r\nX : y\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
    "HTTP/1.1 200 OK\r\nX: 1\r\n 2\r\n\r\n",
    "HTTP/2 200 OK\r\n\r\n",
  ];
  for (const text of bad) assert.equal(parseResponseHead(bytes(text), 0, text.length).kind, "error", JSON.stringify(text));
});

Deno.test("field names: common ones in any case come out lower-cased, and near misses are not mistaken for them", async () => {
  const { readFieldLine, field } = await import("../lib/engine/field_line.ts");
  const name = (line: string) => {
    assert.equal(readFieldLine(bytes(`${line}\r\n`), 0), undefined, line);
    return field.name;
  };
  assert.equal(name("Content-Length: 4"), "content-length");
  assert.equal(name("HOST: a"), "host");
  assert.equal(name("hOsT: a"), "host");
  assert.equal(name("hosu: a"), "hosu");
  assert.equal(name("Content_Length: 4"), "content_length");
  assert.equal(name("Content-Lengtx: 4"), "content-lengtx");
  assert.equal(name("X-Forwarded-For: 1.2.3.4"), "x-forwarded-for");
  assert.equal(name("X-Forwarded-Fo1: 1"), "x-forwarded-fo1");
  assert.equal(field.value, "1");
});

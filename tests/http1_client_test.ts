/**
 * Portico's own HTTP/1.1 upstream client against raw-socket backends:
 * framings, interim responses, keep-alive reuse, stale pooled connections,
 * and refusal of malformed answers.
 */

import assert from "node:assert/strict";
import { DEFAULT_TIMEOUTS, UpstreamError } from "../lib/proxy/upstream.ts";
import { Http1Pool } from "../lib/proxy/http1_client.ts";
import { serveRaw } from "./fixtures/raw_server.ts";

/** A backend that answers each request head with the next scripted reply (or closes when it is null). */
function scripted(replies: (string | null)[]) {
  const requests: string[] = [];
  const server = serveRaw(async (conn) => {
    const buf = new Uint8Array(65536);
    let pending = "";
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) return;
      pending += new TextDecoder().decode(buf.subarray(0, n));
      while (pending.includes("\r\n\r\n")) {
        const end = pending.indexOf("\r\n\r\n") + 4;
        const head = pending.slice(0, end);
        const len = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
        const chunked = /transfer-encoding: chunked/i.test(head);
        let bodyEnd = end + len;
        if (chunked) {
          const term = pending.indexOf("0\r\n\r\n", end);
          if (term === -1) break;
          bodyEnd = term + 5;
        }
        if (pending.length < bodyEnd) break;
        requests.push(pending.slice(0, bodyEnd));
        pending = pending.slice(bodyEnd);
        const reply = replies.shift();
        if (reply === null || reply === undefined) return;
        await conn.write(new TextEncoder().encode(reply));
      }
    }
  });
  return {
    url: new URL(server.url),
    get connections() {
      return server.accepted;
    },
    requests,
    closeAll: () => server.closeConnections(),
    close: () => server.close(),
  };
}

const get = (target: URL, method = "GET", body: ReadableStream<Uint8Array> | null = null, headers: Record<string, string> = {}) => ({
  target,
  method,
  pathAndQuery: "/p?q=%20",
  headers: { host: "a.test", ...headers },
  body,
});

Deno.test("http1 client: response framings", async () => {
  const cases: { name: string; reply: string; method?: string; status: number; body: string; reused: boolean }[] = [
    { name: "content-length", reply: "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello", status: 200, body: "hello", reused: true },
    {
      name: "chunked with extension and trailer",
      reply: "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nx-trailer: 1\r\n\r\n",
      status: 200,
      body: "abcde",
      reused: true,
    },
    { name: "204 has no body", reply: "HTTP/1.1 204 No Content\r\n\r\n", status: 204, body: "", reused: true },
    { name: "HEAD has no body", method: "HEAD", reply: "HTTP/1.1 200 OK\r\ncontent-length: 99\r\n\r\n", status: 200, body: "", reused: true },
    {
      name: "100 Continue is skipped",
      reply: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok",
      status: 201,
      body: "ok",
      reused: true,
    },
    { name: "connection: close is not reused", reply: "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 1\r\n\r\nx", status: 200, body: "x", reused: false },
    { name: "HTTP/1.0 without keep-alive is not reused", reply: "HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\ny", status: 200, body: "y", reused: false },
  ];
  for (const tc of cases) {
    const backend = scripted([tc.reply, tc.reply]);
    const pool = new Http1Pool(DEFAULT_TIMEOUTS);
    try {
      const res = await pool.request(get(backend.url, tc.method));
      assert.equal(res.status, tc.status, tc.name);
      assert.equal(await res.text(), tc.body, tc.name);
      assert.equal(res.headers.get("transfer-encoding"), null, `${tc.name}: hop-by-hop removed`);
      const again = await pool.request(get(backend.url, tc.method));
      await again.text();
      assert.equal(backend.connections, tc.reused ? 1 : 2, `${tc.name}: connection reuse`);
      assert.match(backend.requests[0], /^(GET|HEAD) \/p\?q=%20 HTTP\/1\.1\r\nhost: a\.test\r\n\r\n$/, tc.name);
    } finally {
      pool.close();
      backend.close();
    }
  }
});

Deno.test("http1 client: a large body streams; a body without length streams until close", async () => {
  const big = "z".repeat(200_000);
  const backend = scripted([
    `HTTP/1.1 200 OK\r\ncontent-length: ${big.length}\r\n\r\n${big}`,
    `HTTP/1.1 200 OK\r\n\r\nuntil-close`,
  ]);
  const pool = new Http1Pool(DEFAULT_TIMEOUTS);
  try {
    assert.equal((await (await pool.request(get(backend.url))).text()).length, big.length);
    const closing = pool.request(get(backend.url));
    const res = await closing;
    setTimeout(() => backend.closeAll(), 50);
    assert.equal(await res.text(), "until-close");
  } finally {
    pool.close();
    backend.close();
  }
});

Deno.test("http1 client: request bodies are framed by length or chunked", async () => {
  const backend = scripted(["HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"]);
  const pool = new Http1Pool(DEFAULT_TIMEOUTS);
  const stream = (text: string) => new Blob([text]).stream();
  try {
    await pool.request(get(backend.url, "POST", stream("hello"), { "content-length": "5" }));
    await pool.request(get(backend.url, "POST", stream("chunky")));
    assert.match(backend.requests[0], /content-length: 5\r\n\r\nhello$/);
    assert.match(backend.requests[1], /transfer-encoding: chunked\r\n\r\n6\r\nchunky\r\n0\r\n\r\n$/);
  } finally {
    pool.close();
    backend.close();
  }
});

Deno.test("http1 client: a pooled connection closed by the upstream is retried once for bodiless requests", async () => {
  const backend = scripted(["HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\na", "HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nb"]);
  const pool = new Http1Pool(DEFAULT_TIMEOUTS);
  try {
    assert.equal(await (await pool.request(get(backend.url))).text(), "a");
    backend.closeAll(); // the idle pooled connection dies
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(await (await pool.request(get(backend.url))).text(), "b");
    assert.equal(backend.connections, 2);
  } finally {
    pool.close();
    backend.close();
  }
});

Deno.test("http1 client: malformed or ambiguous answers are 502, silence is 504", async () => {
  const cases: { name: string; reply: string | null; status: number }[] = [
    { name: "garbage status line", reply: "HTTP/9 OK\r\n\r\n", status: 502 },
    { name: "conflicting lengths", reply: "HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab", status: 502 },
    { name: "space before colon", reply: "HTTP/1.1 200 OK\r\ncontent-length : 1\r\n\r\na", status: 502 },
    { name: "obs-fold", reply: "HTTP/1.1 200 OK\r\nx-a: 1\r\n continued\r\ncontent-length: 0\r\n\r\n", status: 502 },
    { name: "unknown transfer coding", reply: "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n", status: 502 },
    { name: "closed before answering", reply: null, status: 502 },
    { name: "closed mid small body", reply: "HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc", status: 502 },
  ];
  for (const tc of cases) {
    const backend = scripted([tc.reply]);
    const pool = new Http1Pool(DEFAULT_TIMEOUTS);
    try {
      const attempt = pool.request(get(backend.url));
      if (tc.name === "closed mid small body") setTimeout(() => backend.closeAll(), 50);
      await assert.rejects(attempt, (err: unknown) => err instanceof UpstreamError && err.status === tc.status, tc.name);
    } finally {
      pool.close();
      backend.close();
    }
  }
  const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  (async () => {
    for await (const c of silent) held.push(c);
  })().catch(() => {});
  const pool = new Http1Pool({ ...DEFAULT_TIMEOUTS, responseHeaderTimeout: 100 });
  try {
    await assert.rejects(
      pool.request(get(new URL(`http://127.0.0.1:${(silent.addr as Deno.NetAddr).port}`))),
      (err: unknown) => err instanceof UpstreamError && err.status === 504,
    );
  } finally {
    pool.close();
    silent.close();
    for (const c of held) c.close();
  }
});

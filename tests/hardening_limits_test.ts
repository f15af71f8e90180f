/**
 * Limits on plain-HTTP entrypoints: head size (431), body read deadline
 * (408), write deadline (truncation), in-flight cap (503), and slow clients
 * that must not block others. The guarded listener's head and idle
 * timeouts are tested directly (it is not wired in; see limits.ts).
 */

import assert from "node:assert/strict";
import { rawExchange } from "./fixtures/raw_backend.ts";
import { startEchoBackend } from "./fixtures/backend.ts";
import { startTestProxy } from "./fixtures/proxy.ts";
import {
  bodyWithDeadline,
  type ConnectionLimits,
  DEFAULT_MAX_HEADER_BYTES,
  headBytes,
} from "../lib/server/limits.ts";
import type { ConnectionInfo } from "../lib/contracts.ts";
import { type EngineLimits, HttpEngine, sweepInterval } from "../lib/engine/connection.ts";
import { writeWebResponse } from "../lib/engine/response_head.ts";

/** A plain listener on the HTTP/1.1 engine answering every request with `respond`. */
function startEngineListener(options: {
  hostname: string;
  port: number;
  limits: Omit<EngineLimits, "maxRequestLine">;
  handler: () => Promise<Response>;
}) {
  const engine = new HttpEngine({
    limits: { ...options.limits, maxRequestLine: 16 * 1024 },
    handler: async (ex) => writeWebResponse(ex, await options.handler()),
  });
  const socket = Deno.listen({ hostname: options.hostname, port: options.port });
  const port = (socket.addr as Deno.NetAddr).port;
  const accepting = (async () => {
    for await (const conn of socket) {
      const info: ConnectionInfo = { remoteAddr: (conn.remoteAddr as Deno.NetAddr).hostname, tls: false, port };
      engine.serve(conn, info);
    }
  })().catch(() => {});
  return {
    port,
    async shutdown() {
      socket.close();
      await accepting;
      await engine.shutdown();
    },
  };
}

const enc = new TextEncoder();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function routeTo(url: string): string {
  return `
[http.routers.all]
rule = "PathPrefix(\`/\`)"
service = "b"
[http.services.b.loadBalancer]
servers = [{ url = "${url}" }]
`;
}

/** Reads from `conn` until it closes or `ms` passes; returns the text and whether it closed. */
async function readUntilClosed(
  conn: Deno.Conn,
  ms: number,
  enough: (text: string) => boolean = () => false,
): Promise<{ text: string; closed: boolean; after: number }> {
  const start = Date.now();
  const buf = new Uint8Array(65536);
  let text = "";
  while (Date.now() - start < ms) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const r = await Promise.race([
      conn.read(buf).catch(() => null),
      new Promise<"t">((res) => (timer = setTimeout(() => res("t"), ms - (Date.now() - start)))),
    ]);
    clearTimeout(timer);
    if (r === "t") break;
    if (r === null) return { text, closed: true, after: Date.now() - start };
    text += new TextDecoder("latin1").decode(buf.subarray(0, r));
    if (enough(text)) break;
  }
  return { text, closed: false, after: Date.now() - start };
}

Deno.test("headBytes counts the request line and header lines as on the wire", () => {
  const cases = [
    { name: "bare GET", request: new Request("http://a/"), min: "GET / HTTP/1.1\r\n\r\n".length },
    {
      name: "with a header",
      request: new Request("http://a/x?y", { headers: { "x-a": "12345" } }),
      min: 30,
    },
  ];
  for (const tc of cases) {
    const n = headBytes(tc.request);
    assert.ok(n >= tc.min && n < tc.min + 40, `${tc.name}: ${n}`);
  }
  const big = new Request("http://a/", { headers: { "x-big": "a".repeat(100_000) } });
  assert.ok(headBytes(big) > 100_000);
  assert.ok(headBytes(big, 10) > 10, "stops early but still reports over the limit");
});

Deno.test("sweepInterval: a quarter of the smallest active timeout, within [10 ms, 1 s]; none without timeouts", () => {
  const table: [number, number, number, number][] = [
    [0, 0, 0, 0],
    [200, 0, 0, 50],
    [0, 0, 20, 10],
    [60_000, 180_000, 0, 1000],
    [800, 1200, 400, 100],
  ];
  for (const [readTimeout, idleTimeout, writeTimeout, want] of table) {
    assert.equal(sweepInterval({ readTimeout, idleTimeout, writeTimeout }), want, `${readTimeout}/${idleTimeout}/${writeTimeout}`);
  }
});

Deno.test("bodyWithDeadline passes a prompt body through and fails a stalled one", async () => {
  const prompt = new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(enc.encode("abc"));
      c.close();
    },
  });
  let fired = false;
  const text = await new Response(
    bodyWithDeadline(prompt, performance.now() + 1000, () => (fired = true)),
  ).text();
  assert.equal(text, "abc");
  await sleep(20);
  assert.equal(fired, false);

  const stalled = new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(enc.encode("a"));
    },
  });
  const started = performance.now();
  await assert.rejects(
    new Response(bodyWithDeadline(stalled, performance.now() + 100, () => (fired = true))).text(),
    /readTimeout/,
  );
  assert.ok(fired);
  assert.ok(performance.now() - started < 1000);
});

Deno.test("a request head over maxHeaderBytes gets 431, however large", async () => {
  const backend = startEchoBackend("b");
  const proxy = await startTestProxy({ dynamic: routeTo(backend.url) });
  try {
    const over = DEFAULT_MAX_HEADER_BYTES + 1000;
    const big = await rawExchange(
      proxy.port(),
      `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${"a".repeat(over)}\r\n\r\n`,
    );
    assert.match(big, /^HTTP\/1\.1 431 /);
    const huge = await rawExchange(
      proxy.port(),
      `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${"a".repeat(70_000)}\r\n\r\n`,
    );
    assert.match(huge, /^HTTP\/1\.1 431 /);
    const fine = await rawExchange(
      proxy.port(),
      `GET / HTTP/1.1\r\nHost: a\r\nX-Ok: ${"a".repeat(8000)}\r\n\r\n`,
    );
    assert.match(fine, /^HTTP\/1\.1 200 /);
    assert.equal(backend.hits, 1, "only the acceptable request reached the backend");
  } finally {
    await proxy.close();
    await backend.close();
  }
});

Deno.test("entryPoints.NAME.http.maxHeaderBytes sets the 431 limit", async () => {
  const backend = startEchoBackend("b");
  const proxy = await startTestProxy({
    dynamic: routeTo(backend.url),
    entryPointExtra: { web: `[entryPoints.web.http]\nmaxHeaderBytes = 2048\n` },
  });
  try {
    const over = await rawExchange(
      proxy.port(),
      `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${"a".repeat(3000)}\r\n\r\n`,
    );
    assert.match(over, /^HTTP\/1\.1 431 /);
    const under = await rawExchange(
      proxy.port(),
      `GET / HTTP/1.1\r\nHost: a\r\nX-Ok: ${"a".repeat(1000)}\r\n\r\n`,
    );
    assert.match(under, /^HTTP\/1\.1 200 /);
  } finally {
    await proxy.close();
    await backend.close();
  }
});

Deno.test("a request body slower than readTimeout gets 408 and does not hold the proxy", async () => {
  const backend = startEchoBackend("b");
  const proxy = await startTestProxy({
    dynamic: routeTo(backend.url),
    entryPointExtra: {
      web: `[entryPoints.web.transport.respondingTimeouts]\nreadTimeout = "600ms"\n`,
    },
  });
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port() });
    await conn.write(enc.encode("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nab"));
    const result = await readUntilClosed(conn, 4000, (t) => /\r\n\r\nRequest Timeout/.test(t));
    conn.close();
    assert.match(
      result.text,
      /^HTTP\/1\.1 408 /,
      `got ${JSON.stringify(result.text.slice(0, 40))}`,
    );
    assert.ok(result.after < 3000, `answered after ${result.after} ms`);
    // A prompt body of the same size is fine.
    const ok = await fetch(proxy.url() + "/", { method: "POST", body: "x".repeat(100) });
    assert.equal(ok.status, 200);
    assert.equal((await ok.json()).bodyLength, 100);
  } finally {
    await proxy.close();
    await backend.close();
  }
});

Deno.test("writeTimeout aborts a response the client has not received in time", async () => {
  // A backend that trickles its body for 5 s.
  const slow = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
    let n = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    return new Response(
      new ReadableStream<Uint8Array>({
        start(c) {
          timer = setInterval(() => {
            if (n++ >= 25) {
              clearInterval(timer);
              c.close();
            } else c.enqueue(enc.encode("x"));
          }, 200);
        },
        cancel() {
          clearInterval(timer);
        },
      }),
    );
  });
  const proxy = await startTestProxy({
    dynamic: routeTo(`http://127.0.0.1:${slow.addr.port}`),
    entryPointExtra: {
      web: `[entryPoints.web.transport.respondingTimeouts]\nwriteTimeout = "800ms"\n`,
    },
  });
  try {
    const started = Date.now();
    const res = await fetch(proxy.url() + "/");
    assert.equal(res.status, 200);
    await assert.rejects(res.text(), "the body is cut, not completed");
    const took = Date.now() - started;
    assert.ok(took < 3000, `cut after ${took} ms, not after the backend's 5 s`);
    const again = await fetch(proxy.url() + "/");
    assert.equal(again.status, 200, "the proxy carries on");
    await again.body?.cancel();
  } finally {
    await proxy.close();
    await slow.shutdown();
  }
});

Deno.test("maxConnections caps sockets: beyond it an immediate 503", async () => {
  const backend = startEchoBackend("b");
  const proxy = await startTestProxy({
    dynamic: routeTo(backend.url),
    entryPointExtra: { web: `[entryPoints.web.transport]\nmaxConnections = 2\n` },
  });
  try {
    const started = Date.now();
    const statuses = await Promise.all(
      [0, 1, 2, 3, 4].map(async (i) => {
        await sleep(i === 0 ? 0 : 100); // the first two are in flight when the rest arrive
        const res = await fetch(proxy.url() + "/slow/800");
        await res.body?.cancel();
        return { status: res.status, at: Date.now() - started };
      }),
    );
    const ok = statuses.filter((s) => s.status === 200);
    const refused = statuses.filter((s) => s.status === 503);
    assert.equal(ok.length, 2, JSON.stringify(statuses));
    assert.equal(refused.length, 3, JSON.stringify(statuses));
    for (const r of refused) assert.ok(r.at < 700, `503 was immediate (${r.at} ms)`);
    const after = await fetch(proxy.url() + "/");
    assert.equal(after.status, 200, "slots are released");
    await after.body?.cancel();
  } finally {
    await proxy.close();
    await backend.close();
  }
});

Deno.test("slowloris clients (one header byte per second) do not block normal requests", async () => {
  const backend = startEchoBackend("b");
  const proxy = await startTestProxy({ dynamic: routeTo(backend.url) });
  const slow: Deno.Conn[] = [];
  let stop = false;
  try {
    for (let i = 0; i < 5; i++) {
      slow.push(await Deno.connect({ hostname: "127.0.0.1", port: proxy.port() }));
    }
    const dribble = (async () => {
      const head = "GET / HTTP/1.1\r\nHost: a\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaa";
      for (let i = 0; i < head.length && !stop; i++) {
        for (const c of slow) await c.write(enc.encode(head[i])).catch(() => {});
        await sleep(1000);
      }
    })();
    const latencies: number[] = [];
    const until = Date.now() + 3000;
    while (Date.now() < until) {
      const t = performance.now();
      const res = await fetch(proxy.url() + "/");
      assert.equal(res.status, 200);
      await res.body?.cancel();
      latencies.push(performance.now() - t);
      await sleep(50);
    }
    stop = true;
    await dribble;
    latencies.sort((a, b) => a - b);
    const p99 = latencies[Math.floor(latencies.length * 0.99)];
    assert.ok(latencies.length > 10, "requests kept flowing");
    assert.ok(p99 < 500, `p99 ${p99.toFixed(1)} ms with slow clients connected`);
  } finally {
    for (const c of slow) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    await proxy.close();
    await backend.close();
  }
});

Deno.test("engine: slowloris and silent connections are cut at readTimeout, idle ones at idleTimeout", async () => {
  const listener = startEngineListener({
    hostname: "127.0.0.1",
    port: 0,
    limits: {
      readTimeout: 800,
      idleTimeout: 1200,
      writeTimeout: 0,
      maxHeaderBytes: DEFAULT_MAX_HEADER_BYTES,
      maxConnections: 50,
    },
    handler: () => Promise.resolve(new Response("ok")),
  });
  try {
    const loris = await Deno.connect({ hostname: "127.0.0.1", port: listener.port });
    const silent = await Deno.connect({ hostname: "127.0.0.1", port: listener.port });
    const idle = await Deno.connect({ hostname: "127.0.0.1", port: listener.port });
    await idle.write(enc.encode("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
    let stop = false;
    const dribble = (async () => {
      for (const ch of "GET / HTTP/1.1\r\nHost: a\r\nX-Slow: aaaaaaaaaa") {
        if (stop) break;
        await loris.write(enc.encode(ch)).catch(() => (stop = true));
        await sleep(250);
      }
    })();
    // Meanwhile normal requests are served.
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`http://127.0.0.1:${listener.port}/`);
      assert.equal(await res.text(), "ok");
    }
    const [l, s, i] = await Promise.all([
      readUntilClosed(loris, 4000),
      readUntilClosed(silent, 4000),
      readUntilClosed(idle, 4000),
    ]);
    stop = true;
    await dribble;
    assert.ok(l.closed && l.after < 2500, `slowloris closed after ${l.after} ms`);
    assert.equal(l.text, "", "no response to an unfinished head");
    assert.ok(s.closed && s.after < 2500, `silent connection closed after ${s.after} ms`);
    assert.ok(i.closed, "idle keep-alive connection closed");
    assert.match(i.text, /^HTTP\/1\.1 200 /, "the idle connection's request was answered first");
    for (const c of [loris, silent, idle]) {
      try {
        c.close();
      } catch { /* closed */ }
    }
  } finally {
    await listener.shutdown();
  }
});

Deno.test("engine: connections beyond maxConnections get a raw 503 and are closed", async () => {
  const listener = startEngineListener({
    hostname: "127.0.0.1",
    port: 0,
    limits: {
      readTimeout: 5000,
      idleTimeout: 5000,
      writeTimeout: 0,
      maxHeaderBytes: DEFAULT_MAX_HEADER_BYTES,
      maxConnections: 2,
    },
    handler: () => Promise.resolve(new Response("ok")),
  });
  const held: Deno.Conn[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      held.push(await Deno.connect({ hostname: "127.0.0.1", port: listener.port }));
    }
    await sleep(100);
    const extra = await Deno.connect({ hostname: "127.0.0.1", port: listener.port });
    const r = await readUntilClosed(extra, 2000);
    extra.close();
    assert.match(r.text, /^HTTP\/1\.1 503 /);
    assert.ok(r.closed);
    for (const c of held) c.close();
    held.length = 0;
    await sleep(200);
    const res = await fetch(`http://127.0.0.1:${listener.port}/`);
    assert.equal(await res.text(), "ok", "slots come back when connections close");
  } finally {
    for (const c of held) c.close();
    await listener.shutdown();
  }
});

/**
 * Backends that misbehave (raw sockets): a malformed response gives 502, a
 * body cut short reaches the client as a truncation, silence gives 504 via
 * `responseHeaderTimeout`. Afterwards other routes work and the proxy's open
 * file descriptors and memory are back near their baseline.
 */

import assert from "node:assert/strict";
import { startEchoBackend } from "./fixtures/backend.ts";
import { startTestProxy } from "./fixtures/proxy.ts";
import { serveRaw } from "./fixtures/raw_server.ts";

const enc = new TextEncoder();

/** A backend that reads a request head, then does `behave` with the socket. */
function rawBackend(behave: (conn: Deno.Conn) => Promise<void>) {
  return serveRaw(async (conn) => {
    const buf = new Uint8Array(65536);
    let head = "";
    while (!head.includes("\r\n\r\n")) {
      const n = await conn.read(buf);
      if (n === null) return;
      head += new TextDecoder().decode(buf.subarray(0, n));
    }
    await behave(conn);
  });
}

const closeQuietly = (c: Deno.Conn) => {
  try {
    c.close();
  } catch { /* closed */ }
};

function openFds(): number {
  return [...Deno.readDirSync("/proc/self/fd")].length;
}

Deno.test("misbehaving backends: 502, truncation, 504; other routes carry on; fds and RSS back to baseline", async () => {
  const malformed = rawBackend(async (c) => {
    await c.write(enc.encode("HTTP/1.1 abc nonsense\r\n\r\n"));
    closeQuietly(c);
  });
  const garbage = rawBackend(async (c) => {
    await c.write(enc.encode("\x00\x01\x02 not http at all\r\n\r\n"));
    closeQuietly(c);
  });
  const midBody = rawBackend(async (c) => {
    await c.write(
      enc.encode("HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n" + "x".repeat(1000)),
    );
    await new Promise((r) => setTimeout(r, 50));
    closeQuietly(c);
  });
  // Never answers; notices (and closes its end) only when the proxy gives up,
  // so the fd count below measures the proxy, not this fixture.
  const silent = rawBackend(async (c) => {
    const buf = new Uint8Array(1024);
    while (await c.read(buf) !== null) { /* swallow */ }
    closeQuietly(c);
  });
  const good = startEchoBackend("good");
  const route = (name: string, url: string, extra = "") => `
[http.routers.${name}]
rule = "PathPrefix(\`/${name}\`)"
service = "${name}"
[http.services.${name}.loadBalancer]
servers = [{ url = "${url}" }]
${extra}
`;
  const proxy = await startTestProxy({
    dynamic: route("malformed", malformed.url) + route("garbage", garbage.url) +
      route("midbody", midBody.url) +
      route("silent", silent.url, `serversTransport = "quick"\n`) + route("good", good.url) + `
[http.serversTransports.quick.forwardingTimeouts]
responseHeaderTimeout = "300ms"
`,
  });
  try {
    const get = async (path: string) => {
      const res = await fetch(proxy.url() + path);
      return {
        status: res.status,
        body: await res.text().catch((e) => `ERR:${(e as Error).name}`),
      };
    };
    // Warm up every path once so pools and lazily loaded code are in the baseline.
    await get("/good");
    const fdsBefore = openFds();
    const rssBefore = Deno.memoryUsage().rss;

    for (let round = 0; round < 20; round++) {
      assert.equal((await get("/malformed")).status, 502, "malformed status line");
      assert.equal((await get("/garbage")).status, 502, "not HTTP at all");
      const cut = await get("/midbody");
      assert.equal(cut.status, 200, "headers had arrived");
      assert.ok(
        cut.body.startsWith("ERR:"),
        `the client sees the truncation, got ${cut.body.length} bytes`,
      );
      const started = Date.now();
      assert.equal((await get("/silent")).status, 504, "never answers");
      assert.ok(Date.now() - started < 2000, "504 at the responseHeaderTimeout, not a hang");
      const ok = await get("/good");
      assert.equal(ok.status, 200, "other routes keep working");
    }

    // Sockets to the bad backends are released (pooled good ones may stay).
    let fdsAfter = openFds();
    for (let i = 0; i < 40 && fdsAfter > fdsBefore + 4; i++) {
      await new Promise((r) => setTimeout(r, 50));
      fdsAfter = openFds();
    }
    assert.ok(
      fdsAfter <= fdsBefore + 4,
      `fds: ${fdsBefore} before, ${fdsAfter} after 100 bad requests`,
    );
    const rssAfter = Deno.memoryUsage().rss;
    assert.ok(
      rssAfter - rssBefore < 64 * 1024 * 1024,
      `RSS grew by ${((rssAfter - rssBefore) / 1048576).toFixed(1)} MiB`,
    );
    console.log(
      `fds ${fdsBefore} -> ${fdsAfter}; RSS ${(rssBefore / 1048576).toFixed(0)} -> ${
        (rssAfter / 1048576).toFixed(0)
      } MiB`,
    );
  } finally {
    await proxy.close();
    for (const b of [malformed, garbage, midBody, silent]) b.close();
    await good.close();
  }
});

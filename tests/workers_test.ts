/**
 * `[server] workers`: the main isolate and its data-plane workers all
 * listen on each plain entrypoint (SO_REUSEPORT). Connections spread over
 * them, every listener serves the same generation, internal services and
 * metrics answer through main, and a worker that crashes is restarted
 * while the other listeners' connections carry on.
 */

import assert from "node:assert/strict";
import { startEchoBackend } from "./fixtures/backend.ts";
import { startTestProxy, type TestProxy } from "./fixtures/proxy.ts";
import { rawGet, tlsGet } from "./fixtures/http_client.ts";

const dynamic = (backend: string, prefix: string) => `
[http.routers.app]
rule = "Host(\`w.test\`)"
service = "app"
[http.services.app.loadBalancer]
servers = [{ url = "${backend}${prefix}" }]
`;

const STATIC = `
[server]
workers = 3
[ping]
[metrics.prometheus]
`;

/** A keep-alive client connection that sends one request at a time. */
class KeepAlive {
  private buffered = new Uint8Array(0);
  private constructor(private readonly conn: Deno.TcpConn) {}

  static async open(port: number): Promise<KeepAlive> {
    return new KeepAlive(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  /** The response status and body, or undefined when the connection was closed. */
  async get(path: string): Promise<{ status: number; body: string } | undefined> {
    try {
      await this.conn.write(new TextEncoder().encode(`GET ${path} HTTP/1.1\r\nHost: w.test\r\n\r\n`));
      for (;;) {
        const text = new TextDecoder().decode(this.buffered);
        const end = text.indexOf("\r\n\r\n");
        if (end >= 0) {
          const length = Number(/\r\ncontent-length: *(\d+)/i.exec(text.slice(0, end))?.[1] ?? 0);
          if (this.buffered.length >= end + 4 + length) {
            const body = new TextDecoder().decode(this.buffered.subarray(end + 4, end + 4 + length));
            this.buffered = this.buffered.slice(end + 4 + length);
            return { status: Number(text.slice(9, 12)), body };
          }
        }
        const chunk = new Uint8Array(16 * 1024);
        const n = await this.conn.read(chunk);
        if (n === null) return undefined;
        const next = new Uint8Array(this.buffered.length + n);
        next.set(this.buffered);
        next.set(chunk.subarray(0, n), this.buffered.length);
        this.buffered = next;
      }
    } catch {
      return undefined;
    }
  }

  close(): void {
    try {
      this.conn.close();
    } catch { /* closed */ }
  }
}

/** Connections accepted on `entryPoint` by each listener (index 0 is main). */
async function accepted(proxy: TestProxy, entryPoint: string): Promise<number[]> {
  return (await proxy.server.acceptedConnections()).map((counts) => counts[entryPoint] ?? 0);
}

const diff = (after: number[], before: number[]) => after.map((n, i) => n - (before[i] ?? 0));

async function freshRequests(port: number, count: number, path = "/", host = "w.test") {
  const results = [];
  for (let i = 0; i < count; i += 10) {
    const batch = Array.from({ length: Math.min(10, count - i) }, () => rawGet(port, path, { host }));
    results.push(...await Promise.all(batch));
  }
  return results;
}

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

Deno.test({
  name: "workers: connections spread over every listener, all serve one generation, reloads reach each",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const backend = startEchoBackend("b");
    const proxy = await startTestProxy({
      dynamic: dynamic(backend.url, "/v1"),
      entryPoints: ["web", "traefik"],
      extraStatic: STATIC,
    });
    try {
      assert.ok(proxy.server.workers, "a worker pool was started");
      const before = await accepted(proxy, "web");
      assert.equal(before.length, 3, "main plus two workers listen on web");
      const first = await freshRequests(proxy.port(), 60);
      assert.deepEqual(first.filter((r) => r.status !== 200).map((r) => r.status), []);
      assert.ok(first.every((r) => JSON.parse(r.body).path === "/v1/"), "every listener serves generation 1");
      const spread = diff(await accepted(proxy, "web"), before);
      assert.equal(spread.reduce((a, b) => a + b, 0), 60, `every connection counted once: ${spread}`);
      assert.ok(spread.every((n) => n > 0), `each of the 3 listeners took connections: ${spread}`);

      await proxy.writeDynamic(dynamic(backend.url, "/v2"));
      await proxy.server.workers.applied(proxy.server.watcher.current.generation);
      const second = await freshRequests(proxy.port(), 60);
      assert.ok(second.every((r) => r.status === 200 && JSON.parse(r.body).path === "/v2/"), "the reload reached every worker");

      // Internal services live in main; a worker answers them by asking main.
      const pingBefore = await accepted(proxy, "traefik");
      const pings = await freshRequests(proxy.port("traefik"), 30, "/ping", "localhost");
      assert.ok(pings.every((r) => r.status === 200 && r.body === "OK"), "ping answers through every listener");
      const pingSpread = diff(await accepted(proxy, "traefik"), pingBefore);
      assert.ok(pingSpread.slice(1).some((n) => n > 0), `workers took ping connections: ${pingSpread}`);

      // Metrics are main's, with the workers' requests replayed into them.
      await new Promise((r) => setTimeout(r, 200));
      const metrics = await rawGet(proxy.port("traefik"), "/metrics", { host: "localhost" });
      const served = [...metrics.body.matchAll(/^traefik_entrypoint_requests_total\{[^}]*entrypoint="web"[^}]*\} (\d+)/gm)]
        .reduce((sum, m) => sum + Number(m[1]), 0);
      assert.equal(served, 120, "requests served by every listener are counted once");
    } finally {
      await proxy.close();
      await backend.close();
    }
  },
});

Deno.test({
  name: "workers: a crashed worker is restarted; connections on the other listeners keep working",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const backend = startEchoBackend("b");
    Deno.env.set("PORTICO_TEST_HOOKS", "1");
    const proxy = await startTestProxy({ dynamic: dynamic(backend.url, "/v1"), extraStatic: STATIC });
    Deno.env.delete("PORTICO_TEST_HOOKS");
    const clients: KeepAlive[] = [];
    try {
      const before = await accepted(proxy, "web");
      for (let i = 0; i < 30; i++) clients.push(await KeepAlive.open(proxy.port()));
      const opened = await Promise.all(clients.map((c) => c.get("/")));
      assert.ok(opened.every((r) => r?.status === 200), "every keep-alive connection was served");
      const spread = diff(await accepted(proxy, "web"), before);
      assert.equal(spread.reduce((a, b) => a + b, 0), 30, `${spread}`);
      assert.ok(spread[1] > 0, `worker 1 holds some connections: ${spread}`);

      proxy.server.workers!.crash(1);
      await until("the restart", () => proxy.server.workers!.restarts === 1);
      assert.ok(proxy.logs.some((l) => l.includes("data-plane worker crashed")), "the crash was logged");

      const again = await Promise.all(clients.map((c) => c.get("/")));
      const alive = again.filter((r) => r?.status === 200).length;
      assert.equal(alive, 30 - spread[1], `only the crashed worker's ${spread[1]} connections were lost`);

      // The new worker serves the generation in force from its first connection.
      await proxy.writeDynamic(dynamic(backend.url, "/v2"));
      await proxy.server.workers!.applied(proxy.server.watcher.current.generation);
      const restartedBefore = await accepted(proxy, "web");
      assert.equal(restartedBefore[1], 0, "the restarted worker has a fresh listener");
      const after = await freshRequests(proxy.port(), 60);
      assert.ok(after.every((r) => r.status === 200 && JSON.parse(r.body).path === "/v2/"));
      const spreadAfter = diff(await accepted(proxy, "web"), restartedBefore);
      assert.ok(spreadAfter[1] > 0, `the restarted worker takes connections: ${spreadAfter}`);
    } finally {
      for (const c of clients) c.close();
      await proxy.close();
      await backend.close();
    }
  },
});

Deno.test({
  name: "workers: TLS on a shared plain port is carried to main's TLS side with the real client",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const backend = startEchoBackend("secure");
    const proxy = await startTestProxy({
      dynamic: dynamic(backend.url, "/s") + "[http.routers.app.tls]\n",
      extraStatic: STATIC,
    });
    try {
      const before = await accepted(proxy, "web");
      const answers = [];
      for (let i = 0; i < 30; i += 10) answers.push(...await Promise.all(Array.from({ length: 10 }, () => tlsGet(proxy.port(), "/x", "w.test"))));
      for (const text of answers) {
        assert.match(text, /^HTTP\/1\.1 200 /, text.slice(0, 80));
        const echo = JSON.parse(text.slice(text.indexOf("\r\n\r\n") + 4));
        assert.equal(echo.headers["x-forwarded-proto"], "https");
        assert.equal(echo.headers["x-forwarded-for"], "127.0.0.1");
      }
      const spread = diff(await accepted(proxy, "web"), before);
      assert.ok(spread.slice(1).some((n) => n > 0), `workers accepted TLS connections: ${spread}`);
    } finally {
      await proxy.close();
      await backend.close();
    }
  },
});

/** A TCP echo backend: reads until the client half-closes, answers `echo:` and what it read, closes. */
function startTcpEcho(): { port: number; close(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  (async () => {
    for await (const conn of listener) {
      (async () => {
        const parts: Uint8Array[] = [];
        const buf = new Uint8Array(16 * 1024);
        for (;;) {
          const n = await conn.read(buf).catch(() => null);
          if (n === null) break;
          parts.push(buf.slice(0, n));
        }
        await conn.write(new TextEncoder().encode("echo:")).catch(() => {});
        for (const p of parts) await conn.write(p).catch(() => {});
        conn.close();
      })();
    }
  })().catch(() => {});
  return { port: (listener.addr as Deno.NetAddr).port, close: () => listener.close() };
}

/** One TCP exchange: `payload` sent and half-closed, the whole answer read. */
async function tcpEcho(port: number, payload: Uint8Array): Promise<number> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    for (let off = 0; off < payload.length;) off += await conn.write(payload.subarray(off));
    await conn.closeWrite();
    let got = 0;
    const buf = new Uint8Array(16 * 1024);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) return got;
      got += n;
    }
  } finally {
    conn.close();
  }
}

/** The value of one Prometheus sample, 0 when absent. */
function sample(body: string, name: string, labels: string): number {
  const line = body.split("\n").find((l) => l.startsWith(`${name}{${labels}} `));
  return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : 0;
}

Deno.test({
  name: "workers: TCP router counters of every listener are summed into main's Prometheus metrics",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const echo = startTcpEcho();
    const proxy = await startTestProxy({
      dynamic: `
[tcp.routers.echo]
rule = "HostSNI(\`*\`)"
service = "echo"
entryPoints = ["tcp"]
[tcp.services.echo.loadBalancer]
[[tcp.services.echo.loadBalancer.servers]]
address = "127.0.0.1:${echo.port}"
`,
      entryPoints: ["tcp", "traefik"],
      extraStatic: STATIC,
    });
    try {
      const before = await accepted(proxy, "tcp");
      const payload = new Uint8Array(1000).fill(120);
      const COUNT = 40;
      for (let i = 0; i < COUNT; i += 10) {
        const got = await Promise.all(Array.from({ length: 10 }, () => tcpEcho(proxy.port("tcp"), payload)));
        assert.deepEqual(got, Array(10).fill(1005));
      }
      const spread = diff(await accepted(proxy, "tcp"), before);
      assert.equal(spread.reduce((a, b) => a + b, 0), COUNT);
      assert.ok(spread.slice(1).some((n) => n > 0), `workers took TCP connections: ${spread}`);
      const router = 'router="echo@file"';
      let body = "";
      // Workers send their totals every half second: wait for them, then every figure must add up.
      await until("the workers' TCP totals in main's metrics", async () => {
        body = (await rawGet(proxy.port("traefik"), "/metrics", { host: "localhost" })).body;
        return sample(body, "portico_tcp_router_connections_total", router) >= COUNT;
      });
      assert.equal(sample(body, "portico_tcp_router_connections_total", router), COUNT, "each connection counted once");
      assert.equal(sample(body, "portico_tcp_router_bytes_total", `${router},direction="in"`), COUNT * 1000);
      assert.equal(sample(body, "portico_tcp_router_bytes_total", `${router},direction="out"`), COUNT * 1005);
      await until("no TCP connection open", async () => {
        body = (await rawGet(proxy.port("traefik"), "/metrics", { host: "localhost" })).body;
        return sample(body, "portico_tcp_router_open_connections", router) === 0;
      });
    } finally {
      await proxy.close();
      echo.close();
    }
  },
});

Deno.test("workers: a count outside 1..64 is refused with the key named", async () => {
  const { validateStatic } = await import("../lib/config/static.ts");
  assert.throws(() => validateStatic({ server: { workers: 0 } }, "p.toml"), /p\.toml: server\.workers: expected an integer from 1 to 64 or "auto"/);
  assert.equal(validateStatic({ server: { workers: "auto" } }, "p.toml").server.workers, "auto");
  assert.equal(validateStatic({}, "p.toml").server.workers, 1);
});

/**
 * TCP routers over real sockets: HostSNI(`*`) in front of a real
 * redis-server, a server-first protocol, TLS passthrough chosen by SNI (the
 * client sees the backend's own certificate), a terminating TCP router,
 * HTTP, HTTPS and TCP routers together on one port, half-close, the two
 * TCP middlewares, PROXY headers towards a real nginx that parses them,
 * and hot reload keeping established connections.
 */

import assert from "node:assert/strict";
import { startTestProxy, type TestProxy } from "./fixtures/proxy.ts";
import { startEchoBackend as startHttpBackend } from "./fixtures/backend.ts";
import { makePki, makeServerCert } from "./fixtures/pki.ts";
import { freePort, requireBinary, waitForPort } from "./fixtures/ports.ts";
import { startRedis } from "./fixtures/redis.ts";

const enc = new TextEncoder(), dec = new TextDecoder();

/** Reads until EOF (or `limit` bytes), with a deadline so a bug fails instead of hanging. */
async function readAll(conn: Deno.Conn, ms = 5000): Promise<string> {
  const parts: Uint8Array[] = [];
  const buf = new Uint8Array(16 * 1024);
  const timer = setTimeout(() => conn.close(), ms);
  try {
    for (;;) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) break;
      parts.push(buf.slice(0, n));
    }
  } finally {
    clearTimeout(timer);
  }
  return parts.map((p) => dec.decode(p)).join("");
}

/** Reads until `text` has arrived. */
async function readUntil(conn: Deno.Conn, text: string, ms = 5000): Promise<string> {
  let got = "";
  const buf = new Uint8Array(4096);
  const deadline = Date.now() + ms;
  while (!got.includes(text)) {
    if (Date.now() > deadline) throw new Error(`no ${JSON.stringify(text)} within ${ms} ms; got ${JSON.stringify(got)}`);
    const n = await conn.read(buf);
    if (n === null) throw new Error(`closed before ${JSON.stringify(text)}; got ${JSON.stringify(got)}`);
    got += dec.decode(buf.subarray(0, n));
  }
  return got;
}

/** An echo backend: reads until the client half-closes, then answers everything it read, then closes. */
function startTcpEcho(): { port: number; close(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  (async () => {
    for await (const conn of listener) {
      (async () => {
        const got = await readAll(conn);
        await conn.write(enc.encode(`echo:${got}`)).catch(() => {});
        conn.close();
      })();
    }
  })().catch(() => {});
  return { port: (listener.addr as Deno.NetAddr).port, close: () => listener.close() };
}

/** A server-first backend (SMTP-like): greets, then echoes lines. */
function startGreeter(): { port: number; close(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  (async () => {
    for await (const conn of listener) {
      (async () => {
        try {
          await conn.write(enc.encode("220 greeter ready\r\n"));
          const buf = new Uint8Array(1024);
          for (;;) {
            const n = await conn.read(buf);
            if (n === null) break;
            await conn.write(enc.encode(`250 ${dec.decode(buf.subarray(0, n)).trim()}\r\n`));
          }
        } catch { /* closed */ }
        try {
          conn.close();
        } catch { /* closed */ }
      })();
    }
  })().catch(() => {});
  return { port: (listener.addr as Deno.NetAddr).port, close: () => listener.close() };
}

/** A TLS backend that says who it is and closes. */
function startTlsBackend(dir: string, name: string): { port: number; close(): void } {
  const listener = Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    cert: Deno.readTextFileSync(`${dir}/${name}.pem`),
    key: Deno.readTextFileSync(`${dir}/${name}.key`),
  });
  (async () => {
    for await (const conn of listener) {
      conn.handshake().then(async () => {
        await conn.write(enc.encode(`backend-${name}\n`));
        conn.close();
      }).catch(() => conn.close());
    }
  })().catch(() => {});
  return { port: (listener.addr as Deno.NetAddr).port, close: () => listener.close() };
}

/** A TLS client to 127.0.0.1:port that sends `serverName` as SNI and trusts only `ca`. */
async function tlsTo(port: number, serverName: string, ca: string, alpnProtocols?: string[]): Promise<Deno.TlsConn> {
  const tcp = await Deno.connect({ hostname: "127.0.0.1", port });
  const tls = await Deno.startTls(tcp, { hostname: serverName, caCerts: [ca], alpnProtocols });
  await tls.handshake();
  return tls;
}

interface Fixture {
  proxy: TestProxy;
  backendCa: string;
  porticoCa: string;
  echo: { port: number; close(): void };
  greeter: { port: number; close(): void };
  tlsA: { port: number; close(): void };
  tlsB: { port: number; close(): void };
  http: { url: string; close(): Promise<void> };
  dir: string;
  close(): Promise<void>;
}

type Parts = Pick<Fixture, "echo" | "greeter" | "tlsA" | "tlsB" | "http" | "dir">;

/** The test's dynamic config; `smtpBackend` replaces the greeter behind the `smtp` entrypoint. */
function dynamicConfig(f: Parts, smtpBackend = `127.0.0.1:${f.greeter.port}`): string {
  const dir = f.dir;
  return `
[http.routers.web]
rule = "Host(\`plain.test\`)"
service = "http"
entryPoints = ["edge"]
[http.routers.secure]
rule = "Host(\`c.test\`)"
service = "http"
entryPoints = ["edge"]
tls = {}
[http.services.http.loadBalancer]
[[http.services.http.loadBalancer.servers]]
url = "${f.http.url}"

[tcp.routers.echo]
rule = "HostSNI(\`*\`)"
service = "echo"
entryPoints = ["tcp"]
[tcp.routers.greet]
rule = "HostSNI(\`*\`)"
service = "greeter"
entryPoints = ["smtp"]
[tcp.routers.a]
rule = "HostSNI(\`a.test\`)"
service = "a"
entryPoints = ["edge"]
tls = { passthrough = true }
[tcp.routers.b]
rule = "HostSNI(\`b.test\`) || HostSNI(\`www.b.test\`)"
service = "b"
entryPoints = ["edge"]
tls = { passthrough = true }
[tcp.routers.terminated]
rule = "HostSNI(\`t.test\`)"
service = "echo"
entryPoints = ["edge"]
tls = {}
[tcp.services.echo.loadBalancer]
[[tcp.services.echo.loadBalancer.servers]]
address = "127.0.0.1:${f.echo.port}"
[tcp.services.greeter.loadBalancer]
[[tcp.services.greeter.loadBalancer.servers]]
address = "${smtpBackend}"
[tcp.services.a.loadBalancer]
[[tcp.services.a.loadBalancer.servers]]
address = "127.0.0.1:${f.tlsA.port}"
[tcp.services.b.loadBalancer]
[[tcp.services.b.loadBalancer.servers]]
address = "127.0.0.1:${f.tlsB.port}"

[[tls.certificates]]
certFile = "${dir}/portico/edge.pem"
keyFile = "${dir}/portico/edge.key"
`;
}

async function startFixture(): Promise<Fixture> {
  const dir = await Deno.makeTempDir({ prefix: "portico-tcp-" });
  await Deno.mkdir(`${dir}/backend`);
  await Deno.mkdir(`${dir}/portico`);
  // Two CAs: a client trusting only the backends' CA can finish a handshake only with a backend.
  await makePki(`${dir}/backend`);
  await makePki(`${dir}/portico`);
  await makeServerCert(`${dir}/backend`, "a", ["a.test"]);
  await makeServerCert(`${dir}/backend`, "b", ["b.test", "www.b.test"]);
  await makeServerCert(`${dir}/portico`, "edge", ["c.test", "t.test"]);
  const parts = {
    echo: startTcpEcho(),
    greeter: startGreeter(),
    tlsA: startTlsBackend(`${dir}/backend`, "a"),
    tlsB: startTlsBackend(`${dir}/backend`, "b"),
    http: startHttpBackend("http"),
    dir,
  };
  const proxy = await startTestProxy({
    entryPoints: ["edge", "tcp", "smtp"],
    dynamic: dynamicConfig(parts),
    entryPointExtra: { tcp: `[entryPoints.tcp.transport.lifeCycle]\ngraceTimeOut = "300ms"\n` },
  });
  return {
    ...parts,
    proxy,
    backendCa: Deno.readTextFileSync(`${dir}/backend/ca.pem`),
    porticoCa: Deno.readTextFileSync(`${dir}/portico/ca.pem`),
    async close() {
      await proxy.close();
      parts.echo.close();
      parts.greeter.close();
      parts.tlsA.close();
      parts.tlsB.close();
      await parts.http.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("TCP routing over real sockets", async (t) => {
  const f = await startFixture();
  try {
    await t.step("every TCP router is enabled", () => {
      const states = [...f.proxy.server.watcher.current.tcp.routers.values()];
      assert.deepEqual(states.filter((r) => r.status !== "enabled").map((r) => [r.name, r.errors]), []);
      assert.equal(states.length, 5);
    });

    await t.step("HostSNI(`*`) relays to a server that speaks first, before the client sends a byte", async () => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: f.proxy.port("smtp") });
      try {
        assert.match(await readUntil(conn, "\r\n"), /^220 greeter ready/);
        await conn.write(enc.encode("HELO portico\r\n"));
        assert.match(await readUntil(conn, "250"), /250 HELO portico/);
      } finally {
        conn.close();
      }
    });

    await t.step("half-close: the client stops writing and still reads the whole answer", async () => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: f.proxy.port("tcp") });
      const payload = "x".repeat(200_000);
      await conn.write(enc.encode(payload)).then(async function writeRest(n): Promise<void> {
        let off = n;
        while (off < payload.length) off += await conn.write(enc.encode(payload.slice(off)));
      });
      await conn.closeWrite();
      const answer = await readAll(conn);
      assert.equal(answer.length, "echo:".length + payload.length);
      assert.equal(answer, `echo:${payload}`);
    });

    await t.step("TLS passthrough: SNI picks the backend and the client sees the backend's certificate", async () => {
      for (const [sni, who] of [["a.test", "backend-a"], ["b.test", "backend-b"], ["www.b.test", "backend-b"], ["A.TEST", "backend-a"]]) {
        const conn = await tlsTo(f.proxy.port("edge"), sni, f.backendCa);
        assert.equal(await readAll(conn), `${who}\n`, sni);
      }
      // Trusting Portico's CA instead fails the handshake: Portico did not terminate it.
      await assert.rejects(() => tlsTo(f.proxy.port("edge"), "a.test", f.porticoCa));
    });

    await t.step("one entrypoint: plain HTTP, HTTPS by Host, and a terminating TCP router", async () => {
      const plain = await Deno.connect({ hostname: "127.0.0.1", port: f.proxy.port("edge") });
      await plain.write(enc.encode("GET /x HTTP/1.1\r\nHost: plain.test\r\nConnection: close\r\n\r\n"));
      assert.match(await readAll(plain), /^HTTP\/1\.1 200 /);

      const https = await tlsTo(f.proxy.port("edge"), "c.test", f.porticoCa, ["http/1.1"]);
      await https.write(enc.encode("GET /hello HTTP/1.1\r\nHost: c.test\r\nConnection: close\r\n\r\n"));
      assert.match(await readAll(https), /^HTTP\/1\.1 200 /);

      const terminated = await tlsTo(f.proxy.port("edge"), "t.test", f.porticoCa);
      await terminated.write(enc.encode("over tls"));
      await terminated.closeWrite();
      assert.equal(await readAll(terminated), "echo:over tls");

      // TLS ended in place (node:tls over the replayed ClientHello): a large body both ways, half-closed.
      const big = "y".repeat(300_000);
      const bulk = await tlsTo(f.proxy.port("edge"), "t.test", f.porticoCa);
      for (let off = 0; off < big.length;) off += await bulk.write(enc.encode(big.slice(off, off + 65536)));
      await bulk.closeWrite();
      assert.equal(await readAll(bulk), `echo:${big}`);

    });

    await t.step("a real redis-cli round trip through HostSNI(`*`)", async () => {
      const redis = await startRedis();
      try {
        const cli = await requireBinary("redis-cli", "redis-server");
        await f.proxy.writeDynamic(dynamicConfig(f, redis.endpoint));
        const run = async (...args: string[]) => {
          const out = await new Deno.Command(cli, { args: ["-h", "127.0.0.1", "-p", String(f.proxy.port("smtp")), ...args] }).output();
          assert.equal(out.code, 0, dec.decode(out.stderr));
          return dec.decode(out.stdout).trim();
        };
        assert.equal(await run("PING"), "PONG");
        assert.equal(await run("SET", "portico:k", "through tcp"), "OK");
        assert.equal(await run("GET", "portico:k"), "through tcp");
      } finally {
        await redis.stop();
      }
    });
  } finally {
    await f.close();
  }
});

Deno.test("TCP middlewares: ipAllowList refuses, inFlightConn caps connections per client", async () => {
  const echo = startTcpEcho();
  const proxy = await startTestProxy({
    entryPoints: ["open", "office", "capped", "traefik"],
    extraStatic: `[metrics.prometheus]\n`,
    dynamic: `
[tcp.routers.open]
rule = "HostSNI(\`*\`)"
service = "echo"
entryPoints = ["open"]
middlewares = ["loopback"]
[tcp.routers.office]
rule = "HostSNI(\`*\`)"
service = "echo"
entryPoints = ["office"]
middlewares = ["office-only"]
[tcp.routers.capped]
rule = "HostSNI(\`*\`)"
service = "echo"
entryPoints = ["capped"]
middlewares = ["one-each"]
[tcp.middlewares.loopback.ipAllowList]
sourceRange = ["127.0.0.1/32"]
[tcp.middlewares.office-only.ipAllowList]
sourceRange = ["10.0.0.0/8"]
[tcp.middlewares.one-each.inFlightConn]
amount = 1
[tcp.services.echo.loadBalancer]
[[tcp.services.echo.loadBalancer.servers]]
address = "127.0.0.1:${echo.port}"
`,
  });
  try {
    const roundTrip = async (ep: string, text: string) => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port(ep) });
      await conn.write(enc.encode(text));
      await conn.closeWrite().catch(() => {});
      return readAll(conn);
    };
    assert.equal(await roundTrip("open", "hi"), "echo:hi");
    assert.equal(await roundTrip("office", "hi"), "", "a client outside sourceRange gets nothing");

    const first = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port("capped") });
    await first.write(enc.encode("one"));
    // Give the first connection time to be admitted before the second arrives.
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(await roundTrip("capped", "two"), "", "a second connection from the same IP is refused");
    await first.closeWrite();
    assert.equal(await readAll(first), "echo:one");
    assert.equal(await roundTrip("capped", "three"), "echo:three", "the slot is free again once the first ended");
    const metrics = await (await fetch(`${proxy.url("traefik")}/metrics`)).text();
    const sample = (line: string) => {
      const m = metrics.split("\n").find((l) => l.startsWith(line + " "));
      return m === undefined ? undefined : Number(m.slice(line.length + 1));
    };
    assert.equal(sample('portico_tcp_router_connections_total{router="capped@file"}'), 2);
    assert.equal(sample('portico_tcp_router_refused_total{router="capped@file"}'), 1);
    assert.equal(sample('portico_tcp_router_refused_total{router="office@file"}'), 1);
    assert.equal(sample('portico_tcp_router_bytes_total{router="capped@file",direction="in"}'), "onethree".length);
    assert.equal(sample('portico_tcp_router_bytes_total{router="capped@file",direction="out"}'), "echo:oneecho:three".length);
    assert.equal(sample('portico_tcp_router_open_connections{router="capped@file"}'), 0);
  } finally {
    await proxy.close();
    echo.close();
  }
});

Deno.test("PROXY headers out: a real nginx reads the client address Portico sends (v1 and v2)", async () => {
  const nginx = await requireBinary("nginx", "nginx");
  const dir = await Deno.makeTempDir({ prefix: "portico-nginx-stream-" });
  const ports = { v1: freePort(), v2: freePort() };
  await Deno.writeTextFile(
    `${dir}/nginx.conf`,
    `load_module /usr/lib/nginx/modules/ngx_stream_module.so;
daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 64; }
stream {
  server { listen 127.0.0.1:${ports.v1} proxy_protocol; return "v1 $proxy_protocol_addr:$proxy_protocol_port\\n"; }
  server { listen 127.0.0.1:${ports.v2} proxy_protocol; return "v2 $proxy_protocol_addr:$proxy_protocol_port\\n"; }
}
`,
  );
  const child = new Deno.Command(nginx, { args: ["-c", `${dir}/nginx.conf`, "-p", dir], stdout: "null", stderr: "piped" }).spawn();
  const proxy = await startTestProxy({
    entryPoints: ["v1", "v2"],
    // The client's own PROXY header (from a "load balancer") is read, and its address passed on.
    entryPointExtra: {
      v1: `[entryPoints.v1.proxyProtocol]\ninsecure = true\n`,
      v2: `[entryPoints.v2.proxyProtocol]\ninsecure = true\n`,
    },
    dynamic: `
[tcp.routers.v1]
rule = "HostSNI(\`*\`)"
service = "v1"
entryPoints = ["v1"]
[tcp.routers.v2]
rule = "HostSNI(\`*\`)"
service = "v2"
entryPoints = ["v2"]
[tcp.services.v1.loadBalancer]
proxyProtocol = { version = 1 }
[[tcp.services.v1.loadBalancer.servers]]
address = "127.0.0.1:${ports.v1}"
[tcp.services.v2.loadBalancer]
serversTransport = "pp2"
[[tcp.services.v2.loadBalancer.servers]]
address = "127.0.0.1:${ports.v2}"
[tcp.serversTransports.pp2.proxyProtocol]
version = 2
`,
  });
  try {
    await waitForPort(ports.v1);
    await waitForPort(ports.v2);
    for (const v of ["v1", "v2"]) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port(v) });
      await conn.write(enc.encode("PROXY TCP4 203.0.113.7 127.0.0.1 40000 443\r\n"));
      const answer = await readAll(conn);
      // nginx only answers after it parsed a PROXY header; the address is the one the client's header gave.
      assert.match(answer, new RegExp(`^${v} 203\\.0\\.113\\.7:\\d+\\n$`), answer);
    }
  } finally {
    await proxy.close();
    child.kill("SIGTERM");
    await child.status;
    await child.stderr.cancel();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("TCP hot reload: established connections stay; a removed router's close after the grace time", async () => {
  const greeter = startGreeter();
  const config = (routers: string[]) =>
    routers.map((r) => `[tcp.routers.${r}]\nrule = "HostSNI(\`*\`)"\nservice = "greet"\nentryPoints = ["${r}"]\n`).join("") +
    `[tcp.services.greet.loadBalancer]\n[[tcp.services.greet.loadBalancer.servers]]\naddress = "127.0.0.1:${greeter.port}"\n`;
  const proxy = await startTestProxy({
    entryPoints: ["one", "two"],
    dynamic: config(["one"]),
    entryPointExtra: { one: `[entryPoints.one.transport.lifeCycle]\ngraceTimeOut = "300ms"\n` },
  });
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port("one") });
    await readUntil(conn, "220");
    await proxy.writeDynamic(config(["one", "two"]));
    await conn.write(enc.encode("still here\r\n"));
    assert.match(await readUntil(conn, "250"), /250 still here/, "a reload that keeps the router keeps the connection");

    await proxy.writeDynamic(config(["two"]));
    const removedAt = Date.now();
    await conn.write(enc.encode("within grace\r\n"));
    assert.match(await readUntil(conn, "250"), /within grace/);
    assert.equal(await readAll(conn, 3000), "", "closed once the grace time is over");
    const waited = Date.now() - removedAt;
    assert.ok(waited >= 250 && waited < 2500, `closed after ${waited} ms`);

    // New connections follow the new routers: "one" has none now (the HTTP side answers, nothing is relayed).
    const two = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port("two") });
    assert.match(await readUntil(two, "220"), /220 greeter/);
    two.close();
  } finally {
    await proxy.close();
    greeter.close();
  }
});

Deno.test("a bad TCP router is disabled alone, with its error", async () => {
  const echo = startTcpEcho();
  const proxy = await startTestProxy({
    entryPoints: ["good", "bad"],
    dynamic: `
[tcp.routers.good]
rule = "HostSNI(\`*\`)"
service = "echo"
entryPoints = ["good"]
[tcp.routers.sni-without-tls]
rule = "HostSNI(\`db.test\`)"
service = "echo"
entryPoints = ["bad"]
[tcp.routers.missing]
rule = "HostSNI(\`*\`)"
service = "nowhere"
entryPoints = ["bad"]
[tcp.routers.badrule]
rule = "Host(\`x\`)"
service = "echo"
entryPoints = ["bad"]
[tcp.services.echo.loadBalancer]
[[tcp.services.echo.loadBalancer.servers]]
address = "127.0.0.1:${echo.port}"
`,
  });
  try {
    const routers = proxy.server.watcher.current.tcp.routers;
    assert.equal(routers.get("good@file")?.status, "enabled");
    assert.match(routers.get("sni-without-tls@file")!.errors.join(), /HostSNI matcher, but the router has no tls/);
    assert.match(routers.get("missing@file")!.errors.join(), /TCP service "nowhere@file" does not exist/);
    assert.match(routers.get("badrule@file")!.errors.join(), /unknown matcher "Host"/);
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port("good") });
    await conn.write(enc.encode("ok"));
    await conn.closeWrite();
    assert.equal(await readAll(conn), "echo:ok");
  } finally {
    await proxy.close();
    echo.close();
  }
});

Deno.test("an http.tls entrypoint takes TCP routers: its port switches to ClientHello sniffing and back", async () => {
  const dir = await Deno.makeTempDir({ prefix: "portico-tcp-websecure-" });
  await Deno.mkdir(`${dir}/backend`);
  await Deno.mkdir(`${dir}/portico`);
  await makePki(`${dir}/backend`);
  await makePki(`${dir}/portico`);
  await makeServerCert(`${dir}/backend`, "a", ["a.test"]);
  await makeServerCert(`${dir}/portico`, "edge", ["c.test"]);
  const backendCa = Deno.readTextFileSync(`${dir}/backend/ca.pem`);
  const porticoCa = Deno.readTextFileSync(`${dir}/portico/ca.pem`);
  const tlsA = startTlsBackend(`${dir}/backend`, "a");
  const http = startHttpBackend("http");
  const base = `
[http.routers.secure]
rule = "Host(\`c.test\`)"
service = "http"
[http.services.http.loadBalancer]
[[http.services.http.loadBalancer.servers]]
url = "${http.url}"
[[tls.certificates]]
certFile = "${dir}/portico/edge.pem"
keyFile = "${dir}/portico/edge.key"
`;
  const withTcp = base + `
[tcp.routers.a]
rule = "HostSNI(\`a.test\`)"
service = "a"
tls = { passthrough = true }
[tcp.services.a.loadBalancer]
[[tcp.services.a.loadBalancer.servers]]
address = "127.0.0.1:${tlsA.port}"
`;
  const proxy = await startTestProxy({
    entryPoints: ["websecure"],
    entryPointExtra: { websecure: `[entryPoints.websecure.http.tls]\n` },
    dynamic: base,
  });
  const https = async () => {
    const conn = await tlsTo(proxy.port("websecure"), "c.test", porticoCa, ["http/1.1"]);
    await conn.write(enc.encode("GET / HTTP/1.1\r\nHost: c.test\r\nConnection: close\r\n\r\n"));
    return (await readAll(conn)).split("\r\n")[0];
  };
  const switches = () => proxy.logs.filter((l) => l.includes("entrypoint listening mode switched")).map((l) => JSON.parse(l).mode);
  try {
    assert.equal(await https(), "HTTP/1.1 200 OK");
    // No TCP route yet: the TLS listener serves the port, a passthrough name gets Portico's TLS side.
    await assert.rejects(() => tlsTo(proxy.port("websecure"), "a.test", backendCa));

    await proxy.writeDynamic(withTcp);
    await waitFor(() => switches().length === 1);
    assert.deepEqual(switches(), ["sniff"]);
    const conn = await tlsTo(proxy.port("websecure"), "a.test", backendCa);
    assert.equal(await readAll(conn), "backend-a\n");
    assert.equal(await https(), "HTTP/1.1 200 OK", "HTTPS routers still answer while the port sniffs");

    await proxy.writeDynamic(base);
    await waitFor(() => switches().length === 2);
    assert.deepEqual(switches(), ["sniff", "tls"]);
    assert.equal(await https(), "HTTP/1.1 200 OK");
    await assert.rejects(() => tlsTo(proxy.port("websecure"), "a.test", backendCa));
  } finally {
    await proxy.close();
    tlsA.close();
    await http.close();
    await Deno.remove(dir, { recursive: true });
  }
});

async function waitFor(check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A backend that answers its name and closes. */
function startNamed(name: string): { port: number; close(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  (async () => {
    for await (const conn of listener) {
      conn.write(enc.encode(name)).catch(() => {}).finally(() => conn.close());
    }
  })().catch(() => {});
  return { port: (listener.addr as Deno.NetAddr).port, close: () => listener.close() };
}

Deno.test("TCP services: weighted spreads by weight, TLS to the backend verifies it, an unreachable backend is counted", async () => {
  const dir = await Deno.makeTempDir({ prefix: "portico-tcp-services-" });
  await makePki(dir);
  await makeServerCert(dir, "a", ["a.test"]);
  const heavy = startNamed("heavy"), light = startNamed("light");
  const tlsA = startTlsBackend(dir, "a");
  const closed = freePort();
  const proxy = await startTestProxy({
    entryPoints: ["split", "upstream-tls", "down"],
    dynamic: `
[tcp.routers.split]
rule = "HostSNI(\`*\`)"
service = "split"
entryPoints = ["split"]
[tcp.routers.upstream-tls]
rule = "HostSNI(\`*\`)"
service = "secure"
entryPoints = ["upstream-tls"]
[tcp.routers.down]
rule = "HostSNI(\`*\`)"
service = "down"
entryPoints = ["down"]
[tcp.services.split.weighted]
services = [{ name = "heavy", weight = 3 }, { name = "light", weight = 1 }]
[tcp.services.heavy.loadBalancer]
servers = [{ address = "127.0.0.1:${heavy.port}" }]
[tcp.services.light.loadBalancer]
servers = [{ address = "127.0.0.1:${light.port}" }]
[tcp.services.secure.loadBalancer]
serversTransport = "backend-ca"
servers = [{ address = "127.0.0.1:${tlsA.port}", tls = true }]
[tcp.serversTransports.backend-ca]
dialTimeout = "2s"
[tcp.serversTransports.backend-ca.tls]
serverName = "a.test"
rootCAs = ["${dir}/ca.pem"]
[tcp.services.down.loadBalancer]
servers = [{ address = "127.0.0.1:${closed}" }]
`,
  });
  const fetchOnce = async (ep: string) => readAll(await Deno.connect({ hostname: "127.0.0.1", port: proxy.port(ep) }));
  try {
    const got: string[] = [];
    for (let i = 0; i < 8; i++) got.push(await fetchOnce("split"));
    assert.equal(got.filter((g) => g === "heavy").length, 6, got.join());
    assert.equal(got.filter((g) => g === "light").length, 2, got.join());

    assert.equal(await fetchOnce("upstream-tls"), "backend-a\n", "TLS to the backend, verified against rootCAs as a.test");

    assert.equal(await fetchOnce("down"), "", "the client is closed when the backend refuses");
    const stats = proxy.server.watcher.current.tcp.stats().find((s) => s.router === "down@file");
    assert.equal(stats?.counters.failed, 1);
  } finally {
    await proxy.close();
    heavy.close();
    light.close();
    tlsA.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("maxConnections counts connections held by TCP routes", async () => {
  const greeter = startGreeter();
  const proxy = await startTestProxy({
    entryPoints: ["capped"],
    entryPointExtra: { capped: `[entryPoints.capped.transport]\nmaxConnections = 2\n` },
    dynamic: `
[tcp.routers.greet]
rule = "HostSNI(\`*\`)"
service = "greet"
[tcp.services.greet.loadBalancer]
servers = [{ address = "127.0.0.1:${greeter.port}" }]
`,
  });
  const open: Deno.Conn[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port("capped") });
      open.push(conn);
      assert.match(await readUntil(conn, "\r\n"), /^220 /);
    }
    const third = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port("capped") });
    const answer = await readAll(third, 3000);
    assert.doesNotMatch(answer, /220 greeter/, "the third connection is refused, not relayed");
    open[0].close();
    open.shift();
    await new Promise((r) => setTimeout(r, 100));
    const fourth = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port("capped") });
    open.push(fourth);
    assert.match(await readUntil(fourth, "\r\n"), /^220 /, "a slot freed by a closed TCP connection is reused");
  } finally {
    for (const c of open) c.close();
    await proxy.close();
    greeter.close();
  }
});

Deno.test("TCP backpressure: a client that does not read stops the backend's writes, nothing piles up in Portico", async () => {
  let written = 0;
  let stop = false;
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const chunk = new Uint8Array(256 * 1024);
  const serving = (async () => {
    const conn = await listener.accept();
    try {
      // Bounded: at most 512 MB, and only until the test says stop.
      while (!stop && written < 512 * 1024 * 1024) written += await conn.write(chunk);
    } catch { /* closed */ }
    try {
      conn.close();
    } catch { /* closed */ }
  })();
  const proxy = await startTestProxy({
    entryPoints: ["flood"],
    dynamic: `
[tcp.routers.flood]
rule = "HostSNI(\`*\`)"
service = "flood"
[tcp.services.flood.loadBalancer]
servers = [{ address = "127.0.0.1:${(listener.addr as Deno.NetAddr).port}" }]
`,
  });
  const client = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port("flood") });
  try {
    await new Promise((r) => setTimeout(r, 1000));
    const stalledAt = written;
    // Kernel buffers on both loopback hops hold some megabytes; 512 MB would mean no backpressure.
    assert.ok(stalledAt < 64 * 1024 * 1024, `the backend wrote ${stalledAt} bytes to a client that reads nothing`);
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(written - stalledAt < 4 * 1024 * 1024, "the backend stays stalled while the client does not read");
    // Reading resumes the flow.
    const buf = new Uint8Array(1024 * 1024);
    let read = 0;
    while (read < 32 * 1024 * 1024) {
      const n = await client.read(buf);
      if (n === null) break;
      read += n;
    }
    assert.ok(written > stalledAt, "the backend writes again once the client reads");
  } finally {
    stop = true;
    client.close();
    await proxy.close();
    listener.close();
    await serving;
  }
});

/** A Postgres-like backend: answers an SSLRequest with S, then TLS (node:tls over the socket), says hello. */
async function startPostgresLike(dir: string, name: string): Promise<{ port: number; close(): void; requests: () => number }> {
  const net = await import("node:net");
  const tls = await import("node:tls");
  let requests = 0;
  const server = net.createServer((sock) => {
    sock.once("data", (first: Uint8Array) => {
      if (first.length !== 8 || first[4] !== 0x04 || first[5] !== 0xd2) return sock.destroy();
      requests++;
      sock.write("S");
      const secure = new tls.TLSSocket(sock, {
        isServer: true,
        cert: Deno.readTextFileSync(`${dir}/${name}.pem`),
        key: Deno.readTextFileSync(`${dir}/${name}.key`),
      });
      secure.on("secure", () => secure.end(`pg-${name}\n`));
      secure.on("error", () => sock.destroy());
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return { port: (server.address() as { port: number }).port, close: () => server.close(), requests: () => requests };
}

/** A Postgres client's opening: SSLRequest, the S, then TLS to `serverName`. */
async function postgresTls(port: number, serverName: string, ca: string): Promise<Deno.TlsConn> {
  const tcp = await Deno.connect({ hostname: "127.0.0.1", port });
  await tcp.write(new Uint8Array([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]));
  const answer = new Uint8Array(1);
  assert.equal(await tcp.read(answer), 1);
  assert.equal(String.fromCharCode(answer[0]), "S");
  const tls = await Deno.startTls(tcp, { hostname: serverName, caCerts: [ca] });
  await tls.handshake();
  return tls;
}

Deno.test("Postgres STARTTLS: the SSLRequest is answered, then SNI routes to a passthrough or terminating TCP router", async () => {
  const dir = await Deno.makeTempDir({ prefix: "portico-tcp-pg-" });
  await Deno.mkdir(`${dir}/backend`);
  await Deno.mkdir(`${dir}/portico`);
  await makePki(`${dir}/backend`);
  await makePki(`${dir}/portico`);
  await makeServerCert(`${dir}/backend`, "db", ["db.test"]);
  await makeServerCert(`${dir}/portico`, "edge", ["pgt.test"]);
  const pg = await startPostgresLike(`${dir}/backend`, "db");
  const echo = startTcpEcho();
  const proxy = await startTestProxy({
    entryPoints: ["pg"],
    dynamic: `
[tcp.routers.db]
rule = "HostSNI(\`db.test\`)"
service = "db"
tls = { passthrough = true }
[tcp.routers.terminated]
rule = "HostSNI(\`pgt.test\`)"
service = "echo"
tls = {}
[tcp.services.db.loadBalancer]
servers = [{ address = "127.0.0.1:${pg.port}" }]
[tcp.services.echo.loadBalancer]
servers = [{ address = "127.0.0.1:${echo.port}" }]
[[tls.certificates]]
certFile = "${dir}/portico/edge.pem"
keyFile = "${dir}/portico/edge.key"
`,
  });
  try {
    // Passthrough: the backend gets the SSLRequest replayed and its own TLS reaches the client.
    const conn = await postgresTls(proxy.port("pg"), "db.test", Deno.readTextFileSync(`${dir}/backend/ca.pem`));
    assert.equal(await readAll(conn), "pg-db\n");
    assert.equal(pg.requests(), 1);
    // Terminating: TLS ends at Portico, the backend sees the plain bytes only.
    const ended = await postgresTls(proxy.port("pg"), "pgt.test", Deno.readTextFileSync(`${dir}/portico/ca.pem`));
    await ended.write(enc.encode("startup"));
    await ended.closeWrite();
    assert.equal(await readAll(ended), "echo:startup");
    // An SNI no TLS TCP router names is closed: HTTPS routers cannot speak Postgres.
    await assert.rejects(() => postgresTls(proxy.port("pg"), "other.test", Deno.readTextFileSync(`${dir}/portico/ca.pem`)));
  } finally {
    await proxy.close();
    pg.close();
    echo.close();
    await Deno.remove(dir, { recursive: true });
  }
});

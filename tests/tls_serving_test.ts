import assert from "node:assert/strict";
import tls from "node:tls";
import { parseCertificate, type StoredCertificate } from "../lib/tls/certificate.ts";
import { type AcceptedConnections, startTlsListener } from "../lib/tls/listener.ts";
import { HttpEngine } from "../lib/engine/connection.ts";
import type { Exchange } from "../lib/engine/exchange.ts";
import { writeWebResponse } from "../lib/engine/response_head.ts";
import { DEFAULT_MAX_HEADER_BYTES } from "../lib/server/limits.ts";
import { generateSelfSigned } from "../lib/tls/self_signed.ts";
import { CertificateStore } from "../lib/tls/store.ts";

async function cert(names: string[], source = "file"): Promise<StoredCertificate> {
  const { certPem, keyPem } = await generateSelfSigned({ commonName: names[0], dnsNames: names });
  return parseCertificate(names.join(","), certPem, keyPem, source);
}

interface Session {
  socket: tls.TLSSocket;
  /** First DNS name of the served certificate. */
  servedName: string;
  alpn: string | false;
}

function connect(port: number, servername: string, alpn?: string[]): Promise<Session> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: "127.0.0.1",
      port,
      servername,
      rejectUnauthorized: false,
      ALPNProtocols: alpn,
    }, () => {
      const peer = socket.getPeerCertificate() as { subjectaltname?: string };
      resolve({
        socket,
        servedName: (peer.subjectaltname ?? "").split(",")[0].replace("DNS:", "").trim(),
        alpn: socket.alpnProtocol ?? false,
      });
    });
    socket.once("error", reject);
  });
}

function request(s: Session, host: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = "";
    const onClose = () => fail(new Error("connection closed"));
    const fail = (e: Error) => {
      cleanup();
      reject(e);
    };
    const cleanup = () => {
      s.socket.off("data", onData);
      s.socket.off("error", fail);
      s.socket.off("close", onClose);
    };
    const onData = (d: Uint8Array) => {
      data += new TextDecoder().decode(d);
      const [head, body] = data.split("\r\n\r\n");
      const len = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? -1);
      if (body !== undefined && body.length >= len) {
        cleanup();
        resolve(body);
      }
    };
    s.socket.on("data", onData);
    s.socket.on("error", fail);
    s.socket.on("close", onClose);
    s.socket.write(`GET / HTTP/1.1\r\nhost: ${host}\r\n\r\n`);
  });
}

/** The HTTP/1.1 engine with no limits, answering with `respond`. */
function engineConnections(
  respond: (exchange: Exchange) => Promise<Response>,
): AcceptedConnections {
  const engine = new HttpEngine({
    limits: {
      readTimeout: 0,
      writeTimeout: 0,
      idleTimeout: 0,
      maxHeaderBytes: DEFAULT_MAX_HEADER_BYTES,
      maxRequestLine: 16 * 1024,
    },
    handler: async (exchange) => writeWebResponse(exchange, await respond(exchange)),
  });
  return { serve: (conn, info) => engine.serve(conn, info), shutdown: () => engine.shutdown() };
}

async function withListener(
  store: CertificateStore,
  fn: (port: number, l: Awaited<ReturnType<typeof startTlsListener>>) => Promise<void>,
) {
  const listener = await startTlsListener({
    hostname: "127.0.0.1",
    port: 0,
    store,
    connections: engineConnections((ex) =>
      Promise.resolve(new Response(`host=${ex.head.host} tls=${ex.info.tls}`))
    ),
  });
  try {
    await fn(listener.port, listener);
  } finally {
    await listener.shutdown();
  }
}

const def = await cert(["default.invalid"], "default");

Deno.test("TLS listener serves the SNI-selected certificate over a real handshake", async () => {
  const store = new CertificateStore(def);
  store.replaceSource("file", [await cert(["a.test"]), await cert(["*.w.test"])]);
  await withListener(store, async (port) => {
    const table: [string, string][] = [["a.test", "a.test"], ["x.w.test", "*.w.test"], [
      "nothing.test",
      "default.invalid",
    ], ["a.b.w.test", "default.invalid"]];
    for (const [sni, want] of table) {
      const s = await connect(port, sni);
      assert.equal(s.servedName, want, `certificate served for SNI ${sni}`);
      assert.equal(await request(s, sni), `host=${sni} tls=true`);
      s.socket.destroy();
    }
    const h2 = await connect(port, "a.test", ["h2", "http/1.1"]);
    assert.equal(h2.alpn, "h2");
    h2.socket.destroy();
  });
});

/** True once the server has closed `s` (graceful: a FIN, not a reset mid-response). */
function closedWithin(s: Session, ms: number): Promise<boolean> {
  if (s.socket.destroyed || s.socket.readableEnded) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    s.socket.once("end", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

Deno.test("hot reload: add, replace and remove take effect for new handshakes; open connections outlive swaps", async () => {
    const store = new CertificateStore(def);
    const first = await cert(["a.test", "first.a.test"]);
    store.replaceSource("file", [first]);
    await withListener(store, async (port, listener) => {
      const old = await connect(port, "a.test");
      assert.equal(old.servedName, "a.test");
      assert.equal(await request(old, "a.test"), "host=a.test tls=true");
      const before = await connect(port, "b.test");
      assert.equal(before.servedName, "default.invalid");
      before.socket.destroy();

      // Add b.test, replace a.test.
      const second = await cert(["a.test", "second.a.test"]);
      store.replaceSource("file", [second, await cert(["b.test"])]);
      await new Promise((r) => setTimeout(r, 20));
      const added = await connect(port, "b.test");
      assert.equal(added.servedName, "b.test");
      added.socket.destroy();
      const replaced = await connect(port, "a.test");
      assert.equal(
        (replaced.socket.getPeerCertificate() as { subjectaltname: string }).subjectaltname,
        "DNS:a.test, DNS:second.a.test",
      );

      // Every connection is Portico's and outlives the swap untouched.
      assert.equal(await request(old, "a.test"), "host=a.test tls=true");

      // Remove everything: back to the default.
      store.replaceSource("file", []);
      await new Promise((r) => setTimeout(r, 20));
      const removed = await connect(port, "a.test");
      assert.equal(removed.servedName, "default.invalid");
      removed.socket.destroy();
      assert.equal(await request(old, "a.test"), "host=a.test tls=true");
      assert.ok(listener.swaps >= 2, `swaps ${listener.swaps}`);
      old.socket.destroy();
      replaced.socket.destroy();
    });
});

Deno.test("a request in flight when the socket is replaced completes", async () => {
  const store = new CertificateStore(def);
  store.replaceSource("file", [await cert(["a.test"])]);
  const listener = await startTlsListener({
    hostname: "127.0.0.1",
    port: 0,
    store,
    connections: engineConnections(async () => {
      await new Promise((r) => setTimeout(r, 300));
      return new Response("slow and complete");
    }),
  });
  try {
    const s = await connect(listener.port, "a.test");
    const pending = request(s, "a.test");
    await new Promise((r) => setTimeout(r, 50));
    store.replaceSource("file", [await cert(["a.test", "new.a.test"])]);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(listener.swaps, 1);
    const fresh = await connect(listener.port, "a.test");
    assert.match(
      (fresh.socket.getPeerCertificate() as { subjectaltname: string }).subjectaltname,
      /new\.a\.test/,
    );
    fresh.socket.destroy();
    assert.equal(await pending, "slow and complete");
    s.socket.destroy();
  } finally {
    await listener.shutdown();
  }
});

Deno.test("sniStrict refuses unknown names at the handshake", async () => {
  const store = new CertificateStore(def);
  store.replaceSource("file", [await cert(["a.test"])]);
  store.setPolicy(() => ({ sniStrict: true }));
  await withListener(store, async (port) => {
    const ok = await connect(port, "a.test");
    ok.socket.destroy();
    await assert.rejects(connect(port, "unknown.test"));
  });
});

Deno.test("small proxied bodies are coalesced: no 40 ms Nagle stall per request", async () => {
  const upstream = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response("hello world\n"),
  );
  const client = Deno.createHttpClient({});
  const store = new CertificateStore(def);
  const listener = await startTlsListener({
    hostname: "127.0.0.1",
    port: 0,
    store,
    connections: engineConnections(() => fetch(`http://127.0.0.1:${upstream.addr.port}/`, { client })),
  });
  try {
    const s = await connect(listener.port, "a.test");
    await request(s, "a.test");
    const started = performance.now();
    for (let i = 0; i < 20; i++) assert.equal(await request(s, "a.test"), "hello world\n");
    const perRequest = (performance.now() - started) / 20;
    assert.ok(perRequest < 20, `mean ${perRequest.toFixed(1)} ms per keep-alive request`);
    s.socket.destroy();
  } finally {
    await listener.shutdown();
    await upstream.shutdown();
    client.close();
  }
});

Deno.test({
  name:
    "server: [entryPoints.X.http.tls] + [[tls.certificates]] files, hot-reloaded from the dynamic config",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { startTestProxy } = await import("./fixtures/proxy.ts");
    const dir = await Deno.makeTempDir();
    const a = await generateSelfSigned({ dnsNames: ["a.test"] });
    await Deno.writeTextFile(`${dir}/a.crt`, a.certPem);
    await Deno.writeTextFile(`${dir}/a.key`, a.keyPem);
    const router = `
[http.routers.a]
rule = "Host(\`a.test\`)"
service = "noop@internal"
`;
    const certs = `
[[tls.certificates]]
certFile = "${dir}/a.crt"
keyFile = "${dir}/a.key"
`;
    const proxy = await startTestProxy({
      entryPoints: ["websecure"],
      entryPointExtra: { websecure: "[entryPoints.websecure.http.tls]\n" },
      dynamic: router + certs,
    });
    try {
      const port = proxy.port("websecure");
      const s = await connect(port, "a.test");
      assert.equal(s.servedName, "a.test");
      const res = await new Promise<string>((resolve) => {
        s.socket.once("data", (d: Uint8Array) => resolve(new TextDecoder().decode(d)));
        s.socket.write("GET / HTTP/1.1\r\nhost: a.test\r\n\r\n");
      });
      assert.match(res, /^HTTP\/1\.1 418/);
      await proxy.writeDynamic(router);
      await new Promise((r) => setTimeout(r, 50));
      const after = await connect(port, "a.test");
      assert.equal(after.servedName, "");
      after.socket.destroy();
      // The connection accepted before the swap is still served.
      const kept = await new Promise<string>((resolve) => {
        s.socket.once("data", (d: Uint8Array) => resolve(new TextDecoder().decode(d)));
        s.socket.write("GET / HTTP/1.1\r\nhost: a.test\r\n\r\n");
      });
      assert.match(kept, /^HTTP\/1\.1 418/, "an open connection outlives the certificate swap");
      s.socket.destroy();
      const fresh = await connect(port, "a.test");
      const again = await new Promise<string>((resolve) => {
        fresh.socket.once("data", (d: Uint8Array) => resolve(new TextDecoder().decode(d)));
        fresh.socket.write("GET / HTTP/1.1\r\nhost: a.test\r\n\r\n");
      });
      assert.match(again, /^HTTP\/1\.1 418/, "a new connection is served");
      fresh.socket.destroy();
    } finally {
      await proxy.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "server: TLS is part of the whole build: an unreadable certificate rejects the reload, a new router and its certificate arrive together",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { startTestProxy } = await import("./fixtures/proxy.ts");
    const dir = await Deno.makeTempDir();
    for (const name of ["a", "b"]) {
      const c = await generateSelfSigned({ dnsNames: [`${name}.test`] });
      await Deno.writeTextFile(`${dir}/${name}.crt`, c.certPem);
      await Deno.writeTextFile(`${dir}/${name}.key`, c.keyPem);
    }
    const router = (name: string) => `
[http.routers.${name}]
rule = "Host(\`${name}.test\`)"
service = "noop@internal"
tls = {}
`;
    const certificate = (crt: string, key: string) => `
[[tls.certificates]]
certFile = "${crt}"
keyFile = "${key}"
`;
    const proxy = await startTestProxy({
      entryPoints: ["websecure"],
      entryPointExtra: { websecure: "[entryPoints.websecure.http.tls]\n" },
      dynamic: router("a") + certificate(`${dir}/a.crt`, `${dir}/a.key`),
    });
    const get = async (name: string) => {
      const s = await connect(proxy.port("websecure"), `${name}.test`);
      try {
        const head = await new Promise<string>((resolve) => {
          s.socket.once("data", (d: Uint8Array) => resolve(new TextDecoder().decode(d)));
          s.socket.write(`GET / HTTP/1.1\r\nhost: ${name}.test\r\n\r\n`);
        });
        return { served: s.servedName, status: head.slice(9, 12) };
      } finally {
        s.socket.destroy();
      }
    };
    try {
      assert.deepEqual(await get("a"), { served: "a.test", status: "418" });
      // Router b with a certificate file that does not exist: nothing of it applies.
      await proxy.writeDynamic(
        router("a") + router("b") + certificate(`${dir}/a.crt`, `${dir}/a.key`) +
          certificate(`${dir}/missing.crt`, `${dir}/b.key`),
      );
      const status = proxy.server.watcher.lastReload!;
      assert.equal(status.success, false);
      assert.match(status.error!, /tls\.certificates\[1\]@file\.certFile/);
      assert.match(status.error!, /missing\.crt/);
      assert.equal(proxy.server.watcher.current.routers.has("b@file"), false, "router b was not swapped in");
      assert.deepEqual(await get("a"), { served: "a.test", status: "418" }, "the last good one serves");
      // Now the real file: the first handshake after the swap already gets b's certificate.
      await proxy.writeDynamic(
        router("a") + router("b") + certificate(`${dir}/a.crt`, `${dir}/a.key`) +
          certificate(`${dir}/b.crt`, `${dir}/b.key`),
      );
      assert.equal(proxy.server.watcher.lastReload!.success, true);
      assert.deepEqual(await get("b"), { served: "b.test", status: "418" });
    } finally {
      await proxy.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

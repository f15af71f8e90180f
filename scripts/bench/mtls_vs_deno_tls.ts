/**
 * HTTPS through a whole Portico, two ways side by side: an entrypoint
 * served by Deno's TLS listener (no client certificates asked) and one
 * whose name asks for client certificates (RequireAndVerifyClientCert),
 * which Portico ends with node:tls after peeking the ClientHello. Measures
 * keep-alive requests per second over 10 connections and new
 * connections (handshake + one request) per second; the client is
 * node:tls in this process (the same for both). Indicative only.
 *
 * ```sh
 * deno run -A scripts/bench/mtls_vs_deno_tls.ts [SECONDS]
 * ```
 *
 * @module
 */

import tls from "node:tls";
import { startTestProxy } from "../../tests/fixtures/proxy.ts";
import { startEchoBackend } from "../../tests/fixtures/backend.ts";
import { makePki, makeServerCert } from "../../tests/fixtures/pki.ts";

const SECONDS = Number(Deno.args[0] ?? 5);
const CONNS = 10;
const dir = await Deno.makeTempDir({ prefix: "portico-mtls-bench-" });
await makePki(dir);
await makeServerCert(dir, "edge", ["bench.test"]);
const read = (f: string) => Deno.readTextFileSync(`${dir}/${f}`);
const ca = read("ca.pem"), cert = read("client.pem"), key = read("client.key");
const backend = startEchoBackend("b");
const enc = new TextEncoder(), dec = new TextDecoder();
const request = enc.encode("GET / HTTP/1.1\r\nHost: bench.test\r\n\r\n");

/** A keep-alive HTTPS client connection: one request at a time, resolved when its response is in. */
function connectClient(port: number): Promise<{ get(): Promise<void>; close(): void }> {
  return new Promise((resolve, reject) => {
    let got = "";
    let waiting: (() => void) | undefined;
    const socket = tls.connect({
      host: "127.0.0.1",
      port,
      servername: "bench.test",
      ca: [ca],
      cert,
      key,
      ALPNProtocols: ["http/1.1"],
    }, () => {
      resolve({
        get: () =>
          new Promise<void>((done) => {
            waiting = done;
            socket.write(request);
          }),
        close: () => socket.destroy(),
      });
    });
    socket.on("data", (b: Uint8Array) => {
      got += dec.decode(b);
      const end = got.indexOf("\r\n\r\n");
      if (end < 0) return;
      const length = Number(/content-length: (\d+)/i.exec(got)?.[1] ?? 0);
      if (got.length - end - 4 < length) return;
      got = "";
      const w = waiting;
      waiting = undefined;
      w?.();
    });
    socket.on("error", reject);
  });
}

async function measure(label: string, mutual: boolean): Promise<void> {
  const proxy = await startTestProxy({
    entryPoints: ["edge"],
    entryPointExtra: { edge: "[entryPoints.edge.http.tls]\n" },
    dynamic: `
[http.routers.r]
rule = "Host(\`bench.test\`)"
service = "b"
${mutual ? `tls = { options = "mutual" }` : ""}
[http.services.b.loadBalancer]
[[http.services.b.loadBalancer.servers]]
url = "${backend.url}"
[[tls.certificates]]
certFile = "${dir}/edge.pem"
keyFile = "${dir}/edge.key"
${
      mutual
        ? `[tls.options.mutual.clientAuth]\ncaFiles = ["${dir}/ca.pem"]\nclientAuthType = "RequireAndVerifyClientCert"`
        : ""
    }
`,
  });
  const port = proxy.port("edge");
  const connect = () => connectClient(port);
  try {
    // The file provider's first configuration can land after the listener is up.
    for (let i = 0;; i++) {
      try {
        const c = await connect();
        await c.get();
        c.close();
        break;
      } catch (err) {
        if (i > 100) throw err;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    let requests = 0;
    const until = Date.now() + SECONDS * 1000;
    await Promise.all(Array.from({ length: CONNS }, async () => {
      const conn = await connect();
      while (Date.now() < until) {
        await conn.get();
        requests++;
      }
      conn.close();
    }));
    let handshakes = 0;
    const until2 = Date.now() + SECONDS * 1000;
    await Promise.all(Array.from({ length: CONNS }, async () => {
      while (Date.now() < until2) {
        const conn = await connect();
        await conn.get();
        conn.close();
        handshakes++;
      }
    }));
    console.log(
      `${label}: ${(requests / SECONDS).toFixed(0)} keep-alive req/s, ${
        (handshakes / SECONDS).toFixed(0)
      } new connections/s`,
    );
  } finally {
    await proxy.close();
  }
}

await measure("Deno TLS listener        ", false);
await measure("node:tls, client cert     ", true);
await backend.close();
await Deno.remove(dir, { recursive: true });

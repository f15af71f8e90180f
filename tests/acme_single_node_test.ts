import assert from "node:assert/strict";
import tls from "node:tls";
import { pebbleResolverToml, startPebble } from "./fixtures/pebble.ts";
import { freePort } from "./fixtures/ports.ts";
import { startTestProxy } from "./fixtures/proxy.ts";

/** A verified handshake (trusting only `ca`) with SNI `name`; resolves to the peer's SAN list. */
function verifiedHandshake(port: number, name: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: "127.0.0.1",
      port,
      servername: name,
      ca,
      rejectUnauthorized: true,
    }, () => {
      const san = (socket.getPeerCertificate() as { subjectaltname?: string }).subjectaltname ?? "";
      socket.destroy();
      resolve(san);
    });
    socket.once("error", (e) => {
      socket.destroy();
      reject(e);
    });
  });
}

async function waitForVerified(
  port: number,
  name: string,
  ca: string,
  timeoutMs = 20_000,
): Promise<{ san: string; ms: number }> {
  const started = performance.now();
  let last: unknown;
  while (performance.now() - started < timeoutMs) {
    try {
      return { san: await verifiedHandshake(port, name, ca), ms: performance.now() - started };
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(
    `no verified handshake for ${name} within ${timeoutMs} ms: ${(last as Error)?.message}`,
  );
}

const routers = (names: { host: string; resolver: string }[]) =>
  names.map(({ host, resolver }, i) => `
[http.routers.r${i}]
rule = "Host(\`${host}\`)"
service = "noop@internal"
entryPoints = ["websecure"]
[http.routers.r${i}.tls]
certResolver = "${resolver}"
`).join("");

Deno.test({
  name:
    "ACME single node: HTTP-01 certificates from Pebble are served and verify against Pebble's root; tlsChallenge fails clearly",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const webPort = freePort();
    const securePort = freePort();
    const pebble = await startPebble({ httpPort: webPort, tlsPort: securePort });
    const dir = await Deno.makeTempDir({ prefix: "acme-single-" });
    await Deno.writeTextFile(`${dir}/pebble-ca.pem`, pebble.listenerCaPem);
    let proxy: Awaited<ReturnType<typeof startTestProxy>> | undefined;
    try {
      proxy = await startTestProxy({
        entryPoints: [],
        dynamic: routers([{ host: "a.test", resolver: "http" }, {
          host: "alpn.test",
          resolver: "alpn",
        }]),
        extraStatic: `
[entryPoints.web]
address = "127.0.0.1:${webPort}"
[entryPoints.websecure]
address = "127.0.0.1:${securePort}"
${
          pebbleResolverToml("http", {
            directoryUrl: pebble.directoryUrl,
            storage: `${dir}/acme.json`,
            caFile: `${dir}/pebble-ca.pem`,
          })
        }[certificatesResolvers.alpn.acme]
caServer = "${pebble.directoryUrl}"
storage = "${dir}/acme-alpn.json"
caCertificates = ["${dir}/pebble-ca.pem"]
[certificatesResolvers.alpn.acme.tlsChallenge]
`,
      });
      const root = await pebble.rootPem();

      const http01 = await waitForVerified(securePort, "a.test", root);
      assert.equal(http01.san, "DNS:a.test");
      console.log(`first certificate served ${http01.ms.toFixed(0)} ms after start`);

      // A router added later: time from config change to a served certificate.
      const t0 = performance.now();
      await proxy.writeDynamic(routers([
        { host: "a.test", resolver: "http" },
        { host: "alpn.test", resolver: "alpn" },
        { host: "late.test", resolver: "http" },
      ]));
      const late = await waitForVerified(securePort, "late.test", root);
      console.log(`new router -> served certificate: ${(performance.now() - t0).toFixed(0)} ms`);
      assert.equal(late.san, "DNS:late.test");

      // Storage: Traefik's acme.json shape, mode 0600.
      const info = await Deno.stat(`${dir}/acme.json`);
      assert.equal(info.mode! & 0o777, 0o600);
      const stored = JSON.parse(await Deno.readTextFile(`${dir}/acme.json`));
      const mains = stored.http.Certificates.map((c: { domain: { main: string } }) => c.domain.main)
        .sort();
      assert.deepEqual(mains, ["a.test", "late.test"]);
      assert.ok(stored.http.Account.PrivateKey, "account key stored");
      assert.match(atob(stored.http.Certificates[0].certificate), /BEGIN CERTIFICATE/);

      // Exactly one order per domain, counted from Pebble's log.
      for (const d of ["a.test", "late.test"]) {
        assert.equal(pebble.ordersFor(d), 1, `orders for ${d}`);
      }
      assert.equal(pebble.ordersFor("alpn.test"), 0);

      // The view the API and metrics read.
      const view = proxy.server.state.views.certificates!() as unknown as {
        domains: string[];
        state: string;
        daysLeft: number;
        lastError?: string;
      }[];
      const a = view.find((v) => v.domains[0] === "a.test")!;
      assert.equal(a.state, "valid");
      assert.ok(a.daysLeft > 0);
      const alpn = view.find((v) => v.domains[0] === "alpn.test")!;
      assert.equal(alpn.state, "backoff");
      assert.match(alpn.lastError ?? "", /tlsChallenge \(TLS-ALPN-01\) is not supported/);
      // The failed resolver's domain is served the default certificate meanwhile.
      await assert.rejects(verifiedHandshake(securePort, "alpn.test", root));

      // Plain-HTTP requests on the TLS entrypoint's routers are not served on the web entrypoint.
      const plain = await fetch(`http://127.0.0.1:${webPort}/`, { headers: { host: "a.test" } });
      await plain.body?.cancel();
      assert.equal(plain.status, 404);

      const tls1 = proxy.server;
      assert.equal(tls1.acme?.issued, 2);
    } catch (err) {
      console.error(
        JSON.stringify(proxy?.server.state.views.certificates?.()),
        pebble.log().slice(-20).join("\n"),
      );
      throw err;
    } finally {
      await proxy?.close();
      await pebble.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

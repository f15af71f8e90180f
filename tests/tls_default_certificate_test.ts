import assert from "node:assert/strict";
import tls from "node:tls";
import { generateSelfSigned } from "../lib/tls/self_signed.ts";
import { startTestProxy, type TestProxy } from "./fixtures/proxy.ts";

const SELF_SIGNED = "TRAEFIK DEFAULT CERT";

/** The CN of the certificate served for a name no certificate covers. */
function servedCommonName(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const options = {
      host: "127.0.0.1",
      port,
      servername: "other.test",
      rejectUnauthorized: false,
    };
    const socket = tls.connect(options, () => {
      const peer = socket.getPeerCertificate() as { subject?: { CN?: string } };
      socket.destroy();
      resolve(peer.subject?.CN ?? "");
    });
    socket.once("error", reject);
  });
}

/**
 * Polls until the served CN is `want`: a removed default gives way once the
 * self-signed one is made, and a certificate reload replaces the listening
 * socket, so a handshake in that instant may be reset.
 */
async function waitForServed(port: number, want: string): Promise<string> {
  const deadline = Date.now() + 5000;
  const attempt = () => servedCommonName(port).catch((err) => `error: ${err.message}`);
  let got = await attempt();
  while (got !== want && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    got = await attempt();
  }
  return got;
}

const ROUTER = `
[http.routers.a]
rule = "Host(\`a.test\`)"
service = "noop@internal"
`;

async function withProxy(dynamic: string, fn: (proxy: TestProxy, dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir();
  const own = await generateSelfSigned({ commonName: "own.default" });
  await Deno.writeTextFile(`${dir}/own.crt`, own.certPem);
  await Deno.writeTextFile(`${dir}/own.key`, own.keyPem);
  const proxy = await startTestProxy({
    entryPoints: ["websecure"],
    entryPointExtra: { websecure: "[entryPoints.websecure.http.tls]\n" },
    dynamic: dynamic.replaceAll("DIR", dir),
  });
  try {
    await fn(proxy, dir);
  } finally {
    await proxy.close();
    await Deno.remove(dir, { recursive: true });
  }
}

const OWN_DEFAULT = `
[tls.stores.default.defaultCertificate]
certFile = "DIR/own.crt"
keyFile = "DIR/own.key"
`;

Deno.test({
  name: "default certificate: self-signed when none is configured, then the configured one",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withProxy(ROUTER, async (proxy, dir) => {
      const port = proxy.port("websecure");
      assert.equal(await servedCommonName(port), SELF_SIGNED);
      await proxy.writeDynamic(ROUTER + OWN_DEFAULT.replaceAll("DIR", dir));
      assert.equal(await waitForServed(port, "own.default"), "own.default");
      await proxy.writeDynamic(ROUTER);
      assert.equal(await waitForServed(port, SELF_SIGNED), SELF_SIGNED);
    });
  },
});

Deno.test({
  name:
    "default certificate: a configured one from the start, removed later, gives way to self-signed",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withProxy(ROUTER + OWN_DEFAULT, async (proxy) => {
      const port = proxy.port("websecure");
      assert.equal(await servedCommonName(port), "own.default");
      await proxy.writeDynamic(ROUTER);
      assert.equal(await waitForServed(port, SELF_SIGNED), SELF_SIGNED);
      for (let i = 0; i < 5; i++) assert.equal(await servedCommonName(port), SELF_SIGNED);
    });
  },
});

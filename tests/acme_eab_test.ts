/**
 * External Account Binding against a Pebble that requires it (as ZeroSSL and
 * Google Trust Services do): a resolver with `acme.eab` gets its certificate,
 * one without it or with a wrong key is refused by the CA with a clear error,
 * and the HMAC key never reaches a log.
 */
import assert from "node:assert/strict";
import tls from "node:tls";
import { pebbleResolverToml, startPebble } from "./fixtures/pebble.ts";
import { freePort } from "./fixtures/ports.ts";
import { startTestProxy } from "./fixtures/proxy.ts";
import { parseToml } from "../lib/config/load.ts";
import { validateStatic } from "../lib/config/static.ts";

const KEY = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";
const WRONG = "b3RoZXIta2V5LXRoYXQtdGhlLWNhLWRvZXMtbm90LWtub3ctMDEyMzQ1Njc4OQ";

function verifiedSan(port: number, name: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port, servername: name, ca, rejectUnauthorized: true }, () => {
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

Deno.test({
  name: "ACME eab: a bound account gets its certificate; no binding or a wrong key is refused by the CA, named",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const webPort = freePort();
    const securePort = freePort();
    const pebble = await startPebble({ httpPort: webPort, eabKeys: { "kid-1": KEY } });
    const dir = await Deno.makeTempDir({ prefix: "acme-eab-" });
    await Deno.writeTextFile(`${dir}/pebble-ca.pem`, pebble.listenerCaPem);
    const resolver = (name: string, eab?: { kid: string; key: string }) =>
      pebbleResolverToml(name, {
        directoryUrl: pebble.directoryUrl,
        storage: `${dir}/${name}.json`,
        caFile: `${dir}/pebble-ca.pem`,
      }) + (eab ? `[certificatesResolvers.${name}.acme.eab]\nkid = "${eab.kid}"\nhmacEncoded = "${eab.key}"\n` : "");
    const routers = ["bound", "unbound", "wrong"].map((r) => `
[http.routers.${r}]
rule = "Host(\`${r}.test\`)"
service = "noop@internal"
entryPoints = ["websecure"]
[http.routers.${r}.tls]
certResolver = "${r}"
`).join("");
    let proxy: Awaited<ReturnType<typeof startTestProxy>> | undefined;
    try {
      proxy = await startTestProxy({
        entryPoints: [],
        dynamic: routers,
        extraStatic: `
[entryPoints.web]
address = "127.0.0.1:${webPort}"
[entryPoints.websecure]
address = "127.0.0.1:${securePort}"
${resolver("bound", { kid: "kid-1", key: KEY })}${resolver("unbound")}${resolver("wrong", { kid: "kid-1", key: WRONG })}`,
      });
      const root = await pebble.rootPem();
      const deadline = Date.now() + 30_000;
      let san = "";
      while (!san && Date.now() < deadline) {
        san = await verifiedSan(securePort, "bound.test", root).catch(() => "");
        if (!san) await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(san, "DNS:bound.test");
      const failed = (resolver: string) =>
        proxy!.server.state.views.certificates!().find((c) => c.resolver === resolver && c.lastError);
      while ((!failed("unbound") || !failed("wrong")) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.match(failed("unbound")?.lastError ?? "", /externalAccountBinding/);
      assert.match(failed("wrong")?.lastError ?? "", /external account binding/i, "a wrong HMAC key is refused");
      assert.equal(pebble.ordersFor("unbound.test") + pebble.ordersFor("wrong.test"), 0);
      const logs = proxy.logs.join("\n");
      assert.ok(!logs.includes(KEY) && !logs.includes(WRONG), "HMAC keys never logged");
      const stored = await Deno.readTextFile(`${dir}/bound.json`);
      assert.ok(!stored.includes(KEY), "the HMAC key is not written to the storage file");
    } finally {
      await proxy?.close();
      await pebble.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("ACME eab: kid and hmacEncoded are required and the key must be base64url", () => {
  const base = `[entryPoints.web]\naddress = ":80"\n[certificatesResolvers.r.acme]\nstorage = "a.json"\n` +
    `[certificatesResolvers.r.acme.httpChallenge]\nentryPoint = "web"\n[certificatesResolvers.r.acme.eab]\n`;
  const check = (toml: string) => () => validateStatic(parseToml(base + toml, "s.toml"), "s.toml");
  assert.throws(check(`kid = "k"\n`), /certificatesResolvers\.r\.acme\.eab\.hmacEncoded/);
  assert.throws(check(`hmacEncoded = "${KEY}"\n`), /certificatesResolvers\.r\.acme\.eab\.kid/);
  assert.throws(check(`kid = "k"\nhmacEncoded = "not base64!"\n`), /hmacEncoded: .*base64url/);
  const ok = validateStatic(parseToml(base + `kid = "k"\nhmacEncoded = "${KEY}"\n`, "s.toml"), "s.toml");
  assert.deepEqual(ok.certificatesResolvers!.r.acme.eab, { kid: "k", hmacEncoded: KEY });
});

/**
 * `tls.stores.default.defaultGeneratedCert`: the default certificate (the
 * one an unknown SNI name, or no SNI, gets) is obtained from a resolver, as
 * in Traefik; until it is issued the self-signed default serves, and a
 * configured `defaultCertificate` wins over it.
 */
import assert from "node:assert/strict";
import tls from "node:tls";
import { pebbleResolverToml, startPebble } from "./fixtures/pebble.ts";
import { freePort } from "./fixtures/ports.ts";
import { startTestProxy } from "./fixtures/proxy.ts";
import { generateSelfSigned } from "../lib/tls/self_signed.ts";

/** The served certificate's SANs and whether it chains to `ca` (names are not checked). */
function served(port: number, servername: string, ca: string): Promise<{ san: string; trusted: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port, servername, ca, rejectUnauthorized: false }, () => {
      const san = (socket.getPeerCertificate() as { subjectaltname?: string }).subjectaltname ?? "";
      const error = String(socket.authorizationError ?? "");
      const trusted = socket.authorized || /ERR_TLS_CERT_ALTNAME_INVALID|does not match/i.test(error);
      socket.destroy();
      resolve({ san, trusted });
    });
    socket.once("error", (e) => {
      socket.destroy();
      reject(e);
    });
  });
}

Deno.test({
  name: "defaultGeneratedCert: unknown names get the resolver's certificate once issued; defaultCertificate wins",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const webPort = freePort();
    const securePort = freePort();
    const pebble = await startPebble({ httpPort: webPort });
    const dir = await Deno.makeTempDir({ prefix: "acme-default-" });
    await Deno.writeTextFile(`${dir}/pebble-ca.pem`, pebble.listenerCaPem);
    const own = await generateSelfSigned({ dnsNames: ["own-default.test"] });
    await Deno.writeTextFile(`${dir}/own.crt`, own.certPem);
    await Deno.writeTextFile(`${dir}/own.key`, own.keyPem);
    const generated = `
[tls.stores.default.defaultGeneratedCert]
resolver = "le"
[tls.stores.default.defaultGeneratedCert.domain]
main = "gen.test"
sans = ["www.gen.test"]
`;
    let proxy: Awaited<ReturnType<typeof startTestProxy>> | undefined;
    try {
      proxy = await startTestProxy({
        entryPoints: [],
        dynamic: generated,
        extraStatic: `
[entryPoints.web]
address = "127.0.0.1:${webPort}"
[entryPoints.websecure]
address = "127.0.0.1:${securePort}"
[entryPoints.websecure.http.tls]
${pebbleResolverToml("le", { directoryUrl: pebble.directoryUrl, storage: `${dir}/acme.json`, caFile: `${dir}/pebble-ca.pem` })}`,
      });
      const root = await pebble.rootPem();
      const deadline = Date.now() + 30_000;
      let got = await served(securePort, "unknown.test", root);
      while (!got.trusted && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        got = await served(securePort, "unknown.test", root);
      }
      assert.deepEqual(got, { san: "DNS:gen.test, DNS:www.gen.test", trusted: true });
      assert.equal(pebble.ordersFor("gen.test"), 1);
      // A configured default certificate wins, as in Traefik.
      await proxy.writeDynamic(
        generated + `[tls.stores.default.defaultCertificate]\ncertFile = "${dir}/own.crt"\nkeyFile = "${dir}/own.key"\n`,
      );
      assert.equal((await served(securePort, "unknown.test", root)).san, "DNS:own-default.test");
      // And without either, the self-signed default is back.
      await proxy.writeDynamic("");
      const fallback = await served(securePort, "unknown.test", root);
      assert.equal(fallback.trusted, false);
      assert.doesNotMatch(fallback.san, /gen\.test|own-default/);
    } finally {
      await proxy?.close();
      await pebble.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

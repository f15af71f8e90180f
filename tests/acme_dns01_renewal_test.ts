/**
 * A DNS-01 wildcard certificate is renewed like any other: one real
 * Portico process, a real Pebble issuing 9-second certificates (VA
 * pointed at a real BIND 9), the renewal check shortened by the test hook.
 * The resolver checks propagation at its resolver only (`requireAllRNS`,
 * `disableANSChecks`), the other path through the checker.
 *
 * Expected: the first certificate, then exactly one renewal once its last
 * third starts (two orders in Pebble's log), a new serial served for both
 * names, and no TXT record left in BIND after either order.
 */
import assert from "node:assert/strict";
import { startBind9 } from "./fixtures/bind9.ts";
import { startPebble } from "./fixtures/pebble.ts";
import { freePort, waitForPort } from "./fixtures/ports.ts";
import { until, verifiedHandshake } from "./fixtures/acme_cluster.ts";

const repoRoot = new URL("../", import.meta.url).pathname;

Deno.test({
  name:
    "DNS-01 renewal, real process + Pebble (9 s certificates) + BIND 9: the wildcard certificate is renewed once, the new serial served, no TXT left",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const bind = await startBind9({ zones: ["renew.test"] });
    const pebble = await startPebble({
      httpPort: freePort(),
      dnsServer: bind.server,
      certificateValiditySeconds: 9,
    });
    const dir = await Deno.makeTempDir({ prefix: "dns01-renew-" });
    const securePort = freePort();
    const apiPort = freePort();
    let output = "";
    let child: Deno.ChildProcess | undefined;
    try {
      await Deno.writeTextFile(`${dir}/pebble.pem`, pebble.listenerCaPem);
      await Deno.writeTextFile(
        `${dir}/dynamic.toml`,
        `[http.routers.r]
rule = "Host(\`renew.test\`)"
service = "noop@internal"
entryPoints = ["websecure"]
[http.routers.r.tls]
certResolver = "dns"
[[http.routers.r.tls.domains]]
main = "renew.test"
sans = ["*.renew.test"]
`,
      );
      await Deno.writeTextFile(
        `${dir}/portico.toml`,
        `[entryPoints.websecure]
address = "127.0.0.1:${securePort}"
[entryPoints.websecure.http.tls]
[entryPoints.traefik]
address = "127.0.0.1:${apiPort}"
[providers.file]
filename = "${dir}/dynamic.toml"
[certificatesResolvers.dns.acme]
email = "ops@example.com"
caServer = "${pebble.directoryUrl}"
storage = "${dir}/acme.json"
caCertificates = ["${dir}/pebble.pem"]
[certificatesResolvers.dns.acme.dnsChallenge]
provider = "rfc2136"
resolvers = ["${bind.server}"]
[certificatesResolvers.dns.acme.dnsChallenge.propagation]
requireAllRNS = true
disableANSChecks = true
`,
      );
      child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", `${repoRoot}mod.ts`, `--configFile=${dir}/portico.toml`],
        cwd: dir,
        env: {
          RFC2136_NAMESERVER: bind.server,
          RFC2136_TSIG_KEY: bind.keys.sha512.name,
          RFC2136_TSIG_SECRET: bind.keys.sha512.secret,
          RFC2136_TSIG_ALGORITHM: "hmac-sha512",
          PORTICO_TEST_HOOKS: "1",
          PORTICO_TEST_RENEWAL_CHECK_MS: "300",
        },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const decoder = new TextDecoder();
      const pump = async (s: ReadableStream<Uint8Array>) => {
        for await (const c of s) output += decoder.decode(c);
      };
      pump(child.stdout).catch(() => {});
      pump(child.stderr).catch(() => {});
      await waitForPort(apiPort, "127.0.0.1", 30_000);
      const root = await pebble.rootPem();
      const serialOf = (name: string) =>
        until(`a renew.test + *.renew.test certificate for ${name}`, async () => {
          const peer = await verifiedHandshake(securePort, name, root);
          return peer.san.split(", ").includes("DNS:*.renew.test") ? peer : undefined;
        }, 20_000);
      const first = await serialOf("x.renew.test");
      assert.equal(pebble.ordersCreated(), 1);
      // Renewal starts once a third of the 9 s lifetime is left.
      const renewed = await until("the renewed certificate served", async () => {
        const peer = await verifiedHandshake(securePort, "x.renew.test", root);
        return peer.serial !== first.serial ? peer : undefined;
      }, 20_000);
      assert.ok(renewed.notAfter > first.notAfter, "the new certificate lasts longer");
      const apex = await serialOf("renew.test");
      assert.equal(apex.serial, renewed.serial, "one certificate for the apex and the wildcard");
      assert.equal(pebble.ordersCreated(), 2, "renewed exactly once so far");
      await until(
        "no TXT left",
        async () => (await bind.txt("_acme-challenge.renew.test")).length === 0 ? true : undefined,
        5_000,
      );
      assert.equal((output.match(/DNS-01: TXT records visible/g) ?? []).length, 2);
    } catch (err) {
      console.error(output.slice(-6000));
      throw err;
    } finally {
      try {
        child?.kill("SIGKILL");
      } catch { /* gone */ }
      await child?.status;
      await pebble.stop();
      await bind.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

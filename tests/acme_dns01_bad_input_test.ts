/**
 * Bad DNS-01 input in one real Portico process (`deno run mod.ts`), with a
 * real Pebble whose VA asks a real BIND 9: each mistake gives its clear
 * error, only that resolver's orders fail, and the HTTP-01 router of the
 * same config still gets its certificate and serves it.
 *
 * Resolvers (each with its own `credentialsFile`, the Portico extension):
 * - `web`: HTTP-01, must work;
 * - `badsig`: rfc2136 with a wrong TSIG secret: BADSIG, the secret never printed;
 * - `typo`: an unknown provider: named, with the supported list; no order at the CA;
 * - `nokeys`: cloudflare without credentials: the missing variables named; no order;
 * - `noprop`: exec with a script that publishes nothing, a 1 s propagation
 *   timeout and the deprecated `delayBeforeCheck`: the timeout names the
 *   authoritative server and what it answered; a deprecation warning.
 */
import assert from "node:assert/strict";
import { startBind9 } from "./fixtures/bind9.ts";
import { startPebble } from "./fixtures/pebble.ts";
import { startProxyProcess } from "./fixtures/proxy_process.ts";
import { freePort } from "./fixtures/ports.ts";
import { servedAt, startForwarder, until } from "./fixtures/acme_cluster.ts";

Deno.test({
  name:
    "DNS-01 bad input, one real process + Pebble + BIND 9: wrong TSIG secret, unknown provider, missing variables, propagation timeout each named; the HTTP-01 router still served",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const bind = await startBind9({ zones: ["example.test"], nsAddress: true });
    const forwarder = startForwarder();
    const pebble = await startPebble({ httpPort: forwarder.port, dnsServer: bind.server });
    const dir = await Deno.makeTempDir({ prefix: "dns01-bad-" });
    const wrongSecret = btoa("this is not the secret BIND has");
    let proxy: Awaited<ReturnType<typeof startProxyProcess>> | undefined;
    try {
      await Deno.writeTextFile(`${dir}/pebble.pem`, pebble.listenerCaPem);
      await Deno.writeTextFile(
        `${dir}/badsig.env`,
        `# rfc2136 with the right key name and a wrong secret\nRFC2136_NAMESERVER=${bind.server}\nRFC2136_TSIG_KEY=${bind.keys.sha256.name}\nRFC2136_TSIG_SECRET="${wrongSecret}"\n`,
      );
      await Deno.writeTextFile(
        `${dir}/noprop.env`,
        `EXEC_PATH=/bin/true\nEXEC_PROPAGATION_TIMEOUT=1\nEXEC_POLLING_INTERVAL=200ms\n`,
      );
      const securePort = freePort();
      const resolver = (name: string, challenge: string) =>
        `[certificatesResolvers.${name}.acme]
email = "ops@example.com"
caServer = "${pebble.directoryUrl}"
storage = "${dir}/${name}.json"
caCertificates = ["${dir}/pebble.pem"]
${challenge}
`;
      const staticToml = `
[entryPoints.websecure]
address = "127.0.0.1:${securePort}"
[entryPoints.websecure.http.tls]
${resolver("web", `[certificatesResolvers.web.acme.httpChallenge]\nentryPoint = "web"`)}
${
        resolver(
          "badsig",
          `[certificatesResolvers.badsig.acme.dnsChallenge]\nprovider = "rfc2136"\nresolvers = ["${bind.server}"]\ncredentialsFile = "${dir}/badsig.env"`,
        )
      }
${resolver("typo", `[certificatesResolvers.typo.acme.dnsChallenge]\nprovider = "rfc2163"`)}
${resolver("nokeys", `[certificatesResolvers.nokeys.acme.dnsChallenge]\nprovider = "cloudflare"`)}
${
        resolver(
          "noprop",
          `[certificatesResolvers.noprop.acme.dnsChallenge]\nprovider = "exec"\nresolvers = ["${bind.server}"]\ncredentialsFile = "${dir}/noprop.env"\ndelayBeforeCheck = "100ms"`,
        )
      }`;
      const router = (name: string, resolverName: string, host: string, domains?: string) =>
        `[http.routers.${name}]
rule = "Host(\`${host}\`)"
service = "noop@internal"
entryPoints = ["websecure"]
[http.routers.${name}.tls]
certResolver = "${resolverName}"
${domains ? `[[http.routers.${name}.tls.domains]]\nmain = "${domains}"` : ""}
`;
      const dynamicToml = [
        router("h", "web", "h.example.test"),
        router("sig", "badsig", "a.sig.example.test", "*.sig.example.test"),
        router("typo", "typo", "a.typo.example.test", "*.typo.example.test"),
        router("nokeys", "nokeys", "a.nokeys.example.test", "*.nokeys.example.test"),
        router("noprop", "noprop", "a.noprop.example.test", "*.noprop.example.test"),
      ].join("\n");
      proxy = await startProxyProcess(dynamicToml, staticToml);
      forwarder.retarget(proxy.port);
      const p = proxy;
      const out = () => p.output();

      // The HTTP-01 router is served with a chain that verifies against Pebble's root.
      const root = await pebble.rootPem();
      await servedAt(securePort, "h.example.test", root, 20_000);

      // Log lines escape quotes ("common" format): match them either way.
      const q = (text: string) => new RegExp(text.replaceAll('"', '\\\\?"'));
      const expectations: [string, RegExp][] = [
        [
          "badsig",
          q(String
            .raw`TSIG error BADSIG\): the server's secret for key "portico-256\." differs from RFC2136_TSIG_SECRET`),
        ],
        [
          "typo",
          q(String
            .raw`certificatesResolvers\.typo\.acme\.dnsChallenge\.provider: unknown DNS provider "rfc2163"; supported: cloudflare, exec, httpreq, rfc2136, route53`),
        ],
        [
          "nokeys",
          q(String
            .raw`certificatesResolvers\.nokeys\.acme\.dnsChallenge: provider cloudflare needs the variable CF_DNS_API_TOKEN, or CF_API_EMAIL and CF_API_KEY, not set`),
        ],
        [
          "noprop",
          q(
            String
              .raw`DNS-01 propagation: not visible within 1000 ms after \d+ checks: TXT _acme-challenge\.noprop\.example\.test\. = "[A-Za-z0-9_-]{43}" for \*\.noprop\.example\.test: ` +
              bind.nsAddress!.replaceAll(".", "\\.") +
              String.raw`:53 \(authoritative ns\.example\.test\.\) answered no TXT record`,
          ),
        ],
        [
          "deprecation",
          /certificatesResolvers\.noprop\.acme\.dnsChallenge\.delayBeforeCheck is deprecated, use propagation\.delayBeforeChecks instead/,
        ],
      ];
      for (const [what, re] of expectations) {
        await until(
          `${what} in the log`,
          () => Promise.resolve(re.test(out()) ? true : undefined),
          20_000,
        )
          .catch((err) => {
            console.error(out().slice(-6000));
            throw err;
          });
      }
      // The config errors stop before the CA; badsig and noprop each opened one order.
      assert.match(out(), /DNS-01 challenge cannot run; not retried before retryAt/);
      assert.equal(
        pebble.ordersCreated(),
        3,
        "h, badsig and noprop reached the CA; typo and nokeys did not",
      );
      assert.ok(!out().includes(wrongSecret), "the wrong secret is not printed");
      assert.ok(!out().includes(bind.keys.sha256.secret), "no secret is printed");
      // The HTTP-01 certificate is still served after all of that.
      await servedAt(securePort, "h.example.test", root, 2_000);
      assert.deepEqual(await bind.txt("_acme-challenge.sig.example.test"), []);
      // A refused update created nothing, so there is nothing to remove either.
      assert.doesNotMatch(out(), /removing a TXT record failed/);
    } finally {
      await proxy?.stop();
      forwarder.close();
      await pebble.stop();
      await bind.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

/**
 * TLS and ACME metrics on a running instance, parsed from `/metrics`:
 * `traefik_tls_certs_not_after{cn,serial,sans}` (Traefik's labels; serial in
 * decimal like Go's `big.Int.String()`) and
 * `portico_acme_order_failures_total{resolver}`, both read from the
 * `certificates` and `acme` views.
 */
import assert from "node:assert/strict";
import { X509Certificate } from "@peculiar/x509";
import { parsePrometheusText } from "../lib/metrics/text_parser.ts";
import { generateSelfSigned } from "../lib/tls/self_signed.ts";
import { freePort } from "./fixtures/ports.ts";
import { startTestProxy } from "./fixtures/proxy.ts";

Deno.test({
  name:
    "metrics: certificate expiry with cn/serial/sans, and ACME order failures by resolver, from /metrics",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    // A CA that refuses everything at once (400 problem, not retried by acme-client).
    let caHits = 0;
    const ca = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
      caHits++;
      return Response.json(
        { type: "urn:ietf:params:acme:error:malformed", detail: "test CA refuses" },
        { status: 400, headers: { "content-type": "application/problem+json" } },
      );
    });
    const cert = await generateSelfSigned({ dnsNames: ["static.test", "www.static.test"] });
    const dir = await Deno.makeTempDir({ prefix: "acme-metrics-" });
    await Deno.writeTextFile(`${dir}/c.pem`, cert.certPem);
    await Deno.writeTextFile(`${dir}/k.pem`, cert.keyPem);
    const webPort = freePort();
    let proxy: Awaited<ReturnType<typeof startTestProxy>> | undefined;
    try {
      proxy = await startTestProxy({
        entryPoints: ["traefik"],
        extraStatic: `
[metrics.prometheus]
[entryPoints.web]
address = "127.0.0.1:${webPort}"
[entryPoints.websecure]
address = "127.0.0.1:${freePort()}"
[certificatesResolvers.le.acme]
caServer = "http://127.0.0.1:${ca.addr.port}/dir"
storage = "${dir}/acme.json"
[certificatesResolvers.le.acme.httpChallenge]
entryPoint = "web"
[certificatesResolvers.idle.acme]
caServer = "http://127.0.0.1:${ca.addr.port}/dir"
storage = "${dir}/idle.json"
[certificatesResolvers.idle.acme.httpChallenge]
entryPoint = "web"
`,
        dynamic: `
[[tls.certificates]]
certFile = "${dir}/c.pem"
keyFile = "${dir}/k.pem"
[http.routers.fail]
rule = "Host(\`fail.test\`)"
service = "noop@internal"
entryPoints = ["websecure"]
[http.routers.fail.tls]
certResolver = "le"
`,
      });
      const scrape = async () =>
        parsePrometheusText(await (await fetch(`${proxy!.url("traefik")}/metrics`)).text());
      const sample = (
        f: Awaited<ReturnType<typeof scrape>>,
        family: string,
        labels: Record<string, string>,
      ) =>
        f.get(family)?.samples.find((s) =>
          Object.entries(labels).every(([k, v]) => s.labels[k] === v)
        );

      // Wait for the refused order to be counted.
      const deadline = Date.now() + 10_000;
      let families = await scrape();
      while (
        (sample(families, "portico_acme_order_failures_total", { resolver: "le" })?.value ?? 0) <
          1
      ) {
        if (Date.now() > deadline) {
          throw new Error(`no failure counted: ${JSON.stringify([...families.keys()])}`);
        }
        await new Promise((r) => setTimeout(r, 50));
        families = await scrape();
      }
      assert.ok(caHits >= 1, "the order really reached the CA");
      assert.equal(families.get("portico_acme_order_failures_total")?.type, "counter");
      assert.equal(
        sample(families, "portico_acme_order_failures_total", { resolver: "le" })?.value,
        1,
        "one failure, then backoff (no retry loop)",
      );
      assert.equal(
        sample(families, "portico_acme_order_failures_total", { resolver: "idle" })?.value,
        0,
        "a resolver without failures is present at 0",
      );

      const leaf = new X509Certificate(cert.certPem);
      const serial = BigInt(`0x${leaf.serialNumber}`).toString(10);
      const notAfter = sample(families, "traefik_tls_certs_not_after", { cn: "static.test" });
      assert.ok(notAfter, "the static certificate has an expiry sample");
      assert.deepEqual(notAfter.labels, {
        cn: "static.test",
        sans: "static.test,www.static.test",
        serial,
      });
      assert.equal(notAfter.value, Math.floor(leaf.notAfter.getTime() / 1000));
      assert.equal(families.get("traefik_tls_certs_not_after")?.type, "gauge");
      // The failed domain has no certificate, hence no expiry sample.
      assert.equal(sample(families, "traefik_tls_certs_not_after", { cn: "fail.test" }), undefined);
    } finally {
      await proxy?.close();
      await ca.shutdown();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

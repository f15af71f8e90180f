/**
 * Bad input from the CA, with a real Pebble: half of its nonces rejected,
 * and a name it refuses. Good domains still get exactly one order each; the
 * refused one fails clearly (log and `certificates` view) and backs off.
 */
import assert from "node:assert/strict";
import tls from "node:tls";
import { pebbleResolverToml, startPebble } from "./fixtures/pebble.ts";
import { freePort } from "./fixtures/ports.ts";
import { startTestProxy } from "./fixtures/proxy.ts";
import type { CertificateView } from "../lib/acme/manager.ts";
import acme from "acme-client";

function verifiedHandshake(port: number, name: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect(
      { host: "127.0.0.1", port, servername: name, ca, rejectUnauthorized: true },
      () => {
        const san = (socket.getPeerCertificate() as { subjectaltname?: string }).subjectaltname ??
          "";
        socket.destroy();
        resolve(san);
      },
    );
    socket.once("error", (e) => {
      socket.destroy();
      reject(e);
    });
  });
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}: ${(last as Error)?.message ?? ""}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

const GOOD = ["ok0.test", "ok1.test", "ok2.test", "ok3.test", "ok4.test"];
const BAD = "bad_domain.test";

Deno.test({
  name:
    "ACME bad input: 50% nonce rejection still issues every good domain once; a refused name fails clearly and backs off",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    // acme-client is the same module instance the issuer uses; its debug log
    // says when it retries a rejected nonce.
    let nonceRetries = 0;
    acme.setLogger((m: string) => {
      if (m.includes("invalid nonce")) nonceRetries++;
    });
    const webPort = freePort();
    const securePort = freePort();
    const pebble = await startPebble({ httpPort: webPort, nonceReject: 50 });
    const dir = await Deno.makeTempDir({ prefix: "acme-bad-" });
    await Deno.writeTextFile(`${dir}/pebble-ca.pem`, pebble.listenerCaPem);
    let proxy: Awaited<ReturnType<typeof startTestProxy>> | undefined;
    try {
      const routers = [...GOOD, BAD].map((host, i) => `
[http.routers.r${i}]
rule = "Host(\`${host}\`)"
service = "noop@internal"
entryPoints = ["websecure"]
[http.routers.r${i}.tls]
certResolver = "le"
`).join("");
      proxy = await startTestProxy({
        entryPoints: [],
        dynamic: routers,
        extraStatic: `
[entryPoints.web]
address = "127.0.0.1:${webPort}"
[entryPoints.websecure]
address = "127.0.0.1:${securePort}"
${
          pebbleResolverToml("le", {
            directoryUrl: pebble.directoryUrl,
            storage: `${dir}/acme.json`,
            caFile: `${dir}/pebble-ca.pem`,
          })
        }`,
      });
      const root = await pebble.rootPem();
      const view = () => proxy!.server.state.views.certificates!();

      for (const d of GOOD) {
        const san = await until(
          `verified handshake for ${d}`,
          async () => await verifiedHandshake(securePort, d, root),
          30_000,
        );
        assert.equal(san, `DNS:${d}`);
      }
      // Pebble really rejected nonces (else this test proves nothing).
      assert.ok(nonceRetries > GOOD.length, `acme-client retried ${nonceRetries} bad nonces`);
      console.log(`badNonce retries: ${nonceRetries}`);
      for (const d of GOOD) {
        assert.equal(pebble.ordersFor(d), 1, `${d}: exactly one order despite nonce rejections`);
        assert.equal(
          view().find((v) => v.domains[0] === d)?.state,
          "valid",
        );
      }

      // The refused name: a clear error in the view and the log, with backoff.
      const bad = await until(
        "the refused name in backoff",
        () => Promise.resolve(view().find((v) => v.domains[0] === BAD && v.state === "backoff")),
        20_000,
      );
      assert.equal(bad.failures, 1);
      assert.match(bad.lastError ?? "", /bad_domain/i, `error names the domain: ${bad.lastError}`);
      const failedAt = Date.now();
      const wait = Date.parse(bad.nextAttempt!) - failedAt;
      // A CA rejection is not retried in a loop: looked at again after a day.
      assert.ok(wait > 23 * 3600_000, `next attempt ${wait} ms away (CA rejection: 24 h)`);
      assert.equal((bad as { failureKind?: string }).failureKind, "rejected");
      const logLine = proxy.logs.find((l) =>
        l.includes("certificate refused by the CA") && l.includes(BAD)
      );
      assert.ok(logLine, "the refusal is logged with the domain");
      const logged = JSON.parse(logLine);
      assert.ok(logged.error, "the log line carries the CA's reason");
      assert.match(
        logged.problem?.type ?? "",
        /acme:error:(malformed|rejectedIdentifier)/,
        "and its problem document",
      );
      // No tight loop: a while later it has still been tried only once.
      await new Promise((r) => setTimeout(r, 1500));
      const later = view().find((v) => v.domains[0] === BAD)!;
      assert.equal(later.failures, 1);
      assert.equal(later.state, "backoff");
      assert.equal(
        proxy.logs.filter((l) => l.includes("ordering certificate") && l.includes(BAD)).length,
        1,
        "one attempt only",
      );
      // Every good certificate is still served.
      for (const d of GOOD) await verifiedHandshake(securePort, d, root);
    } catch (err) {
      console.error(
        JSON.stringify(proxy?.server.state.views.certificates?.(), null, 1),
        pebble.log().slice(-30).join("\n"),
      );
      throw err;
    } finally {
      acme.setLogger(() => {});
      await proxy?.close();
      await pebble.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

import assert from "node:assert/strict";
import { MemoryKVStore } from "../lib/kv/memory.ts";
import { Logger } from "../lib/log/logger.ts";
import { ChallengeAnswers } from "../lib/acme/challenges.ts";
import { AcmeManager } from "../lib/acme/manager.ts";
import { parseRetryAfter, renewalDue } from "../lib/acme/renewal.ts";
import { SecretBox } from "../lib/acme/secret_box.ts";
import { FileStorage } from "../lib/acme/storage.ts";
import { OrderError, type OrderInput } from "../lib/acme/issuer.ts";
import { MemoryOrderJournal } from "../lib/acme/journal.ts";
import type { CertificateRecord } from "../lib/acme/storage.ts";
import { parseCertificate } from "../lib/tls/certificate.ts";
import { generateSelfSigned } from "../lib/tls/self_signed.ts";
import { CertificateStore } from "../lib/tls/store.ts";
import type { CertificateResolverConfig } from "../lib/config/types.ts";

const DAY = 86_400_000;
const quiet = new Logger({ level: "ERROR", format: "json", write: () => {} });

Deno.test("renewalDue: a third of the lifetime (30 days of 90)", () => {
  const nb = new Date("2026-01-01T00:00:00Z");
  const na = new Date(nb.getTime() + 90 * DAY);
  const table: [number, boolean][] = [[0, false], [59, false], [60.01, true], [89, true], [
    120,
    true,
  ]];
  for (const [day, due] of table) {
    assert.equal(renewalDue(nb, na, new Date(nb.getTime() + day * DAY)), due, `day ${day}`);
  }
});

Deno.test("parseRetryAfter reads seconds and HTTP-dates (re-exported from the retry policy)", () => {
  const now = new Date("2026-01-01T00:00:00Z");
  assert.equal(parseRetryAfter("120", now), 120_000);
  assert.equal(parseRetryAfter("Thu, 01 Jan 2026 00:01:00 GMT", now), 60_000);
  assert.equal(parseRetryAfter("soon", now), undefined);
});

Deno.test("SecretBox: round trip; wrong key and damaged data are named", async () => {
  const k = () => btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));
  const box = await SecretBox.fromBase64("[cluster] encryptionKey", k());
  const sealed = await box.seal("-----BEGIN PRIVATE KEY-----");
  assert.equal(await box.open("k", sealed), "-----BEGIN PRIVATE KEY-----");
  const other = await SecretBox.fromBase64("x", k());
  await assert.rejects(other.open("KV key a", sealed), /KV key a: encrypted with key/);
  const damaged = sealed.slice(0, -6) + (sealed.endsWith("AAAA==") ? "BBBB==" : "AAAA==");
  await assert.rejects(box.open("KV key b", damaged), /KV key b: decryption failed/);
  await assert.rejects(
    SecretBox.fromBase64("[cluster] encryptionKey", btoa("short")),
    /\[cluster\] encryptionKey: expected 32 random bytes/,
  );
});

Deno.test("FileStorage writes Traefik's acme.json atomically with mode 0600", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const fs = new FileStorage(`${dir}/acme.json`);
    await Promise.all([
      fs.saveAccount("le", {
        email: "a@b.c",
        keyPem: "-----BEGIN PRIVATE KEY-----\nAA\n-----END PRIVATE KEY-----\n",
      }),
      fs.saveCertificate("le", {
        main: "a.test",
        sans: ["www.a.test"],
        certPem: "CERT",
        keyPem: "KEY",
      }),
      fs.saveCertificate("le", { main: "b.test", sans: [], certPem: "CERT2", keyPem: "KEY2" }),
    ]);
    assert.equal((await Deno.stat(`${dir}/acme.json`)).mode! & 0o777, 0o600);
    const json = JSON.parse(await Deno.readTextFile(`${dir}/acme.json`));
    assert.equal(json.le.Account.Email, "a@b.c");
    assert.deepEqual(
      json.le.Certificates.map((c: { domain: { main: string } }) => c.domain.main).sort(),
      ["a.test", "b.test"],
    );
    const { certificates } = await fs.loadCertificates("le");
    assert.equal(certificates.find((c) => c.main === "a.test")?.keyPem, "KEY");
    assert.equal((await fs.loadAccount("le"))?.email, "a@b.c");
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["acme.json"]);
    await Deno.writeTextFile(`${dir}/acme.json`, "{oops");
    await assert.rejects(fs.loadCertificates("le"), /acme storage ".*acme\.json": not valid JSON/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("manager: renews once in the window (clock passed in), a failing domain does not block others", async () => {
  const g = await generateSelfSigned();
  const tls = new CertificateStore(parseCertificate("d", g.certPem, g.keyPem, "default"));
  let now = new Date();
  const orders: string[] = [];
  const resolvers: Record<string, CertificateResolverConfig> = {
    le: {
      acme: {
        caServer: "x",
        storage: "",
        keyType: "EC256",
        caCertificates: [],
        httpChallenge: { entryPoint: "web" },
      },
    },
  };
  const store = new MemoryKVStore();
  const saved: string[] = [];
  const manager = new AcmeManager({
    resolvers,
    storage: {
      loadAccount: () => Promise.resolve({ keyPem: "k", url: "u" }),
      saveAccount: () => Promise.resolve(),
      loadCertificates: () => Promise.resolve({ certificates: [], errors: [] }),
      saveCertificate: (_r, c) => {
        saved.push(c.main);
        return store.put(c.main, c.certPem);
      },
    },
    challenges: new ChallengeAnswers(tls),
    tlsStore: tls,
    log: quiet,
    now: () => now,
    order: async (input: OrderInput) => {
      orders.push(input.main);
      if (input.main === "bad.test") {
        throw Object.assign(new Error("rejectedIdentifier"), { retryAfterMs: 3_600_000 });
      }
      const c = await generateSelfSigned({ dnsNames: [input.main], notBefore: now, days: 90 });
      return { main: input.main, sans: [], certPem: c.certPem, keyPem: c.keyPem };
    },
  });
  manager.setWanted(
    ["a.test", "bad.test", "b.test"].map((main) => ({
      resolver: "le",
      main,
      sans: [],
      routers: [],
    })),
  );
  await manager.activate();
  await manager.idle();
  assert.deepEqual(orders.sort(), ["a.test", "b.test", "bad.test"]);
  assert.ok(tls.lookup("a.test") && tls.lookup("b.test"));
  const bad = manager.view().find((v) => v.domains[0] === "bad.test")!;
  assert.equal(bad.state, "backoff");
  assert.equal(bad.lastError, "rejectedIdentifier");
  assert.equal(
    new Date(bad.nextAttempt!).getTime() - now.getTime(),
    3_600_000,
    "Retry-After honoured over the 5 s base",
  );

  // 59 days later nothing is due; at 61 days both good ones renew exactly once.
  orders.length = 0;
  now = new Date(now.getTime() + 59 * DAY);
  await manager.reconcile();
  await manager.idle();
  assert.deepEqual(orders, ["bad.test"]); // only the failed one retries (its backoff has passed)
  orders.length = 0;
  const oldCert = tls.lookup("a.test")!.certificate;
  now = new Date(now.getTime() + 2 * DAY);
  await manager.reconcile();
  await manager.idle();
  await manager.reconcile();
  await manager.idle();
  assert.deepEqual(orders.filter((o) => o !== "bad.test").sort(), ["a.test", "b.test"]);
  assert.notEqual(
    tls.lookup("a.test")!.certificate,
    oldCert,
    "the TLS store switched to the renewed certificate",
  );
  manager.deactivate();
});

Deno.test("manager: a new manager resumes the journalled order and continues the retry state", async () => {
  const g = await generateSelfSigned();
  const tls = new CertificateStore(parseCertificate("d", g.certPem, g.keyPem, "default"));
  let now = new Date("2026-06-01T00:00:00Z");
  const resolvers: Record<string, CertificateResolverConfig> = {
    le: {
      acme: {
        caServer: "x",
        storage: "",
        keyType: "EC256",
        caCertificates: [],
        httpChallenge: { entryPoint: "web" },
      },
    },
  };
  const saved: string[] = [];
  const storage = {
    loadAccount: () => Promise.resolve({ keyPem: "k", url: "u" }),
    saveAccount: () => Promise.resolve(),
    loadCertificates: () => Promise.resolve({ certificates: [], errors: [] }),
    saveCertificate: (_r: string, c: { main: string }) => {
      saved.push(c.main);
      return Promise.resolve();
    },
  };
  // One journal shared by both managers, as the KV is in a cluster.
  const journal = new MemoryOrderJournal(storage.saveCertificate);
  const calls: { by: string; resume?: string }[] = [];
  const make = (by: string, order: (i: OrderInput) => Promise<CertificateRecord>) =>
    new AcmeManager({
      resolvers,
      storage,
      journal,
      challenges: new ChallengeAnswers(tls),
      tlsStore: tls,
      log: quiet,
      now: () => now,
      identity: () => ({ term: by === "m1" ? 1 : 2, nodeId: by }),
      order: (i) => {
        calls.push({ by, resume: i.resume?.url });
        return order(i);
      },
    });
  const wanted = [{ resolver: "le", main: "a.test", sans: [], routers: [] }];
  // m1 opens the order (journalled) and then the CA cannot reach the challenge.
  const m1 = make("m1", async (i) => {
    await i.hooks.creating?.("KEY");
    await i.hooks.created({ url: "https://ca.test/order/1", keyPem: "KEY" });
    throw new OrderError("connection refused", { kind: "network" });
  });
  m1.setWanted(wanted);
  await m1.activate();
  await m1.idle();
  m1.deactivate();
  const journalled = await journal.load("le", "a.test");
  assert.equal(journalled?.orderUrl, "https://ca.test/order/1", "a live order stays journalled");
  assert.equal(journalled?.nodeId, "m1");

  // m2 takes over at once: the retry state (5 s) is honoured, not reset.
  const m2 = make("m2", async (i) => {
    const c = await generateSelfSigned({ dnsNames: [i.main], notBefore: now, days: 90 });
    return { main: i.main, sans: [], certPem: c.certPem, keyPem: c.keyPem };
  });
  m2.setWanted(wanted);
  await m2.activate();
  await m2.idle();
  assert.deepEqual(calls, [{ by: "m1", resume: undefined }], "m2 waits for the backoff");
  assert.equal(m2.view()[0].state, "backoff");
  assert.equal(m2.view()[0].failureKind, "network");
  now = new Date(now.getTime() + 5000);
  await m2.reconcile();
  await m2.idle();
  assert.deepEqual(calls[1], { by: "m2", resume: "https://ca.test/order/1" }, "resumed, not new");
  assert.deepEqual(saved, ["a.test"]);
  assert.equal(await journal.load("le", "a.test"), undefined, "journal cleared with the store");
  assert.equal(m2.view()[0].failures, 0);
  m2.deactivate();

  // A CA rejection is not retried in a loop: the next attempt is a day later.
  const m3 = make("m3", () => {
    throw new OrderError("blocked", {
      kind: "rejected",
      problem: { type: "urn:ietf:params:acme:error:rejectedIdentifier" },
    });
  });
  m3.setWanted([{ resolver: "le", main: "b.test", sans: [], routers: [] }]);
  await m3.activate();
  await m3.idle();
  for (let i = 0; i < 5; i++) {
    now = new Date(now.getTime() + 3600_000);
    await m3.reconcile();
    await m3.idle();
  }
  assert.equal(calls.filter((c) => c.by === "m3").length, 1, "one attempt in 5 hours");
  assert.equal(m3.view()[0].problem?.type, "urn:ietf:params:acme:error:rejectedIdentifier");
  m3.deactivate();
});

Deno.test("terminating TCP routers with a certResolver ask for their HostSNI names; passthrough ones do not", async () => {
  const { wantedCertificates } = await import("../lib/acme/domains.ts");
  const { mergeProviders } = await import("../lib/providers/merge.ts");
  const { validateDynamic } = await import("../lib/config/dynamic.ts");
  const { validateStatic } = await import("../lib/config/static.ts");
  const staticConfig = validateStatic({
    entryPoints: { edge: { address: ":8443" } },
    certificatesResolvers: { le: { acme: { email: "a@b.test", storage: "/tmp/x.json", httpChallenge: { entryPoint: "edge" } } } },
  }, "static.toml");
  const dynamic = validateDynamic({
    tcp: {
      routers: {
        db: { rule: "HostSNI(`db.test`) || HostSNI(`*`)", service: "s", tls: { certResolver: "le" } },
        mq: { rule: "HostSNI(`mq.test`)", service: "s", tls: { certResolver: "le", domains: [{ main: "mq.test", sans: ["amqp.test"] }] } },
        pt: { rule: "HostSNI(`pt.test`)", service: "s", tls: { certResolver: "le", passthrough: true } },
        bad: { rule: "HostSNI(`x.test`)", service: "s", tls: { certResolver: "nope" } },
      },
      services: { s: { loadBalancer: { servers: [{ address: "127.0.0.1:1" }] } } },
    },
  }, "dynamic.toml");
  const { wanted, errors } = wantedCertificates(mergeProviders(new Map([["file", dynamic]])), staticConfig);
  assert.deepEqual(wanted.map((w) => [w.main, w.sans, w.routers]), [
    ["db.test", [], ["db@file"]],
    ["mq.test", ["amqp.test"], ["mq@file"]],
  ]);
  assert.deepEqual(errors, ['router "bad@file": tls.certResolver "nope" is not defined in certificatesResolvers']);
});

/**
 * Encryption key rotation for ACME private keys in the KV store, through the
 * real ACME runtime (`startAcme`) with an in-memory store and a stand-in
 * cluster member whose fenced write records what it applies.
 */
import assert from "node:assert/strict";
import { parseToml } from "../lib/config/load.ts";
import { validateStatic } from "../lib/config/static.ts";
import { MemoryKVStore } from "../lib/kv/memory.ts";
import type { KVOperation } from "../lib/kv/types.ts";
import { Logger } from "../lib/log/logger.ts";
import { KvAcmeStorage } from "../lib/acme/kv_storage.ts";
import { SecretBox } from "../lib/acme/secret_box.ts";
import { type AcmeRuntime, previousKeys, startAcme } from "../lib/acme/runtime.ts";
import type { ClusterMember } from "../lib/cluster/member.ts";
import { CertificateStore } from "../lib/tls/store.ts";
import { generateSelfSigned } from "../lib/tls/self_signed.ts";
import { parseCertificate } from "../lib/tls/certificate.ts";
import { freePort } from "./fixtures/ports.ts";

/** A default certificate for the store; ACME's own certificates are what the test looks up. */
async function defaultCertificate() {
  const g = await generateSelfSigned();
  return parseCertificate("default", g.certPem, g.keyPem, "default");
}

const newKey = () => btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));
const ROOT = "traefik";

Deno.test("SecretBox: previous keys open, only the current key seals, unknown ids are named", async () => {
  const a = newKey();
  const b = newKey();
  const boxA = await SecretBox.fromBase64("old", a);
  const sealedA = await boxA.seal("secret-A");
  const rotated = await SecretBox.fromBase64("[cluster] encryptionKey", b, [
    { where: "[cluster] previousEncryptionKeys[0]", base64Key: a },
  ]);
  assert.deepEqual(rotated.previousKeyIds, [boxA.keyId]);
  assert.equal(await rotated.open("k", sealedA), "secret-A");
  assert.equal(rotated.isCurrent(sealedA), false);
  const resealed = await rotated.seal("secret-A");
  assert.ok(rotated.isCurrent(resealed));
  assert.ok(resealed.startsWith(`v1:${rotated.keyId}:`));

  const bOnly = await SecretBox.fromBase64("[cluster] encryptionKey", b);
  const err = await bOnly.open("KV key x", sealedA).then(() => undefined, (e: Error) => e.message);
  assert.ok(err, "opening with an unknown key id must fail");
  assert.match(err, new RegExp(`KV key x: encrypted with key ${boxA.keyId}`));
  assert.match(err, /previousEncryptionKeys/);
  assert.ok(!err.includes(a) && !err.includes(b), "errors never contain a key");

  // A bad previous key is named by where it came from.
  await assert.rejects(
    SecretBox.fromBase64("k", b, [{
      where: "[cluster] previousEncryptionKeys[1]",
      base64Key: "x",
    }]),
    /\[cluster\] previousEncryptionKeys\[1\]: expected 32 random bytes/,
  );
});

Deno.test("previousKeys: config list and comma-separated env var, each named", () => {
  const got = previousKeys(
    ["K1"],
    (n) => n === "PORTICO_PREVIOUS_ENCRYPTION_KEYS" ? " K2, ,K3 " : undefined,
  );
  assert.deepEqual(got, [
    { where: "[cluster] previousEncryptionKeys[0]", base64Key: "K1" },
    { where: "PORTICO_PREVIOUS_ENCRYPTION_KEYS (entry 0)", base64Key: "K2" },
    { where: "PORTICO_PREVIOUS_ENCRYPTION_KEYS (entry 1)", base64Key: "K3" },
  ]);
  assert.deepEqual(previousKeys(undefined, () => undefined), []);
});

async function until(what: string, fn: () => boolean | Promise<boolean>, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

Deno.test({
  name:
    "key rotation: B alone names key A's id and serves the rest; B + previous A serves all and re-seals everything to B through the fenced write",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const keyA = newKey();
    const keyB = newKey();
    const boxA = await SecretBox.fromBase64("A", keyA);
    const boxB = await SecretBox.fromBase64("B", keyB);
    const store = new MemoryKVStore();
    const direct = async (ops: KVOperation[]) => {
      assert.ok(await store.transaction([], ops));
    };
    const certFor = async (name: string) => {
      const c = await generateSelfSigned({ dnsNames: [name], days: 90 });
      return { main: name, sans: [], certPem: c.certPem, keyPem: c.keyPem };
    };
    const underA = new KvAcmeStorage(store, ROOT, boxA, direct);
    await underA.saveAccount("le", { email: "ops@example.com", keyPem: "ACCOUNT KEY PEM" });
    await underA.saveCertificate("le", await certFor("a.test"));
    await underA.saveCertificate("le", await certFor("b.test"));
    await new KvAcmeStorage(store, ROOT, boxB, direct).saveCertificate(
      "le",
      await certFor("c.test"),
    );
    const snapshot = async () =>
      new Map((await store.list(`${ROOT}/acme/`)).entries.map((e) => [e.key, e.value]));
    const before = await snapshot();

    const webPort = freePort();
    const web = Deno.listen({ hostname: "127.0.0.1", port: webPort });
    const staticConfig = validateStatic(
      parseToml(
        `
[entryPoints.web]
address = "127.0.0.1:${webPort}"
[cluster]
nodeId = "n1"
address = "127.0.0.1:${freePort()}"
secret = "rotation-test-secret-0123456789"
[certificatesResolvers.le.acme]
caServer = "https://127.0.0.1:9/dir"
storage = "unused.json"
[certificatesResolvers.le.acme.httpChallenge]
entryPoint = "web"
`,
        "rotation.toml",
      ),
      "rotation.toml",
    );

    /** One instance start with the given environment; returns what it did. */
    const start = async (env: Record<string, string>) => {
      const lines: string[] = [];
      const log = new Logger({ level: "INFO", format: "json", write: (l) => lines.push(l) });
      const listeners: (() => void)[] = [];
      const fenced: KVOperation[][] = [];
      const certificates = new CertificateStore(await defaultCertificate());
      // Only what ACME uses of a member; the rest would fail loudly if reached.
      const member = {
        isManager: () => true,
        on: (event, listener) => {
          if (event === "becameManager") {
            listeners.push(() => listener({ term: 1, reason: "test" }));
          }
          return () => {};
        },
        fencedWrite: async (ops) => {
          fenced.push(ops);
          await direct(ops);
        },
        view: () => ({ clustered: true }) as ReturnType<ClusterMember["view"]>,
        leaderRecord: () => undefined,
        nodeId: () => "n1",
        peers: () => [],
        peerRoute: () => () => {},
      } as Partial<ClusterMember> as ClusterMember;
      const acme: AcmeRuntime = (await startAcme({
        staticConfig,
        log,
        certificates,
        kv: { store, rootKey: ROOT },
        cluster: member,
        tlsListening: new Promise(() => {}),
        env: (name) => env[name],
      }))!;
      const becomeManager = async () => {
        for (const l of listeners) l();
        await until("re-seal pass", () => acme.view().reseal !== undefined);
      };
      return { tls: { store: certificates, stop: () => acme.stop() }, acme, lines, fenced, becomeManager };
    };
    const served = (tls: { store: CertificateStore }, name: string) =>
      tls.store.lookup(name)?.certificate.source === "acme:le";

    try {
      // 1. Only B: A's entries are refused by key id, c.test (sealed with B) serves.
      const onlyB = await start({ PORTICO_ENCRYPTION_KEY: keyB });
      assert.ok(served(onlyB.tls, "c.test"), "c.test (sealed with B) is served");
      assert.ok(!served(onlyB.tls, "a.test") && !served(onlyB.tls, "b.test"));
      const logged = onlyB.lines.join("\n");
      for (const name of ["a.test", "b.test"]) {
        assert.match(
          logged,
          new RegExp(`certificates/${name.replace(".", "\\.")}: encrypted with key ${boxA.keyId}`),
        );
      }
      await onlyB.becomeManager();
      const failedReseal = onlyB.acme.view() as { reseal: { resealed: number; errors: string[] } };
      assert.equal(failedReseal.reseal.resealed, 0);
      assert.equal(failedReseal.reseal.errors.length, 3, "account, a.test and b.test reported");
      assert.ok(failedReseal.reseal.errors.every((e) => e.includes(boxA.keyId)));
      assert.deepEqual(await snapshot(), before, "nothing is lost or rewritten without the key");
      const all = onlyB.lines.join("\n");
      for (const secret of [keyA, keyB]) assert.ok(!all.includes(secret), "keys never logged");
      await onlyB.tls.stop!();

      // 2. B + previous A (env var): everything serves at once, then is re-sealed with B.
      const rotating = await start({
        PORTICO_ENCRYPTION_KEY: keyB,
        PORTICO_PREVIOUS_ENCRYPTION_KEYS: keyA,
      });
      for (const name of ["a.test", "b.test", "c.test"]) {
        assert.ok(served(rotating.tls, name), `${name} served during rotation`);
      }
      await rotating.becomeManager();
      const ids = await new KvAcmeStorage(store, ROOT, boxB, direct).sealedKeyIds();
      assert.equal(ids.size, 4);
      for (const [key, id] of ids) assert.equal(id, boxB.keyId, `${key} re-sealed with B`);
      const written = rotating.fenced.flat().map((op) => op.key).sort();
      assert.deepEqual(written, [
        `${ROOT}/acme/le/account`,
        `${ROOT}/acme/le/certificates/a.test`,
        `${ROOT}/acme/le/certificates/b.test`,
      ], "only the old entries are rewritten, all through the fenced write");
      assert.match(rotating.lines.join("\n"), /re-sealed private keys/);
      await rotating.tls.stop!();

      // 3. B alone again: nothing needs A any more.
      const after = await start({ PORTICO_ENCRYPTION_KEY: keyB });
      for (const name of ["a.test", "b.test", "c.test"]) assert.ok(served(after.tls, name), name);
      assert.ok(!after.lines.some((l) => l.includes('"level":"ERROR"')), after.lines.join("\n"));
      const account = await new KvAcmeStorage(store, ROOT, boxB, direct).loadAccount("le");
      assert.equal(account?.keyPem, "ACCOUNT KEY PEM");
      await after.tls.stop!();
    } finally {
      web.close();
      await store.close();
    }
  },
});

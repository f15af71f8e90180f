/**
 * `portico storeconfig` imports a Traefik acme.json into a real etcd's
 * certificate keys: sealed private keys, existing keys skipped, counts only
 * in the output, and later runs never remove the ACME keys.
 */
import assert from "node:assert/strict";
import { parseArgs } from "../lib/cli/args.ts";
import { runStoreConfig } from "../lib/cli/storeconfig.ts";
import { EtcdKVStore } from "../lib/kv/etcd.ts";
import { KvAcmeStorage } from "../lib/acme/kv_storage.ts";
import { SecretBox } from "../lib/acme/secret_box.ts";
import { generateSelfSigned } from "../lib/tls/self_signed.ts";
import { startEtcd } from "./fixtures/etcd.ts";
import { freePort } from "./fixtures/ports.ts";
import { decodeKVEntries, isPorticoStateKey } from "../lib/providers/kv_codec.ts";

const b64 = (s: string) => btoa(String.fromCharCode(...new TextEncoder().encode(s)));

Deno.test({
  name:
    "storeconfig imports acme.json: sealed keys, existing skipped, counts only, kept on later runs",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const etcd = await startEtcd();
    const kv = new EtcdKVStore({ endpoints: [etcd.endpoint] });
    const dir = await Deno.makeTempDir({ prefix: "acme-import-" });
    const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));
    const box = await SecretBox.fromBase64("k", key);
    const storage = new KvAcmeStorage(kv, "traefik", box, async (ops) => {
      assert.ok(await kv.transaction([], ops));
    });
    try {
      const certs = new Map<string, { certPem: string; keyPem: string }>();
      for (const d of ["a.test", "b.test", "c.test", "d.test"]) {
        certs.set(d, await generateSelfSigned({ dnsNames: [d] }));
      }
      const entry = (d: string) => ({
        domain: { main: d, sans: [] },
        certificate: b64(certs.get(d)!.certPem),
        key: b64(certs.get(d)!.keyPem),
        Store: "default",
      });
      const accountKey = "-----BEGIN PRIVATE KEY-----\nACCOUNT\n-----END PRIVATE KEY-----\n";
      await Deno.writeTextFile(
        `${dir}/acme.json`,
        JSON.stringify({
          le: {
            Account: {
              Email: "ops@example.com",
              Registration: { uri: "https://ca/acct/1" },
              PrivateKey: b64(accountKey),
              KeyType: "EC256",
            },
            Certificates: ["a.test", "b.test", "c.test"].map(entry),
          },
          other: { Certificates: [entry("d.test")] },
        }),
      );
      await Deno.writeTextFile(
        `${dir}/dynamic.toml`,
        `
[http.routers.r]
rule = "Host(\`a.test\`)"
service = "noop@internal"
`,
      );
      await Deno.writeTextFile(
        `${dir}/portico.toml`,
        `
[providers.file]
filename = "${dir}/dynamic.toml"
[providers.etcd]
endpoints = ["${etcd.endpoint.replace(/^https?:\/\//, "")}"]
rootKey = "traefik"
[cluster]
address = "127.0.0.1:${freePort()}"
secret = "storeconfig-import-secret-0123"
encryptionKey = "${key}"
[entryPoints.web]
address = ":80"
[certificatesResolvers.le.acme]
storage = "${dir}/acme.json"
caServer = "https://127.0.0.1:9/dir"
[certificatesResolvers.le.acme.httpChallenge]
entryPoint = "web"
`,
      );
      // b.test is already in the cluster (a newer order): it must stay as it is.
      const existing = await generateSelfSigned({ dnsNames: ["b.test"] });
      await storage.saveCertificate("le", { main: "b.test", sans: [], ...existing });
      const bBefore = (await kv.get("traefik/acme/le/certificates/b.test"))!.value;

      const run = async (...extra: string[]) => {
        const out: string[] = [];
        const err: string[] = [];
        const code = await runStoreConfig(
          parseArgs(["storeconfig", `--configFile=${dir}/portico.toml`, ...extra]),
          { out: (l) => out.push(l), err: (l) => err.push(l) },
        );
        return { code, out: out.join("\n"), err: err.join("\n") };
      };

      const dry = await run("--dry-run");
      assert.equal(dry.code, 0, dry.err);
      assert.match(dry.out, /3 certificates to import, 1 already present/);
      assert.equal(await kv.get("traefik/acme/le/certificates/a.test"), undefined, "dry run");

      const first = await run();
      assert.equal(first.code, 0, first.err);
      assert.match(
        first.out,
        /acme\.json ".*acme\.json": 3 certificates imported, 1 already present \(skipped\), 1 accounts imported/,
      );
      for (const secret of [accountKey, ...[...certs.values()].map((c) => c.keyPem), key]) {
        assert.ok(!first.out.includes(secret.trim()) && !first.err.includes(secret.trim()));
      }
      assert.doesNotMatch(first.out + first.err, /BEGIN|PRIVATE/);

      const { entries } = await kv.list("traefik/acme/");
      assert.deepEqual(entries.map((e) => e.key).sort(), [
        "traefik/acme/le/account",
        "traefik/acme/le/certificates/a.test",
        "traefik/acme/le/certificates/b.test",
        "traefik/acme/le/certificates/c.test",
        "traefik/acme/other/certificates/d.test",
      ]);
      for (const e of entries) assert.doesNotMatch(e.value, /PRIVATE KEY/, `${e.key} sealed`);
      const a = await storage.decode(
        "k",
        (await kv.get("traefik/acme/le/certificates/a.test"))!.value,
      );
      assert.equal(a.keyPem, certs.get("a.test")!.keyPem);
      assert.equal(a.certPem, certs.get("a.test")!.certPem);
      assert.equal(
        (await kv.get("traefik/acme/le/certificates/b.test"))!.value,
        bBefore,
        "existing certificate untouched",
      );
      const account = await storage.loadAccount("le");
      assert.equal(account?.keyPem, accountKey);
      assert.equal(account?.url, "https://ca/acct/1");
      // The dynamic config was written too.
      assert.ok(await kv.get("traefik/http/routers/r/rule"));

      // A second run imports nothing and removes none of the ACME keys.
      const second = await run();
      assert.equal(second.code, 0, second.err);
      assert.match(second.out, /0 certificates imported, 4 already present/);
      assert.equal((await kv.list("traefik/acme/")).entries.length, 5);

      // An explicit path that does not exist is an error naming it.
      const missing = await run(`--acme-json=${dir}/nope.json`);
      assert.equal(missing.code, 1);
      assert.match(missing.err, /--acme-json: no file at ".*nope\.json"/);
    } finally {
      await kv.close();
      await etcd.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test("the KV config decoder skips the cluster's and ACME's own subtrees", () => {
  const config = decodeKVEntries(
    new Map([
      ["traefik/http/routers/r/rule", "Host(`a.test`)"],
      ["traefik/http/routers/r/service", "noop@internal"],
      ["traefik/cluster/leader", '{"nodeId":"n1","term":3}'],
      ["traefik/acme/le/certificates/a.test", '{"main":"a.test"}'],
      ["traefik/ACME/challenges/http/tok", "keyauth"],
    ]),
    "traefik",
    "etcd",
  );
  assert.deepEqual(Object.keys(config.http.routers), ["r"]);
  for (
    const [key, expected] of [
      ["traefik/acme/x", true],
      ["traefik/cluster/leader", true],
      ["traefik/http/routers/acme/rule", false],
      ["other/acme/x", false],
    ] as const
  ) {
    assert.equal(isPorticoStateKey(key, "traefik"), expected, key);
  }
  // Anything else unknown is still an error naming the key.
  assert.throws(
    () => decodeKVEntries(new Map([["traefik/acmex/a", "1"]]), "traefik", "etcd"),
    /traefik\/acmex/,
  );
});

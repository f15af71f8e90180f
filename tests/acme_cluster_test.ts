/**
 * Cluster ACME at the module level: three in-process "nodes" share one
 * in-memory KV backend; the manager flag and the fenced write are played by
 * the test (a leader key compared in the same transaction), because this
 * exercises the ACME logic itself. Pebble is real, and its HTTP-01 port
 * points at a node that did not place the order.
 */
import assert from "node:assert/strict";
import type { CertificateResolverConfig } from "../lib/config/types.ts";
import { MemoryKVBackend, MemoryKVStore } from "../lib/kv/memory.ts";
import type { KVOperation, KVWatch } from "../lib/kv/types.ts";
import { Logger } from "../lib/log/logger.ts";
import { ChallengeAnswers } from "../lib/acme/challenges.ts";
import { configureCaTrust } from "../lib/acme/issuer.ts";
import { KvAcmeStorage } from "../lib/acme/kv_storage.ts";
import { KvOrderJournal } from "../lib/acme/journal.ts";
import { AcmeManager } from "../lib/acme/manager.ts";
import { SecretBox } from "../lib/acme/secret_box.ts";
import { parseCertificate } from "../lib/tls/certificate.ts";
import { generateSelfSigned } from "../lib/tls/self_signed.ts";
import { CertificateStore } from "../lib/tls/store.ts";
import type { ProxyRequest } from "../lib/services/types.ts";
import { startPebble } from "./fixtures/pebble.ts";
import { freePort } from "./fixtures/ports.ts";

const ROOT = "traefik";
const LEADER = `${ROOT}/test-leader`;
const KEY = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));
const quiet = new Logger({ level: "ERROR", format: "json", write: () => {} });

interface Node {
  id: string;
  tls: CertificateStore;
  answers: ChallengeAnswers;
  storage: KvAcmeStorage;
  manager: AcmeManager;
  watch: KVWatch;
  server?: Deno.HttpServer;
  /** When each certificate main name first reached this node's TLS store. */
  seenAt: Map<string, number>;
}

async function makeNode(
  id: string,
  backend: MemoryKVBackend,
  resolvers: Record<string, CertificateResolverConfig>,
  key = KEY,
): Promise<Node> {
  const generated = await generateSelfSigned();
  const tls = new CertificateStore(
    parseCertificate("d", generated.certPem, generated.keyPem, "default"),
  );
  const answers = new ChallengeAnswers(tls);
  const store = new MemoryKVStore({ backend });
  const box = await SecretBox.fromBase64("test key", key);
  // The fenced write: applies only while the leader key names this node.
  const write = async (ops: KVOperation[]) => {
    if (!await store.transaction([{ key: LEADER, kind: "equals", value: id }], ops)) {
      throw new Error(`fenced out: ${id} is not the leader`);
    }
  };
  const storage = new KvAcmeStorage(store, ROOT, box, write);
  // The journal in the shared store: a manager taking over resumes the
  // orders in flight instead of opening new ones.
  const journal = new KvOrderJournal(store, ROOT, box, write, (c) => storage.encodeCertificate(c));
  const manager = new AcmeManager({
    resolvers,
    storage,
    journal,
    identity: () => ({ term: 0, nodeId: id }),
    challenges: storage.challengeSink(answers),
    tlsStore: tls,
    log: quiet,
  });
  const seenAt = new Map<string, number>();
  tls.onChange(() => {
    for (const c of tls.certificates("acme:pebble")) {
      if (!seenAt.has(c.names[0])) seenAt.set(c.names[0], performance.now());
    }
  });
  const watch = storage.watch((resolver, record, error) => {
    if (record) manager.install(resolver, record);
    if (error) errors.push(`${id}: ${error}`);
  }, answers);
  return { id, tls, answers, storage, manager, watch, seenAt };
}
const errors: string[] = [];

function serveChallenges(node: Node, port: number) {
  const service = node.answers.service();
  node.server = Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, (request) => {
    const url = new URL(request.url);
    return service.serve({ request, pathAndQuery: url.pathname + url.search } as ProxyRequest);
  });
}

async function until(what: string, fn: () => boolean, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

Deno.test({
  name:
    "cluster ACME: exactly one order per domain across a failover (journal), challenge answered by a worker, every node serves within 1 s",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const workerPort = freePort();
    const pebble = await startPebble({ httpPort: workerPort });
    const backend = new MemoryKVBackend();
    const caFile = await Deno.makeTempFile({ suffix: ".pem" });
    await Deno.writeTextFile(caFile, pebble.listenerCaPem);
    const resolvers: Record<string, CertificateResolverConfig> = {
      pebble: {
        acme: {
          caServer: pebble.directoryUrl,
          storage: "",
          keyType: "EC256",
          caCertificates: [caFile],
          httpChallenge: { entryPoint: "web" },
        },
      },
    };
    await configureCaTrust([resolvers.pebble.acme], () => undefined);
    const nodes = await Promise.all(
      ["n1", "n2", "n3"].map((id) => makeNode(id, backend, resolvers)),
    );
    serveChallenges(nodes[1], workerPort); // Pebble validates against n2; n1 orders.
    const admin = new MemoryKVStore({ backend });
    try {
      const domains = Array.from({ length: 8 }, (_, i) => `d${i}.test`);
      const wanted = domains.map((d) => ({
        resolver: "pebble",
        main: d,
        sans: [],
        routers: [`r-${d}`],
      }));
      for (const n of nodes) n.manager.setWanted(wanted);

      await admin.put(LEADER, "n1");
      await nodes[0].manager.activate();
      // Fail over in the middle: once some (not all) certificates are stored.
      await until("first certificate", () => nodes[0].manager.issued >= 2);
      await admin.put(LEADER, "n3");
      nodes[0].manager.deactivate();
      await nodes[2].manager.activate();
      await until(
        "every certificate on every node",
        () =>
          nodes.every((n) =>
            domains.every((d) => n.tls.lookup(d)?.certificate.source === "acme:pebble")
          ),
      );
      await nodes[0].manager.idle();
      await nodes[2].manager.idle();

      const root = await pebble.rootPem();
      for (const d of domains) {
        // Exactly one: an order in flight at failover is resumed from the journal.
        assert.equal(pebble.ordersFor(d), 1, `${d}: orders validated by Pebble`);
        const issuers = nodes.map((n) => n.tls.lookup(d)!.certificate.issuer);
        assert.ok(
          issuers.every((i) => /Pebble Intermediate/.test(i)),
          `${d} issued by Pebble: ${issuers}`,
        );
        // Each certificate reached all three nodes within 1 s of the first.
        const times = nodes.map((n) => n.seenAt.get(d)!);
        assert.ok(
          Math.max(...times) - Math.min(...times) < 1000,
          `${d} spread ${Math.max(...times) - Math.min(...times)} ms`,
        );
      }
      assert.equal(
        pebble.ordersCreated(),
        domains.length,
        "orders created at the CA: one per domain, none opened by the deposed manager",
      );
      assert.ok(root.includes("BEGIN CERTIFICATE"));

      // Private keys are encrypted at rest: no PEM key text in the KV store.
      const { entries } = await admin.list(`${ROOT}/acme/`);
      assert.ok(entries.length >= domains.length + 1);
      for (const e of entries) {
        assert.ok(!e.value.includes("PRIVATE KEY"), `${e.key} holds a clear-text key`);
      }

      // A fresh manager with everything stored places no order at all.
      const before = domains.map((d) => pebble.ordersFor(d));
      nodes[2].manager.deactivate();
      await admin.put(LEADER, "n2");
      await nodes[1].manager.activate();
      await nodes[1].manager.idle();
      assert.deepEqual(domains.map((d) => pebble.ordersFor(d)), before);

      // The deposed manager's writes fail in the store itself.
      await assert.rejects(
        nodes[0].storage.saveCertificate("pebble", {
          main: "x.test",
          sans: [],
          certPem: "",
          keyPem: "k",
        }),
        /fenced out/,
      );

      // A corrupt certificate key in the KV is reported; the others keep serving.
      await admin.put(`${ROOT}/acme/pebble/certificates/broken.test`, "{not json");
      await until(
        "corrupt entry reported",
        () => errors.some((e) => e.includes("broken.test")),
        2000,
      );
      assert.ok(nodes.every((n) => domains.every((d) => n.tls.lookup(d))));

      // A node with the wrong encryption key says so and serves nothing it cannot decrypt.
      const wrongKey = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));
      const stranger = await makeNode("n4", backend, resolvers, wrongKey);
      await until(
        "wrong key reported",
        () =>
          errors.some((e) =>
            e.startsWith("n4:") && /encrypted with key .* configured encryption key/.test(e)
          ),
        2000,
      );
      assert.equal(stranger.tls.lookup("d0.test"), undefined);
      await stranger.watch.close();
    } finally {
      for (const n of nodes) {
        n.manager.deactivate();
        await n.watch.close();
        await n.server?.shutdown();
      }
      await pebble.stop();
      await Deno.remove(caFile).catch(() => {});
    }
  },
});

/**
 * DNS-01 in a cluster, all real processes: BIND 9 (authoritative for the
 * test zones, TSIG updates, port-53 relay for the authoritative check),
 * Pebble with its VA pointed at BIND (`pebble -dnsserver`), etcd, and
 * three Portico nodes (`deno run mod.ts`).
 *
 * - One router asks for `example.test` + `*.example.test` (tls.domains):
 *   every node serves `https://anything.example.test` and
 *   `https://example.test` with a chain that verifies against Pebble's root;
 *   Pebble's log shows exactly one order; only the manager published TXT
 *   records; afterwards no `_acme-challenge` TXT is left in BIND (dig) and
 *   no record entry in etcd.
 * - The manager is killed between presenting and validating (a resolver
 *   with a 2 s `delayBeforeChecks`, killed once BIND holds both values):
 *   the new manager resumes the journalled order (no second order), the
 *   certificate reaches the other nodes, and no TXT record is left.
 * - The second resolver reads its TSIG key (hmac-sha512) from its own
 *   `credentialsFile`, the first from the environment (`_FILE`): two
 *   resolvers, two keys at one provider (traefik#5472).
 */
import assert from "node:assert/strict";
import https from "node:https";
import { startBind9 } from "./fixtures/bind9.ts";
import { startEtcd } from "./fixtures/etcd.ts";
import { startPebble } from "./fixtures/pebble.ts";
import { startEchoBackend } from "./fixtures/backend.ts";
import { freePort } from "./fixtures/ports.ts";
import { createAcmeCluster, ROOT, until, verifiedHandshake } from "./fixtures/acme_cluster.ts";

/**
 * Polls until a verified handshake with SNI `name` gets a leaf for `zone`
 * and `*.zone` (the wildcard certificate).
 */
function servedPair(port: number, name: string, zone: string, ca: string, timeoutMs: number) {
  return until(
    `port ${port} serving ${name} with the ${zone} + *.${zone} certificate`,
    async () => {
      const peer = await verifiedHandshake(port, name, ca);
      const sans = peer.san.split(", ");
      return sans.includes(`DNS:${zone}`) && sans.includes(`DNS:*.${zone}`) ? true : undefined;
    },
    timeoutMs,
  );
}

/** One HTTPS request to 127.0.0.1:port with SNI and Host `name`, verified against `ca`. */
function httpsGet(
  port: number,
  name: string,
  ca: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: "127.0.0.1",
      port,
      servername: name,
      path: "/dns01",
      headers: { host: name },
      ca,
      rejectUnauthorized: true,
      agent: false,
      timeout: 3000,
    }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

Deno.test({
  name:
    "DNS-01 cluster, real BIND 9 + Pebble + etcd + 3 processes: wildcard and apex in one order, served by every node, no TXT left; manager killed between presenting and validating resumes the same order",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const bind = await startBind9({ zones: ["example.test", "slow.test"], nsAddress: true });
    const pebble = await startPebble({ httpPort: freePort(), dnsServer: bind.server });
    const etcd = await startEtcd();
    const backend = startEchoBackend("dns01-backend");
    const secrets = await Deno.makeTempDir({ prefix: "dns01-cluster-" });
    await Deno.writeTextFile(`${secrets}/tsig-secret`, bind.keys.sha256.secret);
    await Deno.writeTextFile(
      `${secrets}/slow.env`,
      `RFC2136_NAMESERVER=${bind.server}\nRFC2136_TSIG_KEY=${bind.keys.sha512.name}\nRFC2136_TSIG_SECRET=${bind.keys.sha512.secret}\nRFC2136_TSIG_ALGORITHM=hmac-sha512\n`,
    );
    const resolver = (dir: string, name: string, extra: string) =>
      `[certificatesResolvers.${name}.acme]
email = "ops@example.com"
caServer = "${pebble.directoryUrl}"
storage = "${dir}/${name}.json"
caCertificates = ["${dir}/pebble-ca.pem"]
[certificatesResolvers.${name}.acme.dnsChallenge]
provider = "rfc2136"
resolvers = ["${bind.server}"]
${extra}`;
    const cluster = await createAcmeCluster({
      etcdEndpoint: etcd.endpoint,
      directoryUrl: pebble.directoryUrl,
      listenerCaPem: pebble.listenerCaPem,
      env: {
        RFC2136_NAMESERVER: bind.server,
        RFC2136_TSIG_KEY: bind.keys.sha256.name,
        RFC2136_TSIG_SECRET_FILE: `${secrets}/tsig-secret`,
      },
      resolvers: (_, dir) =>
        `${resolver(dir, "dns", "")}
${
          resolver(
            dir,
            "slow",
            `credentialsFile = "${secrets}/slow.env"\n[certificatesResolvers.slow.acme.dnsChallenge.propagation]\ndelayBeforeChecks = "2s"`,
          )
        }
`,
    });
    const { nodes, kv } = cluster;
    /** Every line a node printed, across restarts. */
    const output = (i: number) => nodes[i].lines.join("\n");
    const putRouter = async (name: string, resolverName: string, zone: string) => {
      const p = `${ROOT}/http/routers/${name}`;
      const escaped = zone.replaceAll(".", "\\.");
      assert.ok(
        await kv.transaction([], [
          {
            kind: "put",
            key: `${p}/rule`,
            value: `Host(\`${zone}\`) || HostRegexp(\`^[a-z0-9-]+\\.${escaped}$\`)`,
          },
          { kind: "put", key: `${p}/service`, value: "be" },
          { kind: "put", key: `${p}/entrypoints/0`, value: "websecure" },
          { kind: "put", key: `${p}/tls/certresolver`, value: resolverName },
          { kind: "put", key: `${p}/tls/domains/0/main`, value: zone },
          { kind: "put", key: `${p}/tls/domains/0/sans/0`, value: `*.${zone}` },
          {
            kind: "put",
            key: `${ROOT}/http/services/be/loadbalancer/servers/0/url`,
            value: backend.url,
          },
        ]),
      );
    };
    const stored = (resolverName: string, main: string) =>
      until(
        `${main} stored in etcd`,
        async () =>
          (await kv.get(`${ROOT}/acme/${resolverName}/certificates/${main}`)) ? true : undefined,
        30_000,
      );
    const noTxtLeft = async (zone: string) => {
      await until(
        `no TXT left at _acme-challenge.${zone}`,
        async () => (await bind.txt(`_acme-challenge.${zone}`)).length === 0 ? true : undefined,
        5_000,
      );
      const { entries } = await kv.list(`${ROOT}/acme/challenges/dns/`);
      assert.equal(entries.length, 0, "no record journalled in etcd any more");
    };

    try {
      const t0 = performance.now();
      await Promise.all(nodes.map((_, i) => cluster.start(i)));
      const first = await cluster.manager();
      const root = await pebble.rootPem();

      // Wildcard + apex in one certificate.
      const routerAt = performance.now();
      await putRouter("wild", "dns", "example.test");
      await stored("dns", "example.test");
      const storedMs = performance.now() - routerAt;
      for (const n of nodes) {
        for (const name of ["anything.example.test", "example.test"]) {
          await servedPair(n.securePort, name, "example.test", root, 5_000);
          const res = await httpsGet(n.securePort, name, root);
          assert.equal(res.status, 200, `${n.id} ${name}`);
          assert.equal(JSON.parse(res.body).backend, "dns01-backend");
        }
      }
      console.log(
        `3 nodes up and ${nodes[first.i].id} manager ${
          (routerAt - t0).toFixed(0)
        } ms after start; ` +
          `example.test + *.example.test stored ${
            storedMs.toFixed(0)
          } ms after the router, served by all 3 nodes`,
      );
      assert.equal(pebble.ordersCreated(), 1, "exactly one order for the pair");
      await noTxtLeft("example.test");
      assert.ok(bind.nsQueries() > 0, "the authoritative server was checked on port 53");
      for (const [i, n] of nodes.entries()) {
        const published = output(i).includes("DNS-01: TXT record published");
        assert.equal(
          published,
          i === first.i,
          `${n.id}: only the manager touches the DNS provider`,
        );
      }
      assert.match(output(first.i), /DNS-01: TXT records visible/);

      // Kill the manager between presenting and validating.
      const m = await cluster.manager();
      assert.equal(m.i, first.i, "no election happened meanwhile");
      await putRouter("slow", "slow", "slow.test");
      await until(
        "both slow.test values in BIND",
        async () => (await bind.txt("_acme-challenge.slow.test")).length === 2 ? true : undefined,
        15_000,
      );
      const presented = (await bind.txt("_acme-challenge.slow.test")).sort();
      assert.equal(
        await kv.get(`${ROOT}/acme/slow/certificates/slow.test`),
        undefined,
        "not validated yet",
      );
      const killedAt = performance.now();
      await cluster.kill(m.i);
      const next = await cluster.manager(m.term);
      await stored("slow", "slow.test");
      const after = performance.now() - killedAt;
      for (const i of [0, 1, 2].filter((j) => j !== m.i)) {
        await servedPair(nodes[i].securePort, "x.slow.test", "slow.test", root, 5_000);
        await servedPair(nodes[i].securePort, "slow.test", "slow.test", root, 5_000);
      }
      console.log(
        `manager killed after presenting: ${nodes[next.i].id} took over, slow.test stored ${
          after.toFixed(0)
        } ms after the kill`,
      );
      assert.equal(pebble.ordersCreated(), 2, "the journalled order was resumed, not placed again");
      assert.match(output(next.i), /resuming journalled order[^\n]*slow/);
      // The new manager published the same two values again (idempotent) and removed them.
      assert.match(output(next.i), /DNS-01: TXT record published[^\n]*slow/);
      assert.equal(presented.length, 2);
      await noTxtLeft("slow.test");
      await noTxtLeft("example.test");
      for (const [i, n] of nodes.entries()) {
        assert.ok(!output(i).includes(bind.keys.sha256.secret), `${n.id}: no secret in the log`);
        assert.ok(!output(i).includes(bind.keys.sha512.secret), `${n.id}: no secret in the log`);
      }
    } catch (err) {
      for (const n of nodes) console.error(`--- ${n.id}\n${n.output.slice(-5000)}`);
      throw err;
    } finally {
      await cluster.close();
      await backend.close();
      await etcd.stop();
      await pebble.stop();
      await bind.stop();
      await Deno.remove(secrets, { recursive: true }).catch(() => {});
    }
  },
});

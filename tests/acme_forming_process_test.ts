/**
 * Issue 16: ACME in a cluster that is still forming or changing, with real
 * Portico processes, a real etcd and a real Pebble. Orders are counted from
 * Pebble's own log.
 *
 * - (a)+(d) Routers are in etcd before any node starts; n1 and n2 elect a
 *   manager while n3, the only node Pebble's HTTP-01 check reaches, is still
 *   down. The readiness gate holds validation until n3 serves the tokens:
 *   exactly one order per domain, every node serves every certificate
 *   within 5 s of n3 joining. One domain is on Pebble's block list: it is
 *   refused once, logged with the CA's problem, not retried, and the
 *   others are served.
 * - (b) n3 is configured but never starts: the order proceeds after the
 *   bounded wait, and the log and the API name the absent member.
 * - (c) The manager is `kill -9`ed at random points of orders (a few rounds
 *   here; `deno task chaos:acme` runs more): zero duplicate orders.
 */
import assert from "node:assert/strict";
import { servedAt, until, withHttp01Cluster } from "./fixtures/acme_cluster.ts";
import { runAcmeChaos } from "./fixtures/acme_chaos.ts";

const DOMAINS = ["f0.test", "f1.test", "f2.test"];
const BLOCKED = "blocked.test";

interface CertView {
  domains: string[];
  state: string;
  failureKind?: string;
  problem?: { type?: string };
  readiness?: {
    waitedMs: number;
    timedOut: boolean;
    members: { name: string; nodeId?: string; confirmed: boolean; afterMs?: number }[];
  };
}

async function certificates(apiPort: number): Promise<CertView[]> {
  const res = await fetch(`http://127.0.0.1:${apiPort}/api/portico/certificates`);
  const body = await res.json();
  return (Array.isArray(body) ? body : body.certificates) as CertView[];
}

Deno.test({
  name:
    "ACME forming cluster: validated node joins after the election -> one order per domain, all served within 5 s of it joining; a blocked domain is refused once",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const options = { pebble: { blockedDomains: [BLOCKED] } };
    await withHttp01Cluster(options, async ({ pebble, forwarder, cluster }) => {
      const { nodes } = cluster;
      // Routers known from the start, before any node runs.
      for (const [i, d] of [...DOMAINS, BLOCKED].entries()) await cluster.putRouter(`f${i}`, d);
      // Only n3 is reachable for Pebble's HTTP-01 check.
      forwarder.retarget(nodes[2].webPort);
      await Promise.all([cluster.start(0), cluster.start(1)]);
      const first = await cluster.manager();
      await until(
        "the manager ordering",
        () => Promise.resolve(/ordering certificate/.test(nodes[first.i].output) || undefined),
        15_000,
      );
      // The gate holds validation while n3 is down: nothing validated, nothing failed.
      await new Promise((r) => setTimeout(r, 2500));
      for (const d of DOMAINS) assert.equal(pebble.ordersFor(d), 0, `${d} not validated yet`);
      assert.doesNotMatch(nodes[first.i].output, /certificate order failed/);
      const spawnedAt = performance.now();
      await cluster.start(2);
      const joinedAt = performance.now();
      const root = await pebble.rootPem();
      const served = await Promise.all(
        DOMAINS.flatMap((d) => nodes.map((n) => servedAt(n.securePort, d, root, 15_000))),
      );
      const last = Math.max(...served);
      console.log(
        `n3 joined (API up ${
          (joinedAt - spawnedAt).toFixed(0)
        } ms after spawn); every node serves every certificate ${
          (last - joinedAt).toFixed(0)
        } ms after it joined (${(last - spawnedAt).toFixed(0)} ms after spawn)`,
      );
      assert.ok(last - joinedAt < 5000, `served ${last - joinedAt} ms after the last node joined`);
      for (const d of DOMAINS) assert.equal(pebble.ordersFor(d), 1, `${d}: orders validated`);

      // The wait is visible on the manager's API: every member confirmed, with times.
      const m = await cluster.manager();
      const views = await certificates(nodes[m.i].apiPort);
      const f0 = views.find((v) => v.domains[0] === "f0.test")!;
      assert.ok(f0.readiness, "readiness shown in the certificates view");
      assert.equal(f0.readiness.timedOut, false);
      assert.deepEqual(f0.readiness.members.map((x) => x.confirmed), [true, true, true]);
      assert.ok(f0.readiness.members.some((x) => x.nodeId === "n3"));
      console.log(
        `readiness wait for f0.test: ${f0.readiness.waitedMs} ms; ${
          f0.readiness.members.map((x) => `${x.nodeId ?? x.name} ${x.afterMs} ms`).join(", ")
        }`,
      );

      // (d) The blocked domain: refused once, with the CA's problem, no retry storm.
      await new Promise((r) => setTimeout(r, 1500));
      const out = nodes.map((n) => n.output).join("\n");
      const refusals = out.split("\n").filter((l) =>
        l.includes("certificate refused by the CA") && l.includes(BLOCKED)
      );
      assert.equal(refusals.length, 1, "refused once, not retried in a loop");
      assert.match(refusals[0], /rejectedIdentifier/);
      const attempts = out.split("\n").filter((l) =>
        l.includes("ordering certificate") && l.includes(BLOCKED)
      ).length;
      assert.equal(attempts, 1, `${BLOCKED}: attempts`);
      const blocked = views.find((v) => v.domains[0] === BLOCKED)!;
      assert.equal(blocked.failureKind, "rejected");
      assert.match(blocked.problem?.type ?? "", /rejectedIdentifier/);
      assert.equal(pebble.ordersCreated(), DOMAINS.length, "orders created at the CA");
    });
  },
});

Deno.test({
  name:
    "ACME forming cluster: a configured node that never starts -> the order proceeds after clusterReadyTimeout, the log and API name it",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const options = { cluster: { clusterReadyTimeout: "2s" } };
    await withHttp01Cluster(options, async ({ pebble, forwarder, cluster }) => {
      const { nodes } = cluster;
      await cluster.putRouter("r0", "absent.test");
      forwarder.retarget(nodes[0].webPort, nodes[1].webPort);
      await Promise.all([cluster.start(0), cluster.start(1)]);
      const m = await cluster.manager();
      const root = await pebble.rootPem();
      await Promise.all(
        nodes.slice(0, 2).map((n) => servedAt(n.securePort, "absent.test", root, 20_000)),
      );
      const missing = cluster.clusterAddress(2);
      const line = nodes[m.i].output.split("\n").find((l) => l.includes("member absent"));
      assert.ok(line, "the absent member is logged");
      assert.ok(line.includes(missing), `the log names ${missing}: ${line}`);
      const view = (await certificates(nodes[m.i].apiPort)).find((v) =>
        v.domains[0] === "absent.test"
      )!;
      assert.equal(view.readiness?.timedOut, true);
      assert.ok(view.readiness!.waitedMs >= 2000 && view.readiness!.waitedMs < 4000);
      const absent = view.readiness!.members.filter((x) => !x.confirmed).map((x) => x.name);
      assert.deepEqual(absent, [missing]);
      assert.equal(pebble.ordersFor("absent.test"), 1);
      console.log(`order went ahead after ${view.readiness!.waitedMs} ms without ${missing}`);
    });
  },
});

Deno.test({
  name: "ACME chaos: kill -9 of the manager at random points of orders -> zero duplicate orders",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const rounds = Number(Deno.env.get("ACME_CHAOS_ROUNDS") ?? 6);
    const seedText = Deno.env.get("PORTICO_CHAOS_SEED");
    const result = await runAcmeChaos({
      rounds,
      seed: seedText ? Number(seedText) : undefined,
      log: console.log,
    });
    console.log(
      `seed ${result.seed}: ${result.kills} kills, orders per domain ${
        JSON.stringify(result.ordersPerDomain)
      }, created ${result.ordersCreated}, resumed ${result.resumed}, ${
        (result.elapsedMs / 1000).toFixed(1)
      } s`,
    );
    assert.deepEqual(result.unserved, [], `every certificate served (seed ${result.seed})`);
    for (const [d, n] of Object.entries(result.ordersPerDomain)) {
      assert.equal(n, 1, `${d}: orders validated by Pebble (seed ${result.seed})`);
    }
    assert.equal(
      result.ordersCreated,
      result.domains.length,
      `orders created at the CA (seed ${result.seed})`,
    );
  },
});

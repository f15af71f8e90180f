/**
 * ACME in a cluster of three real Portico processes (`deno run mod.ts`)
 * with `[cluster]`, `[providers.etcd]` on a real etcd, and a real Pebble.
 *
 * - Routers for five domains are written to etcd once a manager is
 *   elected; Pebble's HTTP-01 validation goes (through a forwarder the test
 *   controls) to a worker, so the challenge is answered by a node that did
 *   not place the order.
 * - Orders are counted from Pebble's log: exactly one per domain.
 * - Each certificate is served, verified against Pebble's root with SNI,
 *   by all three nodes within 1 s of its KV key being written.
 * - Then the manager is killed (SIGKILL) while Pebble is validating an
 *   order for a new domain: the next manager resumes the journalled order
 *   (no new order at the CA) and the held validation completes.
 */
import assert from "node:assert/strict";
import { servedAt, until, withHttp01Cluster } from "./fixtures/acme_cluster.ts";

const DOMAINS = ["c0.test", "c1.test", "c2.test", "c3.test", "c4.test"];
const LATE = "late.test";

Deno.test({
  name:
    "ACME cluster, 3 real processes: one order per domain (Pebble's count), challenge answered by a worker, all nodes serve within 1 s, manager killed mid-order resumes the same order",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    // The killed manager stays down: the readiness wait for it is bounded.
    const options = { cluster: { clusterReadyTimeout: "3s" } };
    await withHttp01Cluster(options, async ({ pebble, forwarder, cluster }) => {
      const { nodes, start, kill, manager, putRouter } = cluster;
      /** When the certificate of `main` was first written to etcd. */
      const firstPut = (main: string) => Promise.resolve(cluster.puts.get(main)?.[0]);

      const t0 = performance.now();
      await Promise.all(nodes.map((_, i) => start(i)));
      const first = await manager();
      console.log(
        `3 nodes up, ${nodes[first.i].id} manager after ${(performance.now() - t0).toFixed(0)} ms`,
      );
      const worker = (first.i + 1) % 3;
      forwarder.retarget(nodes[worker].webPort);
      const root = await pebble.rootPem();

      // Five routers at once; each certificate must reach every node.
      const routersAt = performance.now();
      for (const [i, d] of DOMAINS.entries()) await putRouter(`r${i}`, d);
      const served = await Promise.all(DOMAINS.map(async (d) => {
        const storedAt = await until(
          `${d} stored in etcd`,
          () => firstPut(d),
          30_000,
        );
        const times = await Promise.all(nodes.map((n) => servedAt(n.securePort, d, root, 5000)));
        return { d, storedAt, lag: times.map((t) => t - storedAt) };
      }));
      for (const { d, storedAt, lag } of served) {
        console.log(
          `${d}: stored ${
            (storedAt - routersAt).toFixed(0)
          } ms after the router; served by n1..n3 ${
            lag.map((l) => l.toFixed(0)).join("/")
          } ms after being stored`,
        );
        assert.ok(Math.max(...lag) < 1000, `${d} served by every node within 1 s: ${lag}`);
      }
      const lastServed = Math.max(...served.map((s) => s.storedAt + Math.max(...s.lag)));
      console.log(
        `5 routers -> every certificate served on every node: ${
          (lastServed - routersAt).toFixed(0)
        } ms`,
      );
      const m1 = await manager();
      assert.equal(
        m1.i,
        first.i,
        "no election happened while ordering (else counts below mean less)",
      );
      for (const d of DOMAINS) assert.equal(pebble.ordersFor(d), 1, `${d}: orders seen by Pebble`);
      assert.ok(
        (forwarder.forwardedTo.get(nodes[worker].webPort) ?? 0) >= DOMAINS.length,
        "Pebble's validations went to the worker",
      );
      // The manager placed the orders, the worker did not.
      assert.match(nodes[first.i].output, /ordering certificate/);
      assert.doesNotMatch(nodes[worker].output, /ordering certificate/);

      // Kill the manager while an order waits on validation.
      forwarder.hold();
      await putRouter("late", LATE);
      await until(
        "the late order reaching validation",
        () => Promise.resolve(pebble.ordersFor(LATE) >= 1 ? true : undefined),
        15_000,
      );
      assert.equal(cluster.puts.has(LATE), false, "not stored yet: the order is in flight");
      const killedAt = performance.now();
      await kill(first.i);
      const next = await manager(first.term);
      const electedMs = performance.now() - killedAt;
      const other = [0, 1, 2].find((i) => i !== first.i && i !== next.i)!;
      forwarder.retarget(nodes[other].webPort);
      forwarder.release(true);
      const storedLate = await until(
        "late.test stored",
        () => firstPut(LATE),
        30_000,
      );
      for (const i of [next.i, other]) {
        const t = await servedAt(nodes[i].securePort, LATE, root, 5000);
        assert.ok(
          t - storedLate < 1000,
          `${nodes[i].id} served ${LATE} ${t - storedLate} ms after store`,
        );
      }
      console.log(
        `manager killed mid-order: new manager after ${electedMs.toFixed(0)} ms, ${LATE} stored ${
          (storedLate - killedAt).toFixed(0)
        } ms after the kill`,
      );
      const lateOrders = pebble.ordersFor(LATE);
      console.log(`${LATE}: ${lateOrders} orders across the failover`);
      assert.equal(lateOrders, 1, `${LATE}: the journalled order was resumed, not placed again`);
      assert.equal(pebble.ordersCreated(), DOMAINS.length + 1, "orders created at the CA");
      assert.match(nodes[next.i].output, /resuming journalled order/);
      for (const d of DOMAINS) {
        assert.equal(pebble.ordersFor(d), 1, `${d}: no new order after failover`);
      }
    });
  },
});

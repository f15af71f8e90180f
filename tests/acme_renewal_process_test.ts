/**
 * ACME renewal in a cluster of three real Portico processes with etcd and a
 * real Pebble that issues 45-second certificates, so the renewal window (a
 * third of the lifetime left) opens about 30 s after issuance. The
 * manager's check interval is shortened to 1 s through the test hook
 * (`PORTICO_TEST_HOOKS=1`, `PORTICO_TEST_RENEWAL_CHECK_MS`).
 *
 * - Before the window opens, the certificate is checked some 25 times and
 *   never re-ordered (Pebble's log: one order).
 * - Once it opens, it is renewed once: Pebble's log shows exactly two
 *   orders, and stays at two for several more checks, up to a point
 *   computed to lie before the new certificate's own window.
 * - All three nodes serve the new certificate (another serial, verified
 *   against Pebble's root with SNI) within 1 s of its KV write.
 * - Only the manager ordered.
 *
 * With the hook unset the manager keeps its 12 h interval, and this test
 * fails waiting for the renewal.
 */
import assert from "node:assert/strict";
import {
  type PeerCertificate,
  servedAt,
  until,
  verifiedHandshake,
  withHttp01Cluster,
} from "./fixtures/acme_cluster.ts";
import { RENEWAL_CHECK_INTERVAL_MS, renewalCheckIntervalMs } from "../lib/acme/renewal.ts";
import { TEST_RENEWAL_CHECK_ENV } from "../lib/env.ts";

const DOMAIN = "renew.test";
const VALIDITY_S = 45;
const CHECK_MS = 1000;
/** How long to keep counting orders after the renewal: several checks. */
const OBSERVE_MS = 5 * CHECK_MS;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));
/** Wall-clock ms of a performance.now() reading, to compare with certificate dates. */
const wall = (t: number) => performance.timeOrigin + t;
/** When a third of the certificate's lifetime remains (lib/acme/renewal.ts), in wall-clock ms. */
const windowOpens = (c: PeerCertificate) =>
  c.notAfter.getTime() - (c.notAfter.getTime() - c.notBefore.getTime()) / 3;

Deno.test("renewalCheckIntervalMs: the test hook is honoured only behind PORTICO_TEST_HOOKS=1", () => {
  const cases: { name: string; env: Record<string, string>; expected: number | RegExp }[] = [
    { name: "nothing set", env: {}, expected: RENEWAL_CHECK_INTERVAL_MS },
    {
      name: "interval without the switch",
      env: { [TEST_RENEWAL_CHECK_ENV]: "1000" },
      expected: RENEWAL_CHECK_INTERVAL_MS,
    },
    {
      name: "switch without interval",
      env: { PORTICO_TEST_HOOKS: "1" },
      expected: RENEWAL_CHECK_INTERVAL_MS,
    },
    {
      name: "switch and interval",
      env: { PORTICO_TEST_HOOKS: "1", [TEST_RENEWAL_CHECK_ENV]: "1000" },
      expected: 1000,
    },
    {
      name: "not a number",
      env: { PORTICO_TEST_HOOKS: "1", [TEST_RENEWAL_CHECK_ENV]: "1s" },
      expected: /PORTICO_TEST_RENEWAL_CHECK_MS: expected whole milliseconds .* found "1s"/,
    },
    {
      name: "too short",
      env: { PORTICO_TEST_HOOKS: "1", [TEST_RENEWAL_CHECK_ENV]: "5" },
      expected: /found "5"/,
    },
  ];
  for (const c of cases) {
    const read = (name: string) => c.env[name];
    if (c.expected instanceof RegExp) {
      assert.throws(() => renewalCheckIntervalMs(read), c.expected, c.name);
    } else {
      assert.equal(renewalCheckIntervalMs(read), c.expected, c.name);
    }
  }
});

Deno.test({
  name:
    "ACME renewal, 3 real processes: a 45 s certificate is renewed once (Pebble's count), by the manager, and every node serves the new one within 1 s",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const options = {
      pebble: { certificateValiditySeconds: VALIDITY_S },
      cluster: { env: { PORTICO_TEST_HOOKS: "1", [TEST_RENEWAL_CHECK_ENV]: String(CHECK_MS) } },
    };
    await withHttp01Cluster(options, async ({ pebble, forwarder, cluster }) => {
      const { nodes } = cluster;
      const puts = () => cluster.puts.get(DOMAIN) ?? [];

      await Promise.all(nodes.map((_, i) => cluster.start(i)));
      const first = await cluster.manager();
      // Validation goes to a worker, as in production behind a load balancer.
      const worker = (first.i + 1) % 3;
      forwarder.retarget(nodes[worker].webPort);
      const root = await pebble.rootPem();
      await cluster.putRouter("r", DOMAIN);

      await until("the first certificate stored", () => Promise.resolve(puts()[0]), 20_000);
      await Promise.all(nodes.map((n) => servedAt(n.securePort, DOMAIN, root, 5000)));
      const initial = await Promise.all(
        nodes.map((n) => verifiedHandshake(n.securePort, DOMAIN, root)),
      );
      const old = initial[0];
      for (const [i, c] of initial.entries()) {
        assert.equal(c.serial, old.serial, `${nodes[i].id} serves the first certificate`);
      }
      const lifetimeS = (old.notAfter.getTime() - old.notBefore.getTime()) / 1000;
      const opens = windowOpens(old);
      console.log(
        `first certificate ${old.serial}: ${old.notBefore.toISOString()} .. ${old.notAfter.toISOString()} (${lifetimeS} s); window opens in ${
          ((opens - Date.now()) / 1000).toFixed(1)
        } s`,
      );
      assert.ok(lifetimeS <= VALIDITY_S + 1, `Pebble honoured the short lifetime: ${lifetimeS} s`);

      // Shortly before the window opens, checks have run every second without ordering.
      await sleep(opens - Date.now() - 1000);
      assert.equal(pebble.ordersFor(DOMAIN), 1, "no order before the renewal window");
      assert.equal(puts().length, 1, "no certificate write before the renewal window");

      // The renewal: the first check inside the window orders; allow two checks and the order.
      const renewedAt = await until(
        "the renewed certificate stored",
        () => Promise.resolve(puts()[1]),
        opens - Date.now() + 2 * CHECK_MS + 15_000,
      );
      console.log(
        `renewed certificate stored ${
          ((wall(renewedAt) - opens) / 1000).toFixed(1)
        } s after the window opened`,
      );
      assert.ok(
        wall(renewedAt) >= opens - 250,
        `stored ${wall(renewedAt) - opens} ms relative to the window: not renewed early`,
      );
      const lags = await Promise.all(nodes.map(async (n) => {
        const t = await servedAt(
          n.securePort,
          DOMAIN,
          root,
          5000,
          (peer) => peer.serial !== old.serial,
        );
        return t - renewedAt;
      }));
      console.log(
        `new certificate served by n1..n3 ${
          lags.map((l) => l.toFixed(0)).join("/")
        } ms after its KV write`,
      );
      assert.ok(Math.max(...lags) < 1000, `every node switched within 1 s: ${lags}`);
      const renewed = await Promise.all(
        nodes.map((n) => verifiedHandshake(n.securePort, DOMAIN, root)),
      );
      for (const [i, c] of renewed.entries()) {
        assert.equal(c.serial, renewed[0].serial, `${nodes[i].id} serves the same new certificate`);
        assert.ok(c.notAfter > old.notAfter, `${nodes[i].id}: the new one expires later`);
      }

      // Keep counting for several more checks, stopping before the new
      // certificate's own window, where a third order would be correct.
      const stopAt = Math.min(Date.now() + OBSERVE_MS, windowOpens(renewed[0]) - 2 * CHECK_MS);
      assert.ok(stopAt - Date.now() >= 2 * CHECK_MS, "time for two checks before the next window");
      await sleep(stopAt - Date.now());
      assert.equal(pebble.ordersFor(DOMAIN), 2, "Pebble saw the first order and one renewal");
      assert.equal(puts().length, 2, "two certificate writes in etcd");

      const still = await cluster.manager();
      assert.equal(still.i, first.i, "no election happened (else the counts mean less)");
      const orderLines = nodes.map((n) => n.output.match(/ordering certificate/g)?.length ?? 0);
      assert.deepEqual(
        orderLines,
        nodes.map((_, i) => (i === first.i ? 2 : 0)),
        "only the manager ordered, twice",
      );
      assert.match(nodes[first.i].output, /renewal check interval shortened by a test hook/);
    });
  },
});

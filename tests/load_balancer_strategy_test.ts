/**
 * `loadBalancer.strategy`: the power-of-two-choices chooser on its own
 * (deterministic, random source passed in), then over real sockets: with
 * `p2c` a slow server holding requests gets few new ones, with `wrr` it
 * gets its turn regardless; with `leasttime` a slow server gets few requests
 * once its response time is known. Unknown strategies are refused with the
 * key named.
 */

import assert from "node:assert/strict";
import { powerOfTwoChoices } from "../lib/services/power_of_two.ts";
import { rendezvous } from "../lib/services/rendezvous.ts";
import { startEchoBackend } from "./fixtures/backend.ts";
import { rawExchange } from "./fixtures/raw_backend.ts";
import { validateDynamic } from "../lib/config/dynamic.ts";
import { startTestProxy } from "./fixtures/proxy.ts";
import { rawGet } from "./fixtures/http_client.ts";

const sequence = (...values: number[]) => () => values.shift()!;

Deno.test("p2c: two distinct draws, fewer in flight wins, ties to the first draw, ineligible never picked", () => {
  const load: Record<string, number> = { a: 3, b: 0, c: 1 };
  const all = () => true;
  const inFlight = (s: string) => load[s];
  // First draw index 0 (a); second 0 over the others → b.
  assert.equal(powerOfTwoChoices(["a", "b", "c"], all, inFlight, sequence(0, 0)), "b");
  // a (0.0) against c (second draw 0.99 over [b, c] → c): c has fewer.
  assert.equal(powerOfTwoChoices(["a", "b", "c"], all, inFlight, sequence(0, 0.99)), "c");
  assert.equal(powerOfTwoChoices(["x", "y"], all, () => 0, sequence(0.9, 0)), "y", "tie: the first draw");
  assert.equal(powerOfTwoChoices(["a", "b", "c"], (s) => s !== "b", inFlight, sequence(0, 0)), "c");
  assert.equal(powerOfTwoChoices(["a", "b"], (s) => s === "a", inFlight, sequence(0.5, 0.5)), "a");
  assert.equal(powerOfTwoChoices(["a"], () => false, inFlight, Math.random), undefined);
  // The two draws are always distinct servers.
  for (let r1 = 0; r1 < 1; r1 += 0.05) {
    for (let r2 = 0; r2 < 1; r2 += 0.05) {
      const seen: string[] = [];
      powerOfTwoChoices(["a", "b", "c", "d"], all, (s) => (seen.push(s), 0), sequence(r1, r2));
      assert.notEqual(seen[0], seen[1], `draws ${r1}, ${r2}`);
    }
  }
});

Deno.test("strategy: leasttime is accepted; unknown values name the choices", () => {
  const lb = (strategy: string) => ({ http: { services: { s: { loadBalancer: { strategy, servers: [{ url: "http://a" }] } } } } });
  assert.equal((validateDynamic(lb("leasttime"), "d.toml").http.services.s as { loadBalancer: { strategy: string } }).loadBalancer.strategy, "leasttime");
  assert.equal((validateDynamic(lb("hrw"), "d.toml").http.services.s as { loadBalancer: { strategy: string } }).loadBalancer.strategy, "hrw");
  assert.throws(() => validateDynamic(lb("fastest"), "d.toml"), /strategy: expected one of "wrr", "p2c", "hrw", "leasttime"/);
  const strategyOf = (raw: unknown) =>
    (validateDynamic(raw, "d.toml").http.services.s as { loadBalancer: { strategy: string } }).loadBalancer.strategy;
  assert.equal(strategyOf(lb("p2c")), "p2c");
  assert.equal(strategyOf({ http: { services: { s: { loadBalancer: { servers: [] } } } } }), "wrr");
});

/** A backend that answers after `delayMs`, counting what it received. */
function delayedBackend(delayMs: number) {
  let hits = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async () => {
    hits++;
    await new Promise((r) => setTimeout(r, delayMs));
    return new Response("ok");
  });
  return { url: `http://127.0.0.1:${server.addr.port}`, hits: () => hits, close: () => server.shutdown() };
}

Deno.test({
  name: "strategy over sockets: p2c steers new requests away from a server holding requests; wrr does not",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const slow = delayedBackend(500);
    const fast = delayedBackend(0);
    const service = (name: string, strategy: string) => `
[http.routers.${name}]
rule = "Host(\`${name}.test\`)"
service = "${name}"
[http.services.${name}.loadBalancer]
strategy = "${strategy}"
servers = [{ url = "${slow.url}" }, { url = "${fast.url}" }]
`;
    const proxy = await startTestProxy({ dynamic: service("p2c", "p2c") + service("wrr", "wrr") });
    try {
      // 16 requests, one every 20 ms, none awaited before the next: the slow server holds its own.
      const burst = async (host: string) => {
        const before = slow.hits();
        const pending = [];
        for (let i = 0; i < 16; i++) {
          pending.push(rawGet(proxy.port(), "/", { host }));
          await new Promise((r) => setTimeout(r, 20));
        }
        const answers = await Promise.all(pending);
        assert.ok(answers.every((a) => a.status === 200));
        return slow.hits() - before;
      };
      const viaP2c = await burst("p2c.test");
      const viaWrr = await burst("wrr.test");
      assert.ok(viaP2c <= 2, `p2c sent ${viaP2c} of 16 to the busy server`);
      assert.equal(viaWrr, 8, "wrr alternates whatever the load");
    } finally {
      await proxy.close();
      await slow.close();
      await fast.close();
    }
  },
});

Deno.test("hrw: a client keeps its server, weights set the shares, a server going away moves only its clients", () => {
  const servers = ["http://a", "http://b", "http://c"];
  const weights: Record<string, number> = { "http://a": 1, "http://b": 1, "http://c": 2 };
  const pick = (client: string, up: (s: string) => boolean = () => true) =>
    rendezvous(servers, up, (s) => s, (s) => weights[s], client)!;
  const clients = Array.from({ length: 4000 }, (_, i) => `10.${(i >> 8) & 255}.${i & 255}.${i % 7}`);
  const first = clients.map((c) => pick(c));
  assert.deepEqual(clients.map((c) => pick(c)), first, "the same client, the same server");
  const share = (s: string) => first.filter((x) => x === s).length / clients.length;
  assert.ok(Math.abs(share("http://c") - 0.5) < 0.05, `weight 2 of 4 takes about half: ${share("http://c")}`);
  assert.ok(Math.abs(share("http://a") - 0.25) < 0.05, `weight 1 of 4 takes about a quarter: ${share("http://a")}`);
  const withoutB = clients.map((c) => pick(c, (s) => s !== "http://b"));
  const moved = clients.filter((_, i) => withoutB[i] !== first[i]);
  assert.ok(moved.every((c) => first[clients.indexOf(c)] === "http://b"), "only b's clients moved");
  assert.equal(rendezvous(servers, () => false, (s) => s, () => 1, "x"), undefined);
  assert.equal(rendezvous(servers, () => true, (s) => s, () => 0, "x"), undefined, "weight 0 is never picked");
});

Deno.test({
  name: "hrw over sockets: each client address (from a PROXY header) always reaches the same backend",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const backends = [startEchoBackend("one"), startEchoBackend("two"), startEchoBackend("three")];
    const proxy = await startTestProxy({
      entryPointExtra: { web: `[entryPoints.web.proxyProtocol]\ninsecure = true\n` },
      dynamic: `
[http.routers.h]
rule = "Host(\`h.test\`)"
service = "h"
[http.services.h.loadBalancer]
strategy = "hrw"
servers = [${backends.map((b) => `{ url = "${b.url}" }`).join(", ")}]
`,
    });
    try {
      const backendFor = async (client: string) => {
        const answer = await rawExchange(
          proxy.port(),
          `PROXY TCP4 ${client} 127.0.0.1 40000 80\r\nGET / HTTP/1.1\r\nHost: h.test\r\nConnection: close\r\n\r\n`,
        );
        return JSON.parse(answer.slice(answer.indexOf("\r\n\r\n") + 4)).backend as string;
      };
      const used = new Set<string>();
      for (let i = 1; i <= 20; i++) {
        const client = `198.51.100.${i}`;
        const a = await backendFor(client);
        const b = await backendFor(client);
        assert.equal(a, b, `client ${client} stayed on one backend`);
        used.add(a);
      }
      assert.ok(used.size >= 2, `20 clients spread over the backends: ${[...used]}`);
    } finally {
      await proxy.close();
      for (const b of backends) await b.close();
    }
  },
});

Deno.test({
  name: "strategy over sockets: leasttime sends most requests to the faster backend, wrr splits evenly",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const slow = delayedBackend(80);
    const fast = delayedBackend(5);
    const service = (name: string, strategy: string) => `
[http.routers.${name}]
rule = "Host(\`${name}.test\`)"
service = "${name}"
[http.services.${name}.loadBalancer]
strategy = "${strategy}"
servers = [{ url = "${slow.url}" }, { url = "${fast.url}" }]
`;
    const proxy = await startTestProxy({ dynamic: service("lt", "leasttime") + service("wrr", "wrr") });
    try {
      const sequential = async (host: string) => {
        const before = slow.hits();
        for (let i = 0; i < 20; i++) assert.equal((await rawGet(proxy.port(), "/", { host })).status, 200);
        return slow.hits() - before;
      };
      const viaLt = await sequential("lt.test");
      const viaWrr = await sequential("wrr.test");
      // The slow one is tried once (no sample scores 0), then loses to the 16x faster one.
      assert.ok(viaLt <= 2, `leasttime sent ${viaLt} of 20 to the slow server`);
      assert.equal(viaWrr, 10, "wrr alternates whatever the latency");
    } finally {
      await proxy.close();
      await slow.close();
      await fast.close();
    }
  },
});

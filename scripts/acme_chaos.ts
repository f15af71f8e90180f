/**
 * `deno task chaos:acme [--rounds N] [--seed S] [--ca-reaches-manager]`: kills the ACME manager
 * (`kill -9`) at random points of orders, N times (default 24), in a
 * three-process cluster with real etcd and Pebble, then prints the orders
 * Pebble saw per domain. Exit status 1 if any domain got more than one order
 * or a certificate was not served by every node. Replay a run with its seed
 * (also `PORTICO_CHAOS_SEED`).
 */
import { runAcmeChaos } from "../tests/fixtures/acme_chaos.ts";

function flag(name: string): string | undefined {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}

const rounds = Number(flag("rounds") ?? 24);
const seedText = flag("seed") ?? Deno.env.get("PORTICO_CHAOS_SEED");
const result = await runAcmeChaos({
  rounds,
  seed: seedText ? Number(seedText) : undefined,
  log: console.log,
  caReachesManager: Deno.args.includes("--ca-reaches-manager"),
});
const counts = Object.values(result.ordersPerDomain);
for (const [d, lines] of Object.entries(result.diagnostics)) {
  console.log(`--- ${d}: ${result.ordersPerDomain[d]} orders\n${lines.join("\n")}`);
}
const duplicates = counts.filter((n) => n > 1).length;
console.log(
  `seed ${result.seed}: ${result.kills} manager kills, ${result.domains.length} domains; ` +
    `orders validated per domain: min ${Math.min(...counts)}, max ${Math.max(...counts)}; ` +
    `orders created ${result.ordersCreated}; resumed from the journal >= ${result.resumed}; ` +
    `unserved ${result.unserved.length}; ${(result.elapsedMs / 1000).toFixed(1)} s`,
);
const ok = duplicates === 0 && result.unserved.length === 0 &&
  result.ordersCreated === result.domains.length && counts.every((n) => n === 1);
console.log(ok ? "OK: zero duplicate orders" : "FAILED");
Deno.exit(ok ? 0 : 1);

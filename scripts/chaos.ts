/**
 * Longer chaos runs than CI does: `deno task chaos --rounds N` runs N seeded
 * fault rounds on a 3-node and on a 5-node cluster of real processes (see
 * tests/fixtures/cluster_chaos.ts), checks the safety properties and prints
 * a summary. Exits 1 on any violation.
 *
 * ```sh
 * deno task chaos --rounds 200 [--size 3|5] [--seed 42] [--heartbeat 50] [--election 400]
 * ```
 *
 * Needs the `etcd` binary (apt-get install -y etcd-server).
 *
 * @module
 */

import { startEtcd } from "../tests/fixtures/etcd.ts";
import { type ChaosReport, runChaos } from "../tests/fixtures/cluster_chaos.ts";

function flag(name: string, fallback: number): number {
  const args = Deno.args;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === `--${name}`) return Number(args[i + 1]);
    if (args[i].startsWith(`--${name}=`)) return Number(args[i].slice(name.length + 3));
  }
  return fallback;
}

function problems(report: ChaosReport, electionMs: number): string[] {
  const out = report.violations.map((v) => `${v.property}: ${v.detail}`);
  if (report.maxOverlapMs > electionMs) out.push(`manager overlap ${report.maxOverlapMs} ms`);
  for (const p of report.probes) {
    if (p.accepted) {
      out.push(
        `round ${p.round}: deposed ${p.node} (term ${p.term}) wrote after term ${p.newTerm}`,
      );
    }
  }
  if (report.controlRefusals > 0) {
    out.push(`${report.controlRefusals} writes by a current manager were refused`);
  }
  return out;
}

if (import.meta.main) {
  const rounds = flag("rounds", 50);
  const size = flag("size", 0);
  const seed = flag("seed", Date.now() % 1_000_000);
  const heartbeatMs = flag("heartbeat", 50);
  const electionMs = flag("election", 400);
  if (!Number.isInteger(rounds) || rounds < 1) {
    console.error(`--rounds: expected a positive integer, found ${rounds}`);
    Deno.exit(2);
  }
  const sizes = size ? [size] : [3, 5];
  console.log(
    `chaos: ${rounds} rounds per cluster, sizes ${sizes.join(" and ")}, seed ${seed}, ` +
      `heartbeat ${heartbeatMs} ms, election ${electionMs} ms`,
  );
  const etcd = await startEtcd();
  let failed = false;
  try {
    for (const n of sizes) {
      const started = performance.now();
      const report = await runChaos({
        size: n,
        rounds,
        seed: seed + n,
        heartbeatMs,
        electionMs,
        etcdEndpoint: etcd.endpoint,
        log: (line) => console.log(line),
      });
      const counts: Record<string, number> = {};
      for (const r of report.rounds) counts[r.fault] = (counts[r.fault] ?? 0) + 1;
      const recoveries = report.rounds.filter((r) => r.recoveryMs > 0).map((r) => r.recoveryMs)
        .sort((a, b) => a - b);
      console.log(
        `\n${n} nodes: ${report.rounds.length} rounds in ${
          ((performance.now() - started) / 1000).toFixed(1)
        } s`,
      );
      console.log(`  faults: ${JSON.stringify(counts)}`);
      console.log(
        `  role changes recorded: ${report.roleChanges}; max manager overlap ${
          Math.round(report.maxOverlapMs)
        } ms`,
      );
      if (recoveries.length) {
        console.log(
          `  recovery p50 ${Math.round(recoveries[Math.floor(recoveries.length / 2)])} ms, ` +
            `max ${Math.round(recoveries.at(-1)!)} ms`,
        );
      }
      console.log(
        `  deposed-manager writes: ${report.probes.length}, refused ${
          report.probes.filter((p) => !p.accepted).length
        }`,
      );
      console.log(`  follower partitions that changed the manager: ${report.disruptions}`);
      const found = problems(report, electionMs);
      for (const p of found) console.log(`  VIOLATION ${p}`);
      failed ||= found.length > 0;
    }
  } finally {
    await etcd.stop();
  }
  console.log(failed ? "\nFAILED" : "\nall safety properties held");
  Deno.exit(failed ? 1 : 0);
}

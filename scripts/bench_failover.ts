/**
 * Failover benchmark (`deno task bench:failover`) on a 3-node cluster of
 * real processes with the default timings (heartbeat 100 ms, election 1 s)
 * and a real etcd:
 *
 * - kill -9: time from SIGKILL of the manager until a new manager holds the
 *   leader record in etcd (polled every 5 ms);
 * - SIGTERM: the same for a graceful shutdown, where the manager hands over;
 * - partition: time from cutting the manager off until it steps down (its
 *   own log line), and until a new manager holds the record.
 *
 * ```sh
 * deno task bench:failover [--trials 20] [--handover 10] [--partition 5] [--json]
 * ```
 *
 * @module
 */

import { startEtcd } from "../tests/fixtures/etcd.ts";
import { ClusterHarness } from "../tests/fixtures/cluster_harness.ts";

const HEARTBEAT_MS = 100;
const ELECTION_MS = 1000;

function flag(name: string, fallback: number): number {
  const args = Deno.args;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === `--${name}`) return Number(args[i + 1]);
    if (args[i].startsWith(`--${name}=`)) return Number(args[i].slice(name.length + 3));
  }
  return fallback;
}

/** Nearest-rank percentile. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

function summary(name: string, values: number[]): Record<string, number | string> {
  const s = [...values].sort((a, b) => a - b);
  return {
    name,
    trials: s.length,
    p50: Math.round(percentile(s, 50)),
    p99: Math.round(percentile(s, 99)),
    max: Math.round(s.at(-1) ?? NaN),
    min: Math.round(s[0] ?? NaN),
  };
}

async function untilNewRecord(
  h: ClusterHarness,
  oldTerm: number,
  oldNode: string,
  t0: number,
): Promise<number> {
  for (;;) {
    const r = await h.leaderRecord().catch(() => undefined);
    if (r && r.term > oldTerm && r.nodeId !== oldNode) return performance.now() - t0;
    if (performance.now() - t0 > 30_000) {
      throw new Error(`no new leader record 30 s after term ${oldTerm}`);
    }
    await new Promise((res) => setTimeout(res, 5));
  }
}

if (import.meta.main) {
  const trials = flag("trials", 20);
  const handoverTrials = flag("handover", 10);
  const partitionTrials = flag("partition", 5);
  const asJson = Deno.args.includes("--json");
  const log = (line: string) => {
    if (!asJson) console.log(line);
  };
  const etcd = await startEtcd();
  const h = await ClusterHarness.start({
    size: 3,
    heartbeatMs: HEARTBEAT_MS,
    electionMs: ELECTION_MS,
    etcdEndpoint: etcd.endpoint,
    rootKey: `bench-${Date.now()}`,
  });
  const kill: number[] = [];
  const handover: number[] = [];
  const stepDown: number[] = [];
  const partitionFailover: number[] = [];
  try {
    for (let i = 0; i < trials; i++) {
      const { index } = await h.waitForAgreement(30_000);
      const record = (await h.leaderRecord())!;
      const t0 = performance.now();
      const killed = h.kill(index);
      kill.push(await untilNewRecord(h, record.term, record.nodeId, t0));
      await killed;
      log(`kill -9 #${i + 1}: ${Math.round(kill.at(-1)!)} ms`);
      await h.startNode(index);
    }
    for (let i = 0; i < handoverTrials; i++) {
      const { index } = await h.waitForAgreement(30_000);
      const record = (await h.leaderRecord())!;
      const t0 = performance.now();
      const stopped = h.terminate(index);
      handover.push(await untilNewRecord(h, record.term, record.nodeId, t0));
      await stopped;
      log(`SIGTERM #${i + 1}: ${Math.round(handover.at(-1)!)} ms`);
      await h.startNode(index);
    }
    for (let i = 0; i < partitionTrials; i++) {
      const { index } = await h.waitForAgreement(30_000);
      const record = (await h.leaderRecord())!;
      const seen = h.events.length;
      const cutAt = Date.now();
      const t0 = performance.now();
      h.isolate(index);
      partitionFailover.push(await untilNewRecord(h, record.term, record.nodeId, t0));
      for (;;) {
        const down = h.events.slice(seen).find((e) => e.node === index && e.role !== "manager");
        if (down) {
          stepDown.push(down.time - cutAt);
          break;
        }
        if (performance.now() - t0 > 30_000) {
          throw new Error("the cut-off manager never stepped down");
        }
        await new Promise((r) => setTimeout(r, 10));
      }
      h.heal();
      log(
        `partition #${i + 1}: stepped down after ${stepDown.at(-1)} ms, new record after ${
          Math.round(partitionFailover.at(-1)!)
        } ms`,
      );
    }
  } finally {
    await h.close();
    await etcd.stop();
  }
  const results = [
    summary("kill -9 → new leader record", kill),
    summary("SIGTERM handover → new leader record", handover),
    summary("partitioned manager → steps down", stepDown),
    summary("partitioned manager → new leader record", partitionFailover),
  ].filter((r) => r.trials !== 0);
  if (asJson) {
    console.log(
      JSON.stringify({ heartbeatMs: HEARTBEAT_MS, electionMs: ELECTION_MS, results }, null, 2),
    );
  } else {
    console.log(
      `\nheartbeat ${HEARTBEAT_MS} ms, election timeout ${ELECTION_MS} ms, 3 nodes, etcd`,
    );
    console.log("| measurement | trials | p50 | p99 | max |\n|---|---|---|---|---|");
    for (const r of results) {
      console.log(`| ${r.name} | ${r.trials} | ${r.p50} ms | ${r.p99} ms | ${r.max} ms |`);
    }
  }
}

/**
 * `deno task bench:propagation`: how long a change in the KV store takes to
 * reach the routing of every instance.
 *
 * For etcd and Redis (real servers started like the tests do), three
 * Portico instances run in this process with their production defaults
 * (provider coalescing 20 ms, config watcher debounce 50 ms). Each trial
 * puts ONE key, the rule of a router that already exists
 * (`traefik/http/routers/tN/rule` = ``Path(`/tN`)``), and polls `/tN` on
 * every instance every 2 ms until it answers 200 (5 s at most). The time
 * from just before the put to the first 200 is one sample per instance.
 * p50, p99 and max are printed per store; the target is p99 < 250 ms.
 *
 * Options: `--trials=N` (default 40), `--stores=etcd,redis`.
 *
 * @module
 */

import { parseToml } from "../lib/config/load.ts";
import { validateStatic } from "../lib/config/static.ts";
import { EtcdKVStore } from "../lib/kv/etcd.ts";
import { RedisKVStore } from "../lib/kv/redis.ts";
import type { KVStore } from "../lib/kv/types.ts";
import { Logger } from "../lib/log/logger.ts";
import { type RunningServer, startServer } from "../lib/server/server.ts";
import { startEchoBackend } from "../tests/fixtures/backend.ts";
import { startEtcd } from "../tests/fixtures/etcd.ts";
import { freePort } from "../tests/fixtures/ports.ts";
import { startRedis } from "../tests/fixtures/redis.ts";

const INSTANCES = 3;
const POLL_MS = 2;
const TIMEOUT_MS = 5000;
const TARGET_P99_MS = 250;

function flag(name: string, fallback: string): string {
  const arg = Deno.args.find((a) => a.startsWith(`--${name}=`));
  return arg ? arg.slice(name.length + 3) : fallback;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The value at quantile `q` (nearest rank). */
function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

/** Time until `url` answers 200, polling every POLL_MS; Infinity after TIMEOUT_MS. */
async function timeUntilServed(url: string, start: number): Promise<number> {
  while (performance.now() - start < TIMEOUT_MS) {
    try {
      const res = await fetch(url);
      await res.body?.cancel();
      if (res.status === 200) return performance.now() - start;
    } catch {
      // not listening yet: keep polling
    }
    await sleep(POLL_MS);
  }
  return Infinity;
}

async function benchStore(
  kind: "etcd" | "redis",
  endpoint: string,
  trials: number,
): Promise<number[]> {
  const store: KVStore = kind === "etcd"
    ? new EtcdKVStore({ endpoints: [endpoint] })
    : new RedisKVStore({ endpoints: [endpoint] });
  const backend = startEchoBackend("bench");
  const dir = await Deno.makeTempDir({ prefix: `portico-bench-${kind}-` });
  const servers: RunningServer[] = [];
  try {
    // Routers exist from the start with a rule no request matches; each trial rewrites one rule.
    const seed = [
      {
        kind: "put" as const,
        key: "traefik/http/services/app/loadbalancer/servers/0/url",
        value: backend.url,
      },
    ];
    for (let i = 0; i < trials; i++) {
      seed.push({ kind: "put", key: `traefik/http/routers/t${i}/service`, value: "app" });
      seed.push({
        kind: "put",
        key: `traefik/http/routers/t${i}/rule`,
        value: `Path(\`/pending-${i}\`)`,
      });
    }
    for (let i = 0; i < seed.length; i += 100) await store.transaction([], seed.slice(i, i + 100));

    const logger = new Logger({ level: "ERROR", format: "json", write: () => {} });
    for (let n = 0; n < INSTANCES; n++) {
      const file = `${dir}/node${n}/portico.toml`;
      const toml = `[entryPoints.web]\naddress = "127.0.0.1:${freePort()}"\n` +
        // Trials follow each other closely: the default 2 s throttle would measure the throttle.
        `[providers]\nprovidersThrottleDuration = "50ms"\n[providers.${kind}]\nendpoints = ["${endpoint}"]\n`;
      await Deno.mkdir(`${dir}/node${n}`);
      await Deno.writeTextFile(file, toml);
      const config = validateStatic(parseToml(toml, file), file);
      servers.push(await startServer(config, { logger }));
    }
    const urls = servers.map((s) => `http://127.0.0.1:${s.ports.get("web")}`);
    await sleep(300);

    const samples: number[] = [];
    for (let i = 0; i < trials; i++) {
      const start = performance.now();
      await store.put(`traefik/http/routers/t${i}/rule`, `Path(\`/t${i}\`)`);
      samples.push(...(await Promise.all(urls.map((u) => timeUntilServed(`${u}/t${i}`, start)))));
      // Let the reload settle so trials do not overlap.
      await sleep(100);
    }
    return samples;
  } finally {
    for (const s of servers) await s.shutdown();
    await store.close();
    await backend.close();
    await Deno.remove(dir, { recursive: true });
  }
}

async function main(): Promise<number> {
  const trials = Number(flag("trials", "40"));
  const stores = flag("stores", "etcd,redis").split(",") as ("etcd" | "redis")[];
  console.log(
    `propagation: ${trials} trials x ${INSTANCES} instances per store; one key put, poll every ${POLL_MS} ms\n`,
  );
  console.log("| store | samples | p50 | p99 | max | p99 < 250 ms |");
  console.log("|---|---|---|---|---|---|");
  let ok = true;
  for (const kind of stores) {
    const server = kind === "etcd" ? await startEtcd() : await startRedis();
    let samples: number[];
    try {
      samples = await benchStore(kind, server.endpoint, trials);
    } finally {
      await server.stop();
    }
    const sorted = [...samples].sort((a, b) => a - b);
    const fmt = (ms: number) => (Number.isFinite(ms) ? `${ms.toFixed(1)} ms` : "timeout");
    const p99 = quantile(sorted, 0.99);
    const pass = p99 < TARGET_P99_MS;
    ok &&= pass;
    console.log(
      `| ${kind} | ${sorted.length} | ${fmt(quantile(sorted, 0.5))} | ${fmt(p99)} | ${
        fmt(sorted[sorted.length - 1])
      } | ${pass ? "yes" : "NO"} |`,
    );
  }
  return ok ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main());

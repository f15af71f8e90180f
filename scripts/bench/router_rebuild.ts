/**
 * Times what a config reload costs Portico, in process: reading and
 * validating the dynamic file, merging, and `buildRouter` — the work between
 * a file rewrite and the new route answering (the file watcher's debounce
 * aside). Also reports which routers the build disabled and why, so the
 * harness can say "not available" for a scenario Portico cannot run yet.
 *
 * ```sh
 * deno run -A scripts/bench/router_rebuild.ts --routers 10000 --reps 5
 * deno run -A scripts/bench/router_rebuild.ts --routers 1 --middlewares 50 --reps 1
 * ```
 * Prints one JSON object on stdout.
 *
 * @module
 */

import { RuleCache } from "../../lib/router/rule_cache.ts";
import { parseArgs } from "node:util";
import { loadDynamicFile, loadStaticFile } from "../../lib/config/load.ts";
import { mergeProviders } from "../../lib/providers/merge.ts";
import { UpstreamPools } from "../../lib/proxy/pools.ts";
import { buildRouter } from "../../lib/router/build.ts";
import { porticoDynamic, porticoStatic } from "./configs.ts";

/** What one invocation prints. */
export interface RebuildReport {
  routers: number;
  middlewares: number;
  /** Per repetition, ms: read + parse + validate the dynamic file. */
  loadMs: number[];
  /** Per repetition, ms: merge + buildRouter. */
  buildMs: number[];
  /** Per repetition, ms: the two together. */
  totalMs: number[];
  enabledRouters: number;
  /** The first few disabled routers' errors (empty when all are enabled). */
  disabled: { name: string; errors: string[] }[];
  /** Heap used after the last build, MB (a rough size of one generation). */
  heapUsedMb: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      routers: { type: "string", default: "10000" },
      middlewares: { type: "string", default: "0" },
      reps: { type: "string", default: "5" },
    },
  });
  const routers = Number(values.routers);
  const middlewares = Number(values.middlewares);
  const reps = Math.max(1, Number(values.reps));

  const dir = await Deno.makeTempDir({ prefix: "portico-rebuild-" });
  try {
    const dynamicFile = `${dir}/dynamic.toml`;
    const staticFile = `${dir}/static.toml`;
    const ports = { backend: 1, http: 1, https: 2 };
    await Deno.writeTextFile(dynamicFile, porticoDynamic({ backendPort: 1, routers, middlewares }));
    await Deno.writeTextFile(staticFile, porticoStatic(ports, { dynamicFile }));
    const staticConfig = await loadStaticFile(staticFile);
    const pools = new UpstreamPools();
    // As the server does: compiled rules carry over from one generation to the next.
    const ruleCache = new RuleCache();

    const report: RebuildReport = {
      routers,
      middlewares,
      loadMs: [],
      buildMs: [],
      totalMs: [],
      enabledRouters: 0,
      disabled: [],
      heapUsedMb: 0,
    };
    for (let i = 0; i < reps; i++) {
      const t0 = performance.now();
      const dynamic = await loadDynamicFile(dynamicFile);
      const t1 = performance.now();
      const generation = buildRouter({
        generation: i + 1,
        staticConfig,
        merged: mergeProviders(new Map([["file", dynamic]])),
        pools,
        internalServices: new Map(),
        serverName: "bench",
        ruleCache,
      });
      const t2 = performance.now();
      report.loadMs.push(t1 - t0);
      report.buildMs.push(t2 - t1);
      report.totalMs.push(t2 - t0);
      const states = [...generation.routers.values()];
      report.enabledRouters = states.filter((s) => s.status === "enabled").length;
      report.disabled = states.filter((s) => s.status === "disabled").slice(0, 3)
        .map((s) => ({ name: s.name, errors: s.errors }));
      generation.stop();
    }
    report.heapUsedMb = Deno.memoryUsage().heapUsed / 1024 / 1024;
    pools.close();
    console.log(JSON.stringify(report));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) await main();

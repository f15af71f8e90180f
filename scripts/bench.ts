/**
 * `deno task bench`: Portico against nginx, HAProxy and Caddy, side by side
 * in one run on loopback (issue 9). Each proxy is pinned to core 0 with one
 * worker; wrk and the nginx backend share core 1. For every scenario and
 * proxy: a warm-up, then R rounds of `wrk -t1 -c50 --latency`; the median
 * round is reported with peak RSS, and Portico's ratio to each peer.
 *
 * ```sh
 * deno task bench                          # everything, 3 rounds of 5 s
 * deno task bench --quick                  # smoke run: 1 round of 2 s
 * deno task bench --scenarios 1,2,mem --proxies portico,nginx --rounds 5 --duration 10s
 * deno task bench --profile                # CPU profile of Portico under scenario 1
 * deno task bench --profile --profile-middlewares 50   # … under scenario 6
 * ```
 *
 * Scenarios: 1 plain keep-alive, 2 100 KB body, 3 HTTPS keep-alive, 4 new
 * TLS handshakes, 5 10,000 routers vs 10 (Portico only, plus the rebuild
 * time), 6 50 middlewares vs none (Portico only), mem (Portico's RSS: idle,
 * with 10,000 routers, peak under 1,000 keep-alive connections, and 1, 5, 10
 * and 20 s after they close).
 * Results go to bench/results.json.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import {
  BENCH_HOST,
  type BenchPorts,
  middlewarePath,
  PORTICO_TLS_SUPPORTED,
  PROXIES,
  type ProxyName,
  targetHost,
} from "./bench/configs.ts";
import { prepareFiles } from "./bench/files.ts";
import {
  freePort,
  groupMemoryMb,
  killAllNow,
  logTail,
  type Proc,
  run,
  sampleRss,
  sleep,
  spawnGroup,
  stopAll,
  waitReady,
} from "./bench/procs.ts";
import {
  checkAtLeast,
  checkAtMost,
  formatTable,
  type Measurement,
  medianRound,
  ratios,
  type TargetCheck,
} from "./bench/report.ts";
import type { RebuildReport } from "./bench/router_rebuild.ts";
import { formatSummary, summarise } from "./bench/profile_summary.ts";
import {
  type BenchContext,
  type PorticoVariant,
  startBackend,
  startProxy,
} from "./bench/servers.ts";
import { runWrk, wrkCommand, type WrkResult } from "./bench/wrk.ts";

const REPO = dirname(dirname(fileURLToPath(import.meta.url)));
const ALL_SCENARIOS = ["1", "2", "3", "4", "5", "6", "mem"] as const;

interface Options {
  scenarios: string[];
  proxies: ProxyName[];
  rounds: number;
  durationSec: number;
  warmupSec: number;
  connections: number;
  out: string;
  profile: boolean;
  /** Middlewares on the route while profiling (0 = scenario 1, 50 = scenario 6). */
  profileMiddlewares: number;
}

function parseDuration(text: string, flag: string): number {
  const m = text.match(/^(\d+(?:\.\d+)?)(s|m)?$/);
  if (!m) throw new Error(`--${flag}: expected seconds like "5s" or "5", got "${text}"`);
  return Number(m[1]) * (m[2] === "m" ? 60 : 1);
}

function parseOptions(args: string[]): Options {
  const { values } = parseArgs({
    args,
    options: {
      scenarios: { type: "string" },
      proxies: { type: "string" },
      rounds: { type: "string" },
      duration: { type: "string" },
      warmup: { type: "string" },
      connections: { type: "string", default: "50" },
      quick: { type: "boolean", default: false },
      profile: { type: "boolean", default: false },
      "profile-middlewares": { type: "string", default: "0" },
      out: { type: "string", default: join(REPO, "bench", "results.json") },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(
      "deno task bench [--scenarios 1,2,3,4,5,6,mem] [--proxies portico,nginx,haproxy,caddy]\n" +
        "                [--rounds 3] [--duration 5s] [--warmup 2s] [--connections 50] [--quick] [--out FILE]\n" +
        "deno task bench --profile [--profile-middlewares 50] [--duration 10s]",
    );
    Deno.exit(0);
  }
  const scenarios = values.scenarios
    ? values.scenarios.split(",").map((s) => s.trim())
    : [...ALL_SCENARIOS];
  for (const s of scenarios) {
    if (!(ALL_SCENARIOS as readonly string[]).includes(s)) {
      throw new Error(`--scenarios: unknown scenario "${s}"; valid: ${ALL_SCENARIOS.join(", ")}`);
    }
  }
  const proxies =
    (values.proxies ? values.proxies.split(",").map((s) => s.trim()) : [...PROXIES]) as ProxyName[];
  for (const p of proxies) {
    if (!(PROXIES as readonly string[]).includes(p)) {
      throw new Error(`--proxies: unknown proxy "${p}"; valid: ${PROXIES.join(", ")}`);
    }
  }
  const rounds = Number(values.rounds ?? (values.quick ? 1 : 3));
  if (!Number.isInteger(rounds) || rounds < 1) {
    throw new Error(`--rounds: expected a whole number ≥ 1, got "${values.rounds}"`);
  }
  return {
    scenarios,
    proxies,
    rounds,
    durationSec: parseDuration(values.duration ?? (values.quick ? "2s" : "5s"), "duration"),
    warmupSec: parseDuration(values.warmup ?? (values.quick ? "1s" : "2s"), "warmup"),
    connections: Number(values.connections),
    out: values.out!,
    profile: values.profile!,
    profileMiddlewares: Number(values["profile-middlewares"]),
  };
}

// ---------------------------------------------------------------- measuring

interface Target {
  host: string;
  path: string;
  tls: boolean;
  /** A new connection (and TLS handshake) per request. */
  closeEachRequest?: boolean;
}

let caCert = "";

/**
 * One row of a scenario: a server to start (none for the bare backend) and
 * what to send it.
 */
interface Contender {
  label: string;
  proxy: string;
  target: Target;
  /** Starts the server on `ports`; absent when it is already running (the backend). */
  start?: (ports: BenchPorts) => Promise<Proc>;
  /** Set instead of `start` when the row cannot be measured. */
  skip?: { status: Measurement["status"]; note: string };
}

interface Running {
  contender: Contender;
  port: number;
  proc?: Proc;
  rounds: WrkResult[];
  failure?: string;
}

function wrkOptions(ctx: BenchContext, opts: Options, r: Running, durationSec: number) {
  const t = r.contender.target;
  return {
    url: `${t.tls ? "https" : "http"}://127.0.0.1:${r.port}${t.path}`,
    host: t.host,
    connections: opts.connections,
    cpu: ctx.loadCpu,
    closeEachRequest: t.closeEachRequest,
    durationSec,
  };
}

/**
 * Starts every contender at once (each on its own ports, all pinned to the
 * proxy core; idle ones cost nothing), then runs the rounds interleaved —
 * round 1 of each, round 2 of each, … with the order rotated — so a burst
 * of background load on this shared machine hits every contender alike
 * instead of whichever happened to run then.
 */
async function measureInterleaved(
  ctx: BenchContext,
  opts: Options,
  contenders: Contender[],
): Promise<Measurement[]> {
  const running: Running[] = [];
  try {
    for (const c of contenders) {
      if (c.skip) continue;
      if (!c.start) {
        running.push({ contender: c, port: ctx.ports.backend, rounds: [] });
        continue;
      }
      const ports: BenchPorts = { backend: ctx.ports.backend, http: freePort(), https: freePort() };
      const r: Running = {
        contender: c,
        port: c.target.tls ? ports.https : ports.http,
        rounds: [],
      };
      running.push(r);
      try {
        r.proc = await c.start(ports);
        const status = await waitReady(r.proc, {
          port: r.port,
          host: c.target.host,
          path: c.target.path,
          caCert: c.target.tls ? caCert : undefined,
        });
        if (status !== 200) {
          const why = status === 0 ? "never answered" : `answered ${status}`;
          r.failure = `${why}; log: ${logTail(r.proc.logFile, 5).replaceAll("\n", " | ")}`;
        }
      } catch (err) {
        r.failure = (err as Error).message;
      }
      if (r.failure) {
        console.log(`   ${c.label}: failed to start: ${r.failure}`);
        await r.proc?.stop();
      }
    }
    const live = () => running.filter((r) => !r.failure);
    for (const r of live()) {
      try {
        await runWrk(wrkOptions(ctx, opts, r, opts.warmupSec));
      } catch (err) {
        r.failure = (err as Error).message;
      }
    }
    for (let round = 0; round < opts.rounds; round++) {
      const order = live();
      const rotated = [
        ...order.slice(round % Math.max(1, order.length)),
        ...order.slice(0, round % Math.max(1, order.length)),
      ];
      for (const r of rotated) {
        try {
          const result = await runWrk(wrkOptions(ctx, opts, r, opts.durationSec));
          r.rounds.push(result);
        } catch (err) {
          r.failure = (err as Error).message;
        }
      }
      console.log(
        `   round ${round + 1}: ` +
          running.map((r) =>
            `${r.contender.label} ${
              r.rounds[round] ? Math.round(r.rounds[round].requestsPerSec) : "-"
            }`
          ).join(", "),
      );
    }
    return contenders.map((c): Measurement => {
      if (c.skip) {
        return {
          label: c.label,
          proxy: c.proxy,
          status: c.skip.status,
          note: c.skip.note,
          rounds: [],
        };
      }
      const r = running.find((x) => x.contender === c)!;
      if (r.failure || r.rounds.length === 0) {
        return {
          label: c.label,
          proxy: c.proxy,
          status: "failed",
          note: r.failure ?? "no rounds",
          rounds: r.rounds,
        };
      }
      return {
        label: c.label,
        proxy: c.proxy,
        status: "ok",
        rounds: r.rounds,
        median: medianRound(r.rounds),
        peakRssMb: r.proc ? groupMemoryMb(r.proc.pid, "VmHWM") : undefined,
      };
    });
  } finally {
    await Promise.all(running.map((r) => r.proc?.stop(5000)));
  }
}

function printRows(title: string, rows: Measurement[]): void {
  console.log(`\n== ${title}\n${formatTable(rows)}`);
  const r = ratios(rows);
  const text = Object.entries(r).map(([peer, x]) => `${x.toFixed(2)}× ${peer}`).join(", ");
  if (text) console.log(`Portico req/s ratio: ${text}`);
}

// ---------------------------------------------------------------- scenarios

interface ScenarioResult {
  id: string;
  title: string;
  rows: Measurement[];
  ratios: Record<string, number>;
  extra?: Record<string, unknown>;
}

/**
 * Row label of scripts/bench/floor_proxy.ts: Deno.serve plus Portico's
 * upstream client and nothing else, run beside Portico on plain scenarios
 * to show what the runtime alone costs per request.
 */
const FLOOR_LABEL = "deno floor";

/** Scenarios 1–4: every selected proxy on the same target (plain ones also the Deno floor). */
async function peerScenario(
  ctx: BenchContext,
  opts: Options,
  id: string,
  title: string,
  target: { path: string; tls: boolean; closeEachRequest?: boolean },
  withBackendDirect: boolean,
): Promise<ScenarioResult> {
  console.log(`\n-- scenario ${id}: ${title}`);
  const full: Target = { host: BENCH_HOST, ...target };
  const contenders: Contender[] = [];
  if (withBackendDirect) {
    contenders.push({
      label: "backend (direct)",
      proxy: "backend",
      target: { ...full, tls: false },
    });
  }
  for (const proxy of opts.proxies) {
    if (proxy === "portico" && target.tls && !PORTICO_TLS_SUPPORTED) {
      console.log("   Portico: not supported yet");
      contenders.push({
        label: "portico",
        proxy,
        target: full,
        skip: { status: "not supported yet", note: "Portico has no TLS entrypoints yet" },
      });
      continue;
    }
    contenders.push({
      label: proxy,
      proxy,
      target: full,
      start: (ports) => startProxy(ctx, proxy, undefined, ports),
    });
  }
  if (!target.tls && opts.proxies.includes("portico")) {
    contenders.push({
      label: FLOOR_LABEL,
      proxy: "floor",
      target: full,
      start: (ports) =>
        Promise.resolve(spawnGroup("floor", [
          "deno",
          "run",
          "-A",
          "scripts/bench/floor_proxy.ts",
          String(ports.http),
          String(ports.backend),
        ], { cpu: ctx.proxyCpu, logFile: `${ctx.files.dir}/floor.log`, cwd: ctx.repo })),
    });
  }
  const rows = await measureInterleaved(ctx, opts, contenders);
  printRows(`scenario ${id}: ${title}`, rows);
  return { id, title, rows, ratios: ratios(rows) };
}

async function rebuildReport(
  ctx: BenchContext,
  routers: number,
  middlewares: number,
  reps: number,
): Promise<RebuildReport> {
  const out = await run([
    "taskset",
    "-c",
    String(ctx.proxyCpu),
    "deno",
    "run",
    "-A",
    "scripts/bench/router_rebuild.ts",
    `--routers=${routers}`,
    `--middlewares=${middlewares}`,
    `--reps=${reps}`,
  ], { cwd: REPO });
  if (out.code !== 0) throw new Error(`router_rebuild.ts failed: ${out.stderr.trim()}`);
  return JSON.parse(out.stdout.trim().split("\n").pop()!) as RebuildReport;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)];
}

/** Scenarios 5 and 6: Portico against itself with a different config. */
async function porticoVariants(
  ctx: BenchContext,
  opts: Options,
  id: string,
  title: string,
  variants: { label: string; variant: PorticoVariant; host: string; path: string }[],
): Promise<ScenarioResult> {
  console.log(`\n-- scenario ${id}: ${title}`);
  const rows = await measureInterleaved(
    ctx,
    opts,
    variants.map((v) => ({
      label: v.label,
      proxy: "portico",
      target: { host: v.host, path: v.path, tls: false },
      start: (ports: BenchPorts) => startProxy(ctx, "portico", v.variant, ports),
    })),
  );
  console.log(`\n== scenario ${id}: ${title}\n${formatTable(rows)}`);
  const [base, loaded] = rows;
  const result: ScenarioResult = { id, title, rows, ratios: {} };
  if (base.median && loaded.median) {
    result.ratios[`${loaded.label} / ${base.label}`] = loaded.median.requestsPerSec /
      base.median.requestsPerSec;
    console.log(
      `${loaded.label} / ${base.label}: ${
        (loaded.median.requestsPerSec / base.median.requestsPerSec).toFixed(3)
      }× req/s`,
    );
  }
  return result;
}

async function scenario5(ctx: BenchContext, opts: Options): Promise<ScenarioResult> {
  const result = await porticoVariants(ctx, opts, "5", "10,000 Host routers vs 10 (Portico)", [
    {
      label: "portico (10 routers)",
      variant: { routers: 10, middlewares: 0 },
      host: targetHost(10),
      path: "/",
    },
    {
      label: "portico (10000 routers)",
      variant: { routers: 10_000, middlewares: 0 },
      host: targetHost(10_000),
      path: "/",
    },
  ]);
  const rebuild = await rebuildReport(ctx, 10_000, 0, opts.rounds === 1 ? 3 : 7);
  const warm = rebuild.totalMs.slice(1);
  const summary = {
    coldMs: rebuild.totalMs[0],
    warmMedianMs: median(warm),
    loadMedianMs: median(rebuild.loadMs.slice(1)),
    buildMedianMs: median(rebuild.buildMs.slice(1)),
    allMs: rebuild.totalMs.map((x) => Math.round(x)),
    enabledRouters: rebuild.enabledRouters,
  };
  console.log(
    `rebuild of 10,000 routers (read+parse+validate+merge+buildRouter, pinned to core ${ctx.proxyCpu}): ` +
      `first ${summary.coldMs.toFixed(0)} ms, then median ${summary.warmMedianMs.toFixed(0)} ms ` +
      `(load ${summary.loadMedianMs.toFixed(0)} + build ${
        summary.buildMedianMs.toFixed(0)
      }); all: ${summary.allMs.join(", ")} ms`,
  );
  result.extra = { rebuild: summary };
  return result;
}

async function scenario6(ctx: BenchContext, opts: Options): Promise<ScenarioResult> {
  const title = "50 middlewares (headers + stripPrefix) vs none (Portico)";
  // Build the config in process first: a middleware type Portico lacks
  // disables the router, and the build says which.
  const check = await rebuildReport(ctx, 1, 50, 1);
  if (check.enabledRouters !== 1) {
    const errors = check.disabled.flatMap((d) => d.errors);
    const types = [...new Set(errors.map((e) => e.match(/type "([^"]+)"/)?.[1]).filter(Boolean))];
    const note = types.length
      ? `middleware types not implemented yet: ${types.join(", ")}`
      : errors.slice(0, 2).join("; ");
    console.log(`\n-- scenario 6: ${title}\n   Portico: not available (${note})`);
    return {
      id: "6",
      title,
      rows: [{
        label: "portico (50 middlewares)",
        proxy: "portico",
        status: "not available",
        note,
        rounds: [],
      }],
      ratios: {},
    };
  }
  return await porticoVariants(ctx, opts, "6", title, [
    {
      label: "portico (0 middlewares)",
      variant: { routers: 1, middlewares: 0 },
      host: BENCH_HOST,
      path: middlewarePath(50),
    },
    {
      label: "portico (50 middlewares)",
      variant: { routers: 1, middlewares: 50 },
      host: BENCH_HOST,
      path: middlewarePath(50),
    },
  ]);
}

interface MemoryReport {
  idleRssMb?: number;
  /** Split of the idle RSS: the process's own memory, and the Deno binary's pages. */
  idleAnonMb?: number;
  idleFileMb?: number;
  startupMs?: number;
  routers10kRssMb?: number;
  routers10kPeakMb?: number;
  routers10kStartupMs?: number;
  warmRssMb?: number;
  c1000PeakRssMb?: number;
  c1000: WrkResult | string;
  afterCloseRssMb: { afterSec: number; rssMb: number }[];
  notes: string[];
}

async function timedStart(
  ctx: BenchContext,
  variant: PorticoVariant,
  host: string,
): Promise<{ proc: Proc; ms: number; ok: boolean }> {
  const t0 = performance.now();
  const proc = await startProxy(ctx, "portico", variant);
  const status = await waitReady(proc, { port: ctx.ports.http, host }, 30_000);
  return { proc, ms: performance.now() - t0, ok: status === 200 };
}

async function memoryCheck(ctx: BenchContext, opts: Options): Promise<MemoryReport> {
  console.log("\n-- memory: Portico RSS idle, with 10,000 routers, under 1,000 connections");
  const report: MemoryReport = { afterCloseRssMb: [], c1000: "not run", notes: [] };
  // Idle: started, answered one request, then left alone.
  {
    const { proc, ms, ok } = await timedStart(ctx, { routers: 1, middlewares: 0 }, BENCH_HOST);
    try {
      if (!ok) throw new Error(`Portico did not start: ${logTail(proc.logFile, 5)}`);
      await sleep(1000);
      report.idleRssMb = groupMemoryMb(proc.pid, "VmRSS");
      report.idleAnonMb = groupMemoryMb(proc.pid, "RssAnon");
      report.idleFileMb = groupMemoryMb(proc.pid, "RssFile");
      report.startupMs = ms;
    } finally {
      await proc.stop();
    }
  }
  {
    const host = targetHost(10_000);
    const { proc, ms, ok } = await timedStart(ctx, { routers: 10_000, middlewares: 0 }, host);
    try {
      if (!ok) {
        throw new Error(`Portico with 10,000 routers did not start: ${logTail(proc.logFile, 5)}`);
      }
      await sleep(1000);
      report.routers10kRssMb = groupMemoryMb(proc.pid, "VmRSS");
      report.routers10kPeakMb = groupMemoryMb(proc.pid, "VmHWM");
      report.routers10kStartupMs = ms;
    } finally {
      await proc.stop();
    }
  }
  {
    const { proc, ok } = await timedStart(ctx, { routers: 1, middlewares: 0 }, BENCH_HOST);
    try {
      if (!ok) throw new Error(`Portico did not start: ${logTail(proc.logFile, 5)}`);
      const base = {
        url: `http://127.0.0.1:${ctx.ports.http}/`,
        host: BENCH_HOST,
        cpu: ctx.loadCpu,
      };
      await runWrk({ ...base, connections: 50, durationSec: opts.warmupSec });
      await sleep(500);
      report.warmRssMb = groupMemoryMb(proc.pid, "VmRSS");
      const sampler = sampleRss(proc.pid, 200);
      try {
        report.c1000 = await runWrk({
          ...base,
          connections: 1000,
          durationSec: Math.max(3, opts.durationSec),
        });
      } catch (err) {
        report.c1000 = (err as Error).message;
      }
      report.c1000PeakRssMb = sampler.stop();
      const t0 = performance.now();
      // Portico gives memory back after an interval without load (lib/server/memory_release.ts).
      for (const at of [1, 5, 10, 20]) {
        await sleep(Math.max(0, at * 1000 - (performance.now() - t0)));
        report.afterCloseRssMb.push({ afterSec: at, rssMb: groupMemoryMb(proc.pid, "VmRSS") });
      }
    } finally {
      await proc.stop();
    }
  }
  const f = (x?: number) => (x === undefined ? "-" : `${x.toFixed(1)} MB`);
  console.log(`\n== memory (Portico, RSS of the deno process)`);
  console.log(
    `idle after start:                  ${f(report.idleRssMb)} (ready in ${
      report.startupMs?.toFixed(0)
    } ms; own ${f(report.idleAnonMb)} + Deno binary pages ${f(report.idleFileMb)})`,
  );
  console.log(
    `with 10,000 routers:               ${f(report.routers10kRssMb)} (peak ${
      f(report.routers10kPeakMb)
    }, ready in ${report.routers10kStartupMs?.toFixed(0)} ms)`,
  );
  console.log(`after warm-up (c50):               ${f(report.warmRssMb)}`);
  const c = report.c1000;
  console.log(
    `peak under 1,000 connections:      ${f(report.c1000PeakRssMb)}` +
      (typeof c === "string"
        ? ` (wrk: ${c})`
        : ` (${Math.round(c.requestsPerSec)} req/s, p99 ${
          c.p99Ms.toFixed(1)
        } ms, ${c.socketErrors} socket errors)`),
  );
  for (const a of report.afterCloseRssMb) {
    console.log(`${`after close +${a.afterSec}s:`.padEnd(35)}${f(a.rssMb)}`);
  }
  return report;
}

// ---------------------------------------------------------------- profile

async function profile(ctx: BenchContext, opts: Options): Promise<void> {
  const dir = "/tmp/prof";
  await Deno.mkdir(dir, { recursive: true });
  const before = new Set([...Deno.readDirSync(dir)].map((e) => e.name));
  const path = opts.profileMiddlewares ? middlewarePath(opts.profileMiddlewares) : "/";
  const proc = await startProxy(ctx, "portico", {
    routers: 1,
    middlewares: opts.profileMiddlewares,
    denoFlags: ["--cpu-prof", `--cpu-prof-dir=${dir}`],
  });
  let result: WrkResult | undefined;
  try {
    const status = await waitReady(proc, { port: ctx.ports.http, host: BENCH_HOST, path });
    if (status !== 200) {
      throw new Error(`Portico did not answer 200 (got ${status}): ${logTail(proc.logFile)}`);
    }
    const base = {
      url: `http://127.0.0.1:${ctx.ports.http}${path}`,
      host: BENCH_HOST,
      cpu: ctx.loadCpu,
      connections: opts.connections,
    };
    await runWrk({ ...base, durationSec: opts.warmupSec });
    result = await runWrk({ ...base, durationSec: Math.max(opts.durationSec, 10) });
  } finally {
    // SIGTERM: Portico shuts down gracefully and Deno writes the profile on exit.
    await proc.stop(20_000);
  }
  console.log(
    `under profiling: ${
      Math.round(result.requestsPerSec)
    } req/s, p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms`,
  );
  const fresh = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) =>
    n.endsWith(".cpuprofile") && !before.has(n)
  );
  if (fresh.length === 0) {
    throw new Error(`no .cpuprofile appeared in ${dir}; log: ${logTail(proc.logFile)}`);
  }
  const file = join(dir, fresh.sort().pop()!);
  console.log(`profile: ${file}\n`);
  console.log(formatSummary(summarise(JSON.parse(await Deno.readTextFile(file))), 30));
}

// ---------------------------------------------------------------- main

async function versions(): Promise<Record<string, string>> {
  const first = async (cmd: string[], pattern: RegExp) => {
    try {
      const out = await run(cmd);
      const m = (out.stdout + out.stderr).match(pattern);
      return m ? m[1] : "unknown";
    } catch {
      return "missing";
    }
  };
  return {
    deno: Deno.version.deno,
    portico: (await import("../lib/version.ts")).VERSION,
    nginx: await first(["nginx", "-v"], /nginx\/(\S+)/),
    haproxy: await first(["haproxy", "-v"], /version (\S+)/),
    caddy: await first(["caddy", "version"], /^v?(\S+)/),
    wrk: await first(["wrk", "-v"], /wrk (\S+)/),
    openssl: await first(["openssl", "version"], /OpenSSL (\S+)/),
  };
}

async function machine(): Promise<Record<string, unknown>> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo");
  return {
    nproc: Number((await run(["nproc"])).stdout.trim()),
    cpu: cpuinfo.match(/^model name\s*:\s*(.+)$/m)?.[1] ?? "unknown",
    kernel: Deno.osRelease(),
    memTotalMb: Math.round(Deno.systemMemoryInfo().total / 1024 / 1024),
  };
}

function loadAverage(): number[] {
  return Deno.loadavg().map((x) => Math.round(x * 100) / 100);
}

function targetChecks(results: ScenarioResult[], memory?: MemoryReport): TargetCheck[] {
  const get = (id: string) => results.find((r) => r.id === id);
  const row = (id: string, label: string) => get(id)?.rows.find((r) => r.label === label)?.median;
  const checks: (TargetCheck | undefined)[] = [];
  const p1 = row("1", "portico"), n1 = row("1", "nginx"), c1 = row("1", "caddy");
  if (p1 && n1) {
    checks.push(
      checkAtLeast(
        "plain keep-alive: ≥ 0.6× nginx req/s",
        p1.requestsPerSec / n1.requestsPerSec,
        0.6,
      ),
    );
  }
  if (p1 && c1) {
    checks.push(
      checkAtLeast("plain keep-alive: ≥ 3× Caddy req/s", p1.requestsPerSec / c1.requestsPerSec, 3),
    );
  }
  if (p1 && n1) {
    checks.push(checkAtMost("plain keep-alive: p99 ≤ 2× nginx p99", p1.p99Ms / n1.p99Ms, 2));
  }
  const p3 = row("3", "portico"), n3 = row("3", "nginx");
  if (p3 && n3) {
    checks.push(
      checkAtLeast("HTTPS keep-alive: ≥ 0.5× nginx", p3.requestsPerSec / n3.requestsPerSec, 0.5),
    );
  }
  const p4 = row("4", "portico"), n4 = row("4", "nginx");
  if (p4 && n4) {
    checks.push(
      checkAtLeast("new TLS handshakes: ≥ 0.5× nginx", p4.requestsPerSec / n4.requestsPerSec, 0.5),
    );
  }
  const r10 = row("5", "portico (10 routers)"), r10k = row("5", "portico (10000 routers)");
  if (r10 && r10k) {
    checks.push(
      checkAtLeast(
        "10,000 routers: ≥ 0.90× the req/s of 10",
        r10k.requestsPerSec / r10.requestsPerSec,
        0.9,
      ),
    );
  }
  const rebuild = get("5")?.extra?.rebuild as { warmMedianMs: number; coldMs: number } | undefined;
  if (rebuild) {
    checks.push(
      checkAtMost(
        "rebuild 10,000 routers < 300 ms (median of warm runs)",
        rebuild.warmMedianMs,
        300,
        0,
      ),
    );
    checks.push(
      checkAtMost("rebuild 10,000 routers < 300 ms (first, cold)", rebuild.coldMs, 300, 0),
    );
  }
  if (memory) {
    checks.push(checkAtMost("idle RSS ≤ 64 MB", memory.idleRssMb, 64, 1));
    checks.push(checkAtMost("RSS with 10,000 routers ≤ 150 MB", memory.routers10kRssMb, 150, 1));
    const last = memory.afterCloseRssMb.at(-1)?.rssMb;
    if (
      last !== undefined && memory.c1000PeakRssMb !== undefined && memory.warmRssMb !== undefined
    ) {
      // "Goes back down": at least halfway from the peak back towards the pre-load level.
      const recovered = memory.c1000PeakRssMb - memory.warmRssMb > 0
        ? (memory.c1000PeakRssMb - last) / (memory.c1000PeakRssMb - memory.warmRssMb)
        : 1;
      checks.push(
        checkAtLeast(
          "RSS goes back down after 1,000 connections (share of growth returned)",
          recovered,
          0.5,
        ),
      );
    }
  }
  return checks.filter((c): c is TargetCheck => c !== undefined);
}

async function main(): Promise<number> {
  const opts = parseOptions(Deno.args);
  const command = `deno task bench${Deno.args.length ? " " + Deno.args.join(" ") : ""}`;

  const deps = await run(["bash", "scripts/install_deps.sh"], {
    cwd: REPO,
    env: { PORTICO_BENCH_DEPS: "1" },
  });
  if (deps.code !== 0) {
    throw new Error(`installing nginx/haproxy/caddy/wrk failed: ${deps.stderr.trim()}`);
  }

  const loadStart = loadAverage();
  if (loadStart[0] > 0.7) {
    console.log(
      `note: load average is ${
        loadStart.join(", ")
      } before the run; absolute figures will be low (ratios hold better)`,
    );
  }

  const dir = await Deno.makeTempDir({ prefix: "portico-bench-" });
  const onSignal = () => {
    killAllNow();
    try {
      Deno.removeSync(dir, { recursive: true });
    } catch {
      // Best effort.
    }
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);

  const started = performance.now();
  try {
    const files = await prepareFiles(dir);
    caCert = await Deno.readTextFile(files.certFile);
    const ctx: BenchContext = {
      ports: { backend: freePort(), http: freePort(), https: freePort() },
      files,
      repo: REPO,
      runAsRoot: Deno.uid() === 0,
      proxyCpu: 0,
      loadCpu: 1,
    };
    const backend = await startBackend(ctx);
    if ((await waitReady(backend, { port: ctx.ports.backend, host: BENCH_HOST })) !== 200) {
      throw new Error(
        `the nginx backend did not start: ${logTail(backend.logFile)} ${
          logTail(`${dir}/backend_error.log`)
        }`,
      );
    }

    if (opts.profile) {
      await profile(ctx, opts);
      return 0;
    }

    console.log(
      `portico bench: ${opts.rounds} round(s) × ${opts.durationSec}s after ${opts.warmupSec}s warm-up, ` +
        `wrk -t1 -c${opts.connections}; proxies on core ${ctx.proxyCpu}, wrk + backend on core ${ctx.loadCpu}`,
    );
    console.log(
      `wrk: ${
        wrkCommand({
          url: "URL",
          host: BENCH_HOST,
          connections: opts.connections,
          durationSec: opts.durationSec,
          cpu: ctx.loadCpu,
        }).join(" ")
      }`,
    );

    const results: ScenarioResult[] = [];
    let memory: MemoryReport | undefined;
    const wantPortico = opts.proxies.includes("portico");
    for (const s of opts.scenarios) {
      switch (s) {
        case "1":
          results.push(
            await peerScenario(ctx, opts, "1", "HTTP/1.1 keep-alive, 12-byte body", {
              path: "/",
              tls: false,
            }, true),
          );
          break;
        case "2":
          results.push(
            await peerScenario(ctx, opts, "2", "HTTP/1.1 keep-alive, 100 KB body", {
              path: "/big",
              tls: false,
            }, false),
          );
          break;
        case "3":
          results.push(
            await peerScenario(ctx, opts, "3", "HTTPS keep-alive, 12-byte body", {
              path: "/",
              tls: true,
            }, false),
          );
          break;
        case "4":
          results.push(
            await peerScenario(
              ctx,
              opts,
              "4",
              "new TLS handshake per request (Connection: close)",
              {
                path: "/",
                tls: true,
                closeEachRequest: true,
              },
              false,
            ),
          );
          break;
        case "5":
          if (wantPortico) results.push(await scenario5(ctx, opts));
          break;
        case "6":
          if (wantPortico) results.push(await scenario6(ctx, opts));
          break;
        case "mem":
          if (wantPortico) memory = await memoryCheck(ctx, opts);
          break;
      }
    }

    const checks = targetChecks(results, memory);
    if (checks.length) {
      console.log("\n== issue 9 targets (this run)");
      for (const c of checks) {
        console.log(`${c.met ? "met    " : "NOT met"}  ${c.target}: ${c.value}`);
      }
    }

    const loadEnd = loadAverage();
    const output = {
      date: new Date().toISOString(),
      command,
      machine: await machine(),
      versions: await versions(),
      loadAverage: { start: loadStart, end: loadEnd },
      options: opts,
      setup: {
        proxyCpu: ctx.proxyCpu,
        loadCpu: ctx.loadCpu,
        backend: "nginx, 1 worker: 12 bytes on /, 100 KB on /big",
        wrk: `wrk -t1 -c${opts.connections} --latency`,
      },
      scenarios: results,
      memory,
      targets: checks,
      elapsedSec: Math.round((performance.now() - started) / 1000),
    };
    await Deno.mkdir(dirname(opts.out), { recursive: true });
    await Deno.writeTextFile(opts.out, JSON.stringify(output, null, 2) + "\n");
    console.log(
      `\nwrote ${opts.out} (${output.elapsedSec} s; load average ${loadStart.join(", ")} → ${
        loadEnd.join(", ")
      })`,
    );
    return 0;
  } finally {
    await stopAll();
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  try {
    Deno.exit(await main());
  } catch (err) {
    console.error(`bench: ${(err as Error).message}`);
    await stopAll();
    Deno.exit(1);
  }
}

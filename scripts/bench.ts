/**
 * `deno task bench`: Portico against nginx, HAProxy and Caddy, side by side
 * in one run on loopback (issues 9, 15 and 19). Each proxy is pinned to core 0
 * with one worker; wrk and the nginx backend share core 1. For every
 * scenario and proxy: a warm-up, then R rounds of `wrk -t1 -c50 --latency`,
 * interleaved; the median round is reported with CPU µs per request (the
 * proxy's own utime + stime from /proc over each round, divided by the
 * requests wrk completed), peak RSS, and Portico's req/s, p99 and CPU ratios
 * to each peer. The plain scenarios also run two yardsticks: the "deno
 * floor" (Deno.serve + Portico's upstream client) and the "engine floor"
 * (a minimal proxy on raw Deno.listen + Deno.connect, issue 15's shape).
 *
 * ```sh
 * deno task bench                          # everything, 3 rounds of 5 s
 * deno task bench --quick                  # smoke run: 1 round of 2 s
 * deno task bench --scenarios 1,1b,2,mem --proxies portico,nginx --rounds 5 --duration 10s
 * deno task bench --scenarios 1 --workers 1,2,auto   # scenario 1, then Portico per worker count
 * deno task bench --profile                # CPU profile of Portico under scenario 1
 * deno task bench --profile --profile-middlewares 50   # … under scenario 6
 * deno task bench --profile --profile-out bench/profile-after.json   # saved for profile_compare.ts
 * deno task bench --scenarios tcp          # TCP relay only (Portico, HAProxy, nginx)
 * deno task bench --profile --scenarios tcp   # CPU profile of Portico under the TCP echo load
 * ```
 *
 * Scenarios: 1 plain keep-alive, 1b the same with headers + stripPrefix +
 * rateLimit on Portico's route (against nginx with scenario 1's config and
 * with its equivalent), 2 100 KB body, 3 HTTPS keep-alive, 4 new TLS
 * handshakes, 5 10,000 routers vs 10 (Portico only, plus the rebuild time),
 * 6 50 middlewares vs none (Portico only), otel scenario 1's traffic with
 * `[tracing]` at sampleRate 1.0 and 0.1 against tracing off (Portico only;
 * spans go over OTLP/HTTP to a sink in this process that answers at once), w Portico with `[server] workers
 * = N` for each N of `--workers` (req/s, CPU per request, connections per
 * process and CPU per thread; skipped when the build refuses the option),
 * mem (Portico's RSS: idle, with 10,000 routers, peak under 1,000
 * keep-alive connections, and 1, 5, 10 and 20 s after they close), tcp
 * (issue 19: Portico's `HostSNI(\`*\`)` TCP router against HAProxy `mode tcp`
 * and nginx `stream`, no Caddy: its Debian build has no TCP proxy; a C echo
 * backend and a C load generator, scripts/bench/tcp_echo.c and tcp_load.c,
 * built with gcc and pinned to the load core; a 100 KB echo over 50
 * persistent connections, messages/s, MB/s, p99 and CPU µs per message, and
 * connect + 64-byte echo + close, connections/s).
 * Target checks for issue 15's table (and the rest of issue 9's, and issue
 * 19's TCP ratios) close the report. Results go to bench/results.json.
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
  SCENARIO_1B,
  targetHost,
} from "./bench/configs.ts";
import { prepareFiles } from "./bench/files.ts";
import {
  connectionsPerProcess,
  freePort,
  groupCpuSeconds,
  groupMemoryMb,
  groupThreadTicks,
  killAllNow,
  logTail,
  type Proc,
  run,
  sampleRss,
  sleep,
  stopAll,
  waitReady,
} from "./bench/procs.ts";
import {
  checkAtLeast,
  checkAtMost,
  formatTable,
  formatTcpTable,
  type Measurement,
  medianOf,
  medianRound,
  type Metric,
  metricOf,
  ratios,
  type TargetCheck,
  type WorkerSpread,
} from "./bench/report.ts";
import type { RebuildReport } from "./bench/router_rebuild.ts";
import { formatSummary, profileRecord, summarise } from "./bench/profile_summary.ts";
import {
  type BenchContext,
  type FloorName,
  type PorticoVariant,
  startBackend,
  startFloor,
  startProxy,
  startTcpFloor,
  startTcpProxy,
  writeProxyConfig,
} from "./bench/servers.ts";
import {
  buildTool,
  echoedWhole,
  ensureTcpTools,
  runTcpLoad,
  startEcho,
  tcpLoadCommand,
  type TcpLoadOptions,
  type TcpLoadOutput,
  type TcpLoadResult,
  waitEchoReady,
} from "./bench/tcp_load.ts";
import { runWrk, wrkCommand, type WrkResult } from "./bench/wrk.ts";

const REPO = dirname(dirname(fileURLToPath(import.meta.url)));
const ALL_SCENARIOS = ["1", "1b", "2", "3", "4", "5", "6", "otel", "w", "tcp", "mem"] as const;

/** `[server] workers` values the "w" scenario runs by default (`--workers`). */
const DEFAULT_WORKERS = "1,2";

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
  /** Where `--profile` also writes its summary (JSON, or text unless the name ends in .json). */
  profileOut?: string;
  /** `[server] workers` values for scenario "w". */
  workers: (number | "auto")[];
  /** `--profile --scenarios tcp`: profile Portico under the TCP echo load instead. */
  profileTcp: boolean;
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
      "profile-out": { type: "string" },
      workers: { type: "string" },
      out: { type: "string", default: join(REPO, "bench", "results.json") },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(
      "deno task bench [--scenarios 1,1b,2,3,4,5,6,otel,w,tcp,mem] [--proxies portico,nginx,haproxy,caddy]\n" +
        "                [--rounds 3] [--duration 5s] [--warmup 2s] [--connections 50] [--quick] [--out FILE]\n" +
        "                [--workers 1,2,auto]   (scenario w: Portico with [server] workers = N)\n" +
        "deno task bench --profile [--profile-middlewares 50] [--duration 10s] [--profile-out FILE]\n" +
        "deno task bench --profile --scenarios tcp   (Portico under the TCP 100 KB echo load)",
    );
    Deno.exit(0);
  }
  const scenarios = values.scenarios
    ? values.scenarios.split(",").map((s) => s.trim())
    : [...ALL_SCENARIOS];
  // --workers asks for scenario w even when --scenarios leaves it out.
  if (values.workers && !scenarios.includes("w")) scenarios.splice(scenarios.length, 0, "w");
  const workers = (values.workers ?? DEFAULT_WORKERS).split(",").map((w) => w.trim()).map((w) => {
    if (w === "auto") return "auto" as const;
    const n = Number(w);
    if (!Number.isInteger(n) || n < 1) {
      throw new Error(`--workers: expected whole numbers ≥ 1 or "auto", got "${w}"`);
    }
    return n;
  });
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
    profileOut: values["profile-out"],
    workers,
    profileTcp: scenarios.length === 1 && scenarios[0] === "tcp",
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
  /** Record how load spread over the group's processes and threads (scenario w). */
  spread?: boolean;
  /** Checked once the server answers 200: an error message, or undefined when all is well. */
  verify?: (port: number) => Promise<string | undefined>;
  /** Readiness and load for a non-HTTP contender (scenario tcp) instead of the HTTP probe and wrk. */
  driver?: LoadDriver;
}

/** How a non-HTTP contender is probed and loaded; `run` reports in wrk's shape (req/s = its unit/s). */
interface LoadDriver {
  /** Undefined once `port` answers as it should, else why not (after a bounded wait). */
  ready(proc: Proc, port: number): Promise<string | undefined>;
  run(port: number, durationSec: number): Promise<WrkResult>;
}

/** One load run against a contender: its driver's, else wrk's. */
function runLoad(ctx: BenchContext, opts: Options, r: Running, durationSec: number) {
  return r.contender.driver
    ? r.contender.driver.run(r.port, durationSec)
    : runWrk(wrkOptions(ctx, opts, r, durationSec));
}

interface Running {
  contender: Contender;
  port: number;
  proc?: Proc;
  rounds: WrkResult[];
  /** CPU µs per request of each round (proxies the harness started only). */
  cpuUs: number[];
  spread: WorkerSpread[];
  failure?: string;
}

/** Threads that used less than this share of the group's CPU in a round are left out. */
const SPREAD_MIN_SHARE = 0.02;

/**
 * One measured round: wrk, with the proxy group's CPU time read from /proc
 * before and after (so CPU per request counts only this round's requests),
 * and for `spread` contenders the CPU per thread and, halfway through, the
 * established connections per process.
 */
async function measuredRound(ctx: BenchContext, opts: Options, r: Running): Promise<void> {
  const pid = r.proc?.pid;
  const cpu0 = pid ? groupCpuSeconds(pid) : 0;
  const threads0 = pid && r.contender.spread ? groupThreadTicks(pid) : undefined;
  const wrk = runLoad(ctx, opts, r, opts.durationSec);
  let connections: Map<number, number> | undefined;
  if (pid && r.contender.spread) {
    await Promise.race([sleep((opts.durationSec * 1000) / 2), wrk.catch(() => {})]);
    connections = connectionsPerProcess(pid, r.port);
  }
  const result = await wrk;
  r.rounds.push(result);
  if (!pid) return;
  const cpu1 = groupCpuSeconds(pid);
  if (result.requests > 0) r.cpuUs.push(((cpu1 - cpu0) * 1e6) / result.requests);
  if (threads0) {
    const threads1 = groupThreadTicks(pid);
    const used = [...threads1].map(([name, t]) => [name, t - (threads0.get(name) ?? 0)] as const);
    const total = used.reduce((sum, [, t]) => sum + t, 0) || 1;
    r.spread.push({
      connectionsPerProcess: Object.fromEntries([...(connections ?? [])].map(([p, n]) => [p, n])),
      threadCpuShare: Object.fromEntries(
        used.filter(([, t]) => t / total >= SPREAD_MIN_SHARE).sort((a, b) => b[1] - a[1])
          .map(([name, t]) => [name, Math.round((1000 * t) / total) / 1000]),
      ),
    });
  }
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
        running.push({ contender: c, port: ctx.ports.backend, rounds: [], cpuUs: [], spread: [] });
        continue;
      }
      const ports: BenchPorts = { backend: ctx.ports.backend, http: freePort(), https: freePort() };
      const r: Running = {
        contender: c,
        port: c.target.tls ? ports.https : ports.http,
        rounds: [],
        cpuUs: [],
        spread: [],
      };
      running.push(r);
      try {
        r.proc = await c.start(ports);
        if (c.driver) {
          r.failure = await c.driver.ready(r.proc, r.port);
        } else {
          const status = await waitReady(r.proc, {
            port: r.port,
            host: c.target.host,
            path: c.target.path,
            caCert: c.target.tls ? caCert : undefined,
          });
          if (status !== 200) {
            const why = status === 0 ? "never answered" : `answered ${status}`;
            r.failure = `${why}; log: ${logTail(r.proc.logFile, 5).replaceAll("\n", " | ")}`;
          } else if (c.verify) {
            r.failure = await c.verify(r.port);
          }
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
        await runLoad(ctx, opts, r, opts.warmupSec);
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
          await measuredRound(ctx, opts, r);
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
        cpuUs: r.cpuUs.length ? r.cpuUs.map((x) => Math.round(x * 10) / 10) : undefined,
        cpuUsPerRequest: r.cpuUs.length ? medianOf(r.cpuUs) : undefined,
        spread: r.spread.length ? r.spread : undefined,
      };
    });
  } finally {
    await Promise.all(running.map((r) => r.proc?.stop(5000)));
  }
}

const METRIC_NAMES: Record<Metric, string> = {
  rps: "req/s",
  p99: "p99",
  cpu: "CPU µs/request",
};

/** `0.52× nginx, 0.61× engine floor` for `subject`'s metric against every peer row. */
function ratioText(rows: Measurement[], metric: Metric, subject = "portico"): string {
  return Object.entries(ratios(rows, subject, metric)).map(([peer, x]) =>
    `${x.toFixed(2)}× ${peer}`
  ).join(", ");
}

function printRows(title: string, rows: Measurement[]): void {
  console.log(`\n== ${title}\n${formatTable(rows)}`);
  for (const metric of ["rps", "p99", "cpu"] as const) {
    const text = ratioText(rows, metric);
    if (text) console.log(`Portico ${METRIC_NAMES[metric]} ratio: ${text}`);
  }
  // The yardsticks against nginx: what a JS proxy on this runtime can reach.
  const nginx = rows.find((r) => r.label === "nginx");
  for (const floor of rows.filter((r) => r.proxy === "floor")) {
    const parts = (["rps", "p99", "cpu"] as const).flatMap((m) => {
      const a = metricOf(floor, m), b = metricOf(nginx, m);
      return a !== undefined && b ? [`${METRIC_NAMES[m]} ${(a / b).toFixed(2)}×`] : [];
    });
    if (parts.length) console.log(`${floor.label} vs nginx: ${parts.join(", ")}`);
  }
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
 * The yardsticks run beside Portico on plain scenarios (scripts/bench/servers.ts
 * FLOORS): "deno floor" is Deno.serve plus Portico's upstream client and
 * nothing else, what the runtime's server costs per request; "engine floor"
 * is a minimal proxy on raw sockets (scripts/bench/engine_floor.ts), the
 * shape issue 15's data plane aims at.
 */
const FLOOR_LABELS: FloorName[] = ["deno floor", "engine floor"];

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
    for (const floor of FLOOR_LABELS) {
      contenders.push({
        label: floor,
        proxy: "floor",
        target: full,
        start: (ports) => Promise.resolve(startFloor(ctx, floor, ports)),
      });
    }
  }
  const rows = await measureInterleaved(ctx, opts, contenders);
  printRows(`scenario ${id}: ${title}`, rows);
  return { id, title, rows, ratios: ratios(rows) };
}

/** One GET on a fresh connection; the whole response as text ("" when it failed). */
async function rawGet(port: number, host: string, path: string): Promise<string> {
  let conn: Deno.Conn | undefined;
  try {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(
      new TextEncoder().encode(
        `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
      ),
    );
    const chunks: Uint8Array[] = [];
    const buf = new Uint8Array(16 * 1024);
    for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
      chunks.push(buf.slice(0, n));
    }
    return new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => [...c])));
  } catch {
    return "";
  } finally {
    try {
      conn?.close();
    } catch {
      // Closed by the peer.
    }
  }
}

/** The 1b route really runs its middlewares: the response header is there and the body too. */
async function verify1b(port: number): Promise<string | undefined> {
  const text = await rawGet(port, BENCH_HOST, SCENARIO_1B.path);
  const head = text.slice(0, text.indexOf("\r\n\r\n")).toLowerCase();
  if (!head.startsWith("http/1.1 200")) return `1b check: ${text.split("\r\n")[0] || "no answer"}`;
  if (!head.includes(`\r\n${SCENARIO_1B.responseHeader.toLowerCase()}: 1`)) {
    return `1b check: no ${SCENARIO_1B.responseHeader} response header`;
  }
  return text.endsWith("hello world\n") ? undefined : "1b check: unexpected body";
}

/**
 * Scenario 1b: scenario 1 with headers (request and response) + stripPrefix
 * + rateLimit on Portico's route. nginx runs twice in the same rounds: with
 * scenario 1's config (the target's reference) and with the equivalent
 * proxy_set_header + add_header + prefix-replacing proxy_pass + limit_req.
 */
async function scenario1b(ctx: BenchContext, opts: Options): Promise<ScenarioResult> {
  const id = "1b";
  const title = "HTTP/1.1 keep-alive, 12-byte body; route with headers + stripPrefix + rateLimit";
  console.log(`\n-- scenario ${id}: ${title}`);
  const plain: Target = { host: BENCH_HOST, path: "/", tls: false };
  const routed: Target = { host: BENCH_HOST, path: SCENARIO_1B.path, tls: false };
  const contenders: Contender[] = [];
  if (opts.proxies.includes("portico")) {
    contenders.push({
      label: "portico",
      proxy: "portico",
      target: routed,
      start: (ports) =>
        startProxy(ctx, "portico", { routers: 1, middlewares: 0, preset: "1b" }, ports),
      verify: verify1b,
    });
  }
  if (opts.proxies.includes("nginx")) {
    contenders.push({
      label: "nginx",
      proxy: "nginx",
      target: plain,
      start: (ports) => startProxy(ctx, "nginx", undefined, ports),
    }, {
      label: "nginx (1b equivalent)",
      proxy: "nginx",
      target: routed,
      start: (ports) =>
        startProxy(ctx, "nginx", { routers: 1, middlewares: 0, preset: "1b" }, ports),
      verify: verify1b,
    });
  }
  const rows = await measureInterleaved(ctx, opts, contenders);
  printRows(`scenario ${id}: ${title}`, rows);
  console.log(
    `(target reference: "nginx" with scenario 1's config, unchanged, in the same rounds; ` +
      `"nginx (1b equivalent)" adds proxy_set_header + add_header + a prefix-replacing ` +
      `proxy_pass + limit_req at ${SCENARIO_1B.average} r/s)`,
  );
  return { id, title, rows, ratios: ratios(rows) };
}

/** Label of Portico's row in scenario w for a `[server] workers` value. */
const workersLabel = (w: number | "auto") => `portico (workers ${w})`;

/**
 * Scenario w: scenario 1's traffic to Portico started with `[server]
 * workers = N` for each N of `--workers`, beside nginx, all on the proxy
 * core. Reports req/s, CPU per request and how the load spread: established
 * connections per process (for worker processes) and CPU share per thread
 * (for Worker threads, which share one process's descriptors). A build
 * whose static config refuses the option is reported as such and skipped.
 */
async function scenarioWorkers(ctx: BenchContext, opts: Options): Promise<ScenarioResult> {
  const id = "w";
  const title = "Portico with [server] workers = N, scenario 1 traffic";
  console.log(`\n-- scenario ${id}: ${title}`);
  const target: Target = { host: BENCH_HOST, path: "/", tls: false };
  // Ask the build first: `mod.ts check` rejects a static option it does not know.
  const config = await writeProxyConfig(ctx, "portico", {
    routers: 1,
    middlewares: 0,
    workers: opts.workers[0],
  });
  const check = await run(["deno", "run", "-A", "mod.ts", "check", `--configFile=${config}`], {
    cwd: ctx.repo,
  });
  if (check.code !== 0) {
    const why = (check.stdout + check.stderr).split("\n").find((l) => /workers|server/.test(l)) ??
      (check.stdout + check.stderr).trim().split("\n").pop();
    console.log(`   workers: not supported by this build (${why?.trim()})`);
    return {
      id,
      title,
      rows: [{
        label: "portico (workers)",
        proxy: "portico",
        status: "not supported yet",
        note: "workers: not supported by this build",
        rounds: [],
      }],
      ratios: {},
      extra: { supported: false, check: why?.trim() },
    };
  }
  const contenders: Contender[] = opts.workers.map((w) => ({
    label: workersLabel(w),
    proxy: "portico",
    target,
    spread: true,
    start: (ports: BenchPorts) =>
      startProxy(ctx, "portico", { routers: 1, middlewares: 0, workers: w }, ports),
  }));
  if (opts.proxies.includes("nginx")) {
    contenders.push({
      label: "nginx",
      proxy: "nginx",
      target,
      start: (ports) => startProxy(ctx, "nginx", undefined, ports),
    });
  }
  const rows = await measureInterleaved(ctx, opts, contenders);
  console.log(`\n== scenario ${id}: ${title}\n${formatTable(rows)}`);
  const nginx = rows.find((r) => r.label === "nginx");
  for (const row of rows.filter((r) => r.proxy === "portico")) {
    const vs = (m: Metric) => {
      const a = metricOf(row, m), b = metricOf(nginx, m);
      return a !== undefined && b ? `${(a / b).toFixed(2)}×` : "-";
    };
    console.log(`${row.label}: req/s ${vs("rps")} nginx, CPU µs/request ${vs("cpu")} nginx`);
    const last = row.spread?.at(-1);
    if (!last) continue;
    const conns = Object.values(last.connectionsPerProcess).filter((n) => n > 0);
    console.log(
      `   connections per process: ${conns.length ? conns.join(" / ") : "-"}` +
        (conns.length === 1 ? " (one process: workers are threads, or not spread)" : ""),
    );
    console.log(
      `   CPU share by thread: ${
        Object.entries(last.threadCpuShare).map(([t, x]) =>
          `${t.replace(/^\d+\//, "")} ${(100 * x).toFixed(0)}%`
        ).join(", ")
      }`,
    );
  }
  return { id, title, rows, ratios: ratios(rows, workersLabel(opts.workers[0])) };
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

/**
 * Scenario otel: the cost of tracing on the hot path. The OTLP sink runs
 * in this (unpinned) process and acknowledges every export without
 * decoding it, so the figure is Portico's own work: recording, building
 * spans, serialising and sending them.
 */
async function scenarioOtel(ctx: BenchContext, opts: Options): Promise<ScenarioResult> {
  const id = "otel";
  const title = "tracing at sampleRate 1.0 and 0.1 vs off (Portico, scenario 1 traffic)";
  console.log(`\n-- scenario ${id}: ${title}`);
  let exports = 0;
  const sink = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    await req.arrayBuffer();
    exports++;
    return new Response(new Uint8Array(0), { headers: { "content-type": "application/x-protobuf" } });
  });
  const tracing = (rate: string) =>
    `\n[tracing]\nsampleRate = ${rate}\n[tracing.otlp.http]\nendpoint = "http://127.0.0.1:${sink.addr.port}"\n`;
  const variants = [
    { label: "portico (tracing off)", staticExtra: "" },
    { label: "portico (tracing 1.0)", staticExtra: tracing("1.0") },
    { label: "portico (tracing 0.1)", staticExtra: tracing("0.1") },
  ];
  try {
    const rows = await measureInterleaved(
      ctx,
      opts,
      variants.map((v) => ({
        label: v.label,
        proxy: "portico" as const,
        target: { host: BENCH_HOST, path: "/", tls: false },
        start: (ports: BenchPorts) =>
          startProxy(ctx, "portico", { routers: 1, middlewares: 0, staticExtra: v.staticExtra }, ports),
      })),
    );
    console.log(`\n== scenario ${id}: ${title}\n${formatTable(rows)}`);
    const result: ScenarioResult = { id, title, rows, ratios: {} };
    const [off, ...on] = rows;
    for (const row of on) {
      if (!off.median || !row.median) continue;
      const ratio = row.median.requestsPerSec / off.median.requestsPerSec;
      result.ratios[`${row.label} / ${off.label}`] = ratio;
      console.log(`${row.label} / ${off.label}: ${ratio.toFixed(3)}× req/s`);
    }
    console.log(`OTLP export requests received by the sink: ${exports}`);
    result.extra = { otlpExports: exports };
    return result;
  } finally {
    await sink.shutdown();
  }
}

// ---------------------------------------------------------------- TCP (issue 19)

/** The TCP loads: "echo" (100 KB messages over persistent connections) and "connect". */
type TcpMode = TcpLoadOptions["mode"];

const TCP_TITLES: Record<TcpMode, string> = {
  echo: "TCP relay: 100 KB echo over persistent connections",
  connect: "TCP connection rate: connect, 64-byte echo, close",
};

/** Where nginx writes what goes wrong before its error_log is open, and its stream error log. */
function nginxTcpLogs(ctx: BenchContext): string[] {
  return [`${ctx.files.dir}/nginx_proxy_startup.log`, `${ctx.files.dir}/nginx_stream_error.log`];
}

/**
 * The rows of one TCP load: the echo backend alone (the ceiling, on the load
 * core with tcp_load), then every selected proxy that has a TCP proxy; Caddy
 * is listed as not available.
 */
function tcpContenders(
  ctx: BenchContext,
  opts: Options,
  loadBinary: string,
  mode: TcpMode,
): Contender[] {
  const target: Target = { host: "", path: "", tls: false };
  const driver = (logs: string[] = []): LoadDriver => ({
    ready: (proc, port) => waitEchoReady(proc, port, 20_000, logs),
    run: (port, durationSec) =>
      runTcpLoad(loadBinary, {
        mode,
        port,
        connections: opts.connections,
        durationSec,
        cpu: ctx.loadCpu,
      }),
  });
  const contenders: Contender[] = [{
    label: "echo (direct)",
    proxy: "backend",
    target,
    driver: driver(),
  }];
  for (const proxy of opts.proxies) {
    if (proxy === "caddy") {
      contenders.push({
        label: "caddy",
        proxy,
        target,
        skip: {
          status: "not available",
          note: "Debian's Caddy has no TCP proxy (layer4 is a plugin)",
        },
      });
      continue;
    }
    contenders.push({
      label: proxy,
      proxy,
      target,
      start: (ports) => startTcpProxy(ctx, proxy, ports),
      driver: driver(proxy === "nginx" ? nginxTcpLogs(ctx) : []),
    });
    // What a bare Deno relay does in the same rounds: the runtime's share of Portico's figure.
    if (proxy === "portico") {
      contenders.push({
        label: "tcp floor",
        proxy: "floor",
        target,
        start: (ports) => Promise.resolve(startTcpFloor(ctx, ports)),
        driver: driver(),
      });
      contenders.push({
        label: "tcp floor (node:net)",
        proxy: "floor",
        target,
        start: (ports) => Promise.resolve(startTcpFloor(ctx, ports, "node")),
        driver: driver(),
      });
    }
  }
  return contenders;
}

/** The tcp_load output of each round of a row (every TCP row's rounds carry it). */
function tcpRounds(row: Measurement): TcpLoadOutput[] {
  return row.rounds.map((x) => (x as TcpLoadResult).tcp).filter(Boolean);
}

/**
 * Scenario tcp (issue 19): Portico's TCP router (`HostSNI(\`*\`)`, routed at
 * accept) against HAProxy `mode tcp` and nginx `stream`, each pinned to the
 * proxy core in front of a C echo backend (scripts/bench/tcp_echo.c) on the
 * load core, loaded by scripts/bench/tcp_load.c on the load core. Two loads,
 * each in its own interleaved rounds: "echo", N persistent connections each
 * echoing a 100 KB message again and again (messages/s, MB/s each way, p99
 * per message, CPU µs per message), and "connect", N loops of connect →
 * 64-byte echo → close (connections/s, CPU µs per connection). Every round
 * checks that the bytes that came back are the bytes that were sent.
 */
async function scenarioTcp(ctx: BenchContext, opts: Options): Promise<ScenarioResult[]> {
  console.log(`\n-- scenario tcp: TCP relay (100 KB echo) and connection rate`);
  await ensureTcpTools();
  const tools = {
    echo: await buildTool(REPO, "tcp_echo"),
    load: await buildTool(REPO, "tcp_load"),
  };
  const echoPort = freePort();
  const echo = startEcho(tools.echo, echoPort, ctx.loadCpu, `${ctx.files.dir}/tcp_echo.log`);
  const results: ScenarioResult[] = [];
  try {
    const err = await waitEchoReady(echo, echoPort, 10_000);
    if (err) throw new Error(`the TCP echo backend (tcp_echo.c) did not start: ${err}`);
    // The proxies' "backend" is the echo server for this scenario.
    const tctx: BenchContext = { ...ctx, ports: { ...ctx.ports, backend: echoPort } };
    const example = tcpLoadCommand(tools.load, {
      mode: "echo",
      port: 0,
      connections: opts.connections,
      durationSec: opts.durationSec,
      cpu: ctx.loadCpu,
    }).map((a) => (a === "0" ? "PORT" : a === tools.load ? "tcp_load" : a)).join(" ");
    console.log(
      `   load: ${example} (and "connect"); echo backend: tcp_echo on core ${ctx.loadCpu}`,
    );
    if (opts.proxies.includes("caddy")) {
      console.log("   caddy: left out, Debian's Caddy has no TCP proxy (layer4 is a plugin)");
    }
    for (const mode of ["echo", "connect"] as const) {
      const id = `tcp ${mode}`;
      const title = TCP_TITLES[mode];
      console.log(`   -- ${id}: ${title}`);
      const rows = await measureInterleaved(
        tctx,
        opts,
        tcpContenders(tctx, opts, tools.load, mode),
      );
      const unit = mode === "echo" ? "msg" : "conn";
      console.log(`\n== scenario ${id}: ${title}\n${formatTcpTable(rows, unit)}`);
      const names: Record<Metric, string> = { rps: `${unit}/s`, p99: "p99", cpu: `CPU µs/${unit}` };
      for (const metric of ["rps", "p99", "cpu"] as const) {
        const text = ratioText(rows, metric);
        if (text) console.log(`Portico ${names[metric]} ratio: ${text}`);
      }
      // The sanity check: what came back is what was sent, in every round of every row.
      const short = rows.flatMap((row) =>
        tcpRounds(row).flatMap((t, i) =>
          echoedWhole(t) ? [] : [
            `${row.label} round ${i + 1}: sent ${t.bytesSent}, got back ${t.bytesReceived}` +
            (t.incomplete ? `, ${t.incomplete} unfinished` : ""),
          ]
        )
      );
      const echoed = rows.reduce(
        (sum, row) => sum + tcpRounds(row).reduce((s, t) => s + t.bytesReceived, 0),
        0,
      );
      console.log(
        short.length
          ? `echo check: NOT whole: ${short.join("; ")}`
          : `echo check: every round got back exactly the bytes it sent (${
            echoed >= 1e9 ? `${(echoed / 1e9).toFixed(2)} GB` : `${(echoed / 1e6).toFixed(1)} MB`
          } echoed in all)`,
      );
      results.push({
        id,
        title,
        rows,
        ratios: ratios(rows),
        extra: {
          unit,
          messageBytes: tcpRounds(rows.find((r) => r.rounds.length) ?? rows[0])[0]?.messageBytes,
          echoWhole: short.length === 0,
          notWhole: short,
          p99Ratios: ratios(rows, "portico", "p99"),
          cpuRatios: ratios(rows, "portico", "cpu"),
        },
      });
    }
  } finally {
    await echo.stop();
  }
  return results;
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
  if (opts.profileTcp) return await profileTcp(ctx, opts);
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
  await reportProfile(opts, dir, before, proc, result, "req/s");
}

/**
 * `--profile --scenarios tcp`: a CPU profile of Portico's TCP router under
 * the 100 KB echo load (the echo backend and tcp_load on the load core).
 */
async function profileTcp(ctx: BenchContext, opts: Options): Promise<void> {
  await ensureTcpTools();
  const echoBin = await buildTool(REPO, "tcp_echo");
  const loadBin = await buildTool(REPO, "tcp_load");
  const echoPort = freePort();
  const echo = startEcho(echoBin, echoPort, ctx.loadCpu, `${ctx.files.dir}/tcp_echo.log`);
  const dir = "/tmp/prof";
  await Deno.mkdir(dir, { recursive: true });
  const before = new Set([...Deno.readDirSync(dir)].map((e) => e.name));
  let result: TcpLoadResult | undefined;
  let proc: Proc | undefined;
  try {
    const err = await waitEchoReady(echo, echoPort, 10_000);
    if (err) throw new Error(`the TCP echo backend (tcp_echo.c) did not start: ${err}`);
    const ports: BenchPorts = { backend: echoPort, http: freePort(), https: freePort() };
    const tctx: BenchContext = { ...ctx, ports };
    proc = await startTcpProxy(tctx, "portico", ports, ["--cpu-prof", `--cpu-prof-dir=${dir}`]);
    const notReady = await waitEchoReady(proc, ports.http);
    if (notReady) throw new Error(`Portico's TCP router did not echo: ${notReady}`);
    const base = {
      mode: "echo" as const,
      port: ports.http,
      connections: opts.connections,
      cpu: ctx.loadCpu,
    };
    await runTcpLoad(loadBin, { ...base, durationSec: opts.warmupSec });
    result = await runTcpLoad(loadBin, { ...base, durationSec: Math.max(opts.durationSec, 10) });
  } finally {
    // SIGTERM: Portico shuts down gracefully and Deno writes the profile on exit.
    await proc?.stop(20_000);
    await echo.stop();
  }
  console.log(
    `under profiling (100 KB echo, ${opts.connections} connections): ${
      Math.round(result.requestsPerSec)
    } msg/s, ${
      result.tcp.mbPerSec.toFixed(0)
    } MB/s each way, p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms`,
  );
  await reportProfile(opts, dir, before, proc!, result, "msg/s");
}

/** Finds the profile `proc` wrote into `dir`, prints its summary and saves it with --profile-out. */
async function reportProfile(
  opts: Options,
  dir: string,
  before: Set<string>,
  proc: Proc,
  result: WrkResult,
  unit: string,
): Promise<void> {
  const fresh = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) =>
    n.endsWith(".cpuprofile") && !before.has(n)
  );
  if (fresh.length === 0) {
    throw new Error(`no .cpuprofile appeared in ${dir}; log: ${logTail(proc.logFile)}`);
  }
  const file = join(dir, fresh.sort().pop()!);
  console.log(`profile: ${file}\n`);
  const summary = summarise(JSON.parse(await Deno.readTextFile(file)));
  const text = formatSummary(summary, 30);
  console.log(text);
  if (opts.profileOut) {
    const commit = (await run(["git", "describe", "--always", "--dirty"], { cwd: REPO })).stdout
      .trim();
    const saved = profileRecord(summary, {
      date: new Date().toISOString(),
      commit,
      command: `deno task bench ${Deno.args.join(" ")}`,
      profile: file,
      middlewares: opts.profileMiddlewares,
      wrk: result,
    });
    await Deno.mkdir(dirname(opts.profileOut), { recursive: true });
    await Deno.writeTextFile(
      opts.profileOut,
      opts.profileOut.endsWith(".json")
        ? JSON.stringify(saved, null, 2) + "\n"
        : `commit ${commit}, ${saved.date}: ${Math.round(result.requestsPerSec)} ${unit}, ` +
          `p99 ${result.p99Ms} ms under profiling\n\n${text}\n`,
    );
    console.log(
      `\nwrote ${opts.profileOut} (compare two: deno run -A scripts/bench/profile_compare.ts A.json B.json)`,
    );
  }
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

/**
 * The targets of issue 15's table (scenarios 1, 1b, 2, 3, 5, CPU per
 * request, and #9's memory figures it keeps), then the remaining issue-9
 * ones, each a ratio measured in the same interleaved rounds.
 */
function targetChecks(results: ScenarioResult[], memory?: MemoryReport): TargetCheck[] {
  const get = (id: string) => results.find((r) => r.id === id);
  const row = (id: string, label: string) => get(id)?.rows.find((r) => r.label === label);
  const ratio = (id: string, a: string, b: string, m: Metric = "rps", idB = id) => {
    const x = metricOf(row(id, a), m), y = metricOf(row(idB, b), m);
    return x !== undefined && y ? x / y : undefined;
  };
  const checks15: (TargetCheck | undefined)[] = [
    checkAtLeast("1 plain keep-alive: ≥ 0.85× nginx req/s", ratio("1", "portico", "nginx"), 0.85),
    checkAtMost(
      "1 plain keep-alive: p99 ≤ 1.5× nginx p99",
      ratio("1", "portico", "nginx", "p99"),
      1.5,
    ),
    checkAtLeast(
      "1b headers + stripPrefix + rateLimit: ≥ 0.7× nginx req/s (scenario 1 config)",
      ratio("1b", "portico", "nginx"),
      0.7,
    ),
    checkAtLeast("2 100 KB body: ≥ 0.8× nginx req/s", ratio("2", "portico", "nginx"), 0.8),
    checkAtLeast("3 HTTPS keep-alive: ≥ 0.75× nginx req/s", ratio("3", "portico", "nginx"), 0.75),
    checkAtMost(
      "CPU per request in scenario 1: ≤ 1.3× nginx's",
      ratio("1", "portico", "nginx", "cpu"),
      1.3,
    ),
    checkAtLeast(
      "5 10,000 routers: within 10 % of 10 routers (≥ 0.90× req/s)",
      ratio("5", "portico (10000 routers)", "portico (10 routers)"),
      0.9,
    ),
  ];
  if (memory) {
    checks15.push(checkAtMost("idle RSS ≤ 64 MB", memory.idleRssMb, 64, 1));
    checks15.push(checkAtMost("RSS with 10,000 routers ≤ 150 MB", memory.routers10kRssMb, 150, 1));
    const last = memory.afterCloseRssMb.at(-1)?.rssMb;
    if (
      last !== undefined && memory.c1000PeakRssMb !== undefined && memory.warmRssMb !== undefined
    ) {
      // "Goes back down": at least halfway from the peak back towards the pre-load level.
      const recovered = memory.c1000PeakRssMb - memory.warmRssMb > 0
        ? (memory.c1000PeakRssMb - last) / (memory.c1000PeakRssMb - memory.warmRssMb)
        : 1;
      checks15.push(
        checkAtLeast(
          "RSS goes back down after 1,000 connections (share of growth returned ≥ 0.5)",
          recovered,
          0.5,
        ),
      );
    }
  }
  const checks9: (TargetCheck | undefined)[] = [
    checkAtLeast("plain keep-alive: ≥ 3× Caddy req/s", ratio("1", "portico", "caddy"), 3),
    checkAtLeast("new TLS handshakes: ≥ 0.5× nginx", ratio("4", "portico", "nginx"), 0.5),
  ];
  const rebuild = get("5")?.extra?.rebuild as { warmMedianMs: number; coldMs: number } | undefined;
  if (rebuild) {
    checks9.push(
      checkAtMost(
        "rebuild 10,000 routers < 300 ms (median of warm runs)",
        rebuild.warmMedianMs,
        300,
        0,
      ),
      checkAtMost("rebuild 10,000 routers < 300 ms (first, cold)", rebuild.coldMs, 300, 0),
    );
  }
  // Issue 19: Portico's TCP relay against both TCP peers, the lower ratio decides.
  const tcpCheck = (id: string, what: string, unit: string): TargetCheck | undefined => {
    const h = ratio(id, "portico", "haproxy"), n = ratio(id, "portico", "nginx");
    const measured = [h, n].filter((x): x is number => x !== undefined);
    const check = checkAtLeast(
      `${what}: ≥ 0.7× HAProxy and nginx ${unit}`,
      Math.min(...measured),
      0.7,
    );
    const f = (x?: number) => (x === undefined ? "-" : `${x.toFixed(2)}×`);
    return check && { ...check, value: `${f(h)} HAProxy, ${f(n)} nginx` };
  };
  const checks19: (TargetCheck | undefined)[] = [
    tcpCheck("tcp echo", "tcp 100 KB echo", "msg/s"),
    tcpCheck("tcp connect", "tcp connection rate", "conn/s"),
  ];
  const tag = (issue: number) => (c: TargetCheck | undefined): TargetCheck[] =>
    c ? [{ ...c, issue }] : [];
  return [
    ...checks15.flatMap(tag(15)),
    ...checks9.flatMap(tag(9)),
    ...checks19.flatMap(tag(19)),
  ];
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
        case "1b":
          results.push(await scenario1b(ctx, opts));
          break;
        case "w":
          if (wantPortico) results.push(await scenarioWorkers(ctx, opts));
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
        case "otel":
          if (wantPortico) results.push(await scenarioOtel(ctx, opts));
          break;
        case "tcp":
          results.push(...await scenarioTcp(ctx, opts));
          break;
        case "mem":
          if (wantPortico) memory = await memoryCheck(ctx, opts);
          break;
      }
    }

    const checks = targetChecks(results, memory);
    for (const issue of [15, 9, 19]) {
      const mine = checks.filter((c) => c.issue === issue);
      if (!mine.length) continue;
      console.log(`\n== issue ${issue} targets (this run)`);
      for (const c of mine) {
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
        tcp: `C echo backend (scripts/bench/tcp_echo.c) and tcp_load -c${opts.connections} ` +
          "(scripts/bench/tcp_load.c) on the load core: 100 KB echo; connect + 64 B echo + close",
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

/**
 * `rateLimit.redis` against the in-memory limiter, in one run: Portico
 * with three routes to one nginx backend (no middleware, `rateLimit`, and
 * `rateLimit` with `redis`), each loaded in turn by `wrk -t1 -c50
 * --latency`, rounds interleaved, median round reported. The limit is set
 * far above what the machine can send, so every request is served and the
 * figures are the cost of asking the limiter, not of refusing.
 *
 * Also counted, from Redis's `INFO commandstats`: the `EVALSHA`/`EVAL` calls
 * per request on the Redis route, which is the "one round trip per
 * request" budget (1.00 means one script call per request, nothing else).
 *
 * Placement on a 2-core machine: Portico on core 0; wrk, nginx and
 * redis-server on core 1 (in production Redis is on another host).
 *
 * ```sh
 * deno run -A scripts/bench/ratelimit_redis.ts                 # 3 rounds of 5 s
 * deno run -A scripts/bench/ratelimit_redis.ts --rounds 5 --duration 10 --connections 100
 * deno run -A scripts/bench/ratelimit_redis.ts --poolSize 2    # rateLimit.redis.poolSize
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";

const args = parseArgs({
  options: {
    rounds: { type: "string", default: "3" },
    duration: { type: "string", default: "5" },
    connections: { type: "string", default: "50" },
    poolSize: { type: "string", default: "0" },
  },
});
const rounds = Number(args.values.rounds);
const durationSec = Number(args.values.duration);
const connections = Number(args.values.connections);
const poolSize = Number(args.values.poolSize);

const repoRoot = new URL("../../", import.meta.url).pathname;
const cores = navigator.hardwareConcurrency;
const proxyCpu = "0";
const loadCpu = cores > 1 ? "1" : "0";

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function requireBinary(name: string): Promise<void> {
  const r = await new Deno.Command("sh", { args: ["-c", `command -v ${name}`], stdout: "null" })
    .output();
  const pkg: Record<string, string> = {
    "redis-server": "redis-server",
    "redis-cli": "redis-tools",
    taskset: "util-linux",
  };
  if (!r.success) {
    throw new Error(`${name} is not installed (apt-get install -y ${pkg[name] ?? name})`);
  }
}

function spawn(cmd: string[], cpu: string, logFile: string): Deno.ChildProcess {
  const child = new Deno.Command("taskset", {
    args: ["-c", cpu, ...cmd],
    cwd: repoRoot,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  // Kept for the error message when something does not start.
  void Deno.open(logFile, { write: true, create: true, truncate: true })
    .then((file) => child.stderr.pipeTo(file.writable))
    .catch(() => {});
  return child;
}

async function waitHttp(url: string, what: string, logFile: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url);
      await res.body?.cancel();
      if (res.status === 200) return;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not answer 200 at ${url}; see ${logFile}`);
}

async function waitPort(port: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`nothing listens on ${port}`);
}

/** Utime + stime of a process, in seconds. */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** The calls of `command` Redis has counted, from INFO commandstats. */
async function redisCalls(port: number, command: string): Promise<number> {
  const out = await new Deno.Command("redis-cli", {
    args: ["-p", String(port), "INFO", "commandstats"],
    stdout: "piped",
  }).output();
  const m = new RegExp(`^cmdstat_${command}:calls=(\\d+)`, "m").exec(
    new TextDecoder().decode(out.stdout),
  );
  return m ? Number(m[1]) : 0;
}

interface Round {
  rps: number;
  p50: number;
  p99: number;
  requests: number;
  non2xx: number;
  cpuUsPerRequest: number;
  scriptCallsPerRequest?: number;
}

function ms(text: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(text.trim());
  if (!m) throw new Error(`wrk: cannot read ${text}`);
  return Number(m[1]) * ({ us: 0.001, ms: 1, s: 1000 } as Record<string, number>)[m[2]];
}

async function wrk(url: string, porticoPid: number, redisPort: number): Promise<Round> {
  const cpuBefore = await cpuSeconds(porticoPid);
  const scriptsBefore = (await redisCalls(redisPort, "evalsha")) +
    (await redisCalls(redisPort, "eval"));
  const out = await new Deno.Command("taskset", {
    args: ["-c", loadCpu, "wrk", "-t1", `-c${connections}`, `-d${durationSec}s`, "--latency", url],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const cpu = (await cpuSeconds(porticoPid)) - cpuBefore;
  const scripts = (await redisCalls(redisPort, "evalsha")) + (await redisCalls(redisPort, "eval")) -
    scriptsBefore;
  const rps = /^Requests\/sec:\s+([\d.]+)/m.exec(text);
  const total = /^\s+(\d+) requests in /m.exec(text);
  const p50 = /^\s+50%\s+(\S+)/m.exec(text);
  const p99 = /^\s+99%\s+(\S+)/m.exec(text);
  if (!rps || !total || !p50 || !p99) {
    throw new Error(`wrk: unexpected output:\n${text}\n${new TextDecoder().decode(out.stderr)}`);
  }
  const requests = Number(total[1]);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(text)?.[1] ?? 0);
  return {
    rps: Number(rps[1]),
    p50: ms(p50[1]),
    p99: ms(p99[1]),
    requests,
    non2xx,
    cpuUsPerRequest: (cpu * 1e6) / requests,
    scriptCallsPerRequest: scripts / requests,
  };
}

function median(rs: Round[]): Round {
  return [...rs].sort((a, b) => a.rps - b.rps)[Math.floor(rs.length / 2)];
}

async function main(): Promise<void> {
  for (const b of ["wrk", "nginx", "redis-server", "redis-cli", "taskset"]) await requireBinary(b);
  const dir = await Deno.makeTempDir({ prefix: "portico-bench-rl-" });
  const ports = { web: freePort(), backend: freePort(), redis: freePort() };
  const children: Deno.ChildProcess[] = [];
  try {
    await Deno.writeTextFile(
      `${dir}/nginx.conf`,
      `daemon off;\nworker_processes 1;\npid ${dir}/nginx.pid;\nerror_log ${dir}/nginx_error.log;\nevents { worker_connections 4096; }\n` +
        `http { access_log off; server { listen 127.0.0.1:${ports.backend}; keepalive_requests 1000000; location / { return 200 "ok\\n"; } } }\n`,
    );
    children.push(
      spawn(
        ["nginx", "-p", dir, "-e", `${dir}/nginx_error.log`, "-c", `${dir}/nginx.conf`],
        loadCpu,
        `${dir}/nginx.log`,
      ),
    );
    children.push(
      spawn(
        [
          "redis-server",
          "--port",
          String(ports.redis),
          "--bind",
          "127.0.0.1",
          "--save",
          "",
          "--appendonly",
          "no",
          "--dir",
          dir,
        ],
        loadCpu,
        `${dir}/redis.log`,
      ),
    );
    await waitPort(ports.backend);
    await waitPort(ports.redis);

    const limit = `average = 100000000\nburst = 100000000`;
    const dynamic =
      `[http.services.b.loadBalancer]\nservers = [{ url = "http://127.0.0.1:${ports.backend}" }]\n` +
      [
        ["plain", ""],
        ["memory", `[http.middlewares.memory.rateLimit]\n${limit}\n`],
        [
          "redis",
          `[http.middlewares.redis.rateLimit]\n${limit}\n[http.middlewares.redis.rateLimit.redis]\nendpoints = ["127.0.0.1:${ports.redis}"]\npoolSize = ${poolSize}\n`,
        ],
      ].map(([name, mw]) =>
        `[http.routers.${name}]\nrule = "PathPrefix(\`/${name}/\`)"\nservice = "b"\n${
          mw ? `middlewares = ["${name}"]\n` : ""
        }${mw}`
      ).join("");
    await Deno.writeTextFile(`${dir}/dynamic.toml`, dynamic);
    await Deno.writeTextFile(
      `${dir}/portico.toml`,
      `[entryPoints.web]\naddress = "127.0.0.1:${ports.web}"\n[providers.file]\nfilename = "${dir}/dynamic.toml"\n[log]\nlevel = "ERROR"\n`,
    );
    const portico = spawn(
      ["deno", "run", "-A", "mod.ts", `--configFile=${dir}/portico.toml`],
      proxyCpu,
      `${dir}/portico.log`,
    );
    children.push(portico);
    const base = `http://127.0.0.1:${ports.web}`;
    for (const name of ["plain", "memory", "redis"]) {
      await waitHttp(`${base}/${name}/`, `Portico /${name}/`, `${dir}/portico.log`);
    }

    const scenarios = ["plain", "memory", "redis"] as const;
    const results: Record<string, Round[]> = { plain: [], memory: [], redis: [] };
    // Warm-up: JIT, pools, Redis's script cache.
    for (const s of scenarios) await wrk(`${base}/${s}/`, portico.pid, ports.redis);
    for (let r = 0; r < rounds; r++) {
      for (const s of scenarios) {
        results[s].push(await wrk(`${base}/${s}/`, portico.pid, ports.redis));
      }
    }

    const redisVersion = new TextDecoder().decode(
      (await new Deno.Command("redis-server", { args: ["--version"], stdout: "piped" }).output())
        .stdout,
    ).trim();
    console.log(
      `rateLimit.redis vs in-memory rateLimit: ${rounds} rounds of wrk -t1 -c${connections} -d${durationSec}s, median round`,
    );
    console.log(
      `Portico on core ${proxyCpu}; wrk, nginx backend and ${
        redisVersion.split(" ").slice(0, 3).join(" ")
      } on core ${loadCpu}; poolSize ${poolSize || "default (1)"}`,
    );
    console.log("");
    console.log(
      "| route | req/s | p50 ms | p99 ms | Portico CPU µs/req | script calls/req | non-2xx |",
    );
    console.log("|---|---|---|---|---|---|---|");
    const m = Object.fromEntries(scenarios.map((s) => [s, median(results[s])])) as Record<
      (typeof scenarios)[number],
      Round
    >;
    for (const s of scenarios) {
      const x = m[s];
      const calls = s === "redis" ? x.scriptCallsPerRequest!.toFixed(3) : "–";
      console.log(
        `| ${
          s === "plain"
            ? "no middleware"
            : s === "memory"
            ? "rateLimit (in memory)"
            : "rateLimit.redis"
        } | ${x.rps.toFixed(0)} | ${x.p50.toFixed(2)} | ${x.p99.toFixed(2)} | ${
          x.cpuUsPerRequest.toFixed(1)
        } | ${calls} | ${x.non2xx} |`,
      );
    }
    console.log("");
    console.log(
      `ratio rateLimit.redis / in-memory rateLimit: req/s ${
        (m.redis.rps / m.memory.rps).toFixed(2)
      }×, CPU per request ${(m.redis.cpuUsPerRequest / m.memory.cpuUsPerRequest).toFixed(2)}×`,
    );
    console.log(
      `ratio in-memory rateLimit / no middleware: req/s ${
        (m.memory.rps / m.plain.rps).toFixed(2)
      }×`,
    );
    const json = { rounds, durationSec, connections, poolSize, medians: m, all: results };
    await Deno.writeTextFile(`${dir}/results.json`, JSON.stringify(json, null, 2));
    console.log(`all rounds: ${dir}/results.json`);
    if (m.redis.non2xx > 0 || m.memory.non2xx > 0) {
      throw new Error("some requests were not 2xx: the limit should never refuse here");
    }
  } finally {
    for (const c of children.reverse()) {
      try {
        c.kill("SIGTERM");
      } catch {
        // already gone
      }
      await c.status;
    }
  }
}

await main();

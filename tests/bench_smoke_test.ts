/**
 * Smoke test for the benchmark harness (scripts/bench.ts): every generated
 * proxy config passes that proxy's own checker, and the pure parts (wrk
 * parsing, median round, ratios, profile summary) compute the right thing.
 * No load is generated. Peers that are not installed are skipped.
 *
 * @module
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { dirname } from "node:path";
import {
  middlewarePath,
  NGINX_STREAM_MODULE,
  nginxProxyConf,
  porticoDynamic,
  porticoStatic,
  type ProxyName,
  type RoutePreset,
  routerHost,
  SCENARIO_1B,
  targetHost,
  TCP_PROXIES,
} from "../scripts/bench/configs.ts";
import { prepareFiles } from "../scripts/bench/files.ts";
import { run, statCpuTicks } from "../scripts/bench/procs.ts";
import { type Measurement, medianOf, medianRound, ratios } from "../scripts/bench/report.ts";
import {
  floorCommand,
  proxyCommand,
  writeProxyConfig,
  writeTcpProxyConfig,
} from "../scripts/bench/servers.ts";
import { compareProfiles } from "../scripts/bench/profile_compare.ts";
import { profileRecord } from "../scripts/bench/profile_summary.ts";
import { parseWrkDuration, parseWrkOutput, type WrkResult } from "../scripts/bench/wrk.ts";
import { summarise } from "../scripts/bench/profile_summary.ts";
import { backendNginxConf } from "../scripts/bench/configs.ts";

const REPO = dirname(dirname(fileURLToPath(import.meta.url)));

async function installed(binary: string): Promise<boolean> {
  return (await run(["bash", "-c", `command -v ${binary}`])).code === 0;
}

/** The checker command for each proxy, given its generated config. */
function checker(proxy: ProxyName, config: string, dir: string): string[] {
  switch (proxy) {
    case "nginx":
      return ["nginx", "-t", "-p", dir, "-e", `${dir}/check.log`, "-c", config];
    case "haproxy":
      return ["haproxy", "-c", "-f", config];
    case "caddy":
      return ["caddy", "validate", "--config", config];
    case "portico":
      return ["deno", "run", "-A", "mod.ts", "check", `--configFile=${config}`];
  }
}

const VARIANTS: { proxy: ProxyName; routers: number; middlewares: number; preset?: RoutePreset }[] =
  [
    { proxy: "nginx", routers: 1, middlewares: 0 },
    { proxy: "nginx", routers: 1, middlewares: 0, preset: "1b" },
    { proxy: "portico", routers: 1, middlewares: 0, preset: "1b" },
    { proxy: "haproxy", routers: 1, middlewares: 0 },
    { proxy: "caddy", routers: 1, middlewares: 0 },
    { proxy: "portico", routers: 1, middlewares: 0 },
    { proxy: "portico", routers: 10_000, middlewares: 0 },
    { proxy: "portico", routers: 1, middlewares: 50 },
  ];

Deno.test("bench: every generated proxy config passes the proxy's own checker", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "bench-smoke-" });
  try {
    const files = await prepareFiles(dir);
    const ctx = {
      ports: { backend: 18081, http: 18082, https: 18443 },
      files,
      runAsRoot: Deno.uid() === 0,
    };
    await t.step("backend nginx", async () => {
      if (!(await installed("nginx"))) return;
      const conf = `${dir}/backend.conf`;
      await Deno.writeTextFile(conf, backendNginxConf(ctx.ports, files, ctx));
      const out = await run(checker("nginx", conf, dir));
      assert.equal(out.code, 0, out.stderr);
    });
    for (const v of VARIANTS) {
      const name = `${v.proxy} (${v.routers} routers, ${v.middlewares} middlewares${
        v.preset ? `, scenario ${v.preset}` : ""
      })`;
      await t.step(name, async () => {
        const binary = v.proxy === "portico" ? "deno" : v.proxy;
        if (!(await installed(binary))) return;
        const config = await writeProxyConfig(ctx, v.proxy, v);
        // The command the harness runs names this same config file.
        assert.ok(
          proxyCommand(ctx, v.proxy, config).includes(config) ||
            proxyCommand(ctx, v.proxy, config).includes(`--configFile=${config}`),
        );
        const out = await run(checker(v.proxy, config, dir), {
          cwd: REPO,
          env: { HOME: dir, XDG_DATA_HOME: dir },
        });
        assert.equal(out.code, 0, `${v.proxy} rejected its config:\n${out.stdout}\n${out.stderr}`);
      });
    }
    // Scenario tcp (issue 19): Portico's TCP router, HAProxy mode tcp, nginx stream.
    for (const proxy of TCP_PROXIES) {
      await t.step(`${proxy} TCP relay (scenario tcp)`, async () => {
        if (!(await installed(proxy === "portico" ? "deno" : proxy))) return;
        if (proxy === "nginx" && !(await Deno.stat(NGINX_STREAM_MODULE).catch(() => null))) return;
        const config = await writeTcpProxyConfig(ctx, proxy);
        const command = proxyCommand(ctx, proxy, config);
        assert.ok(command.includes(config) || command.includes(`--configFile=${config}`));
        const text = await Deno.readTextFile(config);
        if (proxy === "portico") {
          const dynamic = await Deno.readTextFile(text.match(/filename = "([^"]+)"/)![1]);
          // The entrypoint's only router is HostSNI(`*`): Portico routes at accept.
          assert.equal((dynamic.match(/^\[tcp\.routers\./gm) ?? []).length, 1);
          assert.ok(dynamic.includes('rule = "HostSNI(`*`)"'));
          assert.ok(!dynamic.includes("[http."));
          assert.ok(dynamic.includes(`address = "127.0.0.1:${ctx.ports.backend}"`));
        } else if (proxy === "haproxy") {
          assert.match(text, /^\s*mode tcp$/m);
        } else {
          assert.match(text, /^stream \{/m);
          assert.ok(text.includes(`proxy_pass 127.0.0.1:${ctx.ports.backend};`));
        }
        const out = await run(checker(proxy, config, dir), { cwd: REPO, env: { HOME: dir } });
        assert.equal(
          out.code,
          0,
          `${proxy} rejected its TCP config:\n${out.stdout}\n${out.stderr}`,
        );
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bench: a config the checker must reject is rejected (the check can fail)", async () => {
  if (!(await installed("haproxy"))) return;
  const dir = await Deno.makeTempDir({ prefix: "bench-smoke-" });
  try {
    await Deno.writeTextFile(
      `${dir}/bad.cfg`,
      "frontend f\n  bind 127.0.0.1:1\n  no_such_keyword on\n",
    );
    const out = await run(checker("haproxy", `${dir}/bad.cfg`, dir));
    assert.notEqual(out.code, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const WRK_OUTPUT = `Running 5s test @ http://127.0.0.1:8080/
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.85ms    2.10ms  40.12ms   93.10%
    Req/Sec    28.31k     1.20k   30.01k    80.00%
  Latency Distribution
     50%    1.61ms
     75%    1.90ms
     90%    2.50ms
     99%    5.50ms
  140870 requests in 5.00s, 20.15MB read
  Socket errors: connect 0, read 3, write 1, timeout 2
  Non-2xx or 3xx responses: 7
Requests/sec:  28174.03
Transfer/sec:      4.03MB
`;

Deno.test("bench: wrk output is parsed into req/s, p50, p99 and error counts", () => {
  const r = parseWrkOutput(WRK_OUTPUT);
  assert.deepEqual(r, {
    requestsPerSec: 28174.03,
    p50Ms: 1.61,
    p99Ms: 5.5,
    requests: 140870,
    socketErrors: 6,
    non2xx: 7,
  });
  assert.throws(() => parseWrkOutput(WRK_OUTPUT.replace(/ {5}99%.*\n/, "")), /--latency/);
});

Deno.test("bench: wrk durations convert to milliseconds", () => {
  const table: [string, number][] = [["812.00us", 0.812], ["1.61ms", 1.61], ["2.00s", 2000], [
    "1.50m",
    90_000,
  ]];
  for (const [text, ms] of table) assert.ok(Math.abs(parseWrkDuration(text) - ms) < 1e-9, text);
  assert.throws(() => parseWrkDuration("12 parsecs"));
});

function result(rps: number, p99 = 1): WrkResult {
  return { requestsPerSec: rps, p50Ms: 1, p99Ms: p99, requests: rps, socketErrors: 0, non2xx: 0 };
}

Deno.test("bench: the median round is the middle one by req/s", () => {
  const table: [number[], number][] = [[[5], 5], [[3, 9, 1], 3], [[10, 40, 20, 30], 20], [[
    7,
    7,
    2,
    9,
    8,
  ], 7]];
  for (const [rps, expected] of table) {
    assert.equal(medianRound(rps.map((x) => result(x))).requestsPerSec, expected);
  }
  assert.throws(() => medianRound([]));
});

Deno.test("bench: ratios divide Portico's req/s by each measured peer's", () => {
  const row = (label: string, rps?: number): Measurement => ({
    label,
    proxy: label.split(" ")[0],
    status: rps ? "ok" : "failed",
    rounds: rps ? [result(rps)] : [],
    median: rps ? result(rps) : undefined,
  });
  const r = ratios([
    row("backend (direct)", 50_000),
    row("portico", 6000),
    row("nginx", 24_000),
    row("caddy", 2000),
    row("haproxy"),
  ]);
  assert.deepEqual(r, { nginx: 0.25, caddy: 3 });
  assert.deepEqual(ratios([row("portico"), row("nginx", 1)]), {});
});

Deno.test("bench: the middleware path gives each stripPrefix a segment to strip", () => {
  assert.equal(middlewarePath(0), "/");
  assert.equal(middlewarePath(4), "/s1/s3/");
  const toml = porticoDynamic({ backendPort: 9, routers: 1, middlewares: 4 });
  for (const prefix of middlewarePath(4).split("/").filter(Boolean)) {
    assert.ok(toml.includes(`prefixes = ["/${prefix}"]`), prefix);
  }
  assert.equal((toml.match(/\.headers\.customRequestHeaders\]/g) ?? []).length, 2);
});

Deno.test("bench: N routers get N distinct hosts and the target is one of them", () => {
  for (const n of [1, 10, 10_000]) {
    const toml = porticoDynamic({ backendPort: 9, routers: n, middlewares: 0 });
    assert.equal((toml.match(/^\[http\.routers\./gm) ?? []).length, n);
    assert.ok(toml.includes(`Host(\`${targetHost(n)}\`)`));
    assert.equal(new Set(Array.from({ length: n }, (_, i) => routerHost(i, n))).size, n);
  }
});

Deno.test("bench: profile summary splits self and inclusive time", () => {
  const frame = (functionName: string, lineNumber = 0) => ({
    functionName,
    url: "file:///r/lib/proxy/forward.ts",
    lineNumber,
    columnNumber: 0,
  });
  // root → a → b. V8 stamps each sample with the delta since the previous
  // one, so sample i lasted timeDeltas[i + 1]: b 3 × 10 µs, a 10 µs, the last 0.
  const profile = {
    nodes: [
      { id: 1, callFrame: { ...frame("(root)"), url: "" }, children: [2] },
      { id: 2, callFrame: frame("a", 9), children: [3] },
      { id: 3, callFrame: frame("b", 19) },
    ],
    samples: [3, 3, 2, 3, 3],
    timeDeltas: [0, 10, 10, 10, 10],
    startTime: 0,
    endTime: 40,
  };
  const s = summarise(profile);
  assert.equal(s.totalMs, 0.04);
  const a = s.functions.find((f) => f.key === "a lib/proxy/forward.ts:10")!;
  const b = s.functions.find((f) => f.key === "b lib/proxy/forward.ts:20")!;
  assert.equal(b.selfPct, 75);
  assert.equal(a.selfPct, 25);
  assert.equal(a.totalPct, 100);
  assert.equal(s.functions[0], b);
});

/** A free port on 127.0.0.1. */
function freeLocalPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Sends raw bytes on one connection and reads until `responses` complete responses arrived. */
async function rawExchange(port: number, request: string, until: (text: string) => boolean) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(new TextEncoder().encode(request));
    const buf = new Uint8Array(256 * 1024);
    let text = "";
    const deadline = Date.now() + 5000;
    while (!until(text) && Date.now() < deadline) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    return text;
  } finally {
    conn.close();
  }
}

Deno.test("bench: the JS engine floor proxies small, 100 KB, chunked and posted bodies", async () => {
  const big = "x".repeat(100 * 1024);
  const backend = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const path = new URL(req.url).pathname;
    if (req.method === "POST") {
      return new Response(`${path} ${await req.text()} ${req.headers.get("x-forwarded-for")}`);
    }
    if (path === "/big") return new Response(big);
    if (path === "/chunked") {
      const parts = [big.slice(0, 1000), big.slice(1000, 60_000), big.slice(60_000)];
      return new Response(
        new ReadableStream({
          pull(c) {
            const p = parts.shift();
            if (p === undefined) c.close();
            else c.enqueue(new TextEncoder().encode(p));
          },
        }),
      );
    }
    return new Response("hello world\n");
  });
  const port = freeLocalPort();
  const floor = new Deno.Command("deno", {
    args: ["run", "-A", "scripts/bench/engine_floor.ts", String(port), String(backend.addr.port)],
    cwd: REPO,
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  try {
    const url = `http://127.0.0.1:${port}`;
    let up = false;
    for (let i = 0; i < 100 && !up; i++) {
      try {
        (await Deno.connect({ hostname: "127.0.0.1", port })).close();
        up = true;
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    // fetch keeps its connection alive, so several exchanges share one client and upstream socket.
    for (let i = 0; i < 3; i++) {
      assert.equal(await (await fetch(`${url}/`)).text(), "hello world\n");
      const b = await fetch(`${url}/big`);
      assert.equal(b.headers.get("content-length"), String(big.length));
      assert.equal(await b.text(), big);
      const c = await fetch(`${url}/chunked`);
      assert.equal(c.headers.get("transfer-encoding"), "chunked");
      assert.equal(await c.text(), big);
    }
    assert.equal(
      await (await fetch(`${url}/p`, { method: "POST", body: "abc" })).text(),
      "/p abc 127.0.0.1",
    );
    const stream = new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode("chunk"));
        c.close();
      },
    });
    assert.equal(
      await (await fetch(`${url}/s`, { method: "POST", body: stream })).text(),
      "/s chunk 127.0.0.1",
    );
    // Pipelined requests are answered in order; HEAD gets a head without its body.
    const text = await rawExchange(
      port,
      "GET / HTTP/1.1\r\nHost: a\r\n\r\nHEAD /big HTTP/1.1\r\nHost: a\r\n\r\n" +
        "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
      (t) => (t.match(/HTTP\/1\.1 200/g) ?? []).length === 3 && t.endsWith("hello world\n"),
    );
    assert.equal((text.match(/HTTP\/1\.1 200/g) ?? []).length, 3, text);
    assert.equal((text.match(/hello world\n/g) ?? []).length, 2, text);
    assert.ok(!text.includes("xxxx"), "HEAD must not carry a body");
    assert.match(text, /Connection: close\r\n/i);
  } finally {
    floor.kill("SIGKILL");
    await floor.status;
    await backend.shutdown();
  }
});

Deno.test("bench: CPU ticks are read from /proc/PID/stat fields 14-17, past a comm with spaces", () => {
  // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime …
  const stat = "4242 (tokio (rt) w) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 7 3 20 0 9 0";
  assert.equal(statCpuTicks(stat), 310);
  const own = Deno.readTextFileSync("/proc/self/stat");
  assert.ok(Number.isFinite(statCpuTicks(own)) && statCpuTicks(own) >= 0);
});

Deno.test("bench: p99 and CPU ratios, and the median of per-round CPU", () => {
  const row = (label: string, rps: number, p99: number, cpu?: number): Measurement => ({
    label,
    proxy: label.split(" ")[0],
    status: "ok",
    rounds: [result(rps, p99)],
    median: result(rps, p99),
    cpuUsPerRequest: cpu,
  });
  const rows = [row("portico", 30, 6, 40), row("nginx", 60, 2, 20), row("engine floor", 50, 3)];
  assert.deepEqual(ratios(rows, "portico", "p99"), { nginx: 3, "engine floor": 2 });
  // A peer without a CPU figure is left out rather than divided by.
  assert.deepEqual(ratios(rows, "portico", "cpu"), { nginx: 2 });
  assert.equal(medianOf([30, 10, 20]), 20);
});

Deno.test("bench: [server] workers only when asked, and Portico runs with --unstable-net", () => {
  const ports = { backend: 1, http: 2, https: 3 };
  assert.ok(!porticoStatic(ports, { dynamicFile: "/d.toml" }).includes("[server]"));
  assert.match(
    porticoStatic(ports, { dynamicFile: "/d.toml", workers: 2 }),
    /\[server\]\nworkers = 2\n/,
  );
  assert.match(
    porticoStatic(ports, { dynamicFile: "/d.toml", workers: "auto" }),
    /workers = "auto"/,
  );
  const files = { dir: "/x" } as Parameters<typeof proxyCommand>[0]["files"];
  assert.ok(proxyCommand({ files }, "portico", "/c.toml").includes("--unstable-net"));
  assert.deepEqual(floorCommand("engine floor", ports).slice(-3), [
    "scripts/bench/engine_floor.ts",
    "2",
    "1",
  ]);
});

Deno.test("bench: scenario 1b's route and nginx's equivalent carry the same edits", () => {
  const toml = porticoDynamic({ backendPort: 9, routers: 1, middlewares: 0, preset: "1b" });
  assert.match(toml, /middlewares = \["b1b-headers", "b1b-strip", "b1b-ratelimit"\]/);
  assert.ok(toml.includes(`prefixes = ["${SCENARIO_1B.prefix}"]`));
  assert.ok(toml.includes(`average = ${SCENARIO_1B.average}`));
  const ports = { backend: 1, http: 2, https: 3 };
  const files = { dir: "/x", wwwDir: "/x", certFile: "/c", keyFile: "/k", pemFile: "/p" };
  const conf = nginxProxyConf(ports, files, { runAsRoot: false, preset: "1b" });
  assert.ok(conf.includes(`location ${SCENARIO_1B.prefix}/`));
  assert.ok(conf.includes(`add_header ${SCENARIO_1B.responseHeader}`));
  assert.ok(conf.includes("limit_req zone=bench"));
  assert.ok(!nginxProxyConf(ports, files, { runAsRoot: false }).includes("limit_req"));
});

Deno.test("bench: a saved profile summary compares before and after as Markdown", () => {
  const frame = (functionName: string, url: string) => ({
    functionName,
    url,
    lineNumber: 0,
    columnNumber: 0,
  });
  const profile = {
    nodes: [
      { id: 1, callFrame: frame("(root)", ""), children: [2] },
      { id: 2, callFrame: frame("route", "file:///r/lib/router/x.ts") },
    ],
    samples: [2, 2, 2],
    timeDeltas: [0, 10, 10],
    startTime: 0,
    endTime: 20,
  };
  const meta = (commit: string) => ({
    date: "d",
    commit,
    command: "c",
    profile: "p",
    middlewares: 0,
    wrk: result(1000, 2),
  });
  const before = profileRecord(summarise(profile), meta("aaa"));
  const after = profileRecord(summarise(profile), meta("bbb"));
  assert.equal(before.functions[0].key, "route lib/router/x.ts:1");
  assert.equal(before.functions[0].selfPctOfBusy, 100);
  const md = compareProfiles(before, after);
  assert.match(md, /before \(aaa\) \| after \(bbb\)/);
  assert.match(md, /\| `route lib\/router\/x\.ts:1` \| 100\.0 % \| 100\.0 % \|/);
});

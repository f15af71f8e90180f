/**
 * Process lifecycle of `deno run -A mod.ts`, as a separate process:
 *
 * - SIGTERM and SIGINT: `/ping` answers 503 while new requests are still
 *   accepted for `lifeCycle.requestAcceptGraceTimeout` (as in Traefik), then
 *   the listeners close, a request in flight finishes with 200 within
 *   `graceTimeOut`, and the process exits 0.
 * - A request outliving `graceTimeOut` is cut and the process still exits 0.
 * - In a three-node cluster under load, SIGTERM to the manager: no request
 *   in flight on it fails, it exits 0, and another node becomes manager.
 * - Startup failures (port in use, unreadable file, bad config) print one
 *   `portico:` line, no stack trace, and exit 1.
 */

import assert from "node:assert/strict";
import { startEchoBackend } from "./fixtures/backend.ts";
import { rawGet } from "./fixtures/http_client.ts";
import { type ProxyProcess, startProxyProcess } from "./fixtures/proxy_process.ts";
import { startEtcd } from "./fixtures/etcd.ts";
import { freePort } from "./fixtures/ports.ts";
import { entryPointLifeCycle } from "../lib/server/server.ts";
import type { EntryPointConfig, StaticConfig } from "../lib/config/types.ts";

const repoRoot = new URL("../", import.meta.url).pathname;

const slowRoute = (backendUrl: string) =>
  `[http.routers.app]\nrule = "Host(\`app.test\`)"\nservice = "app"\nentryPoints = ["web"]\n` +
  `[http.services.app.loadBalancer]\nservers = [{ url = "${backendUrl}" }]\n`;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** True when a TCP connect to the port is refused (the listener is closed). */
async function refused(port: number): Promise<boolean> {
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.close();
    return false;
  } catch {
    return true;
  }
}

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.test(`lifecycle: ${signal} drains: ping 503, still accepting during requestAcceptGraceTimeout, in-flight request finishes, exit 0`, async () => {
    const backend = startEchoBackend("slow");
    const proxy = await startProxyProcess(
      slowRoute(backend.url),
      `[lifeCycle]\nrequestAcceptGraceTimeout = "1s"\ngraceTimeOut = "5s"\n`,
    );
    try {
      assert.equal((await rawGet(proxy.apiPort, "/ping")).status, 200);
      // Started before the signal; outlives requestAcceptGraceTimeout.
      const inFlight = rawGet(proxy.port, "/slow/2000", { host: "app.test" });
      await sleep(200);
      const signalledAt = performance.now();
      proxy.signal(signal);
      await sleep(150);

      const ping = await rawGet(proxy.apiPort, "/ping");
      assert.equal(ping.status, 503, "ping turns 503 while draining");
      const fresh = await rawGet(proxy.port, "/fresh", { host: "app.test" });
      assert.equal(
        fresh.status,
        200,
        "new requests are still served during requestAcceptGraceTimeout",
      );
      assert.equal(
        performance.now() - signalledAt < 1000,
        true,
        "checks ran inside the accept grace window",
      );

      // After the accept grace period the listener closes while the slow
      // request is still running.
      let closedAt: number | undefined;
      while (performance.now() - signalledAt < 1700) {
        if (await refused(proxy.port)) {
          closedAt = performance.now() - signalledAt;
          break;
        }
        await sleep(25);
      }
      assert.ok(closedAt !== undefined, "listener still accepting 1.7 s after the signal");
      assert.ok(
        closedAt >= 900,
        `listener closed at ${closedAt.toFixed(0)} ms, before requestAcceptGraceTimeout`,
      );

      const done = await inFlight;
      assert.equal(done.status, 200, "the in-flight request completes");
      assert.equal(JSON.parse(done.body).path, "/slow/2000");
      assert.equal(await proxy.wait(), 0);
      assert.match(proxy.output(), /shutting down/);
    } finally {
      await proxy.stop();
      await backend.close();
    }
  });
}

Deno.test("lifecycle: SIGTERM to a cluster manager under load: no in-flight request fails, a new manager is elected", async () => {
  const etcd = await startEtcd();
  const backend = startEchoBackend("cluster-backend");
  const dataRoot = await Deno.makeTempDir({ prefix: "portico-cluster-life-" });
  const clusterPorts = [freePort(), freePort(), freePort()];
  const nodes: ProxyProcess[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      const peers = clusterPorts.filter((_, j) => j !== i).map((p) => `"127.0.0.1:${p}"`).join(
        ", ",
      );
      nodes.push(
        await startProxyProcess(
          slowRoute(backend.url),
          `[providers.etcd]\nendpoints = ["${etcd.endpoint}"]\n` +
            `[lifeCycle]\nrequestAcceptGraceTimeout = "500ms"\ngraceTimeOut = "5s"\n` +
            `[cluster]\nnodeId = "n${i}"\naddress = "127.0.0.1:${
              clusterPorts[i]
            }"\npeers = [${peers}]\n` +
            `dataDir = "${dataRoot}/n${i}"\nsecret = "lifecycle-test-secret-0123456789abcdef"\n`,
        ),
      );
    }
    const managers = async (among: ProxyProcess[]) => {
      const found: ProxyProcess[] = [];
      for (const n of among) {
        const r = await rawGet(n.apiPort, "/api/cluster/leader").catch(() => undefined);
        if (r?.status === 200) found.push(n);
      }
      return found;
    };
    let manager: ProxyProcess | undefined;
    for (let i = 0; i < 100 && !manager; i++) {
      [manager] = await managers(nodes);
      if (!manager) await sleep(100);
    }
    assert.ok(manager, "no manager elected within 10 s");
    const others = nodes.filter((n) => n !== manager);

    // Load on the manager: each worker keeps one request going until the signal.
    let signalled = false;
    const results: { status: number | "failed"; path: string }[] = [];
    const worker = async (id: number) => {
      for (let k = 0; !signalled; k++) {
        const path = `/slow/${k % 2 ? 400 : 1200}?w=${id}&k=${k}`;
        const status = await rawGet(manager!.port, path, { host: "app.test" }).then(
          (r) => r.status,
          () => "failed" as const,
        );
        results.push({ status, path });
      }
    };
    const workers = [0, 1, 2, 3, 4, 5].map(worker);
    await sleep(1500);
    signalled = true;
    manager.signal("SIGTERM");
    const signalledAt = performance.now();
    // Watched while the old manager still drains: a handover makes a
    // successor long before the old one exits plus an election timeout (1 s).
    const successorFound = (async () => {
      while (performance.now() - signalledAt < 5000) {
        const [found] = await managers(others);
        if (found) return { node: found, afterMs: performance.now() - signalledAt };
        await sleep(50);
      }
      return undefined;
    })();
    await Promise.all(workers);
    assert.ok(results.length >= 6, `only ${results.length} requests made`);
    assert.deepEqual(
      results.filter((r) => r.status !== 200),
      [],
      "every request in flight at SIGTERM completed",
    );

    const successor = await successorFound;
    assert.ok(successor, "no new manager within 5 s of SIGTERM");
    assert.ok(
      successor.afterMs < 1000,
      `new manager only after ${successor.afterMs.toFixed(0)} ms: no handover`,
    );
    assert.equal(await manager.wait(), 0);
    // Still serving through the survivors.
    assert.equal((await rawGet(successor.node.port, "/after", { host: "app.test" })).status, 200);
  } finally {
    for (const n of nodes) await n.stop();
    await backend.close();
    await etcd.stop();
    await Deno.remove(dataRoot, { recursive: true }).catch(() => {});
  }
});

const GRACE_SOURCES = [
  ["top-level lifeCycle", `[lifeCycle]\ngraceTimeOut = "500ms"\n`],
  [
    "entryPoints.web.transport.lifeCycle",
    `[entryPoints.web.transport.lifeCycle]\ngraceTimeOut = "500ms"\n`,
  ],
] as const;

for (const [source, extraStatic] of GRACE_SOURCES) {
  Deno.test(`lifecycle: a request outliving graceTimeOut (${source}) is cut and the process still exits 0`, async () => {
    const backend = startEchoBackend("very-slow");
    const proxy = await startProxyProcess(slowRoute(backend.url), extraStatic);
    try {
      const stuck = rawGet(proxy.port, "/slow/3000", { host: "app.test" }).then(
        (r) => r.status,
        () => "cut" as const,
      );
      await sleep(200);
      const signalledAt = performance.now();
      proxy.signal("SIGTERM");
      const code = await proxy.wait();
      const tookMs = performance.now() - signalledAt;
      assert.equal(code, 0);
      assert.ok(tookMs < 2500, `exit took ${tookMs.toFixed(0)} ms; graceTimeOut is 500 ms`);
      assert.notEqual(await stuck, 200, "the request was cut, not answered");
      assert.match(proxy.output(), /grace period over/);
    } finally {
      await proxy.stop();
      await backend.close();
    }
  });
}

Deno.test("lifecycle: entryPointLifeCycle prefers a non-default entrypoint setting over the top level", () => {
  const ep = (requestAcceptGraceTimeout: number, graceTimeOut: number) =>
    ({
      transport: { lifeCycle: { requestAcceptGraceTimeout, graceTimeOut } },
    }) as unknown as EntryPointConfig;
  const cases: [string, EntryPointConfig | undefined, [number, number], [number, number]][] = [
    ["defaults everywhere", ep(0, 10_000), [0, 10_000], [0, 10_000]],
    ["top level set", ep(0, 10_000), [2_000, 30_000], [2_000, 30_000]],
    ["entrypoint set", ep(1_000, 5_000), [0, 10_000], [1_000, 5_000]],
    ["entrypoint wins per key", ep(0, 5_000), [3_000, 30_000], [3_000, 5_000]],
    ["unknown entrypoint", undefined, [4_000, 20_000], [4_000, 20_000]],
  ];
  for (const [name, entry, [accept, grace], expected] of cases) {
    const config = {
      entryPoints: entry ? { web: entry } : {},
      lifeCycle: { requestAcceptGraceTimeout: accept, graceTimeOut: grace },
    } as unknown as StaticConfig;
    const got = entryPointLifeCycle(config, "web");
    assert.deepEqual([got.requestAcceptGraceTimeout, got.graceTimeOut], expected, name);
  }
});

interface StartupCase {
  name: string;
  /** Writes files into dir; returns the static config's path. */
  setup(dir: string): Promise<string>;
  /** What the one error line must say. */
  expect: RegExp;
}

const STARTUP_CASES: StartupCase[] = [
  {
    name: "port in use",
    async setup(dir) {
      await Deno.writeTextFile(
        `${dir}/portico.toml`,
        `[entryPoints.web]\naddress = "127.0.0.1:${busyPort}"\n`,
      );
      return `${dir}/portico.toml`;
    },
    expect: /entryPoint web \(127\.0\.0\.1:\d+\).*in use/i,
  },
  {
    name: "static config file missing",
    setup: (dir) => Promise.resolve(`${dir}/nope.toml`),
    expect: /nope\.toml: file not found/,
  },
  {
    name: "static config path unreadable (a directory)",
    async setup(dir) {
      await Deno.mkdir(`${dir}/conf.d`);
      return `${dir}/conf.d`;
    },
    expect: /conf\.d: expected a file/,
  },
  {
    name: "dynamic config file unreadable (a directory)",
    async setup(dir) {
      await Deno.mkdir(`${dir}/dynamic.d`);
      await Deno.writeTextFile(
        `${dir}/portico.toml`,
        `[entryPoints.web]\naddress = "127.0.0.1:0"\n[providers.file]\nfilename = "${dir}/dynamic.d"\n`,
      );
      return `${dir}/portico.toml`;
    },
    expect: /dynamic\.d: expected a file/,
  },
  {
    name: "TOML syntax error",
    async setup(dir) {
      await Deno.writeTextFile(`${dir}/portico.toml`, `[entryPoints.web\naddress = 1\n`);
      return `${dir}/portico.toml`;
    },
    expect: /portico\.toml: line 1/,
  },
  {
    name: "invalid static value",
    async setup(dir) {
      await Deno.writeTextFile(
        `${dir}/portico.toml`,
        `[entryPoints.web]\naddress = "127.0.0.1:0"\n[log]\nlevel = "LOUD"\n`,
      );
      return `${dir}/portico.toml`;
    },
    expect: /log\.level: expected one of/,
  },
  {
    name: "invalid dynamic config",
    async setup(dir) {
      await Deno.writeTextFile(`${dir}/dynamic.toml`, `[http.routers.a]\nrule = "Host(\`a\`)"\n`);
      await Deno.writeTextFile(
        `${dir}/portico.toml`,
        `[entryPoints.web]\naddress = "127.0.0.1:0"\n[providers.file]\nfilename = "${dir}/dynamic.toml"\n`,
      );
      return `${dir}/portico.toml`;
    },
    expect: /dynamic\.toml: http\.routers\.a\.service/,
  },
  {
    name: "access log not writable",
    async setup(dir) {
      await Deno.writeTextFile(
        `${dir}/portico.toml`,
        `[entryPoints.web]\naddress = "127.0.0.1:0"\n[accessLog]\nfilePath = "${dir}/missing-dir/access.log"\n`,
      );
      return `${dir}/portico.toml`;
    },
    expect: /accessLog\.filePath: cannot open .*missing-dir\/access\.log/,
  },
];

let busyPort = 0;

Deno.test("lifecycle: startup failures print one portico: line, no stack trace, exit 1", async (t) => {
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  busyPort = (busy.addr as Deno.NetAddr).port;
  try {
    for (const c of STARTUP_CASES) {
      await t.step(c.name, async () => {
        const dir = await Deno.makeTempDir({ prefix: "portico-startup-" });
        try {
          const config = await c.setup(dir);
          const out = await new Deno.Command(Deno.execPath(), {
            args: ["run", "-A", `${repoRoot}mod.ts`, `--configFile=${config}`],
            cwd: dir,
            stdout: "piped",
            stderr: "piped",
            signal: AbortSignal.timeout(20000),
          }).output();
          const stderr = new TextDecoder().decode(out.stderr);
          assert.equal(out.code, 1, stderr);
          const errorLines = stderr.split("\n").filter((l) => l.startsWith("portico:"));
          assert.equal(errorLines.length, 1, `exactly one portico: line in:\n${stderr}`);
          assert.match(errorLines[0], c.expect);
          assert.doesNotMatch(
            stderr,
            /^\s+at |Stack backtrace|Uncaught/m,
            `no stack trace in:\n${stderr}`,
          );
        } finally {
          await Deno.remove(dir, { recursive: true });
        }
      });
    }
  } finally {
    busy.close();
  }
});

/**
 * `deno task bundle`: the single-file bundle, copied alone into an empty
 * directory (no node_modules, no deno.json beside it), reports its version,
 * routes a request like `mod.ts` does, and its etcd client (gRPC protos
 * embedded at build time) uploads a config with `storeconfig` that the
 * bundle then serves from etcd.
 */

import assert from "node:assert/strict";
import { bundle, npmDependencies } from "../scripts/bundle.ts";
import { VERSION } from "../lib/version.ts";
import { startEchoBackend } from "./fixtures/backend.ts";
import { startEtcd } from "./fixtures/etcd.ts";
import { rawGet } from "./fixtures/http_client.ts";
import { startProxyProcess } from "./fixtures/proxy_process.ts";

const repoRoot = new URL("../", import.meta.url).pathname;

let copied: Promise<{ dir: string; file: string }> | undefined;

/** Builds once per test run and copies the bundle into a directory of its own. */
function bundleCopy(): Promise<{ dir: string; file: string }> {
  copied ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "portico-bundle-" });
    const { path, size } = await bundle({ outFile: `${dir}/build/portico.js`, quiet: true });
    assert.ok(size > 100_000, `bundle suspiciously small: ${size} bytes`);
    const file = `${dir}/portico.js`;
    await Deno.copyFile(path, file);
    await Deno.remove(`${dir}/build`, { recursive: true });
    return { dir, file };
  })();
  return copied;
}

async function runBundle(
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const { dir, file } = await bundleCopy();
  const out = await new Deno.Command(Deno.execPath(), {
    // --no-npm and --no-remote prove the file needs nothing beside it.
    args: ["run", "-A", "--no-config", "--no-lock", "--no-remote", "--no-npm", file, ...args],
    cwd: options.cwd ?? dir,
    env: options.env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

async function eventually<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  timeoutMs = 15000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${last ?? ""}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

Deno.test("bundle: npmDependencies maps deno.json imports to package.json dependencies", () => {
  const cases: [string, Record<string, string>, Record<string, string>][] = [
    ["plain", { "hono": "npm:hono@4.13.19" }, { hono: "4.13.19" }],
    ["prefix entries are skipped", { "hono/": "npm:/hono@4.13.19/" }, {}],
    ["scoped", { "@grpc/grpc-js": "npm:@grpc/grpc-js@1.14.7" }, { "@grpc/grpc-js": "1.14.7" }],
    ["alias key keeps the package name", { "toml": "npm:smol-toml@1.9.1" }, {
      "smol-toml": "1.9.1",
    }],
    ["build-only esbuild dropped", { "esbuild": "npm:esbuild@0.28.2" }, {}],
    ["non-npm ignored", { "x": "./x.ts", "y": "jsr:@std/assert@1" }, {}],
  ];
  for (const [name, input, expected] of cases) {
    assert.deepEqual(npmDependencies(input), expected, name);
  }
});

Deno.test("bundle: version and check behave like mod.ts", async () => {
  const version = await runBundle(["version"]);
  assert.equal(version.code, 0, version.stderr);
  assert.equal(version.stdout.trim(), `portico ${VERSION}`);

  const { dir } = await bundleCopy();
  await Deno.writeTextFile(
    `${dir}/bad.toml`,
    `[entryPoints.web]\naddress = "127.0.0.1:notaport"\n`,
  );
  const bad = await runBundle(["check", `--configFile=${dir}/bad.toml`]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /entryPoints\.web\.address/);
  assert.doesNotMatch(bad.stderr, /^\s+at /m, "no stack trace");
});

Deno.test("bundle: serves a route to a backend", async () => {
  const { file } = await bundleCopy();
  const backend = startEchoBackend("bundled");
  const proxy = await startProxyProcess(
    `[http.routers.app]\nrule = "Host(\`app.test\`)"\nservice = "app"\n` +
      `[http.services.app.loadBalancer]\nservers = [{ url = "${backend.url}" }]\n`,
    "",
    file,
  );
  try {
    const res = await eventually("route", async () => {
      const r = await rawGet(proxy.port, "/hello?x=1", { host: "app.test" });
      return r.status === 200 ? r : undefined;
    });
    const echo = JSON.parse(res.body);
    assert.equal(echo.backend, "bundled");
    assert.equal(echo.path, "/hello?x=1");
    assert.equal((await rawGet(proxy.apiPort, "/ping")).body, "OK");
    // The Docker image's HEALTHCHECK script agrees.
    const health = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--no-config",
        "--no-lock",
        `--allow-net=127.0.0.1:${proxy.apiPort}`,
        `${repoRoot}deploy/docker/healthcheck.ts`,
        `http://127.0.0.1:${proxy.apiPort}/ping`,
      ],
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.equal(health.code, 0, new TextDecoder().decode(health.stderr));
  } finally {
    await proxy.stop();
    await backend.close();
  }
});

Deno.test("bundle: etcd client works from the single file (storeconfig, then serve from etcd)", async () => {
  const { dir, file } = await bundleCopy();
  const etcd = await startEtcd();
  const backend = startEchoBackend("from-etcd");
  try {
    await Deno.writeTextFile(
      `${dir}/upload-dynamic.toml`,
      `[http.routers.kvapp]\nrule = "Host(\`kv.test\`)"\nservice = "kvapp"\n` +
        `[http.services.kvapp.loadBalancer]\nservers = [{ url = "${backend.url}" }]\n`,
    );
    await Deno.writeTextFile(
      `${dir}/upload.toml`,
      `[providers.file]\nfilename = "${dir}/upload-dynamic.toml"\n` +
        `[providers.etcd]\nendpoints = ["${etcd.endpoint}"]\nrootKey = "traefik"\n`,
    );
    const upload = await runBundle(["storeconfig", `--configFile=${dir}/upload.toml`]);
    assert.equal(upload.code, 0, upload.stderr + upload.stdout);
    assert.match(upload.stdout, /traefik\/http\/routers\/kvapp\/rule/);

    const proxy = await startProxyProcess(
      "",
      `[providers.etcd]\nendpoints = ["${etcd.endpoint}"]\n`,
      file,
    );
    try {
      const res = await eventually("route from etcd", async () => {
        const r = await rawGet(proxy.port, "/kv", { host: "kv.test" });
        return r.status === 200 ? r : undefined;
      });
      assert.equal(JSON.parse(res.body).backend, "from-etcd");
    } finally {
      await proxy.stop();
    }
  } finally {
    await backend.close();
    await etcd.stop();
  }
});

const DEPLOY_CONFIGS: { file: string; env?: Record<string, string> }[] = [
  { file: "deploy/systemd/portico.toml" },
  { file: "deploy/docker/portico.toml" },
  ...["a", "b", "c"].map((n) => ({
    file: `deploy/edge-vms/edge-${n}.toml`,
    env: { PORTICO_CLUSTER_SECRET: "test-secret-0123456789abcdef0123456789" },
  })),
  { file: "deploy/edge-vms/storeconfig.toml" },
];

Deno.test("bundle: every deploy/ config passes `check`", async (t) => {
  const { dir } = await bundleCopy();
  for (const { file, env } of DEPLOY_CONFIGS) {
    await t.step(file, async () => {
      const deployDir = `${repoRoot}${file.slice(0, file.lastIndexOf("/"))}`;
      // Installed configs point at /etc/portico; check them against the repo's copies.
      const text = (await Deno.readTextFile(`${repoRoot}${file}`)).replaceAll(
        "/etc/portico/",
        `${deployDir}/`,
      );
      const copy = `${dir}/check-${file.replaceAll("/", "_")}`;
      await Deno.writeTextFile(copy, text);
      const out = await runBundle(["check", `--configFile=${copy}`], { cwd: deployDir, env });
      assert.equal(out.code, 0, out.stderr + out.stdout);
      assert.match(out.stdout, /is valid/);
    });
  }
});

/** A port offset for the demo script under which all its ports are free now. */
function freeDemoOffset(): number {
  const basePorts = [
    12379,
    12380,
    9001,
    9002,
    8001,
    8002,
    8003,
    8081,
    8082,
    8083,
    7946,
    7947,
    7948,
  ];
  for (let attempt = 0; attempt < 50; attempt++) {
    const offset = 10000 + Math.floor(Math.random() * 40000);
    const ok = basePorts.every((p) => {
      try {
        Deno.listen({ hostname: "127.0.0.1", port: p + offset }).close();
        return true;
      } catch {
        return false;
      }
    });
    if (ok) return offset;
  }
  throw new Error("no free port range for the demo");
}

Deno.test("bundle: scripts/demo-cluster.sh --check runs a three-node cluster from the bundle, with failover", async () => {
  const { file } = await bundleCopy();
  const out = await new Deno.Command("bash", {
    args: [`${repoRoot}scripts/demo-cluster.sh`, "--check"],
    env: { PORTICO_DEMO_ENTRY: file, PORTICO_DEMO_PORT_OFFSET: String(freeDemoOffset()) },
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(90_000),
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, stderr);
  assert.match(
    stderr,
    /check passed: 3 nodes routed, dashboard served, node-\d stopped with exit 0, node-\d took over/,
  );
  assert.match(stderr, /\/dashboard\//);
});

Deno.test("bundle: cleanup", async () => {
  if (copied) await Deno.remove((await copied).dir, { recursive: true });
});

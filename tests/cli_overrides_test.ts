/**
 * Traefik-style flag and environment overrides: the pure tree rewrite
 * (table-driven) and the real CLI (`deno run -A mod.ts`) honouring them.
 */

import assert from "node:assert/strict";
import { applyOverrides } from "../lib/cli/overrides.ts";
import { ConfigError } from "../lib/config/errors.ts";
import { validateStatic } from "../lib/config/static.ts";
import { freePort } from "./fixtures/ports.ts";

const repoRoot = new URL("../", import.meta.url).pathname;

Deno.test("overrides: flags and environment rewrite the raw tree (table)", () => {
  type Case = {
    name: string;
    raw: Record<string, unknown>;
    flags?: [string, string][];
    env?: Record<string, string>;
    want: Record<string, unknown>;
  };
  const cases: Case[] = [
    {
      name: "flag sets a new entrypoint",
      raw: {},
      flags: [["entryPoints.web.address", ":8000"]],
      want: { entryPoints: { web: { address: ":8000" } } },
    },
    {
      name: "env sets a new entrypoint (name lowercased)",
      raw: {},
      env: { PORTICO_ENTRYPOINTS_WEB_ADDRESS: ":8000" },
      want: { entryPoints: { web: { address: ":8000" } } },
    },
    {
      name: "case-insensitive match reuses the file's spelling",
      raw: { entryPoints: { Web: { address: ":80" } } },
      flags: [["ENTRYPOINTS.web.ADDRESS", ":81"]],
      want: { entryPoints: { Web: { address: ":81" } } },
    },
    {
      name: "flag beats env",
      raw: {},
      env: { PORTICO_LOG_LEVEL: "DEBUG" },
      flags: [["log.level", "ERROR"]],
      want: { log: { level: "ERROR" } },
    },
    {
      name: "booleans convert",
      raw: {},
      env: { PORTICO_API_INSECURE: "TRUE" },
      want: { api: { insecure: true } },
    },
    {
      name: "a section switched on",
      raw: {},
      flags: [["metrics.prometheus", "true"]],
      want: { metrics: { prometheus: true } },
    },
    {
      name: "lists split on commas",
      raw: {},
      flags: [["metrics.prometheus.buckets", "0.1,1,10"]],
      want: { metrics: { prometheus: { buckets: [0.1, 1, 10] } } },
    },
    {
      name: "env record name containing an underscore",
      raw: {},
      env: { PORTICO_ENTRYPOINTS_MY_EP_ADDRESS: ":9000" },
      // "MY_EP" is ambiguous: "my" leaves "EP_ADDRESS", which does not resolve, so "my_ep".
      want: { entryPoints: { my_ep: { address: ":9000" } } },
    },
    {
      name: "non-config env vars are ignored",
      raw: { log: {} },
      env: { PORTICO_TEST_HOOKS: "1", HOME: "/root" },
      want: { log: {} },
    },
    {
      name: "deep path below an existing table",
      raw: { entryPoints: { web: { address: ":80" } } },
      flags: [["entryPoints.web.http.redirections.entryPoint.to", "websecure"]],
      want: {
        entryPoints: {
          web: { address: ":80", http: { redirections: { entryPoint: { to: "websecure" } } } },
        },
      },
    },
    {
      name: "cli-only flags are skipped",
      raw: {},
      flags: [["configFile", "x.toml"], ["help", "true"]],
      want: {},
    },
  ];
  for (const c of cases) {
    const { tree } = applyOverrides(structuredClone(c.raw), new Map(c.flags ?? []), c.env ?? {});
    assert.deepEqual(tree, c.want, c.name);
  }
});

Deno.test("overrides: unknown keys name the flag or variable; overridden values are validated", () => {
  const bad: [string, [string, string][], Record<string, string>, RegExp][] = [
    [
      "unknown flag key",
      [["entryPoints.web.adress", ":1"]],
      {},
      /flag --entryPoints\.web\.adress.*unknown key "adress".*address/,
    ],
    ["unknown top-level flag", [["nonsense", "1"]], {}, /flag --nonsense.*unknown key "nonsense"/],
    [
      "unknown env key",
      [],
      { PORTICO_API_INSECUR: "true" },
      /PORTICO_API_INSECUR.*unknown key "INSECUR"/,
    ],
  ];
  for (const [name, flags, env, re] of bad) {
    assert.throws(
      () => applyOverrides({}, new Map(flags), env),
      (e: unknown) => e instanceof ConfigError && re.test(e.message),
      name,
    );
  }
  const { tree } = applyOverrides({}, new Map([["entryPoints.web.address", "nope"]]), {});
  assert.throws(() => validateStatic(tree, "x"), /entryPoints\.web\.address/);
  const ok = validateStatic(
    applyOverrides(
      {},
      new Map([["entryPoints.web.address", "127.0.0.1:8123"], ["api.insecure", "true"]]),
      {},
    ).tree,
    "x",
  );
  assert.equal(ok.entryPoints.web.port, 8123);
  assert.equal(ok.api?.insecure, true);
});

async function cli(args: string[], env: Record<string, string> = {}, cwd = repoRoot) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${repoRoot}mod.ts`, ...args],
    env,
    cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("cli: a flag and an environment variable override the file when serving", async () => {
  const dir = await Deno.makeTempDir();
  const filePort = freePort();
  const flagPort = freePort();
  const envPort = freePort();
  await Deno.writeTextFile(`${dir}/d.toml`, "");
  await Deno.writeTextFile(
    `${dir}/p.toml`,
    `[entryPoints.web]\naddress = "127.0.0.1:${filePort}"\n[entryPoints.traefik]\naddress = "127.0.0.1:${freePort()}"\n[providers.file]\nfilename = "${dir}/d.toml"\n`,
  );
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${repoRoot}mod.ts`,
      `--configFile=${dir}/p.toml`,
      `--entryPoints.web.address=127.0.0.1:${flagPort}`,
      "--ping.entryPoint=web",
    ],
    env: {
      PORTICO_ENTRYPOINTS_TRAEFIK_ADDRESS: `127.0.0.1:${envPort}`,
      PORTICO_API_INSECURE: "true",
    },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  try {
    let res: Response | undefined;
    for (let i = 0; i < 100 && !res; i++) {
      res = await fetch(`http://127.0.0.1:${flagPort}/ping`).catch(() => undefined);
      if (!res) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(res, "the flag's address is listening");
    assert.equal(await res.text(), "OK");
    const api = await fetch(`http://127.0.0.1:${envPort}/api/version`);
    assert.equal(api.status, 200, "the env var's address serves the API (api.insecure from env)");
    await api.body?.cancel();
    await assert.rejects(
      fetch(`http://127.0.0.1:${filePort}/ping`),
      "the file's address was overridden",
    );
  } finally {
    child.kill("SIGTERM");
    await child.stderr.cancel();
    await child.status;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: flags alone configure an instance without a file; bad ones name the flag", async () => {
  const dir = await Deno.makeTempDir();
  const bad = await cli(["check", "--entryPoints.web.address=nope"], {}, dir);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /flag --entryPoints\.web\.address: entryPoints\.web\.address: .*"nope"/);
  const unknown = await cli(["check", "--entryPoints.web.adress=:80"], {}, dir);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /unknown key "adress"/);
  const ok = await cli(["check", "--entryPoints.web.address=:80"], {}, dir);
  assert.equal(ok.code, 0, ok.stderr);
  const none = await cli(["check"], {}, dir);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /no static configuration/);
  await Deno.remove(dir, { recursive: true });
});

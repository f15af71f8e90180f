/**
 * `deno task compile`: the standalone executable (the launcher route, which
 * builds offline) reports its version, serves a request, exits cleanly on
 * SIGTERM, and refuses a cache directory other users could write. The test
 * prints the binary's size and the time from exec to the first request
 * served, first run (unpacking) and warm, for the README.
 */

import assert from "node:assert/strict";
import { compile, encodeTrailer } from "../scripts/compile.ts";
import { formatSize } from "../scripts/bundle.ts";
import { VERSION } from "../lib/version.ts";
import { startEchoBackend } from "./fixtures/backend.ts";
import { freePort } from "./fixtures/ports.ts";
import { rawGet } from "./fixtures/http_client.ts";

let built: Promise<{ dir: string; exe: string; size: number }> | undefined;

function binary(): Promise<{ dir: string; exe: string; size: number }> {
  built ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "portico-compile-" });
    const { path, size, route } = await compile({
      outFile: `${dir}/portico`,
      launcher: true,
      quiet: true,
    });
    assert.equal(route, "launcher");
    return { dir, exe: path, size };
  })();
  return built;
}

function env(cacheDir: string): Record<string, string> {
  return { PORTICO_CACHE_DIR: cacheDir };
}

Deno.test("compile: encodeTrailer lays out offsets, hash and magic as launcher.c reads them", () => {
  const t = encodeTrailer({
    denoOffset: 16384,
    denoSize: 95_600_728,
    bundleOffset: 95_617_112,
    bundleSize: 2_000_000,
    hash: "0123456789abcdef",
  });
  assert.equal(t.length, 64);
  const view = new DataView(t.buffer);
  assert.deepEqual([0, 8, 16, 24].map((o) => Number(view.getBigUint64(o, true))), [
    16384,
    95_600_728,
    95_617_112,
    2_000_000,
  ]);
  assert.equal(new TextDecoder().decode(t.subarray(32, 48)), "0123456789abcdef");
  assert.equal(new TextDecoder().decode(t.subarray(48)), "PORTICO-PAYLOAD1");
  assert.throws(
    () =>
      encodeTrailer({ denoOffset: 0, denoSize: 0, bundleOffset: 0, bundleSize: 0, hash: "xyz" }),
    /16 hex/,
  );
});

Deno.test("compile: the binary reports its version (first run unpacks, second reuses)", async () => {
  const { dir, exe } = await binary();
  const cache = `${dir}/cache-version`;
  for (const run of ["first", "second"]) {
    const out = await new Deno.Command(exe, {
      args: ["version"],
      env: env(cache),
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, `${run}: ${new TextDecoder().decode(out.stderr)}`);
    assert.equal(new TextDecoder().decode(out.stdout).trim(), `portico ${VERSION}`);
  }
  const entries = [...Deno.readDirSync(cache)].map((e) => e.name);
  assert.equal(entries.length, 1, `one unpacked runtime, no temporary leftovers: ${entries}`);
  assert.match(entries[0], /^[0-9a-f]{16}$/);
  assert.equal(Deno.statSync(`${cache}/${entries[0]}`).mode! & 0o777, 0o700);
});

Deno.test("compile: the binary serves a request; size and cold start measured", async () => {
  const { dir, exe, size } = await binary();
  const backend = startEchoBackend("compiled");
  const port = freePort();
  await Deno.writeTextFile(
    `${dir}/dynamic.toml`,
    `[http.routers.app]\nrule = "Host(\`app.test\`)"\nservice = "app"\n` +
      `[http.services.app.loadBalancer]\nservers = [{ url = "${backend.url}" }]\n`,
  );
  await Deno.writeTextFile(
    `${dir}/portico.toml`,
    `[entryPoints.web]\naddress = "127.0.0.1:${port}"\n[providers.file]\nfilename = "${dir}/dynamic.toml"\n`,
  );
  const cache = `${dir}/cache-serve`;
  const timings: Record<string, number> = {};
  try {
    for (const run of ["first run (unpacks)", "warm"]) {
      const started = performance.now();
      const child = new Deno.Command(exe, {
        args: [`--configFile=${dir}/portico.toml`],
        env: env(cache),
        stdout: "null",
        stderr: "piped",
      }).spawn();
      let served: { status: number; body: string } | undefined;
      try {
        while (!served && performance.now() - started < 20000) {
          served = await rawGet(port, "/hi", { host: "app.test" }).catch(() => undefined);
          if (served?.status !== 200) {
            served = undefined;
            await new Promise((r) => setTimeout(r, 10));
          }
        }
        timings[run] = performance.now() - started;
        assert.ok(served, `${run}: no request served within 20 s`);
        assert.equal(JSON.parse(served.body).backend, "compiled");
      } finally {
        child.kill("SIGTERM");
        const status = await child.status;
        const stderr = new TextDecoder().decode(await new Response(child.stderr).arrayBuffer());
        assert.equal(status.code, 0, `${run}: exit ${status.code} after SIGTERM: ${stderr}`);
      }
    }
  } finally {
    await backend.close();
  }
  console.log(
    `standalone binary: ${formatSize(size)}; exec → first request served: ` +
      Object.entries(timings).map(([k, v]) => `${k} ${v.toFixed(0)} ms`).join(", "),
  );
});

Deno.test("compile: the launcher refuses a cache directory others can write", async () => {
  const { dir, exe } = await binary();
  const cache = `${dir}/cache-shared`;
  const first = await new Deno.Command(exe, {
    args: ["version"],
    env: env(cache),
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.equal(first.code, 0);
  const unpacked = `${cache}/${[...Deno.readDirSync(cache)][0].name}`;
  await Deno.chmod(unpacked, 0o777);
  const out = await new Deno.Command(exe, {
    args: ["version"],
    env: env(cache),
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 1);
  assert.equal(new TextDecoder().decode(out.stdout), "");
  assert.match(new TextDecoder().decode(out.stderr), /^portico: refusing cache directory/);
});

Deno.test("compile: cleanup", async () => {
  if (built) await Deno.remove((await built).dir, { recursive: true });
});

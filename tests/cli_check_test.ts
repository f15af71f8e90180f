/**
 * `mod.ts check`, `version` and `--help` over the real CLI.
 */

import assert from "node:assert/strict";
import { locateKey } from "../lib/cli/check.ts";

const repoRoot = new URL("../", import.meta.url).pathname;

async function cli(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${repoRoot}mod.ts`, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("check: locateKey finds tables, keys and dotted keys", () => {
  const text = `# comment
[entryPoints.web]
address = ":80"

[http.routers."my-app"]
rule = "Host(\`a\`)"
tls.certResolver = "le"
`;
  const cases: [string, number | undefined][] = [
    ["entryPoints.web.address", 3],
    ["entryPoints.web", 2],
    ["entryPoints.web.http.tls", 2],
    ["http.routers.my-app.rule", 6],
    ["http.routers.my-app.tls.certResolver", 7],
    ["http.routers.my-app.service", 5],
    ["providers.file", undefined],
  ];
  for (const [path, line] of cases) assert.equal(locateKey(text, path), line, path);
});

Deno.test("check: every error with file, line, key and hint; exit 1, then 0 once fixed", async () => {
  const dir = await Deno.makeTempDir();
  const staticFile = `${dir}/portico.toml`;
  const dynamicFile = `${dir}/dynamic.toml`;
  await Deno.writeTextFile(
    staticFile,
    `[entryPoints.web]\naddress = ":8081"\n\n[providers.file]\nfilename = "${dynamicFile}"\n\n[ping]\nentryPoint = "nope"\n[log]\nlevle = "DEBUG"\n`,
  );
  await Deno.writeTextFile(
    dynamicFile,
    `[http.routers.a]\nrule = "Hots(\`x\`)"\nservice = "s"\n\n[http.routers.b]\nrule = "Path(\`/b\`)"\nservice = "missing"\n\n[http.services.s.loadBalancer]\nservers = [{ url = "http://127.0.0.1:1" }]\n`,
  );
  try {
    const bad = await cli(["check", `--configFile=${staticFile}`]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, new RegExp(`${staticFile}:10: log\\.levle: .*`));
    assert.match(bad.stderr, /hint: /);
    // Static errors stop before the dynamic config is read.
    await Deno.writeTextFile(
      staticFile,
      (await Deno.readTextFile(staticFile)).replace('"nope"', '"web"').replace("levle", "level"),
    );
    const dyn = await cli(["check", `--configFile=${staticFile}`]);
    assert.equal(dyn.code, 1);
    assert.match(
      dyn.stderr,
      new RegExp(
        `${dynamicFile}:2: http\\.routers\\.a\\.rule: rule "Hots\\(\`x\`\\)": unknown matcher "Hots"`,
      ),
    );
    assert.match(
      dyn.stderr,
      new RegExp(
        `${dynamicFile}:7: http\\.routers\\.b\\.service: service "missing@file" does not exist`,
      ),
    );
    assert.match(dyn.stderr, /2 problem\(s\)/);
    await Deno.writeTextFile(
      dynamicFile,
      (await Deno.readTextFile(dynamicFile)).replace("Hots", "Host").replace('"missing"', '"s"'),
    );
    const ok = await cli(["check", `--configFile=${staticFile}`]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /is valid/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: --help on every command, and version", async () => {
  for (
    const [command, re] of [["serve", /--configFile/], ["check", /exits 0 if valid, 1 if not/], [
      "storeconfig",
      /--dry-run/,
    ], ["version", /Prints the version/]] as const
  ) {
    const res = await cli([command, "--help"]);
    assert.equal(res.code, 0, command);
    assert.match(res.stdout, re, command);
  }
  const top = await cli(["--help"]);
  assert.match(top.stdout, /Commands:/);
  const version = await cli(["version"]);
  assert.equal(version.code, 0);
  assert.match(version.stdout, /^portico \d+\.\d+\.\d+/);
});

Deno.test("check: a middleware no router uses is validated too", async () => {
  const dir = await Deno.makeTempDir();
  const staticFile = `${dir}/portico.toml`;
  const dynamicFile = `${dir}/dynamic.toml`;
  await Deno.writeTextFile(staticFile, `[entryPoints.web]\naddress = ":8081"\n\n[providers.file]\nfilename = "${dynamicFile}"\n`);
  await Deno.writeTextFile(
    dynamicFile,
    `[http.middlewares.unused.retry]\nattempts = "many"\n\n[http.middlewares.fine.stripPrefix]\nprefixes = ["/a"]\n`,
  );
  try {
    const bad = await cli(["check", `--configFile=${staticFile}`]);
    assert.equal(bad.code, 1, bad.stdout);
    assert.match(bad.stderr, /http\.middlewares\.unused.*attempts/);
    assert.doesNotMatch(bad.stderr, /http\.middlewares\.fine/);
    await Deno.writeTextFile(dynamicFile, (await Deno.readTextFile(dynamicFile)).replace('"many"', "2"));
    const ok = await cli(["check", `--configFile=${staticFile}`]);
    assert.equal(ok.code, 0, ok.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("check: clientAuth CA files are read as the handshake would; exit 0 once they exist", async () => {
  const dir = await Deno.makeTempDir();
  const staticFile = `${dir}/portico.toml`;
  const dynamicFile = `${dir}/dynamic.toml`;
  await Deno.writeTextFile(staticFile, `[entryPoints.web]\naddress = ":8081"\n\n[providers.file]\nfilename = "${dynamicFile}"\n`);
  await Deno.writeTextFile(
    dynamicFile,
    `[tls.options.mtls.clientAuth]\ncaFiles = ["${dir}/ca.pem"]\nclientAuthType = "RequireAndVerifyClientCert"\n`,
  );
  try {
    const bad = await cli(["check", `--configFile=${staticFile}`]);
    assert.equal(bad.code, 1, bad.stdout);
    assert.match(bad.stderr, /tls\.options\.mtls\.clientAuth\.caFiles\[0\]: cannot read/);
    await Deno.writeTextFile(`${dir}/ca.pem`, "not a certificate");
    const notPem = await cli(["check", `--configFile=${staticFile}`]);
    assert.equal(notPem.code, 1, notPem.stdout);
    assert.match(notPem.stderr, /caFiles\[0\].*no PEM certificate/);
    const { makePki } = await import("./fixtures/pki.ts");
    await makePki(dir);
    const ok = await cli(["check", `--configFile=${staticFile}`]);
    assert.equal(ok.code, 0, ok.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("check: TCP routers are validated: rule and service; exit 0 once fixed", async () => {
  const dir = await Deno.makeTempDir();
  const staticFile = `${dir}/portico.toml`;
  const dynamicFile = `${dir}/dynamic.toml`;
  await Deno.writeTextFile(
    staticFile,
    `[entryPoints.edge]\naddress = ":8443"\n[entryPoints.secure]\naddress = ":9443"\n[entryPoints.secure.http.tls]\n\n[providers.file]\nfilename = "${dynamicFile}"\n`,
  );
  const bad = `
[tcp.routers.db]
rule = "HostSNI(\`db.test\`)"
service = "db"
entryPoints = ["edge"]
[tcp.routers.typo]
rule = "HostSni(\`*\`) && Port(\`5\`)"
service = "dbx"
entryPoints = ["secure"]
[tcp.services.db.loadBalancer]
[[tcp.services.db.loadBalancer.servers]]
address = "127.0.0.1:5432"
`;
  await Deno.writeTextFile(dynamicFile, bad);
  try {
    const out = await cli(["check", `--configFile=${staticFile}`]);
    assert.equal(out.code, 1, out.stdout);
    assert.match(out.stderr, /tcp\.routers\.db\.rule.*HostSNI matcher, but the router has no tls/);
    assert.match(out.stderr, /tcp\.routers\.typo\.rule.*unknown matcher "HostSni".*write HostSNI/);
    assert.match(out.stderr, /tcp\.routers\.typo\.service.*TCP service "dbx@file" does not exist/);
    assert.doesNotMatch(out.stderr, /tcp\.routers\.typo\.entryPoints/, "an http.tls entrypoint takes TCP routers too");
    await Deno.writeTextFile(
      dynamicFile,
      bad.replace('service = "db"\nentryPoints = ["edge"]', 'service = "db"\nentryPoints = ["edge"]\ntls = { passthrough = true }')
        .replace(/\[tcp\.routers\.typo\]\n(.+\n){3}/, ""),
    );
    const ok = await cli(["check", `--configFile=${staticFile}`]);
    assert.equal(ok.code, 0, ok.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("check: an unknown DNS-01 provider is named with the supported ones", async () => {
  const dir = await Deno.makeTempDir();
  const staticFile = `${dir}/portico.toml`;
  await Deno.writeTextFile(
    staticFile,
    `[entryPoints.web]\naddress = ":8081"\n[certificatesResolvers.le.acme]\nemail = "a@b.test"\nstorage = "${dir}/acme.json"\n[certificatesResolvers.le.acme.dnsChallenge]\nprovider = "bind-ish"\n`,
  );
  try {
    const bad = await cli(["check", `--configFile=${staticFile}`]);
    assert.equal(bad.code, 1, bad.stdout);
    assert.match(bad.stderr, /certificatesResolvers\.le\.acme\.dnsChallenge\.provider: unknown DNS provider "bind-ish"; supported: .*rfc2136/);
    await Deno.writeTextFile(staticFile, (await Deno.readTextFile(staticFile)).replace("bind-ish", "rfc2136"));
    const ok = await cli(["check", `--configFile=${staticFile}`]);
    assert.equal(ok.code, 0, ok.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * Tests for loading TOML files and directories: syntax errors with line and
 * column, read errors, directory merging and duplicate names, and the search
 * for the static file.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  ConfigError,
  findStaticConfigFile,
  listTomlFiles,
  loadDynamicDirectory,
  loadDynamicFile,
  loadFileProviderConfig,
  loadStaticFile,
  parseToml,
} from "../lib/config/mod.ts";

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "portico_config_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function configError(promise: Promise<unknown>): Promise<ConfigError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  assert.fail("expected a ConfigError");
}

const ROUTER = (name: string, service = "app") =>
  `[http.routers.${name}]\nrule = "Host(\`${name}.com\`)"\nservice = "${service}"\n`;
const SERVICE = (name: string) =>
  `[http.services.${name}.loadBalancer]\nservers = [{ url = "http://127.0.0.1:8080" }]\n`;

Deno.test("TOML syntax errors name the file, line and column", () => {
  const cases: { text: string; line: number; column: number; reason: RegExp }[] = [
    { text: "a = \n", line: 1, column: 5, reason: /invalid value/ },
    { text: "a = 1\nb = \n[c]\n", line: 2, column: 5, reason: /invalid value/ },
    {
      text: '[entryPoints.web]\naddress = ":80"\naddress = ":81"\n',
      line: 3,
      column: 1,
      reason: /./,
    },
    { text: "\n\n[unclosed\n", line: 3, column: 10, reason: /./ },
    { text: 'x = "unterminated\n', line: 1, column: 18, reason: /control characters/ },
  ];
  for (const { text, line, column, reason } of cases) {
    try {
      parseToml(text, "bad.toml");
      assert.fail(`expected a syntax error for ${JSON.stringify(text)}`);
    } catch (error) {
      assert.ok(error instanceof ConfigError, String(error));
      assert.equal(error.issues.length, 1);
      const [issue] = error.issues;
      assert.equal(issue.source, "bad.toml");
      const match = /^line (\d+), column (\d+): invalid TOML: (.+)$/.exec(issue.message);
      assert.ok(match, issue.message);
      assert.equal(Number(match[1]), line, `${JSON.stringify(text)}: ${issue.message}`);
      assert.equal(Number(match[2]), column, `${JSON.stringify(text)}: ${issue.message}`);
      assert.match(match[3], reason);
      assert.ok(!issue.message.includes("\n"), "one line per issue");
      assert.ok(error.message.startsWith(`bad.toml: line ${line}, column ${column}: invalid TOML`));
    }
  }
});

Deno.test("loadStaticFile validates and names the file in every error", async () => {
  await withTempDir(async (dir) => {
    const good = `${dir}/portico.toml`;
    await Deno.writeTextFile(
      good,
      `[entryPoints.web]\naddress = ":8000"\n[providers.file]\ndirectory = "conf"\n[log]\nlevel = "debug"\n`,
    );
    const config = await loadStaticFile(good, { hostname: "h" });
    assert.equal(config.entryPoints.web.port, 8000);
    assert.equal(config.log.level, "DEBUG");
    assert.equal(config.sourceFile, good);

    const typo = `${dir}/typo.toml`;
    await Deno.writeTextFile(typo, `[entryPoints.web]\nadress = ":80"\n`);
    const error = await configError(loadStaticFile(typo));
    assert.equal(
      error.message.split("\n")[0],
      `${typo}: entryPoints.web.adress: unknown key; did you mean "address"?`,
    );

    const syntax = `${dir}/syntax.toml`;
    await Deno.writeTextFile(syntax, `[entryPoints.web]\naddress = :80\n`);
    const syntaxError = await configError(loadStaticFile(syntax));
    assert.match(
      syntaxError.message,
      new RegExp(`^${syntax.replaceAll("/", "\\/")}: line 2, column \\d+: invalid TOML`),
    );

    const missing = await configError(loadStaticFile(`${dir}/nope.toml`));
    assert.equal(missing.message, `${dir}/nope.toml: file not found`);
    const directory = await configError(loadStaticFile(dir));
    assert.equal(directory.issues[0].source, dir);
  });
});

Deno.test("loadDynamicFile: empty files are empty configs, errors name the file", async () => {
  await withTempDir(async (dir) => {
    const empty = `${dir}/empty.toml`;
    await Deno.writeTextFile(empty, "# nothing yet\n");
    const config = await loadDynamicFile(empty);
    assert.deepEqual(config.http.routers, {});
    assert.deepEqual(config.tls.certificates, []);

    const bad = `${dir}/bad.toml`;
    await Deno.writeTextFile(bad, `${ROUTER("api")}priority = "high"\n${SERVICE("app")}`);
    const error = await configError(loadDynamicFile(bad));
    assert.deepEqual(error.issues.map((i) => [i.source, i.path]), [[
      bad,
      "http.routers.api.priority",
    ]]);
  });
});

Deno.test("loadDynamicDirectory merges every *.toml file in sorted order", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/sub`);
    await Deno.writeTextFile(`${dir}/b.toml`, ROUTER("b") + SERVICE("app"));
    await Deno.writeTextFile(
      `${dir}/a.toml`,
      ROUTER("a") + `[http.middlewares.strip.stripPrefix]\nprefixes = ["/a"]\n`,
    );
    await Deno.writeTextFile(
      `${dir}/sub/c.toml`,
      `[[tls.certificates]]\ncertFile = "c.crt"\nkeyFile = "c.key"\n`,
    );
    await Deno.writeTextFile(`${dir}/empty.toml`, "");
    await Deno.writeTextFile(`${dir}/notes.txt`, "not toml [");
    await Deno.writeTextFile(`${dir}/z.yaml`, "http: {}");

    assert.deepEqual(await listTomlFiles(dir), [
      `${dir}/a.toml`,
      `${dir}/b.toml`,
      `${dir}/empty.toml`,
      `${dir}/sub/c.toml`,
    ]);
    const config = await loadDynamicDirectory(dir);
    assert.deepEqual(Object.keys(config.http.routers), ["a", "b"]);
    assert.deepEqual(Object.keys(config.http.services), ["app"]);
    assert.deepEqual(config.http.middlewares.strip, { stripPrefix: { prefixes: ["/a"] } });
    assert.deepEqual(config.tls.certificates, [{
      certFile: "c.crt",
      keyFile: "c.key",
      stores: [],
    }]);

    const viaProvider = await loadFileProviderConfig({ directory: dir });
    assert.deepEqual(viaProvider, config);
    const single = await loadFileProviderConfig({ filename: `${dir}/b.toml` });
    assert.deepEqual(Object.keys(single.http.routers), ["b"]);
  });
});

Deno.test("a name defined in two files is an error naming both", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(
      `${dir}/one.toml`,
      ROUTER("api") + SERVICE("app") + `[tls.options.strict]\nsniStrict = true\n`,
    );
    await Deno.writeTextFile(
      `${dir}/two.toml`,
      ROUTER("api") + SERVICE("other") + `[tls.options.strict]\n`,
    );
    await Deno.writeTextFile(
      `${dir}/three.toml`,
      SERVICE("app") + `[http.middlewares.m.compress]\n`,
    );
    await Deno.writeTextFile(`${dir}/four.toml`, `[http.middlewares.m.retry]\nattempts = 2\n`);
    const error = await configError(loadDynamicDirectory(dir));
    // Files load in sorted order: four, one, three, two.
    assert.deepEqual(error.issues, [
      {
        source: `${dir}/three.toml`,
        path: "http.services.app",
        message: `already defined in ${dir}/one.toml`,
      },
      {
        source: `${dir}/three.toml`,
        path: "http.middlewares.m",
        message: `already defined in ${dir}/four.toml`,
      },
      {
        source: `${dir}/two.toml`,
        path: "http.routers.api",
        message: `already defined in ${dir}/one.toml`,
      },
      {
        source: `${dir}/two.toml`,
        path: "tls.options.strict",
        message: `already defined in ${dir}/one.toml`,
      },
    ]);
  });
});

Deno.test("a directory reports every file's issues together", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(
      `${dir}/a.toml`,
      `[http.routers.x]\nrul = "Path(\`/\`)"\nservice = "s"\n`,
    );
    await Deno.writeTextFile(
      `${dir}/b.toml`,
      `[http.services.s.loadBalancer]\nservers = [{ url = "ftp://x" }]\n`,
    );
    await Deno.writeTextFile(`${dir}/c.toml`, `[http\n`);
    const error = await configError(loadDynamicDirectory(dir));
    const lines = error.message.split("\n");
    assert.equal(lines.length, 4, error.message);
    assert.equal(lines[0], `${dir}/a.toml: http.routers.x.rul: unknown key; did you mean "rule"?`);
    assert.match(lines[1], new RegExp(`^${dir}/a.toml: http.routers.x.rule: missing`));
    assert.match(
      lines[2],
      new RegExp(
        `^${dir}/b.toml: http.services.s.loadBalancer.servers\\[0\\].url: expected an absolute`,
      ),
    );
    assert.match(lines[3], new RegExp(`^${dir}/c.toml: line 1, column \\d+: invalid TOML`));
  });
});

Deno.test("loadDynamicDirectory on a missing directory or a file", async () => {
  await withTempDir(async (dir) => {
    const missing = await configError(loadDynamicDirectory(`${dir}/nope`));
    assert.equal(missing.message, `${dir}/nope: directory not found`);
    await Deno.writeTextFile(`${dir}/f.toml`, "");
    const file = await configError(loadDynamicDirectory(`${dir}/f.toml`));
    assert.equal(file.message, `${dir}/f.toml: expected a directory, found a file`);
  });
});

Deno.test("findStaticConfigFile: explicit, then portico.toml, then traefik.toml", async () => {
  const cwd = Deno.cwd();
  await withTempDir(async (dir) => {
    Deno.chdir(dir);
    try {
      assert.equal(await findStaticConfigFile(), undefined);
      assert.equal(await findStaticConfigFile("custom.toml"), "custom.toml");
      await Deno.writeTextFile("traefik.toml", "");
      assert.equal(await findStaticConfigFile(), "traefik.toml");
      await Deno.writeTextFile("portico.toml", "");
      assert.equal(await findStaticConfigFile(), "portico.toml");
      assert.equal(await findStaticConfigFile("other.toml"), "other.toml");
      await Deno.remove("portico.toml");
      await Deno.mkdir("portico.toml");
      assert.equal(
        await findStaticConfigFile(),
        "traefik.toml",
        "a directory is not a config file",
      );
    } finally {
      Deno.chdir(cwd);
    }
  });
});

/**
 * Traefik's own test tables for the path and redirect middlewares
 * (stripPrefix, stripPrefixRegex, replacePath, replacePathRegex, addPrefix,
 * redirectRegex, redirectScheme), sent over real HTTP to Portico. The data
 * is in tests/data/traefik_mw_*.json; how each Go test loop maps to HTTP,
 * and the few cases that only exist inside Go, are in
 * tests/data/traefik_mw_paths_redirects_headers_ip.md.
 *
 * Every case gets its own router (matched on an `X-Case` header) and
 * middleware built from the case's configuration; a raw-socket backend
 * records the exact request target and headers Portico forwards.
 */

import assert from "node:assert/strict";
import { startTestProxy } from "./fixtures/proxy.ts";
import {
  type ExactAnswer,
  exactExchange,
  startRecordingBackend,
} from "./fixtures/exact_http.ts";
import { caseBuildError, caseRoutersToml, readTestData } from "./fixtures/traefik_tables.ts";
import { generateSelfSigned } from "../lib/tls/self_signed.ts";

interface Suite<C> {
  suite: string;
  file: string;
  cases: C[];
}
interface DataFile<C> {
  source: { commit: string };
  suites: Suite<C>[];
}
type Config = Record<string, unknown>;
interface Common {
  desc: string;
  config: Config;
  notOverHttp?: string;
}

function header(list: [string, string][], name: string): string | undefined {
  return list.find(([k]) => k === name)?.[1];
}

/** The case id on both paths: as built (byte path when possible) and forced onto the Web path. */
const BOTH_PATHS = ["", "-web"];

/** Runs `check` for every case that applies over HTTP; returns [ran, skipped]. */
async function eachCase<C extends Common>(
  data: DataFile<C>,
  check: (c: C, id: string, suite: string) => Promise<void>,
): Promise<[number, number]> {
  let ran = 0, skipped = 0;
  for (const s of data.suites) {
    for (let i = 0; i < s.cases.length; i++) {
      const c = s.cases[i];
      if (c.notOverHttp) {
        skipped++;
        continue;
      }
      await check(c, `${s.suite}-${i}`, s.suite);
      ran++;
    }
  }
  return [ran, skipped];
}

/** The middleware instances every case of a data file needs. */
function instances<C extends Common>(data: DataFile<C>, type: (suite: string) => string) {
  return data.suites.flatMap((s) =>
    s.cases.map((c, i) => ({
      id: `${s.suite}-${i}`,
      type: type(s.suite),
      config: c.config,
      skip: c.notOverHttp,
    }))
      .filter((x) => !x.skip)
  );
}

// ---------------------------------------------------------------- path middlewares

interface PathCase extends Common {
  path?: string;
  expectedStatusCode?: number;
  expectedPath?: string;
  expectedRawPath?: string;
  expectedRequestURI?: string;
  expectedHeader?: string;
  expectsError?: boolean;
}

const PATH_FILES: [string, string, (c: PathCase) => string | undefined, string][] = [
  // [data file, middleware type, wire target the Go loop implies, header it checks]
  [
    "traefik_mw_strip_prefix",
    "stripPrefix",
    (c) => c.expectedPath === "" ? "/" : c.expectedRawPath || c.expectedPath,
    "x-forwarded-prefix",
  ],
  [
    "traefik_mw_strip_prefix_regex",
    "stripPrefixRegex",
    // "" means the Go test saw no rewrite: the path goes upstream as sent.
    (c) => c.expectedRequestURI || c.path,
    "x-forwarded-prefix",
  ],
  [
    "traefik_mw_replace_path",
    "replacePath",
    (c) => c.expectedRawPath || c.expectedPath,
    "x-replaced-path",
  ],
  [
    "traefik_mw_replace_path_regex",
    "replacePathRegex",
    (c) => c.expectedRequestURI,
    "x-replaced-path",
  ],
  ["traefik_mw_add_prefix", "addPrefix", (c) => c.expectedRawPath || c.expectedPath, ""],
];

Deno.test("Traefik's path middleware tables over HTTP: strip, replace, add", async () => {
  const backend = startRecordingBackend();
  const files = PATH_FILES.map(([name]) => readTestData<DataFile<PathCase>>(name));
  const all = files.flatMap((data, f) => instances(data, () => PATH_FILES[f][1]));
  const proxy = await startTestProxy({ dynamic: caseRoutersToml(backend.url, all, { webTwins: true }) });
  let total = 0, skipped = 0;
  try {
    for (let f = 0; f < files.length; f++) {
      const [name, type, wireTarget, headerName] = PATH_FILES[f];
      const [ran, skip] = await eachCase(files[f], async (c, id, suite) => {
        const label = `${name} ${suite} "${c.desc}"`;
        const error = caseBuildError(proxy, id);
        if (c.expectsError || suite === "TestNewAddPrefix") {
          if (c.expectsError) {
            assert.ok(error, `${label}: Traefik refuses this configuration`);
            assert.match(error, new RegExp(`middleware "m${id}@file"`), label);
          } else assert.equal(error, undefined, label);
          return;
        }
        assert.equal(error, undefined, `${label}: builds`);
        for (const path of BOTH_PATHS) {
          const at = `${label}${path}`;
          backend.seen.delete(id + path);
          const res = await exactExchange(proxy.port(), {
            target: c.path!,
            host: "localhost",
            headers: [["x-case", id + path]],
          });
          const status = c.expectedStatusCode ?? 200;
          assert.equal(res.status, status, `${at}: status`);
          const seen = backend.seen.get(id + path);
          if (status !== 200) {
            assert.equal(seen, undefined, `${at}: refused requests never reach the upstream`);
            continue;
          }
          assert.ok(seen, `${at}: forwarded`);
          assert.equal(seen.target, wireTarget(c), `${at}: request target upstream`);
          if (headerName && (type !== "replacePathRegex" || c.expectedHeader)) {
            assert.equal(
              header(seen.headers, headerName),
              c.expectedHeader || undefined,
              `${at}: ${headerName}`,
            );
          }
        }
      });
      total += ran;
      skipped += skip;
    }
    assert.equal(
      total + skipped,
      files.reduce((n, d) => n + d.suites.reduce((m, s) => m + s.cases.length, 0), 0),
    );
    assert.ok(total >= 55, `ran ${total} cases`);
  } finally {
    await proxy.close();
    backend.close();
  }
});

Deno.test("path middlewares: Portico's neighbour checks beyond Traefik's tables", async () => {
  const backend = startRecordingBackend();
  const extra: { id: string; type: string; config: Config }[] = [
    { id: "fs", type: "stripPrefix", config: { prefixes: ["/api"], forceSlash: true } },
    { id: "trim", type: "stripPrefix", config: { prefixes: ["  /api  "] } },
    { id: "none", type: "stripPrefix", config: {} },
    { id: "rx-trim", type: "stripPrefixRegex", config: { regex: ["  ^/t/[a-z]+  "] } },
    { id: "rx-empty", type: "stripPrefixRegex", config: { regex: [] } },
    { id: "rp-space", type: "replacePath", config: { path: "/a b(c)" } },
    { id: "rp-bad", type: "replacePath", config: { path: "/a%zz" } },
    { id: "rp-empty", type: "replacePath", config: { path: "" } },
    { id: "rpr-trim", type: "replacePathRegex", config: { regex: " ^/x ", replacement: "  /y  " } },
    { id: "rpr-500", type: "replacePathRegex", config: { regex: "^/p", replacement: "/%zz" } },
    { id: "rpr-dslash", type: "replacePathRegex", config: { regex: "^/d", replacement: "//" } },
    { id: "ap-space", type: "addPrefix", config: { prefix: "/a b" } },
  ];
  const proxy = await startTestProxy({ dynamic: caseRoutersToml(backend.url, extra, { webTwins: true }) });
  try {
    const sent = async (id: string, target: string) => {
      backend.seen.delete(id);
      const res = await exactExchange(proxy.port(), {
        target,
        host: "localhost",
        headers: [["x-case", id]],
      });
      return { res, seen: backend.seen.get(id) };
    };
    const both = async (id: string, target: string) => {
      const fast = await sent(id, target);
      const web = await sent(`${id}-web`, target);
      assert.deepEqual(
        [web.res.status, web.seen?.target],
        [fast.res.status, fast.seen?.target],
        `${id} ${target}: same answer on both paths`,
      );
      return fast;
    };
    const cases: [string, string, number, string | undefined][] = [
      // [id, target, status, target upstream]
      ["fs", "/api/x", 200, "/x"],
      ["fs", "/api", 200, "/"],
      ["fs", "/api../foo", 400, undefined],
      ["fs", "/api//x", 400, undefined],
      ["trim", "/api/x", 200, "/x"],
      ["none", "/api/x", 200, "/api/x"],
      ["rx-trim", "/t/abc/x", 200, "/x"],
      ["rx-empty", "/t/abc/x", 200, "/t/abc/x"],
      ["rp-space", "/z", 200, "/a%20b%28c%29"],
      ["rp-empty", "/z?q=1", 200, "/?q=1"],
      ["rpr-trim", "/x/1", 200, "/y/1"],
      ["rpr-500", "/p", 500, undefined],
      ["rpr-dslash", "/d", 400, undefined],
      ["ap-space", "/b%2Fc", 200, "/a%20b/b/c"],
    ];
    for (const [id, target, status, upstream] of cases) {
      const { res, seen } = await both(id, target);
      assert.equal(res.status, status, `${id} ${target}`);
      assert.equal(seen?.target, upstream, `${id} ${target}: upstream`);
    }
    const { res } = await sent("rpr-500", "/p");
    assert.equal(res.body, 'invalid URL escape "%zz"\n', "Go's error text");
    assert.match(
      caseBuildError(proxy, "rp-bad") ?? "",
      /middleware "mrp-bad@file": option path: "\/a%zz" has a malformed %-escape/,
    );
  } finally {
    await proxy.close();
    backend.close();
  }
});

// ---------------------------------------------------------------- redirects

interface RedirectCase extends Common {
  url: string;
  method?: string;
  headers?: Record<string, string>;
  secured?: boolean;
  expectedURL?: string;
  expectedStatus?: number;
  errorExpected?: boolean;
}

const REDIRECT_STATUSES = new Set([301, 302, 307, 308]);

Deno.test("Traefik's redirectRegex and redirectScheme tables over HTTP", async () => {
  const backend = startRecordingBackend();
  const regex = readTestData<DataFile<RedirectCase>>("traefik_mw_redirect_regex");
  const scheme = readTestData<DataFile<RedirectCase>>("traefik_mw_redirect_scheme");
  const cert = await generateSelfSigned({
    dnsNames: ["foo", "foo.com", "www.example.com", "localhost"],
  });
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/c.crt`, cert.certPem);
  await Deno.writeTextFile(`${dir}/c.key`, cert.keyPem);
  const all = [
    ...instances(regex, () => "redirectRegex"),
    ...instances(scheme, () => "redirectScheme"),
  ];
  // The Go tests set X-Forwarded-Proto on the request itself: the client is trusted.
  const trusted = "forwardedHeaders.insecure = true\n";
  const proxy = await startTestProxy({
    entryPoints: ["web", "websecure"],
    entryPointExtra: { web: trusted, websecure: `${trusted}[entryPoints.websecure.http.tls]\n` },
    dynamic: caseRoutersToml(backend.url, all, { webTwins: true }) +
      `[tls.stores.default.defaultCertificate]\ncertFile = "${dir}/c.crt"\nkeyFile = "${dir}/c.key"\n`,
  });
  let total = 0, skipped = 0, originForm = 0;
  try {
    for (const [name, data] of [["redirectRegex", regex], ["redirectScheme", scheme]] as const) {
      const [ran, skip] = await eachCase(data, async (c, id) => {
        const label = `${name} "${c.desc}"`;
        const error = caseBuildError(proxy, id);
        if (c.errorExpected) {
          assert.ok(error, `${label}: Traefik refuses this configuration`);
          assert.match(error, new RegExp(`middleware "m${id}@file"`), label);
          return;
        }
        assert.equal(error, undefined, `${label}: builds`);
        const m = /^(https?):\/\/([^/?#]*)(.*)$/.exec(c.url)!;
        // httptest.NewRequest marks an https URL as TLS; the request target is the URL itself.
        const onTls = c.secured === true || m[1] === "https";
        const send = (target: string) => {
          backend.seen.delete(id);
          return exactExchange(proxy.port(onTls ? "websecure" : "web"), {
            tls: onTls,
            method: c.method,
            target,
            host: m[2],
            headers: [["x-case", id], ["x-foo", "bar"], ...Object.entries(c.headers ?? {})],
          });
        };
        const expectAnswer = (res: ExactAnswer, how: string) => {
          assert.equal(res.status, c.expectedStatus, `${label} (${how}): status`);
          if (REDIRECT_STATUSES.has(c.expectedStatus!)) {
            assert.equal(
              header(res.headers, "location"),
              c.expectedURL,
              `${label} (${how}): Location`,
            );
            assert.equal(backend.seen.get(id), undefined, `${label} (${how}): not forwarded`);
          } else {
            assert.equal(
              header(res.headers, "location"),
              undefined,
              `${label} (${how}): no Location`,
            );
            if (c.expectedStatus === 200) {
              assert.ok(backend.seen.get(id), `${label} (${how}): forwarded`);
            }
          }
        };
        expectAnswer(await send(c.url), "absolute-form");
        // The scheme test repeats each request with an origin-form target;
        // its shared recorder makes only the pass-through cases count there.
        if (name === "redirectScheme" && c.expectedStatus === 200) {
          expectAnswer(await send(m[3] || "/"), "origin-form");
          originForm++;
        }
      });
      total += ran;
      skipped += skip;
    }
    assert.equal(total + skipped, regex.suites[0].cases.length + scheme.suites[0].cases.length);
    assert.equal(skipped, 2, "only the two internal ForcePermanentRedirect cases are skipped");
    assert.ok(originForm >= 4);
  } finally {
    await proxy.close();
    backend.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("redirects: Portico's neighbour checks beyond Traefik's tables", async () => {
  const backend = startRecordingBackend();
  const extra: { id: string; type: string; config: Config }[] = [
    {
      id: "ctl",
      type: "redirectRegex",
      config: { regex: "^(.*)$", replacement: "http://a.test/\n" },
    },
    {
      id: "port",
      type: "redirectRegex",
      config: { regex: "^(.*)$", replacement: "http://a.test:x/" },
    },
    {
      id: "norm",
      type: "redirectRegex",
      config: { regex: "^http://([^/]+)/(.*)$", replacement: "HTTPS://$1/new $2" },
    },
    { id: "v6", type: "redirectScheme", config: { scheme: "https" } },
    { id: "upper", type: "redirectScheme", config: { scheme: "HTTPS", port: "443" } },
    { id: "empty", type: "redirectRegex", config: { regex: "^x", replacement: "" } },
  ];
  const proxy = await startTestProxy({ dynamic: caseRoutersToml(backend.url, extra, { webTwins: true }) });
  try {
    const send = (id: string, target: string, host = "a.test") =>
      exactExchange(proxy.port(), { target, host, headers: [["x-case", id]] });
    assert.equal(
      (await send("ctl", "/")).status,
      502,
      "a control character in the URL is Go's parse error",
    );
    assert.equal((await send("port", "/")).status, 502, "a non-numeric port is Go's parse error");
    const norm = await send("norm", "/x?y=1");
    assert.equal(norm.status, 302);
    assert.equal(
      header(norm.headers, "location"),
      "https://a.test/new%20x?y=1",
      "Location as Go writes the URL back",
    );
    const v6 = await send("v6", "/p", "[::1]:8080");
    assert.equal(
      header(v6.headers, "location"),
      "https://[::1]/p",
      "an IPv6 Host keeps its brackets",
    );
    const upper = await send("upper", "/p");
    assert.equal(
      header(upper.headers, "location"),
      "https://a.test/p",
      "the scheme is lower-cased",
    );
    assert.match(
      caseBuildError(proxy, "empty") ?? "",
      /middleware "mempty@file": option replacement: must not be empty/,
    );
  } finally {
    await proxy.close();
    backend.close();
  }
});

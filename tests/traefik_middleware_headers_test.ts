/**
 * Traefik's own test tables for the headers middleware (custom headers,
 * CORS, secure headers) and for ipAllowList / ipWhiteList with ipStrategy
 * (pkg/ip strategy and checker), sent over real HTTP to Portico. The data
 * is in tests/data/traefik_mw_headers.json and traefik_mw_ip_allow_list.json;
 * how each Go test maps to HTTP and what only exists inside Go is in
 * tests/data/traefik_mw_paths_redirects_headers_ip.md.
 *
 * Every case gets its own router (matched on an `X-Case` header). A raw
 * socket backend records what Portico forwards and answers with the
 * response headers (and 1xx interim responses) a case asks for. Client
 * addresses come from a PROXY protocol header or from X-Forwarded-For on a
 * trusted entrypoint.
 */

import assert from "node:assert/strict";
import { startTestProxy } from "./fixtures/proxy.ts";
import { type ExactAnswer, exactExchange, startRecordingBackend } from "./fixtures/exact_http.ts";
import {
  type CaseMiddleware,
  caseBuildError,
  caseRoutersToml,
  readTestData,
} from "./fixtures/traefik_tables.ts";

type Config = Record<string, unknown>;
type HeaderMap = Record<string, string[] | null>;
interface Common {
  desc: string;
  config?: Config;
  notOverHttp?: string;
}
interface DataFile<C> {
  suites: { suite: string; file: string; cases: C[] }[];
}

// ---------------------------------------------------------------- wire helpers

/** What the backend must answer, sent by the test in `x-test-respond` (JSON). */
interface Respond {
  headers?: [string, string][];
  interim?: { status: number; link: string[] }[];
  body?: string;
}

const REASON: Record<number, string> = { 102: "Processing", 103: "Early Hints", 200: "OK" };

/** A recording backend that answers each request as its `x-test-respond` header (JSON) says. */
function startBackend() {
  return startRecordingBackend((headers) => {
    const respond: Respond = JSON.parse(headers.find(([h]) => h === "x-test-respond")?.[1] ?? "{}");
    let out = "";
    for (const i of respond.interim ?? []) {
      out += `HTTP/1.1 ${i.status} ${REASON[i.status]}\r\n${
        i.link.map((l) => `link: ${l}\r\n`).join("")
      }\r\n`;
    }
    const body = respond.body ?? "ok";
    out += "HTTP/1.1 200 OK\r\n";
    for (const [k, v] of respond.headers ?? []) out += `${k}: ${v}\r\n`;
    for (const i of (respond.interim ?? []).slice(-1)) {
      out += i.link.map((l) => `link: ${l}\r\n`).join("");
    }
    return out + `content-length: ${body.length}\r\n\r\n${body}`;
  });
}

/** One request to /foo with exact header lines (repeats allowed), optionally after a PROXY v1 line. */
function exchange(
  port: number,
  options: { method?: string; host?: string; headers: [string, string][]; proxyLine?: string },
): Promise<ExactAnswer> {
  return exactExchange(port, { ...options, target: "/foo", host: options.host ?? "localhost" });
}

function values(list: [string, string][], name: string): string[] {
  return list.filter(([k]) => k === name.toLowerCase()).map(([, v]) => v);
}

/** A request header map as lines, one per value (Go's `http.Header`). */
function lines(map: Record<string, string[]> | undefined): [string, string][] {
  return Object.entries(map ?? {}).flatMap(([k, vs]) => vs.map((v) => [k, v] as [string, string]));
}

const CORS_NAMES = [
  "access-control-allow-origin",
  "access-control-allow-credentials",
  "access-control-allow-headers",
  "access-control-allow-methods",
  "access-control-expose-headers",
  "access-control-max-age",
  "vary",
];
const SECURE_NAMES = [
  "strict-transport-security",
  "x-frame-options",
  "x-content-type-options",
  "x-xss-protection",
  "content-security-policy",
  "content-security-policy-report-only",
  "public-key-pins",
  "referrer-policy",
  "permissions-policy",
];

/** Asserts that `names` carry exactly the values of `expected` (absent when not listed). */
function assertExactly(
  list: [string, string][],
  expected: HeaderMap,
  names: string[],
  label: string,
) {
  const lower = new Map(Object.entries(expected).map(([k, v]) => [k.toLowerCase(), v]));
  for (const name of new Set([...names, ...lower.keys()])) {
    assert.deepEqual(values(list, name), lower.get(name) ?? [], `${label}: ${name}`);
  }
}

// ---------------------------------------------------------------- headers

interface HeadersCase extends Common {
  host?: string;
  expectedStatus?: number;
  expectsError?: boolean;
  expectedError?: boolean;
  requestHeaders?: Record<string, string[]>;
  backendResponseHeaders?: [string, string, string][];
  expected?: HeaderMap;
  expectedHost?: string;
  expectedRequestHeaders?: HeaderMap;
  expectedResponseHeaders?: HeaderMap;
  backend?: Respond & { interim: { status: number; link: string[] }[] };
  expectedInterim?: number[];
  expectedFinalLink?: string[];
  expectedBody?: string;
}


Deno.test("Traefik's headers middleware tables over HTTP: custom, CORS, secure", async (t) => {
  const backend = startBackend();
  const data = readTestData<DataFile<HeadersCase>>("traefik_mw_headers");
  const instances: CaseMiddleware[] = data.suites.flatMap((s) =>
    s.cases.flatMap((c, i) =>
      c.notOverHttp ? [] : [{ id: `${s.suite}-${i}`, type: "headers", config: c.config ?? {} }]
    )
  );
  const proxy = await startTestProxy({ dynamic: caseRoutersToml(backend.url, instances, { webTwins: true }) });
  let ran = 0, skipped = 0;
  try {
    for (const s of data.suites) {
      for (let i = 0; i < s.cases.length; i++) {
        const c = s.cases[i];
        const id = `${s.suite}-${i}`;
        const label = `${s.suite} "${c.desc}"`;
        if (c.notOverHttp) {
          skipped++;
          continue;
        }
        const error = caseBuildError(proxy, id);
        if (c.expectsError || c.expectedError) {
          assert.ok(error, `${label}: Traefik refuses this configuration`);
          assert.match(error, new RegExp(`middleware "m${id}@file"`), label);
          ran++;
          continue;
        }
        assert.equal(error, undefined, `${label}: builds`);
        for (const path of ["", "-web"]) {
          await runCase(c, s.suite, `${id}${path}`, `${label}${path}`);
        }
        ran++;
      }
    }
    const total = data.suites.reduce((n, s) => n + s.cases.length, 0);
    assert.equal(ran + skipped, total);
    assert.equal(skipped, 2, "only the two empty-config Header handler cases are skipped");
  } finally {
    await proxy.close();
    backend.close();
  }

  async function runCase(c: HeadersCase, suite: string, id: string, label: string) {
    const respond: Respond = {
      headers: (c.backendResponseHeaders ?? []).map(([, k, v]) => [k, v]),
      interim: c.backend?.interim,
      body: c.backend?.body,
    };
    backend.seen.delete(id);
    const isPreflight = suite === "TestNewHeader_CORSPreflights";
    const res = await exchange(proxy.port(), {
      method: isPreflight ? "OPTIONS" : "GET",
      host: c.host,
      headers: [
        ["x-case", id],
        ["x-test-respond", JSON.stringify(respond)],
        ...lines(c.requestHeaders),
      ],
    });
    const seen = backend.seen.get(id);
    switch (suite) {
      case "TestNew_allowedHosts":
        assert.equal(res.status, c.expectedStatus, `${label}: status`);
        assert.equal(seen !== undefined, c.expectedStatus === 200, `${label}: forwarded`);
        break;
      case "TestNew_withSTSSecondsZero":
        assert.equal(res.status, 200, label);
        assertExactly(res.headers, {}, SECURE_NAMES, label);
        break;
      case "TestNew_customHeaders":
        assertExactly(seen!.headers, c.expectedRequestHeaders!, [], `${label} (request)`);
        assertExactly(res.headers, c.expectedResponseHeaders!, [], `${label} (response)`);
        break;
      case "Test1xxResponses":
        assert.equal(res.body, c.expectedBody, label);
        // The Web path writes repeated fields as one comma-joined line (Web
        // Headers), the byte path as separate lines: the same list either way.
        assert.equal(
          values(res.headers, "link").join(", "),
          c.expectedFinalLink!.join(", "),
          `${label}: final Link headers`,
        );
        assertExactly(res.headers, c.expectedResponseHeaders!, [], label);
        await t.step({
          name: "KNOWN GAP (lib/proxy, not this middleware): 1xx interim responses are not relayed",
          ignore: true,
          fn: () => assert.deepEqual(res.statuses.slice(0, -1), c.expectedInterim),
        });
        break;
      case "TestNewHeader_customRequestHeader": {
        const names = [...Object.keys(c.config!.customRequestHeaders as Config), "Foo"];
        for (const name of new Set(names)) {
          const want = c.expected![name] ??
            c.expected![
              Object.keys(c.expected!).find((k) => k.toLowerCase() === name.toLowerCase()) ?? ""
            ];
          const got = values(seen!.headers, name);
          if (name.toLowerCase() === "x-forwarded-for") {
            await t.step({
              name:
                `${label}: X-Forwarded-For = "" removes it upstream`,
              fn: () => assert.deepEqual(got, [], `${label}: ${name}`),
            });
            continue;
          }
          assert.deepEqual(got, want ?? [], `${label}: ${name}`);
        }
        break;
      }
      case "TestNewHeader_customRequestHeader_Host":
        assert.deepEqual(
          values(seen!.headers, "host"),
          [c.expectedHost],
          `${label}: Host upstream`,
        );
        break;
      case "TestNewHeader_CORSPreflights":
        assert.equal(res.status, 200, `${label}: status`);
        assert.equal(seen, undefined, `${label}: a preflight is answered by the proxy`);
        assertExactly(res.headers, c.expected!, [...CORS_NAMES, "content-length"], label);
        break;
      case "TestNewHeader_CORSResponses":
        assert.equal(res.status, 200, `${label}: status`);
        assert.ok(seen, `${label}: forwarded`);
        assertExactly(res.headers, c.expected!, CORS_NAMES, label);
        break;
      case "TestNewHeader_customResponseHeaders":
        assertExactly(
          res.headers,
          c.expected!,
          [...Object.keys(c.config!.customResponseHeaders as Config), "Foo"].map((n) =>
            n.toLowerCase()
          ),
          label,
        );
        break;
      case "Test_newSecure_modifyResponse":
        assertExactly(res.headers, c.expected!, SECURE_NAMES, label);
        break;
      default:
        throw new Error(`no runner for ${suite}`);
    }
  }
});

Deno.test("headers: Portico's neighbour checks beyond Traefik's tables", async (t) => {
  const backend = startBackend();
  const instances: CaseMiddleware[] = [
    {
      id: "cred-any",
      type: "headers",
      config: {
        accessControlAllowCredentials: true,
        accessControlAllowHeaders: ["*"],
        accessControlAllowMethods: ["*"],
        accessControlAllowOriginList: ["*"],
        accessControlExposeHeaders: ["*"],
      },
    },
    {
      id: "maxage0",
      type: "headers",
      config: { accessControlAllowOriginList: ["*"], accessControlMaxAge: 0 },
    },
    { id: "star-no-origin", type: "headers", config: { accessControlAllowOriginList: ["*"] } },
    {
      id: "hosts",
      type: "headers",
      config: {
        allowedHosts: ["Foo.COM"],
        hostsProxyHeaders: ["X-Forwarded-Host"],
        customResponseHeaders: { "X-After": "1" },
      },
    },
    {
      id: "host-override",
      type: "headers",
      config: { allowedHosts: ["inner.test"], customRequestHeaders: { Host: "inner.test" } },
    },
    {
      id: "dev",
      type: "headers",
      config: {
        allowedHosts: ["x.test"],
        stsSeconds: 60,
        forceSTSHeader: true,
        publicKey: "pin",
        isDevelopment: true,
        frameDeny: true,
      },
    },
    {
      id: "hpkp",
      type: "headers",
      config: { publicKey: "pin-sha256=x", sslProxyHeaders: { "X-Forwarded-Proto": "https" } },
    },
    { id: "nonce", type: "headers", config: { contentSecurityPolicy: "script-src $NONCE" } },
    {
      id: "perm",
      type: "headers",
      config: {
        permissionsPolicy: "camera=()",
        referrerPolicy: "no-referrer",
        customBrowserXSSValue: "0",
        contentSecurityPolicyReportOnly: "default-src 'self'",
        stsSeconds: 5,
        stsIncludeSubdomains: true,
      },
    },
    { id: "removed", type: "headers", config: { sslRedirect: true } },
    ...["sslTemporaryRedirect", "sslHost", "sslForceHost"].map((option) => ({
      id: `removed-${option}`,
      type: "headers",
      config: { frameDeny: true, [option]: option === "sslHost" ? "a.test" : true },
    })),
    { id: "feature", type: "headers", config: { featurePolicy: "camera 'none'" } },
    { id: "crlf", type: "headers", config: { customResponseHeaders: { "X-A": "a\r\nb" } } },
    {
      id: "fwd",
      type: "headers",
      config: {
        customRequestHeaders: {
          "X-Forwarded-Proto": "",
          "X-Forwarded-Server": "edge-7",
          "X-Real-Ip": "",
        },
      },
    },
  ];
  const proxy = await startTestProxy({
    dynamic: caseRoutersToml(backend.url, instances),
    entryPoints: ["web", "trusted"],
    entryPointExtra: { trusted: "forwardedHeaders.insecure = true" },
  });
  try {
    const send = (
      id: string,
      headers: [string, string][] = [],
      options: { method?: string; host?: string; ep?: string } = {},
    ) =>
      exchange(proxy.port(options.ep), {
        method: options.method,
        host: options.host,
        headers: [["x-case", id], ...headers],
      });
    const pre = await send("cred-any", [
      ["origin", "https://a.test"],
      ["access-control-request-method", "PATCH"],
      ["access-control-request-headers", "x-a, x-b"],
    ], { method: "OPTIONS" });
    assertExactly(
      pre.headers,
      {
        "access-control-allow-origin": ["https://a.test"],
        "access-control-allow-credentials": ["true"],
        "access-control-allow-headers": ["x-a, x-b"],
        "access-control-allow-methods": ["PATCH"],
      },
      CORS_NAMES,
      "* with credentials echoes the request (expose * is dropped)",
    );
    const zero = await send("maxage0", [["origin", "https://a.test"], [
      "access-control-request-method",
      "GET",
    ]], { method: "OPTIONS" });
    assert.deepEqual(
      values(zero.headers, "access-control-max-age"),
      ["0"],
      "an explicit 0 is sent",
    );
    const bare = await send("star-no-origin");
    assert.deepEqual(
      values(bare.headers, "access-control-allow-origin"),
      ["*"],
      "* is sent even without Origin, as Traefik does",
    );

    assert.equal(
      (await send("hosts", [], { host: "foo.com" })).status,
      200,
      "allowedHosts is case-insensitive",
    );
    const bad = await send("hosts", [], { host: "evil.test" });
    assert.equal(bad.status, 500);
    assert.equal(bad.body, "Bad Host\n");
    assert.deepEqual(
      values(bad.headers, "x-after"),
      ["1"],
      "custom response headers wrap the Bad Host answer",
    );
    assert.equal(
      (await send("hosts", [["x-forwarded-host", "foo.com"]], { host: "evil.test" })).status,
      500,
      "an untrusted X-Forwarded-Host does not count",
    );
    assert.equal(
      (await send("hosts", [["x-forwarded-host", "foo.com"]], { host: "evil.test", ep: "trusted" }))
        .status,
      200,
      "a trusted one does",
    );
    assert.equal(
      (await send("host-override", [], { host: "outer.test" })).status,
      200,
      "a custom Host is what allowedHosts checks",
    );
    assert.deepEqual(values(backend.seen.get("host-override")!.headers, "host"), ["inner.test"]);

    const dev = await send("dev", [], { host: "other.test" });
    assert.equal(dev.status, 200, "isDevelopment turns allowedHosts off");
    assertExactly(
      dev.headers,
      { "x-frame-options": ["DENY"] },
      SECURE_NAMES,
      "isDevelopment drops STS and HPKP only",
    );
    assert.deepEqual(
      values((await send("hpkp")).headers, "public-key-pins"),
      [],
      "HPKP only on HTTPS",
    );
    assert.deepEqual(
      values(
        (await send("hpkp", [["x-forwarded-proto", "https"]], { ep: "trusted" })).headers,
        "public-key-pins",
      ),
      ["pin-sha256=x"],
    );
    const n1 = values((await send("nonce")).headers, "content-security-policy")[0];
    const n2 = values((await send("nonce")).headers, "content-security-policy")[0];
    assert.match(n1, /^script-src 'nonce-[A-Za-z0-9+/]{22}'$/);
    assert.notEqual(n1, n2, "a fresh nonce per response");
    assertExactly(
      (await send("perm")).headers,
      {
        "permissions-policy": ["camera=()"],
        "referrer-policy": ["no-referrer"],
        "x-xss-protection": ["0"],
        "content-security-policy-report-only": ["default-src 'self'"],
      },
      SECURE_NAMES,
      "no STS on plain HTTP",
    );
    assert.deepEqual(
      values(
        (await send("perm", [["x-forwarded-proto", "https"]], { ep: "trusted" })).headers,
        "strict-transport-security",
      ),
      [],
    );
    assert.match(
      caseBuildError(proxy, "removed") ?? "",
      /middleware "mremoved@file": option sslRedirect: was removed in Traefik v3/,
    );
    for (const option of ["sslTemporaryRedirect", "sslHost", "sslForceHost"]) {
      assert.match(
        caseBuildError(proxy, `removed-${option}`) ?? "",
        new RegExp(`option ${option}: was removed in Traefik v3 .*use a redirect(Scheme|Regex)`),
      );
    }
    assert.match(
      caseBuildError(proxy, "feature") ?? "",
      /option featurePolicy: was removed in Traefik v3 .*use permissionsPolicy/,
    );
    assert.match(
      caseBuildError(proxy, "crlf") ?? "",
      /option customResponseHeaders\.X-A: must not contain CR, LF or NUL/,
    );
    for (const id of ["fwd"]) {
      await send(id);
      const seen = backend.seen.get(id)!;
      await t.step({
        name:
          "a middleware's edits of X-Forwarded-* are final",
        fn: () => {
          assert.deepEqual(values(seen.headers, "x-forwarded-proto"), [], "removed stays removed");
          assert.deepEqual(values(seen.headers, "x-real-ip"), []);
          assert.deepEqual(
            values(seen.headers, "x-forwarded-server"),
            ["edge-7"],
            "a set value wins",
          );
        },
      });
    }
  } finally {
    await proxy.close();
    backend.close();
  }
});

// ---------------------------------------------------------------- ipAllowList, ipStrategy, checker

interface IpCase extends Common {
  type?: string;
  expectedError?: boolean;
  remoteAddr?: string;
  expected?: number | string;
  ipv6Subnet?: number;
  depth?: number;
  xForwardedFor?: string;
  excludedIPs?: string[];
  sourceRange?: string[] | null;
  address?: string;
  authorized?: boolean;
  passIPs?: string[];
  rejectIPs?: string[];
  brokenIPs?: string[];
}

/** A PROXY v1 line making `remoteAddr` (Go's "host:port" / "[v6]:port") the client. */
function proxyLine(remoteAddr: string): string {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(remoteAddr)!;
  const v6 = m[1].includes(":");
  return `PROXY ${v6 ? "TCP6" : "TCP4"} ${m[1]} ${v6 ? "::1" : "127.0.0.1"} ${m[2]} 80\r\n`;
}

const ALLOW_ALL = ["0.0.0.0/0", "::/0"];

/** One request expectation: which middleware instance, how the client is set, what must come back. */
interface Probe {
  id: string;
  label: string;
  ep: "proxied" | "trusted";
  remoteAddr?: string;
  xff?: string;
  status: number;
}

Deno.test("Traefik's ipAllowList, ipWhiteList, ipStrategy and checker tables over HTTP", async () => {
  const backend = startBackend();
  const data = readTestData<DataFile<IpCase>>("traefik_mw_ip_allow_list");
  const instances: CaseMiddleware[] = [];
  const probes: Probe[] = [];
  const builds: { id: string; label: string; error: boolean }[] = [];
  let ran = 0, skipped = 0;
  const add = (id: string, type: string, config: Config) => instances.push({ id, type, config });
  for (const s of data.suites) {
    s.cases.forEach((c, i) => {
      const id = `${s.suite}-${i}`;
      const label = `${s.suite} "${c.desc}"`;
      if (c.notOverHttp) return skipped++;
      ran++;
      switch (s.suite) {
        case "TestNewIPAllowLister":
        case "TestNewIPWhiteLister":
          add(id, c.type!, c.config!);
          builds.push({ id, label, error: c.expectedError! });
          break;
        case "TestIPAllowLister_ServeHTTP":
        case "TestIPWhiteLister_ServeHTTP":
          add(id, c.type!, c.config!);
          probes.push({
            id,
            label,
            ep: "proxied",
            remoteAddr: c.remoteAddr,
            status: c.expected as number,
          });
          break;
        case "TestRemoteAddrStrategy_GetIP":
        case "TestDepthStrategy_GetIP":
        case "TestTrustedIPsStrategy_GetIP": {
          // The chosen address is observed through ipAllowList: a range holding
          // exactly it lets the request in, one holding every other address does not.
          const strategy: Config = {};
          if (c.depth !== undefined) strategy.depth = c.depth;
          if (c.excludedIPs) strategy.excludedIPs = c.excludedIPs;
          if (c.ipv6Subnet !== undefined) strategy.ipv6Subnet = c.ipv6Subnet;
          const withStrategy = (range: string[]) =>
            Object.keys(strategy).length
              ? { sourceRange: range, ipStrategy: strategy }
              : { sourceRange: range };
          const how = c.remoteAddr !== undefined
            ? { ep: "proxied" as const, remoteAddr: c.remoteAddr }
            : { ep: "trusted" as const, xff: c.xForwardedFor };
          const expected = c.expected as string;
          const candidates = c.remoteAddr !== undefined
            ? [/^\[?([^\]]+?)\]?:\d+$/.exec(c.remoteAddr)![1]]
            : c.xForwardedFor!.split(",").map((x) => x.trim()).filter((x) => x !== "");
          const others = candidates.filter((x) => x !== expected);
          if (expected === "") {
            add(`${id}-all`, "ipAllowList", withStrategy(ALLOW_ALL));
            probes.push({
              id: `${id}-all`,
              label: `${label}: no address, so even 0.0.0.0/0 refuses`,
              ...how,
              status: 403,
            });
          } else {
            add(`${id}-exact`, "ipAllowList", withStrategy([expected]));
            probes.push({
              id: `${id}-exact`,
              label: `${label}: ${expected} is chosen`,
              ...how,
              status: 200,
            });
          }
          if (others.length) {
            add(`${id}-others`, "ipAllowList", withStrategy(others));
            probes.push({
              id: `${id}-others`,
              label: `${label}: no other address is chosen`,
              ...how,
              status: 403,
            });
          }
          break;
        }
        case "TestIsAuthorized":
          add(id, "ipAllowList", { sourceRange: c.sourceRange, ipStrategy: { depth: 1 } });
          probes.push({
            id,
            label,
            ep: "trusted",
            xff: c.address,
            status: c.authorized ? 200 : 403,
          });
          break;
        case "TestNew":
          add(id, "ipAllowList", c.sourceRange === null ? {} : { sourceRange: c.sourceRange });
          builds.push({ id, label, error: c.expectedError! });
          break;
        case "TestContainsIsAllowed":
          add(id, "ipAllowList", { sourceRange: c.sourceRange, ipStrategy: { depth: 1 } });
          builds.push({ id, label, error: false });
          for (const ip of c.passIPs!) {
            probes.push({
              id,
              label: `${label}: ${ip} passes`,
              ep: "trusted",
              xff: ip,
              status: 200,
            });
          }
          for (const ip of c.rejectIPs!) {
            probes.push({
              id,
              label: `${label}: ${ip} is refused`,
              ep: "trusted",
              xff: ip,
              status: 403,
            });
          }
          break;
        case "TestContainsBrokenIPs":
          add(id, "ipAllowList", { sourceRange: c.sourceRange, ipStrategy: { depth: 1 } });
          add(`${id}-all`, "ipAllowList", { sourceRange: ALLOW_ALL, ipStrategy: { depth: 1 } });
          for (const ip of c.brokenIPs!) {
            probes.push({
              id,
              label: `${label}: ${JSON.stringify(ip)} is refused`,
              ep: "trusted",
              xff: ip,
              status: 403,
            });
            probes.push({
              id: `${id}-all`,
              label: `${label}: ${JSON.stringify(ip)} is refused by 0.0.0.0/0`,
              ep: "trusted",
              xff: ip,
              status: 403,
            });
          }
          break;
        default:
          throw new Error(`no runner for ${s.suite}`);
      }
    });
  }
  const proxy = await startTestProxy({
    dynamic: caseRoutersToml(backend.url, instances),
    entryPoints: ["proxied", "trusted"],
    entryPointExtra: {
      proxied: "proxyProtocol.insecure = true",
      trusted: "forwardedHeaders.insecure = true",
    },
  });
  try {
    for (const b of builds) {
      const error = caseBuildError(proxy, b.id);
      if (b.error) {
        assert.ok(error, `${b.label}: Traefik refuses this configuration`);
        assert.match(error, new RegExp(`middleware "m${b.id}@file"`), b.label);
      } else assert.equal(error, undefined, `${b.label}: builds`);
    }
    for (const p of probes) {
      assert.equal(caseBuildError(proxy, p.id), undefined, `${p.label}: builds`);
      const headers: [string, string][] = [["x-case", p.id]];
      if (p.xff !== undefined) headers.push(["x-forwarded-for", p.xff]);
      const res = await exchange(proxy.port(p.ep), {
        headers,
        proxyLine: p.remoteAddr === undefined ? undefined : proxyLine(p.remoteAddr),
      });
      assert.equal(res.status, p.status, p.label);
      if (p.status === 403) assert.equal(res.body, "Forbidden", `${p.label}: Go's status text`);
      if (p.status === 404) assert.equal(res.body, "Not Found", `${p.label}: Go's status text`);
    }
    assert.equal(ran + skipped, data.suites.reduce((n, s) => n + s.cases.length, 0));
    assert.equal(skipped, 4);
    assert.ok(probes.length > 120, `${probes.length} requests`);
  } finally {
    await proxy.close();
    backend.close();
  }
});

Deno.test("ipAllowList and ipStrategy: Portico's neighbour checks beyond Traefik's tables", async (t) => {
  const backend = startBackend();
  const instances: CaseMiddleware[] = [
    {
      id: "subnet500",
      type: "ipAllowList",
      config: { sourceRange: ALLOW_ALL, ipStrategy: { ipv6Subnet: 500 } },
    },
    {
      id: "subnet0",
      type: "ipAllowList",
      config: { sourceRange: ALLOW_ALL, ipStrategy: { depth: 1, ipv6Subnet: 0 } },
    },
    {
      id: "depth-excluded",
      type: "ipAllowList",
      config: { sourceRange: ALLOW_ALL, ipStrategy: { depth: 1, excludedIPs: ["10.0.0.1"] } },
    },
    {
      id: "excluded-subnet",
      type: "ipAllowList",
      config: { sourceRange: ALLOW_ALL, ipStrategy: { excludedIPs: ["10.0.0.1"], ipv6Subnet: 64 } },
    },
    {
      id: "status499",
      type: "ipAllowList",
      config: { sourceRange: ["10.0.0.0/8"], rejectStatusCode: 499 },
    },
    {
      id: "status100",
      type: "ipAllowList",
      config: { sourceRange: ["10.0.0.0/8"], rejectStatusCode: 100 },
    },
    {
      id: "teapot",
      type: "ipAllowList",
      config: { sourceRange: ["10.0.0.0/8"], rejectStatusCode: 418 },
    },
    {
      id: "mapped",
      type: "ipAllowList",
      config: { sourceRange: ["0.0.0.0"], ipStrategy: { depth: 1, ipv6Subnet: 96 } },
    },
    {
      id: "mapped-unmasked",
      type: "ipAllowList",
      config: { sourceRange: ["1.2.3.4"], ipStrategy: { depth: 1, ipv6Subnet: 96 } },
    },
    {
      id: "empty-entries",
      type: "ipAllowList",
      config: { sourceRange: ["1.1.1.1"], ipStrategy: { depth: 2 } },
    },
    {
      id: "v6-port",
      type: "ipAllowList",
      config: { sourceRange: ["2001:db8::/32"], ipStrategy: { depth: 1 } },
    },
    {
      id: "wl-status",
      type: "ipWhiteList",
      config: { sourceRange: ["10.0.0.0/8"], rejectStatusCode: 404 },
    },
  ];
  const proxy = await startTestProxy({
    dynamic: caseRoutersToml(backend.url, instances),
    entryPoints: ["trusted", "untrusted"],
    entryPointExtra: { trusted: "forwardedHeaders.insecure = true" },
  });
  try {
    const errors: [string, RegExp][] = [
      ["subnet500", /ipStrategy\.ipv6Subnet: expected a prefix length from 1 to 128, found 500/],
      ["subnet0", /ipStrategy\.ipv6Subnet: expected a prefix length from 1 to 128, found 0/],
      ["depth-excluded", /ipStrategy\.excludedIPs: has no effect together with depth/],
      ["excluded-subnet", /ipStrategy\.ipv6Subnet: has no effect with excludedIPs/],
      ["status499", /rejectStatusCode: expected an HTTP status from 200 to 599 .* found 499/],
      ["status100", /rejectStatusCode: .* found 100/],
    ];
    for (const [id, error] of errors) {
      assert.match(
        caseBuildError(proxy, id) ?? "",
        new RegExp(`middleware "m${id}@file": .*${error.source}`),
        id,
      );
    }
    const send = (id: string, xff: string, ep = "trusted") =>
      exchange(proxy.port(ep), { headers: [["x-case", id], ["x-forwarded-for", xff]] });
    const teapot = await send("teapot", "1.1.1.1");
    assert.deepEqual([teapot.status, teapot.body], [418, "I'm a teapot"]);
    // Go counts ::ffff:1.2.3.4 as IPv6 for ipv6Subnet: /96 leaves ::ffff:0.0.0.0, which is 0.0.0.0.
    assert.equal(
      (await send("mapped", "::ffff:1.2.3.4")).status,
      200,
      "a v4-mapped address is masked as IPv6",
    );
    assert.equal((await send("mapped-unmasked", "::ffff:1.2.3.4")).status, 403);
    assert.equal(
      (await send("mapped-unmasked", "1.2.3.4")).status,
      200,
      "plain IPv4 is never masked",
    );
    assert.equal(
      (await send("empty-entries", "1.1.1.1,,2.2.2.2")).status,
      403,
      "empty entries count for depth: depth 2 is the empty one",
    );
    assert.equal((await send("empty-entries", "1.1.1.1,2.2.2.2")).status, 200);
    assert.equal(
      (await send("v6-port", "[2001:db8::1]:443")).status,
      200,
      "an entry with a port counts as its host",
    );
    assert.equal(
      (await send("v6-port", "2001:db8::1%eth0")).status,
      200,
      "an IPv6 zone is ignored",
    );
    assert.equal(
      (await send("v6-port", "[2001:db8::1]:443", "untrusted")).status,
      403,
      "X-Forwarded-For from an untrusted client is ignored",
    );
    await t.step({
      name: "rejectStatusCode is refused on ipWhiteList",
      fn: () =>
        assert.match(
          caseBuildError(proxy, "wl-status") ?? "",
          /middleware "mwl-status@file": option rejectStatusCode: is not an ipWhiteList option/,
        ),
    });
  } finally {
    await proxy.close();
    backend.close();
  }
});

/**
 * @module
 * Table-driven tests for lib/rules: every matcher, operators and precedence, quoting,
 * errors with columns, priorities, parseDomains, exactHosts, the printer, routingPath,
 * query parsing and the RE2 translation/rejection list.
 */

import assert from "node:assert/strict";
import {
  canonicalHost,
  compareRoutes,
  compileRule,
  defaultPriority,
  exactHosts,
  type MatchRequest,
  matchRequestFrom,
  parseDomains,
  parseQuery,
  parseRule,
  printRule,
  routingPath,
  RoutingPathError,
  RuleSyntaxError,
} from "../lib/rules/mod.ts";

interface ReqInit {
  method?: string;
  host?: string;
  path?: string;
  query?: string;
  headers?: [string, string][];
  ip?: string;
}

function req(init: ReqInit = {}): MatchRequest {
  const headers = new Headers();
  for (const [k, v] of init.headers ?? []) headers.append(k, v);
  return {
    method: init.method ?? "GET",
    host: init.host ?? "example.com",
    path: init.path ?? "/",
    query: init.query ?? "",
    headers,
    clientIp: init.ip ?? "192.0.2.1",
  };
}

// [rule, request, expected match]
const MATCH: [string, ReqInit, boolean][] = [
  // Host
  ["Host(`example.com`)", { host: "example.com" }, true],
  ["Host(`example.com`)", { host: "example.org" }, false],
  ["Host(`EXAMPLE.com`)", { host: "example.com" }, true],
  ["Host(`example.com`)", { host: "example.com." }, true],
  ["Host(`example.com.`)", { host: "example.com" }, true],
  ["Host(`example.com.`)", { host: "example.com." }, true],
  ["Host(`example.com`)", { host: "example.com.." }, false],
  ["Host(`example.com`)", { host: "" }, false],
  ["Host(`*.example.com`)", { host: "a.example.com" }, true],
  ["Host(`*.example.com`)", { host: "a.b.example.com" }, false],
  ["Host(`*.example.com`)", { host: "example.com" }, false],
  ["Host(`*.example.com`)", { host: "a.example.com." }, true],
  ["Host(`*`)", { host: "anything.at.all" }, true],
  ["Host(`*`)", { host: "" }, false],
  ["Host(`10::10`)", { host: "10::10" }, true],
  ["Host(`127.0.0.1`)", { host: "127.0.0.1" }, true],
  // HostRegexp
  ["HostRegexp(`^[a-z]+\\.example\\.com$`)", { host: "api.example.com" }, true],
  ["HostRegexp(`^[a-z]+\\.example\\.com$`)", { host: "api.example.org" }, false],
  ["HostRegexp(`example`)", { host: "www.example.com" }, true],
  ["HostRegexp(`^[A-Z]+$`)", { host: "abc" }, false],
  ["HostRegexp(`(?i)^[A-Z]+$`)", { host: "abc" }, true],
  ["HostRegexp(`^(?P<sub>[a-z]+)\\.a\\.com$`)", { host: "x.a.com" }, true],
  // Path, PathPrefix, PathRegexp
  ["Path(`/css`)", { path: "/css" }, true],
  ["Path(`/css`)", { path: "/css/" }, false],
  ["Path(`/css`)", { path: "/CSS" }, false],
  ["Path(`/foo bar`)", { path: "/foo bar" }, true],
  ["PathPrefix(`/css`)", { path: "/css/main.css" }, true],
  ["PathPrefix(`/css`)", { path: "/cs" }, false],
  ["PathPrefix(`/`)", { path: "/anything" }, true],
  ["PathPrefix(`/a%2Fb`)", { path: "/a%2Fb/c" }, true],
  ["PathRegexp(`^/(css|js)/`)", { path: "/js/app.js" }, true],
  ["PathRegexp(`^/(css|js)/`)", { path: "/img/a.png" }, false],
  ["PathRegexp(`\\.php$`)", { path: "/x/index.php" }, true],
  ["PathRegexp(`^/v[0-9]{1,2}/`)", { path: "/v10/x" }, true],
  ["PathRegexp(`^/v[0-9]{1,2}/`)", { path: "/v100/x" }, false],
  ["PathRegexp(`^/a.c$`)", { path: "/a\nc" }, false],
  ["PathRegexp(`(?s)^/a.c$`)", { path: "/a\nc" }, true],
  ["PathRegexp(`^/a.c$`)", { path: "/a\rc" }, true],
  ["PathRegexp(`^/[[:digit:]]+$`)", { path: "/123" }, true],
  ["PathRegexp(`^/api-v[0-9]+/`)", { path: "/api-v2/x" }, true],
  ["HostRegexp(`^api-[a-z]+\\.example\\.com$`)", { host: "api-eu.example.com" }, true],
  ["PathRegexp(`^/(?:api|v2)/x$`)", { path: "/v2/x" }, true],
  ["PathRegexp(`^/(?:api|v2)/x$`)", { path: "/v3/x" }, false],
  ["PathRegexp(`^/\\pL+$`)", { path: "/été" }, true],
  ["PathRegexp(`^/x{,2}$`)", { path: "/x{,2}" }, true],
  ["PathRegexp(`^/\\Q.*\\E$`)", { path: "/.*" }, true],
  ["PathRegexp(`^/\\Q.*\\E$`)", { path: "/ab" }, false],
  // Method
  ["Method(`GET`)", { method: "GET" }, true],
  ["Method(`get`)", { method: "GET" }, true],
  ["Method(`GET`)", { method: "get" }, false],
  ["Method(`POST`)", { method: "GET" }, false],
  ["Method(`PURGE`)", { method: "PURGE" }, true],
  // Header, HeaderRegexp
  ["Header(`X-Env`, `prod`)", { headers: [["x-env", "prod"]] }, true],
  ["Header(`x-env`, `prod`)", { headers: [["X-Env", "prod"]] }, true],
  ["Header(`X-Env`, `prod`)", { headers: [["X-Env", "Prod"]] }, false],
  ["Header(`X-Env`, `prod`)", { headers: [] }, false],
  ["Header(`X-Env`, `prod`)", { headers: [["X-Env", "dev"], ["X-Env", "prod"]] }, true],
  ["Header(`Date`, `Mon, 01 Jan`)", { headers: [["Date", "Mon, 01 Jan"]] }, true],
  ["Header(`bad name`, `x`)", { headers: [] }, false],
  ["HeaderRegexp(`X-Proto`, `^https?$`)", { headers: [["X-Proto", "https"]] }, true],
  ["HeaderRegexp(`X-Proto`, `^https?$`)", { headers: [["X-Proto", "HTTPS"]] }, false],
  [
    "HeaderRegexp(`X-Proto`, `^https?$`)",
    { headers: [["X-Proto", "ws"], ["X-Proto", "http"]] },
    true,
  ],
  ["HeaderRegexp(`X-Proto`, `^$`)", { headers: [["X-Proto", ""]] }, true],
  ["HeaderRegexp(`X-Proto`, `^$`)", { headers: [] }, false],
  ["HeaderRegexp(`User-Agent`, `(?i)curl`)", { headers: [["User-Agent", "CURL/8"]] }, true],
  // Query, QueryRegexp
  ["Query(`q`, `traefik`)", { query: "q=traefik" }, true],
  ["Query(`q`, `traefik`)", { query: "a=1&q=traefik" }, true],
  ["Query(`q`, `traefik`)", { query: "q=nginx&q=traefik" }, true],
  ["Query(`q`, `traefik`)", { query: "Q=traefik" }, false],
  ["Query(`q`, `traefik`)", { query: "" }, false],
  ["Query(`q`, `a b`)", { query: "q=a+b" }, true],
  ["Query(`q`, `a b`)", { query: "q=a%20b" }, true],
  ["Query(`q`, `a+b`)", { query: "q=a%2Bb" }, true],
  ["Query(`q`, `x`)", { query: "q=x;y=1" }, false],
  ["Query(`q`, `x`)", { query: "q=x&y=1;2" }, true],
  ["Query(`q`, `x`)", { query: "q=x&&&" }, true],
  ["Query(`q`, `x`)", { query: "q=%zz&q=x" }, true],
  ["Query(`mobile`)", { query: "mobile" }, true],
  ["Query(`mobile`)", { query: "mobile=" }, true],
  ["Query(`mobile`)", { query: "mobile=true" }, false],
  ["Query(`k y`, `v`)", { query: "k+y=v" }, true],
  ["QueryRegexp(`q`, `^(a|b)$`)", { query: "q=b" }, true],
  ["QueryRegexp(`q`, `^(a|b)$`)", { query: "q=c" }, false],
  ["QueryRegexp(`q`, `^.*$`)", { query: "q=" }, true],
  ["QueryRegexp(`q`)", { query: "q" }, true],
  ["QueryRegexp(`q`)", { query: "q=1" }, false],
  // ClientIP
  ["ClientIP(`10.0.0.0/8`)", { ip: "10.1.2.3" }, true],
  ["ClientIP(`10.0.0.0/8`)", { ip: "11.1.2.3" }, false],
  ["ClientIP(`10.0.0.1`)", { ip: "10.0.0.1" }, true],
  ["ClientIP(`10.0.0.1`)", { ip: "::ffff:10.0.0.1" }, true],
  ["ClientIP(`10.0.0.0/8`)", { ip: "::ffff:10.9.9.9" }, true],
  ["ClientIP(`::1`)", { ip: "::1" }, true],
  ["ClientIP(`::1`)", { ip: "0:0:0:0:0:0:0:1" }, true],
  ["ClientIP(`fd00::/8`)", { ip: "fd12::5" }, true],
  ["ClientIP(`fd00::/8`)", { ip: "fe80::1" }, false],
  ["ClientIP(`192.168.1.1/24`)", { ip: "192.168.1.200" }, true],
  ["ClientIP(`10.0.0.1`)", { ip: "1" }, false],
  ["ClientIP(`10.0.0.1`)", { ip: "" }, false],
  ["ClientIP(`0.0.0.0/0`)", { ip: "::1" }, false],
  // operators, precedence, parentheses, quoting, case of names
  ["Host(`a.com`) && Path(`/x`)", { host: "a.com", path: "/x" }, true],
  ["Host(`a.com`) && Path(`/x`)", { host: "a.com", path: "/y" }, false],
  ["Host(`a.com`) || Path(`/x`)", { host: "b.com", path: "/x" }, true],
  ["!Host(`a.com`)", { host: "b.com" }, true],
  ["!Host(`a.com`)", { host: "a.com" }, false],
  ["!!Host(`a.com`)", { host: "a.com" }, true],
  ["Host(`a`) || Host(`b`) && Path(`/x`)", { host: "a", path: "/y" }, true],
  ["(Host(`a`) || Host(`b`)) && Path(`/x`)", { host: "a", path: "/y" }, false],
  ["!Host(`a`) && Path(`/x`)", { host: "b", path: "/x" }, true],
  ["!(Host(`a`) && Path(`/x`))", { host: "a", path: "/y" }, true],
  ["!Host(`a`) || Path(`/x`)", { host: "a", path: "/x" }, true],
  ["!(Host(`a`) || Path(`/x`))", { host: "a", path: "/y" }, false],
  ["((Host(`a`)))", { host: "a" }, true],
  ['Host("a.com")', { host: "a.com" }, true],
  ['Path("/a\\tb")', { path: "/a\tb" }, true],
  ['Path("/\\x41\\u00e9")', { path: "/Aé" }, true],
  ['PathRegexp("^/a`b$")', { path: "/a`b" }, true],
  ["pathprefix(`/a`)", { path: "/a/b" }, true],
  ["PATHPREFIX(`/a`)", { path: "/a/b" }, true],
  ["Pathprefix(`/a`)", { path: "/a/b" }, true],
  ["Host(`a`)&&Path(`/x`)", { host: "a", path: "/x" }, true],
  ["Host(`a`) &&\n  Path(`/x`)\n", { host: "a", path: "/x" }, true],
  ["Path(`/x`,)", { path: "/x" }, true],
];

Deno.test("rules: matchers and operators", async (t) => {
  for (const [rule, init, want] of MATCH) {
    await t.step(`${rule} on ${JSON.stringify(init)} → ${want}`, () => {
      assert.equal(compileRule(rule).match(req(init)), want);
    });
  }
});

// [rule, 1-based column, text the message must contain]
const ERRORS: [string, number, string][] = [
  ["", 1, "empty rule"],
  ["   ", 1, "empty rule"],
  ["Host(`a.com`) && Pat(`/x`)", 18, 'unknown matcher "Pat"'],
  ["pAthPrefix(`/a`)", 1, "case-sensitive"],
  ["rulewithnotmatcher", 1, 'unknown matcher "rulewithnotmatcher"'],
  ["Host(example.com)", 6, "unquoted value"],
  ["Host(`a`", 9, 'expected "," or ")"'],
  ["Host(`a`) &&", 13, "expected a matcher"],
  ["Host(`a`) Path(`/`)", 11, "after a complete expression"],
  ["Host(`a`) & Path(`/`)", 11, 'did you mean "&&"'],
  ["Host(`a`) | Path(`/`)", 11, 'did you mean "||"'],
  ["(Host(`a`)", 11, 'expected ")"'],
  ["Host(`a`))", 10, "after a complete expression"],
  ["Host(`a", 6, "unterminated backtick"],
  ['Host("a', 6, "unterminated double-quoted"],
  ['PathRegexp("^/a\\.b")', 16, "unknown escape sequence"],
  ["Host(`a`)\n&& Path(`/`)", 10, "unexpected newline"],
  ["`a`", 1, "expected a matcher before value"],
  ["Host()", 1, "Host takes 1 value, got 0"],
  ["Host(``)", 6, "empty value for Host"],
  ["Host(`a`, `b`)", 1, "Host takes 1 value, got 2"],
  ["Host(`🦭.com`)", 6, "non-ASCII"],
  ["HostRegexp(`🦭`)", 12, "non-ASCII"],
  ["HostRegexp(`(a`)", 12, "invalid Go RE2 regexp"],
  ["Path(`css`)", 6, 'must start with "/"'],
  ["PathPrefix(`css`)", 12, 'must start with "/"'],
  ["Path(`/a`, `/b`)", 1, "Path takes 1 value, got 2"],
  ["PathRegexp(``)", 12, "empty value"],
  ["Method()", 1, "Method takes 1 value"],
  ["Method(`GET`, `POST`)", 1, "got 2"],
  ["Header(`X`)", 1, "Header takes 2 values"],
  ["Header(`X`, ``)", 13, "empty value for Header"],
  ["Header(``, `v`)", 8, "empty value for Header"],
  ["HeaderRegexp(`X`, `(a`)", 19, "invalid Go RE2 regexp"],
  ["Query()", 1, "Query takes 1 or 2 values"],
  ["Query(`q`, `a`, `b`)", 1, "got 3"],
  ["Query(`q`, ``)", 12, "empty value for Query"],
  ["QueryRegexp(`q`, `(a`)", 18, "invalid Go RE2 regexp"],
  ["ClientIP(`1`)", 10, "not a valid IP"],
  ["ClientIP(`10.0.0.0/33`)", 10, "not a valid CIDR"],
  ["ClientIP(`010.0.0.1`)", 10, "not a valid IP"],
  ["ClientIP(`fe80::1%eth0`)", 10, "not a valid IP"],
  ["ClientIP(`a`, `b`)", 1, "ClientIP takes 1 value, got 2"],
  ["Host(`a`) && !", 15, "expected a matcher"],
  ["Host(`a`) && Path(/x)", 19, "expected a value"],
];

Deno.test("rules: errors carry column, near text and reason", async (t) => {
  for (const [rule, column, text] of ERRORS) {
    await t.step(`${JSON.stringify(rule)} → column ${column}`, () => {
      assert.throws(() => parseRule(rule), (e: unknown) => {
        assert.ok(e instanceof RuleSyntaxError, `not a RuleSyntaxError: ${e}`);
        assert.equal(e.column, column, e.message);
        assert.ok(e.message.includes(text), `${e.message} should contain ${text}`);
        assert.ok(e.message.startsWith(`rule ${JSON.stringify(rule)}: `), e.message);
        assert.equal(e.rule, rule);
        return true;
      });
    });
  }
});

Deno.test("rules: error message format of the brief", () => {
  const rule = "Host(`a.com`) && Pat(`/x`)";
  assert.throws(() => parseRule(rule), (e: unknown) => {
    assert.ok(e instanceof RuleSyntaxError);
    assert.equal(e.near, "Pat(`/x`)");
    assert.ok(
      e.message.startsWith(
        'rule "Host(`a.com`) && Pat(`/x`)": unknown matcher "Pat" at column 18 (near "Pat(`/x`)"); valid matchers: Host, HostRegexp, Path,',
      ),
      e.message,
    );
    return true;
  });
});

// RE2 constructs refused: [pattern, text in the message]
const RE2_REJECT: [string, string][] = [
  ["(?=a)", "lookahead"],
  ["(?!a)", "lookahead"],
  ["(?<=a)b", "lookbehind"],
  ["(?<!a)b", "lookbehind"],
  ["(a)\\1", "backreference"],
  ["(?P<n>a)\\k<n>", "backreference"],
  ["\\C", "any byte"],
  ["a\\Z", "\\Z"],
  ["(?>a)", "unsupported Perl syntax"],
  ["(?#comment)", "unsupported Perl syntax"],
  ["a++", "nested repetition"],
  ["a**", "nested repetition"],
  ["a{1001}", "at most 1000"],
  ["*a", "missing argument"],
  ["[z-a]", "class range"],
  ["(?P<n>a)(?P<n>b)", "duplicate"],
  ["(a", "missing closing )"],
  ["a)", "unexpected )"],
  ["[a", "missing closing ]"],
  ["\\pQ", "invalid regexp"],
];

Deno.test("rules: RE2-only or unsupported regexp syntax is refused clearly", async (t) => {
  for (const [pattern, text] of RE2_REJECT) {
    await t.step(pattern, () => {
      assert.throws(
        () => parseRule(`PathRegexp(\`${pattern}\`)`),
        (e: unknown) => e instanceof RuleSyntaxError && e.message.includes(text),
      );
    });
  }
});

// Precedence as AST shape: [rule, printed with full parentheses]
const SHAPE: [string, string][] = [
  ["Host(`a`) || Host(`b`) && Path(`/`)", "H(a) || (H(b) && P(/))"],
  ["Host(`a`) && Host(`b`) || Path(`/`)", "(H(a) && H(b)) || P(/)"],
  ["!Host(`a`) && Path(`/`)", "(!H(a)) && P(/)"],
  ["!(Host(`a`) && Path(`/`))", "!(H(a) && P(/))"],
  ["Host(`a`) && Host(`b`) && Host(`c`)", "(H(a) && H(b)) && H(c)"],
  ["Host(`a`) && (Host(`b`) && Host(`c`))", "H(a) && (H(b) && H(c))"],
  ["Host(`a`) || Host(`b`) || Host(`c`)", "(H(a) || H(b)) || H(c)"],
];

function shape(ast: ReturnType<typeof parseRule>): string {
  switch (ast.type) {
    case "matcher":
      return `${ast.name[0]}(${ast.args.join(",")})`;
    case "not":
      return ast.expr.type === "matcher"
        ? `!${shape(ast.expr)}`
        : `!(${shape(ast.expr).replace(/^\((.*)\)$/, "$1")})`;
    default: {
      const side = (n: typeof ast.left) => n.type === "matcher" ? shape(n) : `(${shape(n)})`;
      return `${side(ast.left)} ${ast.type === "and" ? "&&" : "||"} ${side(ast.right)}`;
    }
  }
}

Deno.test("rules: precedence ! > && > ||, left-associative", async (t) => {
  for (const [rule, want] of SHAPE) {
    await t.step(rule, () => assert.equal(shape(parseRule(rule)), want));
  }
});

// printRule: [rule, printed]; the printed form must parse back to the same AST.
const PRINT: [string, string][] = [
  ['Host("a.com")', "Host(`a.com`)"],
  ["host(`a`)&&path(`/`)", "Host(`a`) && Path(`/`)"],
  ["(Host(`a`) || Host(`b`)) && Path(`/`)", "(Host(`a`) || Host(`b`)) && Path(`/`)"],
  ["Host(`a`) || (Host(`b`) && Path(`/`))", "Host(`a`) || Host(`b`) && Path(`/`)"],
  ["Host(`a`) && (Host(`b`) && Host(`c`))", "Host(`a`) && (Host(`b`) && Host(`c`))"],
  ["!(Host(`a`) || Host(`b`))", "!(Host(`a`) || Host(`b`))"],
  ["!(!Host(`a`))", "!!Host(`a`)"],
  ['PathRegexp("^/a`b$")', 'PathRegexp("^/a`b$")'],
  ['Header("X", "a\\"b\\\\c`")', 'Header(`X`, "a\\"b\\\\c`")'],
  ['Path("/a\\rb")', 'Path("/a\\rb")'],
  ["Query(`k`)", "Query(`k`)"],
];

Deno.test("rules: printRule round-trips", async (t) => {
  for (const [rule, printed] of PRINT) {
    await t.step(rule, () => {
      const ast = parseRule(rule);
      assert.equal(printRule(ast), printed);
      assert.deepEqual(parseRule(printRule(ast)), ast);
    });
  }
});

// parseDomains: [rule, domains]
const DOMAINS: [string, string[]][] = [
  ["Host(`Foo.Bar`) && Path(`/test`)", ["foo.bar"]],
  ["Host(`a.com`) || Host(`B.com`)", ["a.com", "b.com"]],
  ["Path(`/test`)", []],
  ["Foobar(`foo.bar`)", []],
  ["Host() && Path(`/test`)", []],
  ["!Host(`a.com`) && Host(`b.com`)", ["b.com"]],
  ["!(!Host(`a.com`))", ["a.com"]],
  ["!(Host(`a.com`) && !Host(`b.com`))", ["b.com"]],
  ["host(`a.com`)", ["a.com"]],
  ["Host(`a.com`, `b.com`)", ["a.com", "b.com"]],
  ["HostHeader(`a.com`) && Host(`c.com`)", ["c.com"]],
  ["Host(`*.a.com`)", ["*.a.com"]],
  ["Host(`a.com`) &&", []],
];

Deno.test("rules: parseDomains", async (t) => {
  for (const [rule, want] of DOMAINS) {
    await t.step(rule, () => assert.deepEqual(parseDomains(rule), want));
  }
});

// exactHosts: [rule, keys or undefined]
const HOSTS: [string, string[] | undefined][] = [
  ["Host(`a.com`)", ["a.com"]],
  ["Host(`A.com`) && Path(`/`)", ["a.com"]],
  ["Host(`a.com`) || Host(`b.com`)", ["a.com", "b.com"]],
  ["(Host(`a.com`) || Host(`b.com`)) && Method(`GET`)", ["a.com", "b.com"]],
  ["Host(`a.com`) || Path(`/`)", undefined],
  ["Path(`/`)", undefined],
  ["!Host(`a.com`)", undefined],
  ["!!Host(`a.com`)", ["a.com"]],
  ["!(!Host(`a.com`) || !Path(`/`))", ["a.com"]],
  ["Host(`*.a.com`)", undefined],
  ["Host(`*`)", undefined],
  ["HostRegexp(`a`)", undefined],
  ["Host(`a.com`) && Host(`b.com`)", []],
  ["Host(`a.com.`)", ["a.com", "a.com."]],
  ["Host(`a.com`) && Host(`*.x`)", ["a.com"]],
];

Deno.test("rules: exactHosts contract", async (t) => {
  for (const [rule, want] of HOSTS) {
    await t.step(rule, () => assert.deepEqual(exactHosts(parseRule(rule)), want));
  }
});

Deno.test("rules: exactHosts is sound against match (sampled hosts)", () => {
  const hosts = ["a.com", "a.com.", "a.com..", "b.com", "x.a.com", ""];
  for (const [rule] of HOSTS) {
    const c = compileRule(rule);
    if (!c.hosts) continue;
    for (const host of hosts) {
      for (const path of ["/", "/x"]) {
        if (c.match(req({ host, path }))) {
          const key = host.endsWith(".") ? host.slice(0, -1) : host;
          assert.ok(c.hosts.includes(key), `${rule} matched ${host} but hosts=${c.hosts}`);
        }
      }
    }
  }
});

// priorities: [rule, explicit priority, effective]
const PRIORITY: [string, number | undefined, number][] = [
  ["Host(`example.org`)", undefined, 19],
  ["Host(`example.org`)", 0, 19],
  ["Host(`example.org`)", 5, 5],
  ["PathPrefix(`/é`)", undefined, 17],
  ["Host(`a`)  &&  Path(`/`)", undefined, 24],
];

Deno.test("rules: priorities", async (t) => {
  for (const [rule, priority, want] of PRIORITY) {
    await t.step(`${rule} ${priority}`, () => {
      assert.equal(compileRule(rule, priority).priority, want);
      if (priority === undefined) assert.equal(defaultPriority(rule), want);
    });
  }
  await t.step("ordering: priority, then provider precedence, then insertion", () => {
    const routes = [
      { name: "short", priority: 10, provider: "file" },
      { name: "unknown", priority: 20, provider: "other" },
      { name: "etcd", priority: 20, provider: "etcd" },
      { name: "file", priority: 20, provider: "file" },
      { name: "file2", priority: 20, provider: "file" },
      { name: "long", priority: 30 },
    ];
    routes.sort(compareRoutes(["file", "etcd"]));
    assert.deepEqual(routes.map((r) => r.name), [
      "long",
      "file",
      "file2",
      "etcd",
      "unknown",
      "short",
    ]);
  });
});

// routingPath: [raw, routing path or error]
const PATHS: [string, string | Error][] = [
  ["/plain", "/plain"],
  ["/foo%20bar", "/foo bar"],
  ["/foo%2Fbar", "/foo%2Fbar"],
  ["/foo%2fbar", "/foo%2Fbar"],
  ["/foo%20bar%2Fbaz%23qux", "/foo bar%2Fbaz%23qux"],
  ["/%7Bpath:css%7D", "/{path:css}"],
  ["/%C3%A9", "/é"],
  ["/%FF", "/%FF"],
  ["/%25", "/%25"],
  ["/%41%42", "/AB"],
  ["/a%2", new RoutingPathError("")],
  ["/a%zz", new RoutingPathError("")],
  ["/a%", new RoutingPathError("")],
];

Deno.test("rules: routingPath", async (t) => {
  for (const [raw, want] of PATHS) {
    await t.step(raw, () => {
      if (want instanceof Error) assert.throws(() => routingPath(raw), RoutingPathError);
      else assert.equal(routingPath(raw), want);
    });
  }
});

// canonicalHost: [authority, host]
const CANON: [string, string][] = [
  ["Example.COM", "example.com"],
  ["example.com:8080", "example.com"],
  ["[::1]:443", "::1"],
  ["[10::10]", "10::10"],
  ["10::10", "10::10"],
  ["example.com.", "example.com."],
  ["", ""],
];

Deno.test("rules: canonicalHost", async (t) => {
  for (const [authority, want] of CANON) {
    await t.step(authority, () => assert.equal(canonicalHost(authority), want));
  }
});

Deno.test("rules: parseQuery follows Go url.ParseQuery", () => {
  const q = parseQuery("a=1&a=2&b&c=x+y&d=%41;e=1&&f=%zz&g=%C3%A9");
  assert.deepEqual(Object.fromEntries(q), { a: ["1", "2"], b: [""], c: ["x y"], g: ["é"] });
});

Deno.test("rules: matchRequestFrom reads the request as sent", () => {
  const r = matchRequestFrom(
    new Request("http://EXAMPLE.com:8080/a%20b%2F?q=1", { method: "PATCH" }),
    "[::1]:5555",
  );
  assert.deepEqual(
    { method: r.method, host: r.host, path: r.path, query: r.query, ip: r.clientIp },
    { method: "PATCH", host: "example.com", path: "/a b%2F", query: "q=1", ip: "::1" },
  );
  const bare = matchRequestFrom(new Request("http://h.com"), "10.0.0.1");
  assert.equal(bare.path, "/");
  assert.equal(bare.clientIp, "10.0.0.1");
});

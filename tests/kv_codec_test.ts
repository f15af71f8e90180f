/**
 * Tests for the KV codec: Traefik v3 keys ⇄ dynamic config. A rich TOML
 * config survives encode → decode; hand-written keys decode as Traefik lays
 * them out; bad values are rejected with the KV key named.
 *
 * @module
 */

import assert from "node:assert/strict";
import { parseToml } from "../lib/config/load.ts";
import { validateDynamic } from "../lib/config/dynamic.ts";
import { ConfigError } from "../lib/config/errors.ts";
import type { DynamicConfig } from "../lib/config/types.ts";
import { decodeKVEntries, encodeDynamicConfig, parseIssuePath } from "../lib/providers/kv_codec.ts";

/** A configuration touching every part of the layout the data plane supports. */
export const RICH_TOML = `
[http.routers.app]
rule = "Host(\`app.example.com\`) && PathPrefix(\`/api\`)"
service = "app"
entryPoints = ["web", "websecure"]
middlewares = ["strip", "headers@file"]
priority = 42
[http.routers.app.tls]
certResolver = "le"
options = "modern"
[[http.routers.app.tls.domains]]
main = "example.com"
sans = ["www.example.com", "api.example.com"]

[http.routers.plain]
rule = "Host(\`plain.example.com\`)"
service = "split"
[http.routers.plain.tls]

[http.services.app.loadBalancer]
passHostHeader = false
serversTransport = "slow"
[[http.services.app.loadBalancer.servers]]
url = "http://10.0.0.1:8080"
weight = 3
[[http.services.app.loadBalancer.servers]]
url = "http://10.0.0.2:8080"
[http.services.app.loadBalancer.healthCheck]
path = "/health"
interval = "10s"
timeout = "1500ms"
scheme = "http"
port = 8081
status = 204
[http.services.app.loadBalancer.healthCheck.headers]
X-Check = "portico"
X-Empty = ""
[http.services.app.loadBalancer.sticky.cookie]
name = "lb"
httpOnly = true
[http.services.app.loadBalancer.responseForwarding]

[http.services.split.weighted]
[[http.services.split.weighted.services]]
name = "app"
weight = 2
[[http.services.split.weighted.services]]
name = "other@file"
weight = 1
[http.services.split.weighted.sticky.cookie]

[http.services.mirror.mirroring]
service = "app"
maxBodySize = 1024
[[http.services.mirror.mirroring.mirrors]]
name = "shadow"
percent = 10

[http.services.fo.failover]
service = "app"
fallback = "shadow"

[http.services.shadow.loadBalancer]
[[http.services.shadow.loadBalancer.servers]]
url = "https://10.0.0.9"

[http.middlewares.strip.stripPrefix]
prefixes = ["/api", "/v1"]
forceSlash = false
[http.middlewares.hdr.headers.customRequestHeaders]
X-Script-Name = "test"
[http.middlewares.ct.contentType]
[http.middlewares.rl.rateLimit]
average = 100
burst = 50
period = "1m"

[http.serversTransports.slow]
insecureSkipVerify = true
rootCAs = ["/etc/ca.pem"]
[http.serversTransports.slow.forwardingTimeouts]
dialTimeout = "2s"

[http.serversTransports.plainst]

[[tls.certificates]]
certFile = "/certs/a.crt"
keyFile = "/certs/a.key"
stores = ["default"]
[[tls.certificates]]
certFile = "/certs/b.crt"
keyFile = "/certs/b.key"

[tls.options.modern]
minVersion = "VersionTLS13"
sniStrict = true
[tls.options.default]

[tls.stores.default.defaultCertificate]
certFile = "/certs/d.crt"
keyFile = "/certs/d.key"
`;

function rich(): DynamicConfig {
  return validateDynamic(parseToml(RICH_TOML, "rich.toml"), "rich.toml");
}

/** Middleware options come back as KV text ("100"), which the factories read; compare them as text. */
function optionsAsText(config: DynamicConfig): DynamicConfig {
  const text = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(text)
      : v !== null && typeof v === "object"
      ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, text(x)]))
      : String(v);
  const copy = structuredClone(config);
  for (const [name, m] of Object.entries(copy.http.middlewares)) {
    copy.http.middlewares[name] = text(m) as DynamicConfig["http"]["middlewares"][string];
  }
  return copy;
}

function issueLines(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConfigError) return error.message.split("\n");
    throw error;
  }
  assert.fail("expected a ConfigError");
}

Deno.test("encode then decode gives back a rich configuration", () => {
  const config = rich();
  const entries = encodeDynamicConfig(config, "traefik");
  const back = decodeKVEntries(entries, "traefik", "etcd");
  assert.deepEqual(back, optionsAsText(config));
  // Under another root key too, and the old root's keys are ignored.
  const other = encodeDynamicConfig(config, "edge/prod");
  assert.deepEqual(
    decodeKVEntries(
      new Map([...other, ["traefik/http/routers/x/rule", "junk"]]),
      "edge/prod",
      "redis",
    ),
    optionsAsText(config),
  );
});

Deno.test("encoding writes the v3 layout, durations as durations, defaults left out", () => {
  const entries = encodeDynamicConfig(rich(), "traefik");
  const expect: [string, string | undefined][] = [
    ["traefik/http/routers/app/rule", "Host(`app.example.com`) && PathPrefix(`/api`)"],
    ["traefik/http/routers/app/entrypoints/1", "websecure"],
    ["traefik/http/routers/app/middlewares/1", "headers@file"],
    ["traefik/http/routers/app/priority", "42"],
    ["traefik/http/routers/app/tls/certresolver", "le"],
    ["traefik/http/routers/app/tls/domains/0/main", "example.com"],
    ["traefik/http/routers/app/tls/domains/0/sans/1", "api.example.com"],
    ["traefik/http/routers/plain/tls", ""],
    ["traefik/http/routers/plain/priority", undefined],
    ["traefik/http/services/app/loadbalancer/servers/0/url", "http://10.0.0.1:8080"],
    ["traefik/http/services/app/loadbalancer/servers/0/weight", "3"],
    ["traefik/http/services/app/loadbalancer/servers/1/weight", undefined],
    ["traefik/http/services/app/loadbalancer/passhostheader", "false"],
    ["traefik/http/services/app/loadbalancer/healthcheck/interval", "10s"],
    ["traefik/http/services/app/loadbalancer/healthcheck/timeout", "1.5s"],
    ["traefik/http/services/app/loadbalancer/healthcheck/headers/X-Empty", ""],
    ["traefik/http/services/app/loadbalancer/responseforwarding", ""],
    ["traefik/http/services/shadow/loadbalancer/passhostheader", undefined],
    ["traefik/http/services/split/weighted/services/1/name", "other@file"],
    ["traefik/http/services/split/weighted/sticky/cookie", ""],
    ["traefik/http/middlewares/strip/stripPrefix/prefixes/0", undefined],
    ["traefik/http/middlewares/strip/stripprefix/prefixes/0", "/api"],
    ["traefik/http/middlewares/strip/stripprefix/forceSlash", "false"],
    ["traefik/http/middlewares/hdr/headers/customRequestHeaders/X-Script-Name", "test"],
    ["traefik/http/middlewares/ct/contenttype", ""],
    ["traefik/http/middlewares/rl/ratelimit/average", "100"],
    ["traefik/http/serverstransports/plainst", ""],
    ["traefik/http/serverstransports/slow/forwardingtimeouts/dialtimeout", "2s"],
    ["traefik/tls/certificates/0/stores/0", "default"],
    ["traefik/tls/certificates/1/certfile", "/certs/b.crt"],
    ["traefik/tls/options/default", ""],
    ["traefik/tls/options/modern/minversion", "VersionTLS13"],
    ["traefik/tls/stores/default/defaultcertificate/keyfile", "/certs/d.key"],
  ];
  for (const [key, value] of expect) assert.equal(entries.get(key), value, key);
  const keys = [...entries.keys()];
  assert.deepEqual(keys, [...keys].sort(), "keys come out sorted");
  assert.ok(keys.every((k) => k.startsWith("traefik/")));
});

Deno.test("hand-written Traefik keys decode: any case, indexed lists, empty value switches on", () => {
  const config = decodeKVEntries(
    new Map([
      ["traefik/http/routers/Web/Rule", "Host(`a.com`)"],
      ["traefik/http/routers/Web/SERVICE", "svc"],
      ["traefik/http/routers/Web/entryPoints/1", "websecure"],
      ["traefik/http/routers/Web/entrypoints/0", "web"],
      ["traefik/http/routers/Web/tls", ""],
      ["traefik/http/services/svc/loadBalancer/servers/0/url", "http://127.0.0.1:1"],
      ["traefik/http/services/svc/loadbalancer/servers/0/weight", "5"],
      ["traefik/http/services/svc/loadbalancer/passhostheader", "false"],
      ["traefik/http/services/svc/loadbalancer/healthcheck/path", "/h"],
      ["traefik/http/services/svc/loadbalancer/healthcheck/interval", "5"],
      ["traefik/http/middlewares/m/contenttype", ""],
      ["traefik/http/middlewares/s/stripprefix/prefixes/0", "/a"],
      // An empty marker followed by options: the options win.
      ["traefik/http/middlewares/h/headers", ""],
      ["traefik/http/middlewares/h/headers/customrequestheaders/X-A", "1"],
      ["traefik/tls/certificates/0/certfile", "/c"],
      ["traefik/tls/certificates/0/keyfile", "/k"],
      ["other/http/routers/ignored/rule", "x"],
    ]),
    "traefik",
    "etcd",
  );
  assert.deepEqual(config.http.routers.Web, {
    rule: "Host(`a.com`)",
    service: "svc",
    entryPoints: ["web", "websecure"],
    middlewares: [],
    priority: 0,
    tls: { domains: [] },
  });
  const lb =
    (config.http.services.svc as unknown as { loadBalancer: Record<string, unknown> }).loadBalancer;
  assert.deepEqual(lb.servers, [{ url: "http://127.0.0.1:1", weight: 5 }]);
  assert.equal(lb.passHostHeader, false);
  assert.equal((lb.healthCheck as { interval: number }).interval, 5000);
  assert.deepEqual(config.http.middlewares.m, { contentType: {} });
  assert.deepEqual(config.http.middlewares.s, { stripPrefix: { prefixes: ["/a"] } });
  assert.deepEqual(config.http.middlewares.h, {
    headers: { customrequestheaders: { "X-A": "1" } },
  });
  assert.deepEqual(config.tls.certificates, [{ certFile: "/c", keyFile: "/k", stores: [] }]);
  assert.deepEqual(Object.keys(config.http.routers), ["Web"]);
});

const GOOD = new Map([
  ["traefik/http/routers/app/rule", "Host(`a.com`)"],
  ["traefik/http/routers/app/service", "app"],
  ["traefik/http/services/app/loadbalancer/servers/0/url", "http://10.0.0.1"],
  ["traefik/http/services/app/loadbalancer/servers/1/url", "http://10.0.0.2"],
]);

const BAD_CASES: { name: string; set: [string, string][]; line: string | RegExp }[] = [
  {
    name: "non-numeric weight",
    set: [["traefik/http/services/app/loadbalancer/servers/1/weight", "abc"]],
    line:
      'etcd: traefik/http/services/app/loadbalancer/servers/1/weight: expected an integer >= 0, found string "abc"',
  },
  {
    name: "weight written in another case",
    set: [["traefik/HTTP/Services/app/LoadBalancer/Servers/0/Weight", "x"]],
    line:
      /^etcd: traefik\/HTTP\/Services\/app\/LoadBalancer\/Servers\/0\/Weight: expected an integer/,
  },
  {
    name: "unknown middleware type",
    set: [["traefik/http/middlewares/m/stripprefixx/prefixes/0", "/a"]],
    line:
      /^etcd: traefik\/http\/middlewares\/m\/stripprefixx: unknown key; did you mean "stripPrefix"\?$/,
  },
  {
    name: "malformed URL",
    set: [["traefik/http/services/app/loadbalancer/servers/0/url", "not a url"]],
    line: /^etcd: traefik\/http\/services\/app\/loadbalancer\/servers\/0\/url: .*"not a url"/,
  },
  {
    name: "key outside the layout",
    set: [["traefik/http/routers/app/rul", "x"]],
    line: /^etcd: traefik\/http\/routers\/app\/rul: unknown key; did you mean "rule"\?$/,
  },
  {
    name: "missing required key is named as it should be written",
    set: [["traefik/http/routers/b/service", "app"]],
    line: /^etcd: traefik\/http\/routers\/b\/rule: missing/,
  },
  {
    name: "bad boolean",
    set: [["traefik/http/services/app/loadbalancer/passhostheader", "yes"]],
    line: /^etcd: traefik\/http\/services\/app\/loadbalancer\/passhostheader: expected a boolean/,
  },
  {
    name: "bad duration",
    set: [
      ["traefik/http/services/app/loadbalancer/healthcheck/path", "/h"],
      ["traefik/http/services/app/loadbalancer/healthcheck/interval", "soon"],
    ],
    line:
      /^etcd: traefik\/http\/services\/app\/loadbalancer\/healthcheck\/interval: expected a duration/,
  },
  {
    name: "empty path segment",
    set: [["traefik/http/routers//rule", "x"]],
    line: /^etcd: traefik\/http\/routers\/\/rule: empty path segment/,
  },
  {
    name: "value with keys nested under it",
    set: [["traefik/http/routers/app/rule/x", "y"]],
    line:
      /^etcd: traefik\/http\/routers\/app\/rule\/x: traefik\/http\/routers\/app\/rule holds a value/,
  },
  {
    name: "a TCP router without its service",
    set: [["traefik/tcp/routers/t/rule", "HostSNI(`*`)"]],
    line: /^etcd: traefik\/tcp\/routers\/t\/service: missing/,
  },
  {
    name: "udp is not supported",
    set: [["traefik/udp/routers/u/service", "x"]],
    line: /^etcd: traefik\/udp: "udp" is not supported yet/,
  },
];

for (const c of BAD_CASES) {
  Deno.test(`a bad KV snapshot is rejected naming the key: ${c.name}`, () => {
    const entries = new Map([...GOOD, ...c.set]);
    const lines = issueLines(() => decodeKVEntries(entries, "traefik", "etcd"));
    assert.ok(
      lines.some((l) => (typeof c.line === "string" ? l === c.line : c.line.test(l))),
      `no line matched ${c.line}; got:\n${lines.join("\n")}`,
    );
  });
}

Deno.test("the good snapshot on its own decodes", () => {
  const config = decodeKVEntries(GOOD, "traefik", "etcd");
  assert.deepEqual(Object.keys(config.http.services), ["app"]);
});

Deno.test("issue paths parse back into segments", () => {
  const table: [string, (string | number)[]][] = [
    ["", []],
    ["http", ["http"]],
    ["http.services.app.loadBalancer.servers[0].weight", [
      "http",
      "services",
      "app",
      "loadBalancer",
      "servers",
      0,
      "weight",
    ]],
    ['http.routers."a.b".rule', ["http", "routers", "a.b", "rule"]],
    ['a."x\\"y"[12]', ["a", 'x"y', 12]],
  ];
  for (const [text, segments] of table) assert.deepEqual(parseIssuePath(text), segments, text);
});

Deno.test("TCP routers, services, middlewares and transports decode from Traefik's KV keys", () => {
  const config = decodeKVEntries(
    new Map([
      ["traefik/tcp/routers/db/rule", "HostSNI(`db.example.com`)"],
      ["traefik/tcp/routers/db/service", "db"],
      ["traefik/tcp/routers/db/entrypoints/0", "edge"],
      ["traefik/tcp/routers/db/middlewares/0", "office"],
      ["traefik/tcp/routers/db/tls/passthrough", "true"],
      ["traefik/tcp/services/db/loadbalancer/servers/0/address", "10.0.0.5:5432"],
      ["traefik/tcp/services/db/loadbalancer/servers/1/address", "10.0.0.6:5432"],
      ["traefik/tcp/services/db/loadbalancer/serverstransport", "pp"],
      ["traefik/tcp/middlewares/office/ipallowlist/sourcerange/0", "10.0.0.0/8"],
      ["traefik/tcp/serverstransports/pp/proxyprotocol/version", "1"],
      ["traefik/tcp/serverstransports/pp/dialtimeout", "5s"],
    ]),
    "traefik",
    "etcd",
  );
  const tcp = config.tcp!;
  assert.deepEqual(tcp.routers.db.tls, { passthrough: true, domains: [] });
  assert.deepEqual(tcp.routers.db.entryPoints, ["edge"]);
  assert.deepEqual(
    "loadBalancer" in tcp.services.db ? tcp.services.db.loadBalancer.servers.map((s) => s.address) : [],
    ["10.0.0.5:5432", "10.0.0.6:5432"],
  );
  assert.deepEqual(tcp.middlewares.office, { ipAllowList: { sourceRange: ["10.0.0.0/8"] } });
  assert.equal(tcp.serversTransports.pp.proxyProtocol?.version, 1);
  assert.equal(tcp.serversTransports.pp.dialTimeout, 5000);
});

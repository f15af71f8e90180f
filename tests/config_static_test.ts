/**
 * Tests for static configuration validation: defaults, implicit entrypoints,
 * address parsing, cross-checks, and every error naming its dotted key.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  ConfigError,
  type ConfigIssue,
  LETS_ENCRYPT_PRODUCTION,
  parseListenAddress,
  type StaticConfig,
  validateStatic,
} from "../lib/config/mod.ts";

const SOURCE = "portico.toml";
const SECRET = "0123456789abcdef-secret";

function issuesOf(raw: unknown): ConfigIssue[] {
  try {
    validateStatic(raw, SOURCE, { hostname: "test-host" });
  } catch (error) {
    if (error instanceof ConfigError) return error.issues;
    throw error;
  }
  return [];
}

function valid(raw: unknown): StaticConfig {
  return validateStatic(raw, SOURCE, { hostname: "test-host" });
}

Deno.test("parseListenAddress accepts Traefik address forms", () => {
  const cases: [string, { hostname: string; port: number } | RegExp][] = [
    [":80", { hostname: "", port: 80 }],
    ["127.0.0.1:8000", { hostname: "127.0.0.1", port: 8000 }],
    ["[::1]:80", { hostname: "::1", port: 80 }],
    ["[::]:443", { hostname: "::", port: 443 }],
    ["localhost:3000", { hostname: "localhost", port: 3000 }],
    [":443/tcp", { hostname: "", port: 443 }],
    [":0", { hostname: "", port: 0 }],
    [":65535", { hostname: "", port: 65535 }],
    [":65536", /port must be a number from 0 to 65535/],
    ["80", /port is missing/],
    [":http", /port must be a number/],
    [":53/udp", /UDP entrypoints are not supported yet/],
    [":80/sctp", /"\/tcp"/],
    ["::1:80", /IPv6 address in brackets/],
    ["[zz]:80", /must be an IPv6 address/],
    ["[::1]80", /expected an address/],
    ["a b:80", /host must be a name or an IP/],
    ["", /expected an address/],
  ];
  for (const [text, want] of cases) {
    const got = parseListenAddress(text);
    if (want instanceof RegExp) {
      assert.equal(typeof got, "string", text);
      assert.match(got as string, want, text);
    } else assert.deepEqual(got, want, text);
  }
});

Deno.test("an empty static config gets Traefik's defaults", () => {
  for (const raw of [{}, undefined, null]) {
    const config = valid(raw);
    assert.deepEqual(Object.keys(config.entryPoints), ["http"]);
    const http = config.entryPoints.http;
    assert.equal(http.address, ":80");
    assert.equal(http.port, 80);
    assert.equal(http.hostname, "");
    assert.deepEqual(http.transport.respondingTimeouts, {
      readTimeout: 60_000,
      writeTimeout: 0,
      idleTimeout: 180_000,
    });
    assert.deepEqual(http.transport.lifeCycle, {
      requestAcceptGraceTimeout: 0,
      graceTimeOut: 10_000,
    });
    assert.deepEqual(http.forwardedHeaders, { trustedIPs: [], insecure: false });
    assert.deepEqual(http.http, { middlewares: [] });
    assert.deepEqual(config.log, { level: "INFO", format: "common" });
    assert.deepEqual(config.lifeCycle, { graceTimeOut: 10_000, requestAcceptGraceTimeout: 0 });
    assert.deepEqual(config.certificatesResolvers, {});
    assert.equal(config.providers.providersThrottleDuration, 2_000);
    assert.equal(config.api, undefined);
    assert.equal(config.ping, undefined);
    assert.equal(config.cluster, undefined);
    assert.equal(config.sourceFile, SOURCE);
  }
});

Deno.test("section defaults", () => {
  const config = valid({
    entryPoints: {
      web: {
        address: "127.0.0.1:8000",
        http: { redirections: { entryPoint: { to: "websecure" } }, tls: {} },
      },
      websecure: {
        address: "[::1]:8443",
        transport: { respondingTimeouts: { readTimeout: "5s" } },
      },
    },
    providers: {
      file: { directory: "conf.d" },
      etcd: {},
      redis: { endpoints: ["r:6379"] },
      consul: { token: "t" },
    },
    api: {},
    ping: {},
    log: { level: "warn", format: "json" },
    accessLog: {},
    metrics: { prometheus: {} },
    certificatesResolvers: { le: { acme: { email: "a@b.c", tlsChallenge: {} } } },
    cluster: { address: ":9000", secret: SECRET, peers: ["10.0.0.2:9000", "http://10.0.0.3:9000"] },
  });
  assert.deepEqual(config.entryPoints.web.http.redirections, {
    entryPoint: { to: "websecure", scheme: "https", permanent: true, priority: 2147483646 },
  });
  assert.deepEqual(config.entryPoints.web.http.tls, { domains: [] });
  assert.equal(config.entryPoints.websecure.hostname, "::1");
  assert.equal(config.entryPoints.websecure.port, 8443);
  assert.equal(config.entryPoints.websecure.transport.respondingTimeouts.readTimeout, 5_000);
  assert.equal(config.entryPoints.websecure.transport.respondingTimeouts.idleTimeout, 180_000);
  assert.deepEqual(config.providers.file, { directory: "conf.d", watch: true });
  assert.deepEqual(config.providers.etcd, { endpoints: ["127.0.0.1:2379"], rootKey: "traefik" });
  assert.deepEqual(config.providers.redis, { endpoints: ["r:6379"], rootKey: "traefik", db: 0 });
  assert.deepEqual(config.providers.consul, {
    endpoints: ["127.0.0.1:8500"],
    rootKey: "traefik",
    token: "t",
  });
  assert.deepEqual(config.api, { insecure: false, dashboard: true, debug: false });
  assert.deepEqual(config.ping, { entryPoint: "traefik" });
  assert.deepEqual(config.log, { level: "WARN", format: "json" });
  assert.deepEqual(config.accessLog, { format: "common" });
  assert.deepEqual(config.metrics, {
    prometheus: {
      buckets: [0.1, 0.3, 1.2, 5],
      entryPoint: "traefik",
      addEntryPointsLabels: true,
      addRoutersLabels: true,
      addServicesLabels: true,
    },
  });
  assert.deepEqual(config.certificatesResolvers.le.acme, {
    email: "a@b.c",
    caServer: LETS_ENCRYPT_PRODUCTION,
    storage: "acme.json",
    keyType: "EC256",
    caCertificates: [],
    clusterReadyTimeout: 30_000,
    tlsChallenge: {},
  });
  assert.deepEqual(config.cluster, {
    nodeId: "test-host",
    address: ":9000",
    peers: ["10.0.0.2:9000", "http://10.0.0.3:9000"],
    secret: SECRET,
    dataDir: "./data",
    heartbeatInterval: 100,
    electionTimeout: 1_000,
  });
  // ping and metrics use "traefik", so it is added; no "http" since entrypoints exist.
  assert.deepEqual(Object.keys(config.entryPoints).sort(), ["traefik", "web", "websecure"]);
});

Deno.test("log levels accept any case and Traefik's extra levels", () => {
  const cases: [string, string][] = [
    ["debug", "DEBUG"],
    ["Info", "INFO"],
    ["WARN", "WARN"],
    ["warning", "WARN"],
    ["error", "ERROR"],
    ["trace", "DEBUG"],
    ["fatal", "ERROR"],
    ["panic", "ERROR"],
  ];
  for (const [level, want] of cases) assert.equal(valid({ log: { level } }).log.level, want, level);
});

Deno.test("implicit entrypoints follow Traefik", () => {
  const cases: { name: string; raw: Record<string, unknown>; want: string[] }[] = [
    { name: "nothing", raw: {}, want: ["http"] },
    {
      name: "api.insecure adds traefik",
      raw: { api: { insecure: true } },
      want: ["http", "traefik"],
    },
    { name: "api = true alone adds nothing", raw: { api: true }, want: ["http"] },
    { name: "secure api adds nothing", raw: { api: { dashboard: true } }, want: ["http"] },
    { name: "ping on traefik", raw: { ping: {} }, want: ["http", "traefik"] },
    {
      name: "metrics on traefik",
      raw: { metrics: { prometheus: true } },
      want: ["http", "traefik"],
    },
    {
      name: "user-defined traefik is kept",
      raw: { api: { insecure: true }, entryPoints: { traefik: { address: ":9999" } } },
      want: ["traefik"],
    },
    {
      name: "ping on a user entrypoint adds nothing",
      raw: { ping: { entryPoint: "web" }, entryPoints: { web: { address: ":80" } } },
      want: ["web"],
    },
  ];
  for (const { name, raw, want } of cases) {
    const config = valid(raw);
    assert.deepEqual(Object.keys(config.entryPoints).sort(), want, name);
  }
  assert.equal(valid({ api: { insecure: true } }).entryPoints.traefik.port, 8080);
  assert.equal(
    valid({ api: { insecure: true }, entryPoints: { traefik: { address: ":9999" } } }).entryPoints
      .traefik.port,
    9999,
  );
});

Deno.test("redirection to a port resolves to the entrypoint on that port", () => {
  const config = valid({
    entryPoints: {
      web: {
        address: ":80",
        http: { redirections: { entryPoint: { to: ":443", permanent: false } } },
      },
      websecure: { address: ":443" },
    },
  });
  assert.equal(config.entryPoints.web.http.redirections?.entryPoint.to, "websecure");
  assert.equal(config.entryPoints.web.http.redirections?.entryPoint.permanent, false);
});

Deno.test("durations in static config", () => {
  const config = valid({
    entryPoints: {
      web: {
        address: ":80",
        transport: {
          respondingTimeouts: { readTimeout: 10, writeTimeout: "1m30s", idleTimeout: "100ms" },
          lifeCycle: { graceTimeOut: "1h", requestAcceptGraceTimeout: "2" },
        },
      },
    },
    lifeCycle: { graceTimeOut: 3, requestAcceptGraceTimeout: "500ms" },
    cluster: {
      address: ":9000",
      secretFile: "/s",
      heartbeatInterval: "50ms",
      electionTimeout: "150ms",
    },
    providers: { redis: {} },
  });
  const transport = config.entryPoints.web.transport;
  assert.deepEqual(transport.respondingTimeouts, {
    readTimeout: 10_000,
    writeTimeout: 90_000,
    idleTimeout: 100,
  });
  assert.deepEqual(transport.lifeCycle, {
    graceTimeOut: 3_600_000,
    requestAcceptGraceTimeout: 2_000,
  });
  assert.deepEqual(config.lifeCycle, { graceTimeOut: 3_000, requestAcceptGraceTimeout: 500 });
  assert.equal(config.cluster?.heartbeatInterval, 50);
  assert.equal(config.cluster?.electionTimeout, 150);
});

const cluster = { address: ":9000", secret: SECRET };
const etcd = { etcd: {} };

Deno.test("static errors name the dotted key and say what was expected", () => {
  const cases: { name: string; raw: unknown; issues: [string, RegExp][] }[] = [
    { name: "not a table", raw: [], issues: [["", /^expected a table, found an empty list$/]] },
    {
      name: "typo at top level",
      raw: { entrypoint: { web: { address: ":80" } } },
      issues: [["entrypoint", /^unknown key; did you mean "entryPoints"\?$/]],
    },
    {
      name: "typo in an entrypoint",
      raw: { entryPoints: { web: { adress: ":80" } } },
      issues: [
        ["entryPoints.web.adress", /^unknown key; did you mean "address"\?$/],
        ["entryPoints.web.address", /^missing; expected an address like ":80"/],
      ],
    },
    {
      name: "address type",
      raw: { entryPoints: { web: { address: 80 } } },
      issues: [["entryPoints.web.address", /^expected an address like ":80".*found number 80$/]],
    },
    {
      name: "address syntax",
      raw: { entryPoints: { web: { address: "80" } } },
      issues: [["entryPoints.web.address", /port is missing.*found string "80"$/]],
    },
    {
      name: "entrypoint name",
      raw: { entryPoints: { "w@b": { address: ":80" } } },
      issues: [['entryPoints."w@b"', /invalid name/]],
    },
    {
      name: "unsupported entrypoint option",
      raw: { entryPoints: { web: { address: ":80", http3: {} } } },
      issues: [["entryPoints.web.http3", /"http3" is not supported yet/]],
    },
    {
      name: "redirect target unknown",
      raw: {
        entryPoints: {
          web: { address: ":80", http: { redirections: { entryPoint: { to: "webscure" } } } },
        },
      },
      issues: [[
        "entryPoints.web.http.redirections.entryPoint.to",
        /unknown entrypoint "webscure"; expected one of: web/,
      ]],
    },
    {
      name: "redirect to itself",
      raw: {
        entryPoints: {
          web: { address: ":80", http: { redirections: { entryPoint: { to: "web" } } } },
        },
      },
      issues: [[
        "entryPoints.web.http.redirections.entryPoint.to",
        /redirects entrypoint "web" to itself/,
      ]],
    },
    {
      name: "redirect to a port nobody listens on",
      raw: {
        entryPoints: {
          web: { address: ":80", http: { redirections: { entryPoint: { to: ":443" } } } },
        },
      },
      issues: [[
        "entryPoints.web.http.redirections.entryPoint.to",
        /no entrypoint listens on port 443/,
      ]],
    },
    {
      name: "redirect without target",
      raw: {
        entryPoints: {
          web: { address: ":80", http: { redirections: { entryPoint: { scheme: "https" } } } },
        },
      },
      issues: [["entryPoints.web.http.redirections.entryPoint.to", /^missing/]],
    },
    {
      name: "redirect scheme",
      raw: {
        entryPoints: {
          web: {
            address: ":80",
            http: { redirections: { entryPoint: { to: "s", scheme: "ftp" } } },
          },
          s: { address: ":443" },
        },
      },
      issues: [[
        "entryPoints.web.http.redirections.entryPoint.scheme",
        /^expected one of "https", "http", found string "ftp"$/,
      ]],
    },
    {
      name: "entrypoint middleware reference",
      raw: { entryPoints: { web: { address: ":80", http: { middlewares: ["a b"] } } } },
      issues: [[
        "entryPoints.web.http.middlewares[0]",
        /expected a name, optionally with a provider/,
      ]],
    },
    {
      name: "negative timeout",
      raw: {
        entryPoints: {
          web: { address: ":80", transport: { respondingTimeouts: { readTimeout: "-1s" } } },
        },
      },
      issues: [["entryPoints.web.transport.respondingTimeouts.readTimeout", /at least 0s/]],
    },
    {
      name: "bad duration",
      raw: {
        entryPoints: { web: { address: ":80", transport: { lifeCycle: { graceTimeOut: "ten" } } } },
      },
      issues: [["entryPoints.web.transport.lifeCycle.graceTimeOut", /expected a duration/]],
    },
    {
      name: "maxConnections",
      raw: { entryPoints: { web: { address: ":80", transport: { maxConnections: 0 } } } },
      issues: [[
        "entryPoints.web.transport.maxConnections",
        /expected an integer >= 1, found number 0/,
      ]],
    },
    {
      name: "trusted IPs",
      raw: {
        entryPoints: {
          web: {
            address: ":80",
            forwardedHeaders: {
              trustedIPs: ["10.0.0.0/8", "fd00::/8", "1.2.3.4", "10.0.0.0/33", "bogus"],
            },
          },
        },
      },
      issues: [
        ["entryPoints.web.forwardedHeaders.trustedIPs[3]", /expected an IP address or CIDR range/],
        ["entryPoints.web.forwardedHeaders.trustedIPs[4]", /found string "bogus"/],
      ],
    },
    {
      name: "port clash",
      raw: { entryPoints: { a: { address: ":80" }, b: { address: "127.0.0.1:80" } } },
      issues: [["entryPoints.b.address", /port 80 is already used by entrypoint "a"/]],
    },
    {
      name: "implicit traefik clashes with a user entrypoint",
      raw: { api: { insecure: true }, entryPoints: { web: { address: ":8080" } } },
      issues: [["entryPoints.traefik.address", /port 8080 is already used by entrypoint "web"/]],
    },
    {
      name: "file provider needs exactly one source",
      raw: { providers: { file: { watch: false } } },
      issues: [["providers.file", /^expected exactly one of "filename", "directory", found none$/]],
    },
    {
      name: "file provider with both",
      raw: { providers: { file: { filename: "a.toml", directory: "d" } } },
      issues: [["providers.file", /found "filename" and "directory"$/]],
    },
    {
      name: "unsupported provider",
      raw: { providers: { docker: {} } },
      issues: [["providers.docker", /"docker" is not supported yet/]],
    },
    {
      name: "provider typo",
      raw: { providers: { etc: {} } },
      issues: [["providers.etc", /did you mean "etcd"\?/]],
    },
    {
      name: "kv endpoints",
      raw: {
        providers: {
          etcd: { endpoints: [] },
          redis: { endpoints: ["nohost"] },
          consul: { endpoints: "127.0.0.1:8500" },
        },
      },
      issues: [
        ["providers.etcd.endpoints", /expected at least 1 item, found an empty list/],
        ["providers.redis.endpoints[0]", /expected "host:port" or a URL/],
        ["providers.consul.endpoints", /expected a list of strings, found string/],
      ],
    },
    {
      name: "kv options",
      raw: {
        providers: { etcd: { rootKey: "/traefik", db: 1 }, redis: { db: -1, tls: { cert: "c" } } },
      },
      issues: [
        ["providers.etcd.db", /unknown key/],
        ["providers.etcd.rootKey", /without leading or trailing "\/"/],
        ["providers.redis.tls", /both "cert" and "key"/],
        ["providers.redis.db", /expected an integer >= 0, found number -1/],
      ],
    },
    {
      name: "api options",
      raw: { api: { insecure: "yes", dashbaord: true } },
      issues: [
        ["api.dashbaord", /did you mean "dashboard"\?/],
        ["api.insecure", /expected a boolean/],
      ],
    },
    {
      name: "ping entrypoint must exist",
      raw: { ping: { entryPoint: "nope" } },
      issues: [["ping.entryPoint", /unknown entrypoint "nope"; expected one of: http/]],
    },
    {
      name: "metrics entrypoint must exist",
      raw: { metrics: { prometheus: { entryPoint: "nope" } } },
      issues: [["metrics.prometheus.entryPoint", /unknown entrypoint "nope"/]],
    },
    {
      name: "metrics buckets",
      raw: { metrics: { prometheus: { buckets: [1, 0.5] } } },
      issues: [["metrics.prometheus.buckets[1]", /increasing order/]],
    },
    {
      name: "log",
      raw: { log: { level: "LOUD", format: "xml" } },
      issues: [
        ["log.level", /expected one of "DEBUG", "INFO", "WARN", "ERROR", found string "LOUD"/],
        ["log.format", /expected one of "common", "json", found string "xml"/],
      ],
    },
    {
      name: "access log",
      raw: { accessLog: { format: "clf", filters: {} } },
      issues: [
        ["accessLog.filters", /not supported yet/],
        ["accessLog.format", /expected one of "common", "json"/],
      ],
    },
    {
      name: "acme missing challenge",
      raw: { certificatesResolvers: { le: { acme: { email: "a@b.c" } } } },
      issues: [[
        "certificatesResolvers.le.acme",
        /expected a challenge: "httpChallenge" or "tlsChallenge"/,
      ]],
    },
    {
      name: "acme fields",
      raw: {
        certificatesResolvers: {
          le: {
            acme: {
              email: "nope",
              caServer: "not a url",
              keyType: "DSA",
              storage: 1,
              tlsChallenge: {},
              dnsChallenge: {},
            },
          },
        },
      },
      issues: [
        ["certificatesResolvers.le.acme.email", /expected an email address/],
        ["certificatesResolvers.le.acme.caServer", /expected the URL of an ACME directory/],
        ["certificatesResolvers.le.acme.storage", /expected a string, found number 1/],
        [
          "certificatesResolvers.le.acme.keyType",
          /expected one of "EC256", "EC384", "RSA2048", "RSA4096"/,
        ],
        // dnsChallenge is supported now (issue 17); an empty one lacks its provider.
        ["certificatesResolvers.le.acme.dnsChallenge.provider", /missing; expected a string/],
      ],
    },
    {
      name: "acme missing",
      raw: { certificatesResolvers: { le: {} } },
      issues: [["certificatesResolvers.le.acme", /^missing; expected a table$/]],
    },
    {
      name: "http challenge entrypoint must exist",
      raw: { certificatesResolvers: { le: { acme: { httpChallenge: { entryPoint: "web" } } } } },
      issues: [[
        "certificatesResolvers.le.acme.httpChallenge.entryPoint",
        /unknown entrypoint "web"; expected one of: http/,
      ]],
    },
    {
      name: "entrypoint certResolver must exist",
      raw: { entryPoints: { web: { address: ":443", http: { tls: { certResolver: "le" } } } } },
      issues: [[
        "entryPoints.web.http.tls.certResolver",
        /unknown certificate resolver "le"; no certificatesResolvers are defined/,
      ]],
    },
    {
      name: "entrypoint TLS domains",
      raw: {
        entryPoints: {
          web: {
            address: ":443",
            http: { tls: { domains: [{ main: "bad_domain", sans: ["*.ok.com", "a..b"] }] } },
          },
        },
      },
      issues: [
        ["entryPoints.web.http.tls.domains[0].main", /expected a domain name/],
        ["entryPoints.web.http.tls.domains[0].sans[1]", /expected a domain name/],
      ],
    },
    {
      name: "cluster needs a secret",
      raw: { cluster: { address: ":9000" }, providers: etcd },
      issues: [["cluster", /expected exactly one of "secret", "secretFile", found none/]],
    },
    {
      name: "cluster secret length",
      raw: { cluster: { address: ":9000", secret: "short" }, providers: etcd },
      issues: [["cluster.secret", /at least 16 characters/]],
    },
    {
      name: "cluster needs an address",
      raw: { cluster: { secret: SECRET }, providers: etcd },
      issues: [["cluster.address", /^missing/]],
    },
    {
      name: "cluster timing",
      raw: { cluster: { ...cluster, heartbeatInterval: "600ms" }, providers: etcd },
      issues: [[
        "cluster.electionTimeout",
        /at least twice heartbeatInterval \(600ms\), found 1000ms/,
      ]],
    },
    {
      name: "cluster zero heartbeat",
      raw: { cluster: { ...cluster, heartbeatInterval: 0 }, providers: etcd },
      issues: [["cluster.heartbeatInterval", /at least 1ms/]],
    },
    {
      name: "cluster needs a KV provider",
      raw: { cluster: { ...cluster, peers: ["10.0.0.2:9000"] } },
      issues: [["cluster", /needs a shared KV store/]],
    },
    {
      name: "cluster peers and node id",
      raw: { cluster: { ...cluster, nodeId: "a b", peers: ["x"] }, providers: etcd },
      issues: [
        ["cluster.nodeId", /expected letters, digits/],
        ["cluster.peers[0]", /expected "host:port"/],
      ],
    },
    {
      name: "cluster address clashes with an entrypoint",
      raw: { cluster: { ...cluster, address: ":80" }, providers: etcd },
      issues: [["cluster.address", /port 80 is already used by entrypoint "http"/]],
    },
    {
      name: "unsupported top-level section",
      raw: { hostResolver: {} },
      issues: [["hostResolver", /"hostResolver" is not supported yet/]],
    },
    {
      name: "lifeCycle typo",
      raw: { lifeCycle: { graceTimeout: "1s" } },
      issues: [["lifeCycle.graceTimeout", /did you mean "graceTimeOut"\?/]],
    },
  ];
  for (const { name, raw, issues } of cases) {
    const got = issuesOf(raw);
    assert.deepEqual(
      got.map((i) => i.path),
      issues.map(([path]) => path),
      `${name}: ${JSON.stringify(got)}`,
    );
    for (const [index, [, message]] of issues.entries()) {
      assert.match(got[index].message, message, name);
      assert.equal(got[index].source, SOURCE);
    }
  }
});

Deno.test("a pasted Traefik file with [global] still loads", () => {
  const config = valid({ global: { checkNewVersion: true, sendAnonymousUsage: false } });
  assert.equal("global" in config, false);
  assert.equal(issuesOf({ global: { checkNewVersion: "yes" } })[0].path, "global.checkNewVersion");
});

Deno.test("the ConfigError message names file, key and problem", () => {
  assert.throws(
    () => validateStatic({ entryPoints: { web: { adress: ":80" } } }, "portico.toml"),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.equal(
        error.message.split("\n")[0],
        'portico.toml: entryPoints.web.adress: unknown key; did you mean "address"?',
      );
      return true;
    },
  );
});

Deno.test("a lone cluster node needs no KV store, and the secret may come from the environment", () => {
  const lone = validateStatic({ cluster: { address: "127.0.0.1:9000" } }, SOURCE, {
    hostname: "test-host",
    env: (name) => (name === "PORTICO_CLUSTER_SECRET" ? SECRET : undefined),
  });
  assert.deepEqual(lone.cluster?.peers, []);
  assert.equal(lone.cluster?.secret, undefined);
  const issues = (() => {
    try {
      validateStatic({ cluster: { address: "127.0.0.1:9000" } }, SOURCE, { env: () => undefined });
    } catch (error) {
      if (error instanceof ConfigError) return error.issues;
      throw error;
    }
    return [];
  })();
  assert.deepEqual(issues.map((i) => i.path), ["cluster"]);
  assert.match(issues[0].message, /found none \(or set PORTICO_CLUSTER_SECRET\)/);
});

Deno.test("experimental: fastProxy is accepted (always Portico's path), plugins and its debug log are refused by key", () => {
  const base = { entryPoints: { web: { address: ":80" } } };
  valid({ ...base, experimental: { fastProxy: {} } });
  valid({ ...base, experimental: { fastProxy: true } });
  const messages = (raw: unknown) => issuesOf(raw).map((i) => `${i.path}: ${i.message}`).join("\n");
  assert.match(messages({ ...base, experimental: { fastProxy: { debug: true } } }), /experimental\.fastProxy: "debug = true"/);
  assert.match(messages({ ...base, experimental: { plugins: { x: { moduleName: "m" } } } }), /experimental\.plugins: .*Yaegi/);
  assert.match(messages({ ...base, experimental: { otlpLogs: true } }), /experimental\.otlpLogs: .*not supported yet/);
});

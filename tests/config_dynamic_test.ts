/**
 * Tests for dynamic configuration validation: routers, services,
 * middlewares, TLS, KV-shaped trees, and errors naming the dotted key.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  ConfigError,
  type ConfigIssue,
  type DynamicConfig,
  KV_DECODE_OPTIONS,
  MIDDLEWARE_TYPES,
  validateDynamic,
} from "../lib/config/mod.ts";

const SOURCE = "dynamic.toml";

function issuesOf(raw: unknown): ConfigIssue[] {
  try {
    validateDynamic(raw, SOURCE);
  } catch (error) {
    if (error instanceof ConfigError) return error.issues;
    throw error;
  }
  return [];
}

const EMPTY: DynamicConfig = {
  http: { routers: {}, services: {}, middlewares: {}, serversTransports: {} },
  tls: { certificates: [], options: {}, stores: {} },
  tcp: { routers: {}, services: {}, middlewares: {}, serversTransports: {} },
};

Deno.test("an empty or missing dynamic config is valid and empty", () => {
  for (const raw of [undefined, null, {}, { http: {} }, { tls: {} }, { http: { routers: {} } }]) {
    assert.deepEqual(validateDynamic(raw, SOURCE), EMPTY, JSON.stringify(raw));
  }
});

Deno.test("routers and services get their defaults", () => {
  const config = validateDynamic({
    http: {
      routers: {
        app: { rule: "Host(`a.com`)", service: "app" },
        secure: {
          rule: "Host(`b.com`)",
          service: "app@file",
          entryPoints: ["websecure"],
          middlewares: ["auth", "strip@file"],
          priority: 10,
          tls: { certResolver: "le", domains: [{ main: "b.com" }] },
        },
      },
      services: {
        app: {
          loadBalancer: {
            servers: [{ url: "http://10.0.0.1:8080" }, { url: "https://b", weight: 0 }],
          },
        },
        checked: {
          loadBalancer: {
            servers: [{ url: "http://c" }],
            passHostHeader: false,
            healthCheck: { path: "/health" },
            sticky: { cookie: {} },
            responseForwarding: {},
            serversTransport: "t@file",
          },
        },
        split: { weighted: { services: [{ name: "app" }, { name: "checked", weight: 3 }] } },
        mirror: { mirroring: { service: "app", mirrors: [{ name: "checked", percent: 10 }] } },
        spare: { failover: { service: "app", fallback: "checked" } },
      },
    },
  }, SOURCE);
  assert.deepEqual(config.http.routers.app, {
    rule: "Host(`a.com`)",
    service: "app",
    entryPoints: [],
    middlewares: [],
    priority: 0,
  });
  assert.deepEqual(config.http.routers.secure.tls, {
    certResolver: "le",
    domains: [{ main: "b.com", sans: [] }],
  });
  assert.deepEqual(config.http.services.app, {
    loadBalancer: {
      servers: [{ url: "http://10.0.0.1:8080", weight: 1 }, { url: "https://b", weight: 0 }],
      passHostHeader: true,
      strategy: "wrr",
    },
  });
  assert.deepEqual(config.http.services.checked, {
    loadBalancer: {
      servers: [{ url: "http://c", weight: 1 }],
      passHostHeader: false,
      healthCheck: { path: "/health", interval: 30_000, timeout: 5_000, status: 0, headers: {} },
      sticky: { cookie: { secure: false, httpOnly: false } },
      responseForwarding: { flushInterval: 100 },
      serversTransport: "t@file",
      strategy: "wrr",
    },
  });
  assert.deepEqual(config.http.services.split, {
    weighted: { services: [{ name: "app", weight: 1 }, { name: "checked", weight: 3 }] },
  });
  assert.deepEqual(config.http.services.mirror, {
    mirroring: { service: "app", mirrors: [{ name: "checked", percent: 10 }], maxBodySize: -1, mirrorBody: true },
  });
  assert.deepEqual(config.http.services.spare, {
    failover: { service: "app", fallback: "checked" },
  });
});

Deno.test("health check and sticky options", () => {
  const config = validateDynamic({
    http: {
      services: {
        s: {
          loadBalancer: {
            servers: [{ url: "http://a" }],
            healthCheck: {
              path: "/h",
              interval: "10s",
              timeout: 2,
              scheme: "https",
              hostname: "internal",
              port: 8443,
              status: 204,
              headers: { "X-Check": "1" },
            },
            sticky: {
              cookie: {
                name: "lb",
                secure: true,
                httpOnly: true,
                sameSite: "Strict",
                maxAge: 60,
                path: "/",
              },
            },
            responseForwarding: { flushInterval: "-1ms" },
          },
        },
      },
    },
  }, SOURCE);
  const service = config.http.services.s;
  assert.ok("loadBalancer" in service);
  const lb = service.loadBalancer;
  assert.deepEqual(lb.healthCheck, {
    path: "/h",
    interval: 10_000,
    timeout: 2_000,
    scheme: "https",
    hostname: "internal",
    port: 8443,
    status: 204,
    headers: { "X-Check": "1" },
  });
  assert.deepEqual(lb.sticky, {
    cookie: { name: "lb", secure: true, httpOnly: true, sameSite: "strict", maxAge: 60, path: "/" },
  });
  assert.deepEqual(lb.responseForwarding, { flushInterval: -1 });
});

Deno.test("every Traefik v3 middleware type is accepted and its options kept as written", () => {
  const middlewares = Object.fromEntries(
    MIDDLEWARE_TYPES.map((
      type,
      index,
    ) => [`m${index}`, { [type]: { option: index, list: ["x"] } }]),
  );
  const config = validateDynamic({ http: { middlewares } }, SOURCE);
  assert.equal(Object.keys(config.http.middlewares).length, MIDDLEWARE_TYPES.length);
  for (const [index, type] of MIDDLEWARE_TYPES.entries()) {
    assert.deepEqual(config.http.middlewares[`m${index}`], {
      [type]: { option: index, list: ["x"] },
    });
  }
  assert.ok(MIDDLEWARE_TYPES.includes("ipWhiteList"));
  assert.ok(MIDDLEWARE_TYPES.includes("passTLSClientCert"));
});

Deno.test("TLS section defaults", () => {
  const config = validateDynamic({
    tls: {
      certificates: [{ certFile: "a.crt", keyFile: "a.key" }, {
        certFile: "b.crt",
        keyFile: "b.key",
        stores: ["default"],
      }],
      options: {
        default: {},
        modern: {
          minVersion: "VersionTLS13",
          sniStrict: true,
          cipherSuites: ["TLS_AES_128_GCM_SHA256"],
          clientAuth: { caFiles: ["ca.pem"], clientAuthType: "RequireAndVerifyClientCert" },
        },
      },
      stores: {
        default: { defaultCertificate: { certFile: "d.crt", keyFile: "d.key" } },
        other: {},
      },
    },
  }, SOURCE);
  assert.deepEqual(config.tls.certificates, [
    { certFile: "a.crt", keyFile: "a.key", stores: [] },
    { certFile: "b.crt", keyFile: "b.key", stores: ["default"] },
  ]);
  assert.deepEqual(config.tls.options.default, {
    cipherSuites: [],
    sniStrict: false,
    alpnProtocols: ["h2", "http/1.1", "acme-tls/1"],
  });
  assert.deepEqual(config.tls.options.modern.clientAuth, {
    caFiles: ["ca.pem"],
    clientAuthType: "RequireAndVerifyClientCert",
  });
  assert.deepEqual(config.tls.stores, {
    default: { defaultCertificate: { certFile: "d.crt", keyFile: "d.key" } },
    other: {},
  });
});

const lb = (url: unknown) => ({ loadBalancer: { servers: [{ url }] } });

Deno.test("dynamic errors name the dotted key and say what was expected", () => {
  const cases: { name: string; raw: unknown; issues: [string, RegExp][] }[] = [
    { name: "not a table", raw: "x", issues: [["", /^expected a table, found string "x"$/]] },
    {
      name: "rule type",
      raw: { http: { routers: { api: { rule: 3, service: "s" } } } },
      issues: [["http.routers.api.rule", /^expected a string.*, found number 3$/]],
    },
    {
      name: "rule and service missing",
      raw: { http: { routers: { api: {} } } },
      issues: [["http.routers.api.rule", /^missing; expected a string/], [
        "http.routers.api.service",
        /^missing/,
      ]],
    },
    {
      name: "rule typo",
      raw: { http: { routers: { api: { rul: "Path(`/`)", service: "s" } } } },
      issues: [["http.routers.api.rul", /^unknown key; did you mean "rule"\?$/], [
        "http.routers.api.rule",
        /^missing/,
      ]],
    },
    {
      name: "empty rule",
      raw: { http: { routers: { api: { rule: "", service: "s" } } } },
      issues: [["http.routers.api.rule", /found an empty string$/]],
    },
    {
      name: "router lists and priority",
      raw: {
        http: {
          routers: {
            r: { rule: "a", service: "s", entryPoints: "web", middlewares: ["a", 1], priority: -1 },
          },
        },
      },
      issues: [
        ["http.routers.r.entryPoints", /^expected a list of strings, found string "web"$/],
        ["http.routers.r.middlewares[1]", /^expected a string, found number 1$/],
        ["http.routers.r.priority", /^expected an integer >= 0, found number -1$/],
      ],
    },
    {
      name: "priority must be an integer",
      raw: { http: { routers: { r: { rule: "a", service: "s", priority: 1.5 } } } },
      issues: [["http.routers.r.priority", /found number 1.5$/]],
    },
    {
      name: "service reference",
      raw: { http: { routers: { r: { rule: "a", service: "a@b@c" } } } },
      issues: [["http.routers.r.service", /expected a name, optionally with a provider/]],
    },
    {
      name: "router tls",
      raw: {
        http: {
          routers: {
            r: {
              rule: "a",
              service: "s",
              tls: { certresolver: "le", domains: [{ sans: ["a.com"] }] },
            },
          },
        },
      },
      issues: [
        ["http.routers.r.tls.certresolver", /did you mean "certResolver"\?/],
        ["http.routers.r.tls.domains[0].main", /^missing/],
      ],
    },
    {
      name: "router name",
      raw: { http: { routers: { "a@b": { rule: "a", service: "s" } } } },
      issues: [['http.routers."a@b"', /invalid name/]],
    },
    {
      name: "unsupported router option",
      raw: { http: { routers: { r: { rule: "a", service: "s", ruleSyntax: "v2" } } } },
      issues: [["http.routers.r.ruleSyntax", /not supported yet/]],
    },
    {
      name: "server URL scheme",
      raw: { http: { services: { app: lb("ftp://x") } } },
      issues: [[
        "http.services.app.loadBalancer.servers[0].url",
        /absolute http:\/\/ or https:\/\/ URL.*"ftp".*found string "ftp:\/\/x"$/,
      ]],
    },
    {
      name: "relative server URL",
      raw: { http: { services: { app: lb("10.0.0.1:80") } } },
      issues: [["http.services.app.loadBalancer.servers[0].url", /absolute http/]],
    },
    {
      name: "server URL not a string",
      raw: { http: { services: { app: lb(8080) } } },
      issues: [[
        "http.services.app.loadBalancer.servers[0].url",
        /expected a string, found number 8080/,
      ]],
    },
    {
      name: "server URL missing",
      raw: { http: { services: { app: { loadBalancer: { servers: [{ weight: 1 }] } } } } },
      issues: [["http.services.app.loadBalancer.servers[0].url", /^missing/]],
    },
    {
      name: "server weight",
      raw: {
        http: {
          services: {
            app: {
              loadBalancer: {
                servers: [{ url: "http://a", weight: -1 }, { url: "http://b", weight: 0.5 }],
              },
            },
          },
        },
      },
      issues: [
        ["http.services.app.loadBalancer.servers[0].weight", /expected an integer >= 0/],
        ["http.services.app.loadBalancer.servers[1].weight", /found number 0.5/],
      ],
    },
    {
      name: "no service type",
      raw: { http: { services: { app: {} } } },
      issues: [[
        "http.services.app",
        /^expected exactly one service type \(loadBalancer, weighted, mirroring, failover\), found none$/,
      ]],
    },
    {
      name: "two service types",
      raw: {
        http: {
          services: { app: { loadBalancer: {}, failover: { service: "a", fallback: "b" } } },
        },
      },
      issues: [["http.services.app", /found "loadBalancer" and "failover"$/]],
    },
    {
      name: "service type typo",
      raw: { http: { services: { app: { loadbalancer: {} } } } },
      issues: [["http.services.app.loadbalancer", /did you mean "loadBalancer"\?/]],
    },
    {
      name: "servers as a table",
      raw: { http: { services: { app: { loadBalancer: { servers: { url: "http://a" } } } } } },
      issues: [[
        "http.services.app.loadBalancer.servers",
        /expected a list of tables, found a table/,
      ]],
    },
    {
      name: "passHostHeader",
      raw: { http: { services: { app: { loadBalancer: { passHostHeader: "true" } } } } },
      issues: [["http.services.app.loadBalancer.passHostHeader", /expected a boolean/]],
    },
    {
      name: "health check",
      raw: {
        http: {
          services: {
            app: {
              loadBalancer: {
                healthCheck: {
                  path: "health",
                  interval: "0s",
                  timeout: "x",
                  scheme: "ftp",
                  port: 0,
                  status: 42,
                  headers: { a: 1 },
                },
              },
            },
          },
        },
      },
      issues: [
        ["http.services.app.loadBalancer.healthCheck.path", /starting with "\/"/],
        ["http.services.app.loadBalancer.healthCheck.interval", /at least 1ms/],
        ["http.services.app.loadBalancer.healthCheck.timeout", /expected a duration/],
        ["http.services.app.loadBalancer.healthCheck.scheme", /expected one of "http", "https"/],
        ["http.services.app.loadBalancer.healthCheck.port", /from 1 to 65535/],
        ["http.services.app.loadBalancer.healthCheck.status", /from 100 to 599, or 0/],
        [
          "http.services.app.loadBalancer.healthCheck.headers.a",
          /expected a string, found number 1/,
        ],
      ],
    },
    {
      name: "health check without path",
      raw: { http: { services: { app: { loadBalancer: { healthCheck: { interval: "5s" } } } } } },
      issues: [["http.services.app.loadBalancer.healthCheck.path", /^missing/]],
    },
    {
      name: "sticky",
      raw: {
        http: {
          services: {
            app: {
              loadBalancer: {
                sticky: { cookie: { name: "a b", sameSite: "sometimes", maxAge: "1" } },
              },
            },
          },
        },
      },
      issues: [
        ["http.services.app.loadBalancer.sticky.cookie.name", /valid cookie name/],
        [
          "http.services.app.loadBalancer.sticky.cookie.sameSite",
          /expected one of "none", "lax", "strict"/,
        ],
        ["http.services.app.loadBalancer.sticky.cookie.maxAge", /expected an integer/],
      ],
    },
    {
      name: "sticky without cookie",
      raw: { http: { services: { app: { loadBalancer: { sticky: {} } } } } },
      issues: [["http.services.app.loadBalancer.sticky.cookie", /^missing/]],
    },
    {
      name: "weighted",
      raw: {
        http: {
          services: {
            w: { weighted: { services: [] } },
            v: { weighted: { services: [{ weight: 2 }] } },
            u: { weighted: {} },
          },
        },
      },
      issues: [
        ["http.services.w.weighted.services", /at least 1 item, found an empty list/],
        ["http.services.v.weighted.services[0].name", /^missing/],
        ["http.services.u.weighted.services", /^missing/],
      ],
    },
    {
      name: "mirroring",
      raw: {
        http: {
          services: {
            m: {
              mirroring: { mirrors: [{ name: "b", percent: 101 }, { name: "c" }], maxBodySize: -2 },
            },
          },
        },
      },
      issues: [
        ["http.services.m.mirroring.service", /^missing/],
        ["http.services.m.mirroring.mirrors[0].percent", /from 0 to 100, found number 101/],
        ["http.services.m.mirroring.mirrors[1].percent", /^missing/],
        ["http.services.m.mirroring.maxBodySize", /expected an integer >= -1/],
      ],
    },
    {
      name: "failover",
      raw: { http: { services: { f: { failover: { service: "a" } } } } },
      issues: [["http.services.f.failover.fallback", /^missing/]],
    },
    {
      name: "unknown middleware type",
      raw: { http: { middlewares: { m: { stripprefix: { prefixes: ["/a"] } } } } },
      issues: [["http.middlewares.m.stripprefix", /^unknown key; did you mean "stripPrefix"\?$/]],
    },
    {
      name: "middleware with no type",
      raw: { http: { middlewares: { m: {} } } },
      issues: [[
        "http.middlewares.m",
        /expected exactly one middleware type \(addPrefix, .*plugin\), found none/,
      ]],
    },
    {
      name: "middleware with two types",
      raw: { http: { middlewares: { m: { compress: {}, retry: { attempts: 2 } } } } },
      issues: [["http.middlewares.m", /found "compress" and "retry"/]],
    },
    {
      name: "middleware options must be a table",
      raw: { http: { middlewares: { m: { compress: true } } } },
      issues: [["http.middlewares.m.compress", /^expected a table, found boolean true$/]],
    },
    {
      name: "middleware not a table",
      raw: { http: { middlewares: { m: "compress" } } },
      issues: [["http.middlewares.m", /^expected a table with exactly one middleware type/]],
    },
    {
      name: "udp",
      raw: { tcp: { routers: {} }, udp: {} },
      issues: [["udp", /"udp" is not supported yet/]],
    },
    {
      name: "tcp router, service, middleware and transport fields",
      raw: {
        tcp: {
          routers: { r: { rule: "HostSNI(`*`)", ruleSyntax: "v2" } },
          services: { s: { loadBalancer: { servers: [{ address: "10.0.0.1" }] } } },
          middlewares: { m: { inFlightConn: { amount: 0 } } },
          serversTransports: { t: { proxyProtocol: { version: 3 } } },
        },
      },
      issues: [
        ["tcp.routers.r.service", /^missing; expected a string naming a service/],
        ["tcp.routers.r.ruleSyntax", /"v3"/],
        ["tcp.services.s.loadBalancer.servers[0].address", /expected "host:port"/],
        ["tcp.middlewares.m.inFlightConn.amount", />= 1/],
        ["tcp.serversTransports.t.proxyProtocol.version", /1 or 2/],
      ],
    },
    {
      name: "top-level typo",
      raw: { htp: {} },
      issues: [["htp", /did you mean "http"\?/]],
    },
    {
      name: "http section typo",
      raw: { http: { router: {} } },
      issues: [["http.router", /did you mean "routers"\?/]],
    },
    {
      name: "tls certificates",
      raw: { tls: { certificates: [{ certFile: "a.crt" }, { certfile: "b", keyFile: "b" }] } },
      issues: [
        ["tls.certificates[0].keyFile", /^missing/],
        ["tls.certificates[1].certfile", /did you mean "certFile"\?/],
        ["tls.certificates[1].certFile", /^missing/],
      ],
    },
    {
      name: "tls options",
      raw: {
        tls: {
          options: {
            o: { cipherSuites: ["aes"] },
            v: { minVersion: "VersionTLS13", maxVersion: "VersionTLS12" },
            c: { clientAuth: { clientAuthType: "RequireAndVerifyClientCert" } },
            d: { clientAuth: { clientAuthType: "Always" } },
          },
        },
      },
      issues: [
        ["tls.options.o.cipherSuites[0]", /cipher suite name/],
        ["tls.options.v.maxVersion", /at least minVersion \(VersionTLS13\)/],
        ["tls.options.c.clientAuth.caFiles", /at least one CA file/],
        ["tls.options.d.clientAuth.clientAuthType", /expected one of "NoClientCert"/],
      ],
    },
    {
      name: "tls stores",
      raw: { tls: { stores: { default: { defaultCertificate: { certFile: "a" } } } } },
      issues: [["tls.stores.default.defaultCertificate.keyFile", /^missing/]],
    },
    {
      name: "every issue is collected",
      raw: {
        http: {
          routers: { a: { rule: 1 }, b: { rule: "x", service: "s", priority: "1" } },
          services: { s: lb("nope") },
          middlewares: { m: {} },
        },
      },
      issues: [
        ["http.routers.a.rule", /found number 1/],
        ["http.routers.a.service", /^missing/],
        ["http.routers.b.priority", /found string "1"/],
        ["http.services.s.loadBalancer.servers[0].url", /absolute http/],
        ["http.middlewares.m", /found none/],
      ],
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

Deno.test("a KV-shaped tree decodes with the KV switches", () => {
  const tree = {
    http: {
      routers: {
        Api: {
          rule: "Host(`a.com`)",
          service: "app",
          entrypoints: { "0": "web", "1": "websecure" },
          middlewares: { "0": "strip" },
          priority: "42",
          tls: {
            certresolver: "le",
            domains: { "0": { main: "a.com", sans: { "0": "b.a.com" } } },
          },
        },
      },
      services: {
        app: {
          loadbalancer: {
            servers: {
              "0": { url: "http://10.0.0.1" },
              "1": { url: "http://10.0.0.2", weight: "2" },
            },
            passhostheader: "false",
            healthcheck: { path: "/h", interval: "5s" },
          },
        },
      },
      middlewares: {
        strip: { stripprefix: { prefixes: { "0": "/api" } } },
        gzip: { compress: "" },
      },
    },
    tls: { certificates: { "0": { certfile: "a.crt", keyfile: "a.key" } } },
  };
  const config = validateDynamic(tree, "etcd", KV_DECODE_OPTIONS);
  assert.deepEqual(config.http.routers.Api, {
    rule: "Host(`a.com`)",
    service: "app",
    entryPoints: ["web", "websecure"],
    middlewares: ["strip"],
    priority: 42,
    tls: { certResolver: "le", domains: [{ main: "a.com", sans: ["b.a.com"] }] },
  });
  assert.deepEqual(config.http.services.app, {
    loadBalancer: {
      servers: [{ url: "http://10.0.0.1", weight: 1 }, { url: "http://10.0.0.2", weight: 2 }],
      passHostHeader: false,
      healthCheck: { path: "/h", interval: 5_000, timeout: 5_000, status: 0, headers: {} },
      strategy: "wrr",
    },
  });
  assert.deepEqual(config.http.middlewares, {
    strip: { stripPrefix: { prefixes: ["/api"] } },
    gzip: { compress: {} },
  });
  assert.deepEqual(config.tls.certificates, [{ certFile: "a.crt", keyFile: "a.key", stores: [] }]);
  // The same tree is not valid TOML-shaped input.
  assert.throws(() => validateDynamic(tree, "file"), ConfigError);
});

Deno.test("KV errors name the source and path too", () => {
  try {
    validateDynamic(
      { http: { routers: { r: { rule: "x", service: "s", priority: "high" } } } },
      "etcd",
      KV_DECODE_OPTIONS,
    );
    assert.fail("expected a ConfigError");
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    assert.equal(
      error.message,
      'etcd: http.routers.r.priority: expected an integer >= 0, found string "high"',
    );
  }
});

/**
 * Static configuration: the schema for Traefik v3's static options that
 * Portico supports, and {@linkcode validateStatic}, which turns a raw tree into
 * a {@linkcode StaticConfig} with defaults applied and cross-references
 * checked (redirection targets, ping and metrics entrypoints, ACME resolvers,
 * port clashes).
 *
 * @module
 */

import {
  bool,
  decodeWithSchema,
  duration,
  enumOf,
  int,
  IssueCollector,
  list,
  num,
  obj,
  record,
  type Schema,
  str,
  stringList,
} from "./schema.ts";
import {
  checkDomain,
  checkEndpoint,
  checkIpOrCidr,
  checkName,
  checkReference,
  hostsOverlap,
  parseListenAddress,
} from "./values.ts";
import type { DnsChallengeConfig, EntryPointConfig, StaticConfig } from "./types.ts";
import { parseNameServer } from "./name_server.ts";
import { otlpMetricsSchema, tracingSchema } from "./otlp_schema.ts";
import { clientTlsSchema } from "./client_tls_schema.ts";
import { CLUSTER_SECRET_ENV, readEnv } from "../env.ts";

/** Let's Encrypt's production directory, Traefik's default `caServer`. */
export const LETS_ENCRYPT_PRODUCTION = "https://acme-v02.api.letsencrypt.org/directory";

/** Name of the internal entrypoint the API, ping and metrics use by default. */
export { INTERNAL_ENTRYPOINT } from "./types.ts";
import { INTERNAL_ENTRYPOINT } from "./types.ts";

const NOT_YET = "not supported yet";

function notYet(...keys: string[]): Record<string, string> {
  return Object.fromEntries(keys.map((key) => [key, `"${key}" is ${NOT_YET}`]));
}

/** The HMAC key of an external account binding: base64url (padding optional), as CAs hand it out. */
function checkHmacEncoded(text: string): string | undefined {
  return /^[A-Za-z0-9_-]+={0,2}$/.test(text) || /^[A-Za-z0-9+/]+={0,2}$/.test(text)
    ? undefined
    : "expected the base64url HMAC key the CA gave with the key id";
}

const addressSchema = str({
  required: true,
  expected: 'an address like ":80", "127.0.0.1:8000" or "[::1]:443"',
  validate: (text) => {
    const parsed = parseListenAddress(text);
    return typeof parsed === "string" ? parsed : undefined;
  },
});

/** Certificate domains, shared with dynamic router TLS. */
export const tlsDomainSchema: Schema = obj({
  main: str({ required: true, validate: checkDomain }),
  sans: list(str({ validate: checkDomain }), { default: [] }),
});

/** `tls` on a router or an entrypoint's `http` section. */
export const routerTlsSchema: Schema = obj({
  certResolver: str({ validate: checkName }),
  options: str({ validate: checkReference }),
  domains: list(tlsDomainSchema, { default: [] }),
}, { allowBoolean: true });

const entryPointSchema = obj({
  address: addressSchema,
  http: obj({
    redirections: obj({
      entryPoint: obj({
        to: str({ required: true }),
        scheme: enumOf(["https", "http"], { default: "https" }),
        permanent: bool({ default: true }),
        // Traefik's default: just below the highest priority, so the redirect wins.
        priority: int({ min: 1, default: 2147483646 }),
      }, { required: true }),
    }),
    middlewares: list(str({ validate: checkReference }), { default: [] }),
    tls: routerTlsSchema,
    // Request line plus headers; above it the answer is 431 (default 32 KiB).
    maxHeaderBytes: int({ min: 1 }),
  }, {
    default: {},
    unsupported: notYet("encodeQuerySemicolons", "sanitizePath"),
  }),
  transport: obj({
    respondingTimeouts: obj({
      readTimeout: duration({ default: "60s" }),
      writeTimeout: duration({ default: 0 }),
      idleTimeout: duration({ default: "180s" }),
    }, { default: {} }),
    lifeCycle: obj({
      requestAcceptGraceTimeout: duration({ default: 0 }),
      graceTimeOut: duration({ default: "10s" }),
    }, { default: {} }),
    maxConnections: int({ min: 1 }),
  }, { default: {}, unsupported: notYet("keepAliveMaxRequests", "keepAliveMaxTime") }),
  forwardedHeaders: obj({
    trustedIPs: list(str({ validate: checkIpOrCidr }), { default: [] }),
    insecure: bool({ default: false }),
  }, { default: {}, unsupported: notYet("connection") }),
  // PROXY protocol v1/v2 from the L4 balancer in front (trusted peers only, or all with insecure).
  proxyProtocol: obj({
    trustedIPs: list(str({ validate: checkIpOrCidr }), { default: [] }),
    insecure: bool({ default: false }),
  }),
}, {
  unsupported: notYet(
    "http2",
    "http3",
    "udp",
    "observability",
    "asDefault",
    "reusePort",
    "allowACMEByPass",
  ),
});


function kvProviderSchema(defaultEndpoint: string, extra: Record<string, Schema>): Schema {
  return obj({
    endpoints: list(str({ validate: checkEndpoint }), { default: [defaultEndpoint], minItems: 1 }),
    rootKey: str({
      default: "traefik",
      validate: (key) =>
        key.startsWith("/") || key.endsWith("/")
          ? 'expected a key prefix without leading or trailing "/", like "traefik"'
          : undefined,
    }),
    username: str(),
    password: str(),
    tls: clientTlsSchema,
    ...extra,
  }, { unsupported: notYet("namespaces", "sentinel") });
}

const providersSchema = obj({
  file: obj({
    filename: str(),
    directory: str(),
    watch: bool({ default: true }),
  }, { exactlyOne: [["filename", "directory"]], ignored: ["debugLogGeneratedTemplate"] }),
  etcd: kvProviderSchema("127.0.0.1:2379", {}),
  redis: kvProviderSchema("127.0.0.1:6379", { db: int({ min: 0, default: 0 }) }),
  consul: kvProviderSchema("127.0.0.1:8500", { token: str() }),
  providersThrottleDuration: duration({ default: "2s" }),
}, {
  default: {},
  unsupported: notYet(
    "docker",
    "swarm",
    "kubernetesCRD",
    "kubernetesIngress",
    "kubernetesGateway",
    "rest",
    "zooKeeper",
    "http",
    "ecs",
    "nomad",
    "consulCatalog",
    "plugin",
  ),
});

/**
 * `dnsChallenge`, in Traefik's vocabulary. The provider name is checked
 * when the resolver starts (lib/acme/dns/providers.ts): an unknown one, or
 * missing credentials, fails only that resolver's orders, with an error
 * listing what is supported. The deprecated `delayBeforeCheck` and
 * `disablePropagationCheck` are folded into `propagation` as Traefik does
 * (the start-up logs a deprecation warning for each).
 */
const dnsChallengeSchema = obj({
  provider: str({ required: true }),
  resolvers: list(str({
    validate: (text) => {
      const server = parseNameServer(text);
      return typeof server === "string" ? server : undefined;
    },
  }), { default: [] }),
  propagation: obj({
    delayBeforeChecks: duration({ default: "0s", min: 0 }),
    disableChecks: bool({ default: false }),
    requireAllRNS: bool({ default: false }),
    disableANSChecks: bool({ default: false }),
  }, { default: {} }),
  credentialsFile: str(),
  delayBeforeCheck: duration({ min: 0 }),
  disablePropagationCheck: bool(),
}, {
  check: (dns: DnsChallengeConfig) => {
    if (dns.disablePropagationCheck) dns.propagation.disableChecks = true;
    if (dns.delayBeforeCheck !== undefined && dns.delayBeforeCheck > 0) {
      dns.propagation.delayBeforeChecks = dns.delayBeforeCheck;
    }
  },
});

const acmeSchema = obj({
  email: str({
    validate: (
      email,
    ) => (/^[^@\s]+@[^@\s]+$/.test(email) ? undefined : "expected an email address"),
  }),
  caServer: str({
    default: LETS_ENCRYPT_PRODUCTION,
    validate: (text) => {
      try {
        const url = new URL(text);
        if (url.protocol === "https:" || url.protocol === "http:") return undefined;
      } catch { /* reported below */ }
      return "expected the URL of an ACME directory, like " +
        JSON.stringify(LETS_ENCRYPT_PRODUCTION);
    },
  }),
  storage: str({ default: "acme.json" }),
  keyType: enumOf(["EC256", "EC384", "RSA2048", "RSA4096"], { default: "EC256", ignoreCase: true }),
  caCertificates: stringList(),
  // Cluster only: how long the manager waits for every member to confirm it
  // serves the challenge before asking the CA to validate.
  clusterReadyTimeout: duration({ default: "30s", min: 0 }),
  httpChallenge: obj({ entryPoint: str({ required: true }) }),
  tlsChallenge: obj({}, { allowBoolean: true }),
  dnsChallenge: dnsChallengeSchema,
  eab: obj({
    kid: str({ required: true }),
    hmacEncoded: str({ required: true, validate: checkHmacEncoded }),
  }),
}, {
  required: true,
  unsupported: notYet(
    "preferredChain",
    "certificatesDuration",
    "caServerName",
    "caSystemCertPool",
    "clientTimeout",
    "clientResponseHeaderTimeout",
  ),
  check: (acme, ctx) => {
    if (
      acme.httpChallenge === undefined && acme.tlsChallenge === undefined &&
      acme.dnsChallenge === undefined
    ) {
      ctx.report('expected a challenge: "httpChallenge" or "tlsChallenge", or "dnsChallenge"');
    }
  },
});

const clusterSchema = obj({
  nodeId: str({
    validate: (id) =>
      /^[A-Za-z0-9._-]+$/.test(id) ? undefined : "expected letters, digits, '.', '_' or '-'",
  }),
  address: str({
    required: true,
    validate: (text) => {
      const parsed = parseListenAddress(text);
      return typeof parsed === "string" ? parsed : undefined;
    },
  }),
  peers: list(str({ validate: checkEndpoint }), { default: [] }),
  secret: str({
    validate: (secret) =>
      secret.length < 16 ? "expected a secret of at least 16 characters" : undefined,
  }),
  secretFile: str(),
  dataDir: str({ default: "./data" }),
  heartbeatInterval: duration({ default: "100ms", min: 1 }),
  electionTimeout: duration({ default: "1s", min: 1 }),
  encryptionKey: str(),
  // Keys being rotated out: they still open, never seal (lib/acme/secret_box.ts).
  previousEncryptionKeys: list(str()),
}, {
  // Neither is fine when PORTICO_CLUSTER_SECRET is set; validateStatic checks that.
  atMostOne: [["secret", "secretFile"]],
  check: (cluster, ctx) => {
    if (cluster.electionTimeout < 2 * cluster.heartbeatInterval) {
      ctx.report(
        `expected at least twice heartbeatInterval (${cluster.heartbeatInterval}ms), found ${cluster.electionTimeout}ms`,
        "electionTimeout",
      );
    }
  },
});

const lifeCycleSchema = obj({
  graceTimeOut: duration({ default: "10s" }),
  requestAcceptGraceTimeout: duration({ default: 0 }),
}, { default: {} });

/** The whole static configuration, as a schema (also usable for KV or flags). */
export const staticConfigSchema: Schema = obj({
  entryPoints: record(entryPointSchema, { default: {}, validateKey: checkName }),
  providers: providersSchema,
  api: obj({
    insecure: bool({ default: false }),
    dashboard: bool({ default: true }),
    debug: bool({ default: false }),
  }, { allowBoolean: true, unsupported: notYet("basePath", "disableDashboardAd") }),
  ping: obj({ entryPoint: str({ default: INTERNAL_ENTRYPOINT }) }, {
    allowBoolean: true,
    unsupported: notYet("manualRouting", "terminatingStatusCode"),
  }),
  log: obj({
    level: enumOf(["DEBUG", "INFO", "WARN", "ERROR"], {
      default: "INFO",
      ignoreCase: true,
      // Traefik's other levels, folded onto the nearest one Portico has.
      aliases: { TRACE: "DEBUG", WARNING: "WARN", FATAL: "ERROR", PANIC: "ERROR" },
    }),
    format: enumOf(["common", "json"], { default: "common" }),
    filePath: str(),
  }, {
    default: {},
    ignored: ["noColor"],
    unsupported: notYet("maxSize", "maxAge", "maxBackups", "compress"),
  }),
  accessLog: obj({
    filePath: str(),
    format: enumOf(["common", "json"], { default: "common" }),
  }, {
    allowBoolean: true,
    unsupported: notYet("bufferingSize", "filters", "fields", "addInternals"),
  }),
  metrics: obj({
    prometheus: obj({
      buckets: list(num({ min: 0 }), {
        default: [0.1, 0.3, 1.2, 5],
        minItems: 1,
        check: (buckets: number[], ctx) => {
          for (let i = 1; i < buckets.length; i++) {
            if (buckets[i] <= buckets[i - 1]) {
              ctx.report(
                `expected buckets in increasing order, found ${buckets[i]} after ${buckets[i - 1]}`,
                i,
              );
            }
          }
        },
      }),
      entryPoint: str({ default: INTERNAL_ENTRYPOINT }),
      // false drops that family of request series. Routers default to on here (Traefik: off).
      addEntryPointsLabels: bool({ default: true }),
      addRoutersLabels: bool({ default: true }),
      addServicesLabels: bool({ default: true }),
    }, {
      allowBoolean: true,
      unsupported: notYet("manualRouting", "headerLabels", "addInternals"),
    }),
    otlp: otlpMetricsSchema,
  }, { unsupported: notYet("datadog", "statsD", "influxDB2") }),
  tracing: tracingSchema,
  experimental: obj({
    // Traefik's faster HTTP/1.1 forwarder; Portico's byte-level relay is that path always.
    fastProxy: obj({ debug: bool({ default: false }) }, {
      allowBoolean: true,
      check: (v, ctx) => {
        if (v.debug) ctx.report('"debug = true": Portico has no separate fast-proxy log; use log.level = "DEBUG"');
      },
    }),
  }, {
    unsupported: {
      plugins: '"plugins" (Yaegi) cannot run in Portico: it is not a Go runtime',
      localPlugins: '"localPlugins" (Yaegi) cannot run in Portico: it is not a Go runtime',
      abortOnPluginFailure: '"abortOnPluginFailure" has no effect without plugins, which Portico cannot run',
      ...notYet("otlpLogs"),
    },
  }),
  certificatesResolvers: record(obj({ acme: acmeSchema }, { unsupported: notYet("tailscale") }), {
    default: {},
    validateKey: checkName,
  }),
  cluster: clusterSchema,
  lifeCycle: lifeCycleSchema,
  server: obj({
    workers: enumOf(["auto"], { default: 1, orInteger: { min: 1, max: 64 } }),
  }, { default: {} }),
  // Accepted so pasted Traefik files load; neither option means anything here.
  global: obj({ checkNewVersion: bool(), sendAnonymousUsage: bool() }),
}, {
  unsupported: notYet(
    "serversTransport",
    "tcpServersTransport",
    "hostResolver",
    "spiffe",
    "ocsp",
    "core",
    "hub",
    "pilot",
  ),
});



/** Options for {@linkcode validateStatic}. */
export interface ValidateStaticOptions {
  /** Default for `cluster.nodeId`; the machine's host name when not given. */
  hostname?: string;
  /** Reads an environment variable (default `Deno.env.get`, undefined without --allow-env). */
  env?: (name: string) => string | undefined;
}

/**
 * Validates a raw static configuration tree (parsed TOML) and returns it with
 * defaults applied, Traefik's implicit entrypoints added, and every
 * cross-reference checked. Throws a {@linkcode ConfigError} listing every
 * issue, each naming `source` and the dotted key.
 *
 * Implicit entrypoints follow Traefik: `http` on ":80" when none is defined;
 * `traefik` on ":8080" when `api.insecure` is on, or ping or Prometheus use
 * the `traefik` entrypoint, and no entrypoint of that name exists.
 *
 * @example
 * ```ts
 * const config = validateStatic({ entryPoints: { web: { address: ":80" } } }, "portico.toml");
 * config.entryPoints.web.port; // 80
 * ```
 */
export function validateStatic(
  raw: unknown,
  source: string,
  options: ValidateStaticOptions = {},
): StaticConfig {
  const issues = new IssueCollector(source);
  const decoded = decodeWithSchema<StaticConfig & { global?: unknown }>(
    staticConfigSchema,
    raw ?? {},
    { source },
  );
  issues.issues.push(...decoded.issues);
  issues.throwIfAny();
  const { global: _ignored, ...config } = decoded.value!;

  for (const entryPoint of Object.values(config.entryPoints)) addParsedAddress(entryPoint);
  for (const [name, entryPoint] of Object.entries(config.entryPoints)) {
    if (entryPoint.proxyProtocol && entryPoint.http.tls) {
      issues.add(
        ["entryPoints", name, "proxyProtocol"],
        "not supported yet on an entrypoint with http.tls (the TLS listener reads the ClientHello first); " +
          "use a plain entrypoint: TLS routers on it are served through its TLS side",
      );
    }
  }
  if (Object.keys(config.entryPoints).length === 0) {
    config.entryPoints.http = defaultEntryPoint(":80", source);
  }
  const needsInternal = config.api?.insecure === true ||
    config.ping?.entryPoint === INTERNAL_ENTRYPOINT ||
    config.metrics?.prometheus?.entryPoint === INTERNAL_ENTRYPOINT;
  if (needsInternal && config.entryPoints[INTERNAL_ENTRYPOINT] === undefined) {
    config.entryPoints[INTERNAL_ENTRYPOINT] = defaultEntryPoint(":8080", source);
  }
  if (config.cluster !== undefined && config.cluster.nodeId === undefined) {
    config.cluster.nodeId = options.hostname ?? localHostname();
  }
  if (
    config.cluster !== undefined && config.cluster.secret === undefined &&
    config.cluster.secretFile === undefined && !(options.env ?? readEnv)(CLUSTER_SECRET_ENV)
  ) {
    issues.add(
      ["cluster"],
      `expected exactly one of "secret", "secretFile", found none (or set ${CLUSTER_SECRET_ENV})`,
    );
  }

  crossCheck(config, issues);
  issues.throwIfAny();
  config.sourceFile = source;
  return config;
}

function addParsedAddress(entryPoint: EntryPointConfig): void {
  // The schema already rejected addresses that do not parse.
  const parsed = parseListenAddress(entryPoint.address) as { hostname: string; port: number };
  entryPoint.hostname = parsed.hostname;
  entryPoint.port = parsed.port;
}

function defaultEntryPoint(address: string, source: string): EntryPointConfig {
  const { value } = decodeWithSchema<EntryPointConfig>(entryPointSchema, { address }, { source });
  addParsedAddress(value!);
  return value!;
}

function localHostname(): string {
  try {
    return Deno.hostname();
  } catch {
    // Without --allow-sys the name is unknown; a fixed id still works for one node.
    return "portico";
  }
}

function crossCheck(config: StaticConfig, issues: IssueCollector): void {
  const names = Object.keys(config.entryPoints);
  const known = `one of: ${names.join(", ")}`;
  const requireEntryPoint = (name: string, path: (string | number)[]) => {
    if (config.entryPoints[name] === undefined) {
      issues.add(path, `unknown entrypoint "${name}"; expected ${known}`);
    }
  };
  const resolvers = Object.keys(config.certificatesResolvers);

  for (const [name, entryPoint] of Object.entries(config.entryPoints)) {
    const redirect = entryPoint.http.redirections?.entryPoint;
    if (redirect !== undefined) {
      const path = ["entryPoints", name, "http", "redirections", "entryPoint", "to"];
      // Traefik also accepts a port (":443"); resolve it to the entrypoint on that port.
      const port = /^:(\d+)$/.exec(redirect.to);
      if (port !== null) {
        const matches = names.filter((other) => config.entryPoints[other].port === Number(port[1]));
        if (matches.length === 1) redirect.to = matches[0];
        else {
          issues.add(
            path,
            `expected the name of an entrypoint (${known}); ${
              matches.length === 0 ? "no entrypoint listens" : "several entrypoints listen"
            } on port ${port[1]}`,
          );
        }
      } else requireEntryPoint(redirect.to, path);
      if (redirect.to === name) issues.add(path, `redirects entrypoint "${name}" to itself`);
    }
    const resolver = entryPoint.http.tls?.certResolver;
    if (resolver !== undefined && !resolvers.includes(resolver)) {
      issues.add(
        ["entryPoints", name, "http", "tls", "certResolver"],
        `unknown certificate resolver "${resolver}"; ${
          resolvers.length === 0
            ? "no certificatesResolvers are defined"
            : `expected one of: ${resolvers.join(", ")}`
        }`,
      );
    }
  }

  // Two listeners on one port fail at startup; say which ones here instead.
  const listeners: { name: string; hostname: string; port: number; path: string[] }[] = Object
    .entries(config.entryPoints).map(([name, ep]) => ({
      name: `entrypoint "${name}"`,
      hostname: ep.hostname,
      port: ep.port,
      path: ["entryPoints", name, "address"],
    }));
  if (config.cluster !== undefined) {
    const parsed = parseListenAddress(config.cluster.address) as { hostname: string; port: number };
    listeners.push({ name: "cluster.address", ...parsed, path: ["cluster", "address"] });
  }
  for (let i = 0; i < listeners.length; i++) {
    for (let j = 0; j < i; j++) {
      const [a, b] = [listeners[j], listeners[i]];
      if (a.port !== 0 && a.port === b.port && hostsOverlap(a.hostname, b.hostname)) {
        issues.add(b.path, `port ${b.port} is already used by ${a.name}`);
      }
    }
  }

  if (config.ping !== undefined) requireEntryPoint(config.ping.entryPoint, ["ping", "entryPoint"]);
  if (config.metrics?.prometheus !== undefined) {
    requireEntryPoint(config.metrics.prometheus.entryPoint, [
      "metrics",
      "prometheus",
      "entryPoint",
    ]);
  }
  for (const [name, resolver] of Object.entries(config.certificatesResolvers)) {
    const challenge = resolver.acme.httpChallenge;
    if (challenge !== undefined) {
      requireEntryPoint(challenge.entryPoint, [
        "certificatesResolvers",
        name,
        "acme",
        "httpChallenge",
        "entryPoint",
      ]);
    }
  }
  // A node without peers is its own manager and needs no shared leader record.
  if (
    config.cluster !== undefined && config.cluster.peers.length > 0 &&
    config.providers.etcd === undefined &&
    config.providers.redis === undefined && config.providers.consul === undefined
  ) {
    issues.add(
      ["cluster"],
      "a cluster of more than one node needs a shared KV store; configure providers.etcd, providers.redis or providers.consul",
    );
  }
}

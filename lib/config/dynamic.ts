/**
 * Dynamic configuration: the schema for Traefik v3's HTTP routers, services,
 * middlewares and TLS section, and {@linkcode validateDynamic}, which turns a
 * raw tree (parsed TOML, or a tree built from KV keys) into a
 * {@linkcode DynamicConfig}.
 *
 * Middleware options are kept as written: each middleware's factory validates
 * its own options when the router is built.
 *
 * @module
 */

import {
  bool,
  type DecodeOptions,
  decodeWithSchema,
  duration,
  enumOf,
  int,
  list,
  obj,
  record,
  type Schema,
  str,
  table,
  union,
} from "./schema.ts";
import { checkHttpUrl, checkName, checkReference } from "./values.ts";
import { routerTlsSchema, tlsDomainSchema } from "./static.ts";
import { ConfigError } from "./errors.ts";
import { tcpConfigSchema } from "./tcp.ts";
import type { DynamicConfig } from "./types.ts";

function notYet(...keys: string[]): Record<string, string> {
  return Object.fromEntries(keys.map((key) => [key, `"${key}" is not supported yet`]));
}

const reference = () =>
  str({
    required: true,
    expected: 'a string naming a service, like "app" or "app@file"',
    validate: checkReference,
  });

/** Every middleware type Traefik v3 has; `ipWhiteList` is the deprecated name of `ipAllowList`. */
export const MIDDLEWARE_TYPES = [
  "addPrefix",
  "stripPrefix",
  "stripPrefixRegex",
  "replacePath",
  "replacePathRegex",
  "chain",
  "headers",
  "redirectScheme",
  "redirectRegex",
  "basicAuth",
  "digestAuth",
  "forwardAuth",
  "ipAllowList",
  "ipWhiteList",
  "rateLimit",
  "inFlightReq",
  "retry",
  "circuitBreaker",
  "compress",
  "buffering",
  "errors",
  "contentType",
  "grpcWeb",
  "passTLSClientCert",
  "plugin",
] as const;

const routerSchema = obj({
  rule: str({ required: true, expected: 'a string holding a rule, like "Host(`example.com`)"' }),
  service: reference(),
  entryPoints: list(str({ validate: checkName }), { default: [] }),
  middlewares: list(str({ validate: checkReference }), { default: [] }),
  priority: int({ min: 0, default: 0 }),
  tls: routerTlsSchema,
}, { unsupported: notYet("ruleSyntax", "observability") });

const stickySchema = obj({
  cookie: obj({
    name: str({
      validate: (name) =>
        /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name) ? undefined : "expected a valid cookie name",
    }),
    secure: bool({ default: false }),
    httpOnly: bool({ default: false }),
    sameSite: enumOf(["none", "lax", "strict"], { ignoreCase: true }),
    maxAge: int(),
    path: str({
      validate: (path) => (path.startsWith("/") ? undefined : 'expected a path starting with "/"'),
    }),
    // Go's http.Cookie drops a leading dot and omits a malformed domain; a malformed one is refused here.
    domain: str({
      validate: (domain) =>
        /^\.?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(domain) &&
          domain.length <= 255
          ? undefined
          : "expected a domain name such as example.com",
    }),
  }, { required: true, allowBoolean: true }),
});

const healthCheckSchema = obj({
  path: str({
    required: true,
    validate: (path) => (path.startsWith("/") ? undefined : 'expected a path starting with "/"'),
  }),
  interval: duration({ default: "30s", min: 1 }),
  timeout: duration({ default: "5s", min: 1 }),
  scheme: enumOf(["http", "https"]),
  hostname: str(),
  port: int({ min: 1, max: 65535 }),
  status: int({
    default: 0,
    expected: "an HTTP status from 100 to 599, or 0 for any 2xx or 3xx",
    check: (status: number, ctx) => {
      if (status !== 0 && (status < 100 || status > 599)) {
        ctx.report(
          `expected an HTTP status from 100 to 599, or 0 for any 2xx or 3xx, found ${status}`,
        );
      }
    },
  }),
  headers: record(str({ allowEmpty: true }), { default: {} }),
}, { unsupported: notYet("mode", "method", "followRedirects", "unhealthyInterval") });

const loadBalancerSchema = obj({
  servers: list(
    obj({
      url: str({ required: true, validate: checkHttpUrl }),
      weight: int({ min: 0, default: 1 }),
    }, { unsupported: notYet("preservePath") }),
    { default: [] },
  ),
  passHostHeader: bool({ default: true }),
  healthCheck: healthCheckSchema,
  sticky: stickySchema,
  // A negative interval means "flush after every write", as in Traefik.
  responseForwarding: obj({ flushInterval: duration({ default: "100ms", min: -Infinity }) }),
  serversTransport: str({ validate: checkReference }),
  strategy: str({
    default: "wrr",
    validate: (value) =>
      value === "wrr" || value === "p2c" || value === "hrw" || value === "leasttime"
        ? undefined
        : `expected one of "wrr", "p2c", "hrw", "leasttime"`,
  }),
});

const serviceSchema = union({
  loadBalancer: loadBalancerSchema,
  weighted: obj({
    services: list(
      obj({ name: reference(), weight: int({ min: 0, default: 1 }) }),
      { required: true, minItems: 1 },
    ),
    sticky: stickySchema,
  }, { unsupported: notYet("healthCheck") }),
  mirroring: obj({
    service: reference(),
    mirrors: list(obj({ name: reference(), percent: int({ required: true, min: 0, max: 100 }) }), {
      default: [],
    }),
    // -1 means no limit, as in Traefik.
    maxBodySize: int({ min: -1, default: -1 }),
    mirrorBody: bool({ default: true }),
  }, { unsupported: notYet("healthCheck") }),
  failover: obj({
    service: reference(),
    fallback: reference(),
    // Main-service answers with these statuses are replayed on the fallback (the body is buffered for that).
    errors: obj({
      status: list(str({
        validate: (block) =>
          /^\s*\d{1,9}\s*(-\s*\d{1,9}\s*)?(,\s*\d{1,9}\s*(-\s*\d{1,9}\s*)?)*$/.test(block)
            ? undefined
            : 'expected a status such as "404" or a range such as "500-599"',
      }), { default: [] }),
      maxRequestBodyBytes: int({ min: -1, default: -1 }),
    }),
  }, {
    unsupported: notYet("healthCheck"),
  }),
}, { label: "service type" });

/** Timeouts and trust for reaching upstreams (Traefik's `http.serversTransports`). */
const serversTransportSchema = obj({
  serverName: str(),
  // A client certificate towards the upstream (Deno's TLS client takes one).
  certificates: list(obj({ certFile: str({ required: true }), keyFile: str({ required: true }) }), {
    default: [],
    check: (certificates: unknown[], ctx) => {
      if (certificates.length > 1) ctx.report("not supported yet: more than one client certificate", 1);
    },
  }),
  insecureSkipVerify: bool({ default: false }),
  rootCAs: list(str(), { default: [] }),
  maxIdleConnsPerHost: int({ min: -1, default: 200 }),
  forwardingTimeouts: obj({
    dialTimeout: duration({ default: "30s", min: 0 }),
    responseHeaderTimeout: duration({ default: "0s", min: 0 }),
    idleConnTimeout: duration({ default: "90s", min: 0 }),
  }, { default: {}, unsupported: notYet("readIdleTimeout", "pingTimeout") }),
}, {
  unsupported: notYet("disableHTTP2", "peerCertURI", "spiffe"),
  check: (transport: { serverName?: string; certificates: unknown[] }, ctx) => {
    if (transport.serverName !== undefined && transport.certificates.length > 0) {
      ctx.report(
        "not possible on Deno 2.9.6: its TLS client sets a custom server name only without a client certificate",
        "serverName",
      );
    }
  },
});

const middlewareSchema = union(
  Object.fromEntries(MIDDLEWARE_TYPES.map((type) => [type, table()])),
  { label: "middleware type" },
);

const TLS_VERSIONS = ["VersionTLS10", "VersionTLS11", "VersionTLS12", "VersionTLS13"];
const CLIENT_AUTH_TYPES = [
  "NoClientCert",
  "RequestClientCert",
  "RequireAnyClientCert",
  "VerifyClientCertIfGiven",
  "RequireAndVerifyClientCert",
];

const tlsOptionsSchema = obj({
  minVersion: enumOf(TLS_VERSIONS),
  maxVersion: enumOf(TLS_VERSIONS),
  cipherSuites: list(
    str({
      validate: (name) =>
        /^TLS_[A-Z0-9_]+$/.test(name)
          ? undefined
          : 'expected a cipher suite name like "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"',
    }),
    { default: [] },
  ),
  sniStrict: bool({ default: false }),
  alpnProtocols: list(str(), { default: ["h2", "http/1.1", "acme-tls/1"] }),
  clientAuth: obj({
    caFiles: list(str(), { default: [] }),
    // No default: caFiles alone mean RequireAndVerifyClientCert, as in Traefik.
    clientAuthType: enumOf(CLIENT_AUTH_TYPES),
  }, {
    check: (auth, ctx) => {
      const verifies = auth.clientAuthType === "VerifyClientCertIfGiven" ||
        auth.clientAuthType === "RequireAndVerifyClientCert";
      if (verifies && auth.caFiles.length === 0) {
        ctx.report(
          `expected at least one CA file to verify client certificates against`,
          "caFiles",
        );
      }
    },
  }),
}, {
  unsupported: notYet("curvePreferences", "preferServerCipherSuites", "disableSessionTickets"),
  check: (options, ctx) => {
    if (
      options.minVersion !== undefined && options.maxVersion !== undefined &&
      TLS_VERSIONS.indexOf(options.minVersion) > TLS_VERSIONS.indexOf(options.maxVersion)
    ) {
      ctx.report(`expected maxVersion at least minVersion (${options.minVersion})`, "maxVersion");
    }
  },
});

const certificateFiles = {
  certFile: str({ required: true }),
  keyFile: str({ required: true }),
};

/** The whole dynamic configuration, as a schema (the KV codec decodes with it too). */
export const dynamicConfigSchema: Schema = obj({
  http: obj({
    routers: record(routerSchema, { default: {}, validateKey: checkName }),
    services: record(serviceSchema, { default: {}, validateKey: checkName }),
    middlewares: record(middlewareSchema, { default: {}, validateKey: checkName }),
    serversTransports: record(serversTransportSchema, { default: {}, validateKey: checkName }),
  }, { default: {} }),
  tls: obj({
    certificates: list(obj({ ...certificateFiles, stores: list(str(), { default: [] }) }), {
      default: [],
    }),
    options: record(tlsOptionsSchema, { default: {}, validateKey: checkName }),
    stores: record(
      obj({
        defaultCertificate: obj(certificateFiles),
        // The default certificate obtained from a resolver; defaultCertificate wins when both are set.
        defaultGeneratedCert: obj({
          resolver: str({ required: true, validate: checkName }),
          domain: tlsDomainSchema,
        }, {
          check: (v, ctx) => {
            if (!(v as { domain?: unknown }).domain) ctx.report('expected "domain" with the certificate\'s "main" name');
          },
        }),
      }),
      {
        default: {},
        validateKey: checkName,
        // Traefik serves only the "default" store; a generated certificate elsewhere would never be used.
        check: (v, ctx) => {
          for (const [name, store] of Object.entries(v as Record<string, { defaultGeneratedCert?: unknown }>)) {
            if (name !== "default" && store.defaultGeneratedCert) {
              ctx.report('only the "default" store is served; move defaultGeneratedCert to tls.stores.default', name, "defaultGeneratedCert");
            }
          }
        },
      },
    ),
  }, { default: {} }),
  tcp: tcpConfigSchema,
}, {
  unsupported: {
    udp: '"udp" is not supported yet; Portico routes HTTP and TCP',
  },
});

/** A dynamic configuration with nothing in it. */
export function emptyDynamicConfig(): DynamicConfig {
  return {
    http: { routers: {}, services: {}, middlewares: {}, serversTransports: {} },
    tls: { certificates: [], options: {}, stores: {} },
    tcp: { routers: {}, services: {}, middlewares: {}, serversTransports: {} },
  };
}

/**
 * Validates a raw dynamic configuration tree and returns it with defaults
 * applied. An empty or missing tree is a valid, empty configuration. Throws a
 * {@linkcode ConfigError} listing every issue, each naming `source` and the
 * dotted key.
 *
 * Pass the KV switches (`{ ...KV_DECODE_OPTIONS }`) for a tree built from KV
 * keys: lowercase keys, string leaves and indexed tables are then accepted.
 *
 * @example
 * ```ts
 * const config = validateDynamic({
 *   http: {
 *     routers: { app: { rule: "Host(`a.com`)", service: "app" } },
 *     services: { app: { loadBalancer: { servers: [{ url: "http://10.0.0.1" }] } } },
 *   },
 * }, "dynamic.toml");
 * config.http.services.app; // { loadBalancer: { servers: [{ url, weight: 1 }], passHostHeader: true } }
 * ```
 */
export function validateDynamic(
  raw: unknown,
  source: string,
  options: Omit<DecodeOptions, "source"> = {},
): DynamicConfig {
  const { value, issues } = decodeWithSchema<DynamicConfig>(
    dynamicConfigSchema,
    raw ?? {},
    { ...options, source },
  );
  if (issues.length > 0) throw new ConfigError(issues);
  return value!;
}

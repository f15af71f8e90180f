/**
 * The `tcp` section of the dynamic configuration, in Traefik v3's
 * vocabulary: routers (rules on the TLS ClientHello and the client
 * address), services (load-balanced or weighted backends), the two TCP
 * middlewares and the servers transports.
 *
 * @module
 */

import {
  bool,
  duration,
  enumOf,
  int,
  list,
  obj,
  record,
  type Schema,
  str,
  union,
} from "./schema.ts";
import { checkIpOrCidr, checkName, checkReference } from "./values.ts";
import { tlsDomainSchema } from "./static.ts";

function notYet(...keys: string[]): Record<string, string> {
  return Object.fromEntries(keys.map((key) => [key, `"${key}" is not supported yet`]));
}

/** `host:port`, the port required, as Traefik's TCP servers take it. */
export function checkTcpAddress(text: string): string | undefined {
  const expected = 'expected "host:port" like "10.0.0.1:5432" or "[fd00::1]:6379"';
  const m = /^(\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+):(\d{1,5})$/.exec(text);
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) return expected;
  return undefined;
}

const reference = () =>
  str({
    required: true,
    expected: 'a string naming a service, like "db" or "db@file"',
    validate: checkReference,
  });

const proxyProtocolSchema = obj({
  version: int({ min: 1, max: 2, default: 2, expected: "1 or 2" }),
});

const tcpRouterSchema = obj({
  rule: str({
    required: true,
    expected: 'a string holding a rule, like "HostSNI(`db.example.com`)"',
  }),
  service: reference(),
  entryPoints: list(str({ validate: checkName }), { default: [] }),
  middlewares: list(str({ validate: checkReference }), { default: [] }),
  priority: int({ min: 0, default: 0 }),
  ruleSyntax: enumOf(["v3"], {
    expected: '"v3" (Traefik v2 rule syntax is not supported)',
  }),
  tls: obj({
    passthrough: bool({ default: false }),
    certResolver: str({ validate: checkName }),
    options: str({ validate: checkReference }),
    domains: list(tlsDomainSchema, { default: [] }),
  }, { allowBoolean: true }),
});

const tcpServiceSchema = union({
  loadBalancer: obj({
    servers: list(
      obj({
        address: str({ required: true, validate: checkTcpAddress }),
        tls: bool({ default: false }),
        weight: int({ min: 0, default: 1 }),
      }),
      { default: [] },
    ),
    serversTransport: str({ validate: checkReference }),
    // Deprecated in Traefik v3 in favour of the servers transport's; both work.
    proxyProtocol: proxyProtocolSchema,
    terminationDelay: int({ min: -1 }),
  }),
  weighted: obj({
    services: list(
      obj({ name: reference(), weight: int({ min: 0, default: 1 }) }),
      { required: true, minItems: 1 },
    ),
  }),
}, { label: "TCP service type" });

const sourceRange = () =>
  obj({ sourceRange: list(str({ validate: checkIpOrCidr }), { required: true, minItems: 1 }) }, {
    required: true,
  });

const tcpMiddlewareSchema = union({
  ipAllowList: sourceRange(),
  ipWhiteList: sourceRange(),
  inFlightConn: obj({ amount: int({ min: 1, required: true }) }, { required: true }),
}, { label: "TCP middleware type" });

const tcpServersTransportSchema = obj({
  dialTimeout: duration({ default: "30s", min: 0 }),
  dialKeepAlive: duration({ default: "15s", min: -Infinity }),
  terminationDelay: duration({ default: "100ms", min: -Infinity }),
  proxyProtocol: proxyProtocolSchema,
  tls: obj({
    serverName: str(),
    insecureSkipVerify: bool({ default: false }),
    rootCAs: list(str(), { default: [] }),
    certificates: list(
      obj({ certFile: str({ required: true }), keyFile: str({ required: true }) }),
      {
        default: [],
        check: (certificates: unknown[], ctx) => {
          if (certificates.length > 1) {
            ctx.report("not supported yet: more than one client certificate", 1);
          }
        },
      },
    ),
  }, { unsupported: notYet("peerCertURI", "spiffe") }),
});

/** The `tcp` table of a dynamic configuration. */
export const tcpConfigSchema: Schema = obj({
  routers: record(tcpRouterSchema, { default: {}, validateKey: checkName }),
  services: record(tcpServiceSchema, { default: {}, validateKey: checkName }),
  middlewares: record(tcpMiddlewareSchema, { default: {}, validateKey: checkName }),
  serversTransports: record(tcpServersTransportSchema, { default: {}, validateKey: checkName }),
}, { default: {} });

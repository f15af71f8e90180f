/**
 * The order in which a connection is handed to TCP or HTTP routers
 * (Traefik's ServeTCP), on tables built by hand: pure, no sockets.
 */

import assert from "node:assert/strict";
import { dispatchPlain, type DispatchTable, dispatchTls, routesAtAccept } from "../lib/tcp/dispatch.ts";
import { compileTcpRule } from "../lib/rules/tcp.ts";

const route = (name: string, rule: string, priority = 0) => ({ name, rule: compileTcpRule(rule, priority) });

function table(options: {
  plain?: string[];
  tls?: string[];
  httpsNames?: string[];
  httpsCatchAll?: boolean;
}): DispatchTable {
  const names = options.httpsNames ?? [];
  const plain = (options.plain ?? []).map((r, i) => route(`plain${i}`, r));
  const tls = (options.tls ?? []).map((r, i) => route(`tls${i}`, r));
  const byPriority = (a: { rule: { priority: number } }, b: { rule: { priority: number } }) => b.rule.priority - a.rule.priority;
  return {
    plain: plain.sort(byPriority),
    tls: tls.sort(byPriority),
    https: {
      names: (sni) => names.includes(sni),
      catchAll: options.httpsCatchAll ?? false,
      any: names.length > 0 || (options.httpsCatchAll ?? false),
    },
  };
}

const conn = (serverName: string, alpn: string[] = [], clientIp = "10.0.0.1") => ({ serverName, alpn, clientIp });
const target = (d: ReturnType<typeof dispatchTls>) => (d.to === "tcp" ? d.route.name : "http");

Deno.test("routing at accept: only non-TLS TCP routes and no HTTPS router", () => {
  assert.equal(routesAtAccept(table({ plain: ["HostSNI(`*`)"] })), true);
  assert.equal(routesAtAccept(table({ plain: ["HostSNI(`*`)"], tls: ["HostSNI(`a`)"] })), false);
  assert.equal(routesAtAccept(table({ plain: ["HostSNI(`*`)"], httpsNames: ["a"] })), false);
  assert.equal(routesAtAccept(table({ tls: ["HostSNI(`a`)"] })), false);
});

Deno.test("a plain connection: the first matching non-TLS route by priority, else HTTP", () => {
  const t = table({ plain: ["HostSNI(`*`)", "HostSNI(`*`) && ClientIP(`10.0.0.0/8`)"] });
  assert.equal(target(dispatchPlain(t, conn("", [], "10.1.1.1"))), "plain1", "the longer rule wins");
  assert.equal(target(dispatchPlain(t, conn("", [], "192.0.2.1"))), "plain0");
  assert.equal(target(dispatchPlain(table({ plain: ["ClientIP(`10.0.0.0/8`)"] }), conn("", [], "192.0.2.1"))), "http");
});

Deno.test("a TLS connection: HTTPS by name, then specific TCP, then HTTPS catch-all, then TCP catch-all", () => {
  // An HTTPS router naming the SNI beats a specific TLS TCP route.
  assert.equal(target(dispatchTls(table({ tls: ["HostSNI(`a.test`)"], httpsNames: ["a.test"] }), conn("a.test"))), "http");
  // A specific TLS TCP route beats an HTTPS router without Host.
  assert.equal(target(dispatchTls(table({ tls: ["HostSNI(`a.test`)"], httpsCatchAll: true }), conn("a.test"))), "tls0");
  // An HTTPS catch-all beats a HostSNI(`*`) TLS TCP route.
  assert.equal(target(dispatchTls(table({ tls: ["HostSNI(`*`)"], httpsCatchAll: true }), conn("x.test"))), "http");
  // With no HTTPS catch-all, the TCP catch-all takes it.
  assert.equal(target(dispatchTls(table({ tls: ["HostSNI(`*`)"], httpsNames: ["c.test"] }), conn("x.test"))), "tls0");
  // Nothing matches: the HTTPS side answers (404 from its routers).
  assert.equal(target(dispatchTls(table({ tls: ["HostSNI(`a.test`)"] }), conn("x.test"))), "http");
  // No SNI at all: only catch-alls and non-SNI rules can match.
  assert.equal(target(dispatchTls(table({ tls: ["HostSNI(`a.test`)", "ALPN(`h2`)"] }), conn("", ["h2"]))), "tls1");
});

Deno.test("a TLS-ALPN-01 challenge goes to the TLS side before any TCP route", () => {
  assert.equal(target(dispatchTls(table({ tls: ["HostSNI(`*`)"] }), conn("a.test", ["acme-tls/1"]))), "http");
});

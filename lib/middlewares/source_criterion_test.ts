/** Client-IP strategies and source criteria, on hand-made requests. */

import assert from "node:assert/strict";
import type { ProxyRequest } from "../services/types.ts";
import { readOptions } from "./options.ts";
import { ipStrategy, ipv6SubnetOf, readSourceCriterion } from "./source_criterion.ts";

function proxyRequest(
  o: {
    xff?: string;
    trusted?: boolean;
    peer?: string;
    host?: string;
    headers?: Record<string, string>;
  },
): ProxyRequest {
  const headers = new Headers(o.headers);
  if (o.xff !== undefined) headers.set("x-forwarded-for", o.xff);
  return {
    request: new Request("http://x/"),
    pathAndQuery: "/",
    headers,
    entryPoint: "web",
    clientIp: o.peer ?? "10.0.0.1",
    proto: "http",
    host: o.host ?? "a.test",
    port: 80,
    serverName: "portico",
    trustForwarded: o.trusted ?? true,
  };
}

Deno.test("ipStrategy picks the client IP like Traefik", () => {
  const cases: {
    name: string;
    options?: Parameters<typeof ipStrategy>[0];
    xff?: string;
    trusted?: boolean;
    peer?: string;
    expected: string;
  }[] = [
    { name: "default: socket peer", xff: "1.1.1.1", expected: "10.0.0.1" },
    { name: "depth 1", options: { depth: 1 }, xff: "1.1.1.1, 2.2.2.2", expected: "2.2.2.2" },
    { name: "depth 2", options: { depth: 2 }, xff: "1.1.1.1,2.2.2.2", expected: "1.1.1.1" },
    { name: "depth too deep", options: { depth: 3 }, xff: "1.1.1.1, 2.2.2.2", expected: "" },
    {
      name: "depth with empty entries",
      options: { depth: 1 },
      xff: "1.1.1.1, ,",
      expected: "1.1.1.1",
    },
    {
      name: "depth wins over excludedIPs",
      options: { depth: 1, excludedIPs: ["2.2.2.2"] },
      xff: "1.1.1.1, 2.2.2.2",
      expected: "2.2.2.2",
    },
    {
      name: "excluded walks from the right",
      options: { excludedIPs: ["2.2.2.0/24"] },
      xff: "1.1.1.1, 2.2.2.2, 2.2.2.3",
      expected: "1.1.1.1",
    },
    { name: "all excluded", options: { excludedIPs: ["0.0.0.0/0"] }, xff: "1.1.1.1", expected: "" },
    {
      name: "untrusted header is absent",
      options: { depth: 1 },
      xff: "1.1.1.1",
      trusted: false,
      expected: "",
    },
    {
      name: "ipv6Subnet masks IPv6",
      options: { ipv6Subnet: 64 },
      peer: "2001:db8:1:2:3:4:5:6",
      expected: "2001:db8:1:2::",
    },
    {
      name: "ipv6Subnet leaves IPv4",
      options: { ipv6Subnet: 64 },
      peer: "10.0.0.9",
      expected: "10.0.0.9",
    },
  ];
  for (const tc of cases) {
    assert.equal(ipStrategy(tc.options)(proxyRequest(tc)), tc.expected, tc.name);
  }
});

Deno.test("ipv6SubnetOf formats canonically", () => {
  const cases: [string, number, string][] = [
    ["2001:db8::1", 128, "2001:db8::1"],
    ["2001:db8:ffff::1", 32, "2001:db8::"],
    ["::1", 0, "::"],
    ["1:0:0:1:0:0:0:1", 128, "1:0:0:1::1"],
    ["fe80::abcd", 120, "fe80::ab00"],
  ];
  for (const [ip, bits, expected] of cases) {
    assert.equal(ipv6SubnetOf(ip, bits), expected, `${ip}/${bits}`);
  }
});

Deno.test("sourceCriterion picks the key and validates", () => {
  const read = (o: Record<string, unknown> | undefined) =>
    readSourceCriterion(
      o ? readOptions("m@file", { sourceCriterion: o }).object("sourceCriterion") : undefined,
    );
  const req = proxyRequest({ xff: "1.1.1.1", host: "h.test:8080", headers: { "x-key": "k1" } });
  assert.equal(read(undefined)(req), "10.0.0.1");
  assert.equal(read({ requestHeaderName: "X-Key" })(req), "k1");
  assert.equal(read({ requestHeaderName: "X-Missing" })(req), "");
  assert.equal(read({ requesthost: "true" })(req), "h.test:8080");
  assert.equal(read({ ipStrategy: { depth: "1" } })(req), "1.1.1.1");
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ requestHost: true, ipStrategy: {} }, /mutually exclusive/],
    [{ ipStrategy: { depth: -1 } }, /sourceCriterion\.ipStrategy\.depth: must be 0 or more/],
    [{ ipStrategy: { ipv6Subnet: 129 } }, /ipv6Subnet: expected a prefix length/],
    [{ requestHeader: "x" }, /unknown option sourceCriterion\.requestHeader/],
  ];
  for (const [o, error] of bad) assert.throws(() => read(o), error, JSON.stringify(o));
});

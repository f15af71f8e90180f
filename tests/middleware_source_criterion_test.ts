/** Client-IP strategies and source criteria, on hand-made requests. */

import assert from "node:assert/strict";
import type { ProxyRequest } from "../lib/services/types.ts";
import { readOptions } from "../lib/middlewares/options.ts";
import { HeadHeaders } from "../lib/engine/web_request.ts";
import {
  firstHeaderValue,
  ipStrategy,
  ipv6SubnetOf,
  readSourceCriterion,
  requestHost,
  type SourceView,
} from "../lib/middlewares/source_criterion.ts";

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
      // Traefik splits on commas and keeps empty entries.
      name: "depth counts empty entries",
      options: { depth: 1 },
      xff: "1.1.1.1, ,",
      expected: "",
    },
    {
      name: "depth 3 over empty entries",
      options: { depth: 3 },
      xff: "1.1.1.1, ,",
      expected: "1.1.1.1",
    },
    { name: "depth 1, no header", options: { depth: 1 }, expected: "" },
    {
      name: "excludedIPs skips empty entries",
      options: { excludedIPs: ["2.2.2.2"] },
      xff: "1.1.1.1, , 2.2.2.2",
      expected: "1.1.1.1",
    },
    {
      name: "excludedIPs returns a non-IP entry as is",
      options: { excludedIPs: ["2.2.2.2"] },
      xff: "unknown, 2.2.2.2",
      expected: "unknown",
    },
    {
      name: "ipv6Subnet applies to depth",
      options: { depth: 1, ipv6Subnet: 64 },
      xff: "2001:db8:1:2:3:4:5:6",
      expected: "2001:db8:1:2::",
    },
    {
      name: "ipv6Subnet does not apply to excludedIPs (Traefik's pool strategy)",
      options: { excludedIPs: ["10.0.0.0/8"], ipv6Subnet: 64 },
      xff: "2001:db8:1:2:3:4:5:6, 10.0.0.1",
      expected: "2001:db8:1:2:3:4:5:6",
    },
    {
      name: "ipv6Subnet drops the zone of an X-Forwarded-For entry",
      options: { depth: 1, ipv6Subnet: 64 },
      xff: "fe80::1:2:3:4%eth0",
      expected: "fe80::",
    },
    {
      name: "a zone is kept without ipv6Subnet",
      options: { depth: 1 },
      xff: "fe80::1%eth0",
      expected: "fe80::1%eth0",
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

Deno.test("ipv6SubnetOf prints what Go's netip Prefix(bits).Addr().String() prints", () => {
  const cases: [string, number, string][] = [
    ["2001:db8::1", 128, "2001:db8::1"],
    ["2001:db8:ffff::1", 32, "2001:db8::"],
    ["::1", 0, "::"],
    ["1:0:0:1:0:0:0:1", 128, "1:0:0:1::1"],
    ["fe80::abcd", 120, "fe80::ab00"],
    ["2001:DB8::A", 128, "2001:db8::a"],
    ["fe80::1%eth0", 64, "fe80::"],
    ["fe80::1%1", 128, "fe80::1"],
    ["::ffff:10.1.2.3", 128, "::ffff:10.1.2.3"],
    ["::ffff:10.1.2.3", 112, "::ffff:10.1.0.0"],
    ["::ffff:10.1.2.3", 80, "::"],
    // Out of range, not an address, IPv4, or an empty zone: unchanged, as Go's errors leave it.
    ["2001:db8::1", 500, "2001:db8::1"],
    ["2001:db8::1", -1, "2001:db8::1"],
    ["not:an:ip", 64, "not:an:ip"],
    ["10.0.0.1", 8, "10.0.0.1"],
    ["fe80::1%", 64, "fe80::1%"],
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
    [
      { requestHost: true, ipStrategy: {} },
      /ipStrategy: ipStrategy and requestHost are mutually exclusive/,
    ],
    [
      { requestHeaderName: "X", ipStrategy: {} },
      /ipStrategy: ipStrategy and requestHeaderName are mutually exclusive/,
    ],
    [
      { requestHeaderName: "X", requestHost: true },
      /requestHost: requestHost and requestHeaderName are mutually exclusive/,
    ],
    [{ ipStrategy: { depth: -1 } }, /sourceCriterion\.ipStrategy\.depth: must be 0 or more/],
    [{ ipStrategy: { ipv6Subnet: 129 } }, /ipv6Subnet: expected a prefix length/],
    [{ requestHeader: "x" }, /unknown option sourceCriterion\.requestHeader/],
  ];
  for (const [o, error] of bad) assert.throws(() => read(o), error, JSON.stringify(o));
});

interface StrategyRow {
  desc: string;
  expected: string;
  remoteAddr?: string;
  ipv6Subnet?: number;
}

/** Go's net.SplitHostPort, enough for Traefik's RemoteAddr rows: the host, or the input when it fails. */
function splitHost(remoteAddr: string): string {
  const m = /^\[([^\]]+)\]:\d+$/.exec(remoteAddr) ?? /^([^:]+):\d+$/.exec(remoteAddr);
  return m ? m[1] : remoteAddr;
}

Deno.test("Traefik TestRemoteAddrStrategy_GetIP rows (pkg/ip/strategy_test.go): the socket peer, with ipv6Subnet", async () => {
  // Over real sockets the peer is always 127.0.0.1 here, so these rows run on the extractor itself.
  const data = JSON.parse(
    await Deno.readTextFile(new URL("./data/traefik_mw_ratelimit.json", import.meta.url)),
  ) as { ipStrategy: { remoteAddr: StrategyRow[] } };
  assert.equal(data.ipStrategy.remoteAddr.length, 8);
  for (const row of data.ipStrategy.remoteAddr) {
    const view = proxyRequest({ peer: splitHost(row.remoteAddr!) });
    assert.equal(ipStrategy({ ipv6Subnet: row.ipv6Subnet })(view), row.expected, row.desc);
  }
});

Deno.test("requestHeaderName keys on the first line of a repeated header, as Go's Header.Get", () => {
  const lines = ["x-key", "a", "x-other", "o", "x-key", "b"];
  const flat: SourceView = {
    clientIp: "10.0.0.1",
    trustForwarded: false,
    host: "h",
    headers: new HeadHeaders(lines),
  };
  assert.equal(firstHeaderValue(flat, "x-key"), "a", "engine head: first line");
  const web = proxyRequest({ headers: {} });
  web.headers.append("x-key", "a");
  web.headers.append("x-key", "b");
  assert.equal(
    firstHeaderValue(web, "x-key"),
    "a, b",
    "a Web Headers alone cannot tell the lines apart",
  );
  const withHead = { ...web, exchange: { head: { headers: lines } } };
  assert.equal(firstHeaderValue(withHead, "x-key"), "a", "the exchange head tells them apart");
  const rewritten = { ...withHead, headers: new Headers({ "x-key": "set-by-a-middleware" }) };
  assert.equal(
    firstHeaderValue(rewritten, "x-key"),
    "set-by-a-middleware",
    "a rewritten header wins",
  );
  assert.equal(firstHeaderValue(flat, "x-missing"), "");
  const read = readSourceCriterion(
    readOptions("m@file", { s: { requestHeaderName: "X-Key" } }).object("s"),
  );
  assert.equal(read(flat), "a", "the criterion uses it");
});

Deno.test("sourceCriterion: the fallback when no criterion is set (inFlightReq keys on the Host)", () => {
  const req = proxyRequest({ host: "h.test:8080" });
  const read = (o: Record<string, unknown> | undefined) =>
    readSourceCriterion(o ? readOptions("m@file", { s: o }).object("s") : undefined, requestHost);
  for (const o of [undefined, {}, { requestHost: false }, { requestHeaderName: "" }]) {
    assert.equal(read(o)(req), "h.test:8080", JSON.stringify(o));
  }
  assert.equal(read({ ipStrategy: {} })(req), "10.0.0.1", "an empty ipStrategy is the socket peer");
});

Deno.test("ipStrategy options are checked as ipAllowList checks them", () => {
  const read = (o: Record<string, unknown>) =>
    readSourceCriterion(readOptions("m@file", { s: { ipStrategy: o } }).object("s"));
  const req = proxyRequest({ xff: "2001:db8::1, fe80::9%eth0" });
  const bad: [Record<string, unknown>, RegExp][] = [
    [
      { ipv6Subnet: 0 },
      /option s\.ipStrategy\.ipv6Subnet: expected a prefix length from 1 to 128, found 0/,
    ],
    [
      { depth: 1, ipv6Subnet: 129 },
      /ipv6Subnet: expected a prefix length from 1 to 128, found 129/,
    ],
    // Traefik ignores these silently; a limit keyed on the wrong address would be worse than an error.
    [
      { depth: 1, excludedIPs: ["10.0.0.1"] },
      /ipStrategy\.excludedIPs: has no effect together with depth/,
    ],
    [
      { excludedIPs: ["10.0.0.0/8"], ipv6Subnet: 64 },
      /ipStrategy\.ipv6Subnet: has no effect with excludedIPs/,
    ],
    [
      { excludedIPs: ["10.0.0.300"] },
      /ipStrategy\.excludedIPs: "10\.0\.0\.300" is not a valid IP address/,
    ],
  ];
  for (const [o, error] of bad) assert.throws(() => read(o), error, JSON.stringify(o));
  assert.equal(
    read({ depth: 1, ipv6Subnet: 32 })(proxyRequest({ xff: "2001:db8::1" })),
    "2001:db8::",
  );
  // A zoned entry is matched against excludedIPs as Go's netip reads it.
  assert.equal(read({ excludedIPs: ["fe80::9"] })(req), "2001:db8::1");
});

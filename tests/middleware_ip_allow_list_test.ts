/**
 * ipAllowList over real HTTP: source ranges, ipStrategy (depth,
 * excludedIPs), trusted vs untrusted forwarded headers, reject status,
 * the ipWhiteList alias and bad config.
 */

import assert from "node:assert/strict";
import { type Echo, startEchoBackend } from "./fixtures/backend.ts";
import { startTestProxy } from "./fixtures/proxy.ts";
import { assertBadMiddlewaresDisableRouters, type BadMiddlewareCase } from "./fixtures/bad_middleware.ts";
import { rawGet } from "./fixtures/http_client.ts";

const middlewares: Record<string, string> = {
  loopback: `sourceRange = ["127.0.0.1"]`,
  cidr: `sourceRange = ["10.0.0.0/8", "127.0.0.0/8"]`,
  other: `sourceRange = ["10.0.0.0/8"]`,
  v6: `sourceRange = ["::1/128"]`,
  status: `sourceRange = ["10.0.0.0/8"]\nrejectStatusCode = 404`,
  depth1: `sourceRange = ["1.2.3.4"]\nipStrategy = { depth = 1 }`,
  depth2: `sourceRange = ["1.2.3.4"]\nipStrategy = { depth = 2 }`,
  excluded: `sourceRange = ["1.2.3.4"]\nipStrategy = { excludedIPs = ["9.9.9.0/24", "8.8.8.8"] }`,
  kvstyle: `sourceRange = "10.0.0.0/8, 127.0.0.1"\nrejectstatuscode = "418"`,
  // bad configs
  bad_empty: `sourceRange = []`,
  bad_cidr: `sourceRange = ["10.0.0.0/33"]`,
  bad_ip: `sourceRange = ["300.1.1.1"]`,
  bad_status: `sourceRange = ["10.0.0.0/8"]\nrejectStatusCode = 1000`,
  bad_depth: `sourceRange = ["10.0.0.0/8"]\nipStrategy = { depth = -1 }`,
  bad_excluded: `sourceRange = ["10.0.0.0/8"]\nipStrategy = { excludedIPs = ["nope"] }`,
  bad_key: `sourceRanges = ["10.0.0.0/8"]`,
};

function dynamic(backendUrl: string): string {
  let toml = `[http.services.echo.loadBalancer]\nservers = [{ url = "${backendUrl}" }]\n`;
  for (const [name, body] of Object.entries(middlewares)) {
    toml +=
      `[http.routers.${name}]\nrule = "Host(\`${name}.test\`)"\nservice = "echo"\nmiddlewares = ["${name}"]\n`;
    toml += `[http.middlewares.${name}.ipAllowList]\n${body}\n`;
  }
  toml +=
    `[http.routers.alias]\nrule = "Host(\`alias.test\`)"\nservice = "echo"\nmiddlewares = ["alias"]\n`;
  toml += `[http.middlewares.alias.ipWhiteList]\nsourceRange = ["10.0.0.0/8"]\n`;
  return toml;
}

Deno.test("ipAllowList: ranges, strategies, status and alias over real HTTP", async () => {
  const backend = startEchoBackend("echo");
  const proxy = await startTestProxy({
    dynamic: dynamic(backend.url),
    entryPoints: ["web", "untrusted"],
    entryPointExtra: { web: "forwardedHeaders.insecure = true" },
  });
  try {
    const cases: { name: string; host: string; xff?: string; ep?: string; status: number }[] = [
      { name: "exact loopback IP allowed", host: "loopback", status: 200 },
      { name: "CIDR containing the peer allowed", host: "cidr", status: 200 },
      { name: "peer outside ranges rejected", host: "other", status: 403 },
      { name: "IPv4 peer does not match an IPv6 range", host: "v6", status: 403 },
      { name: "custom reject status", host: "status", status: 404 },
      { name: "KV-style string list and numeric string", host: "kvstyle", status: 200 },
      {
        name: "X-Forwarded-For is ignored without ipStrategy",
        host: "other",
        xff: "10.1.1.1",
        status: 403,
      },
      {
        name: "depth 1 takes the last entry",
        host: "depth1",
        xff: "5.5.5.5, 1.2.3.4",
        status: 200,
      },
      {
        name: "depth 1 rejects a different last entry",
        host: "depth1",
        xff: "1.2.3.4, 5.5.5.5",
        status: 403,
      },
      {
        name: "depth 2 takes the second from the right",
        host: "depth2",
        xff: "1.2.3.4,5.5.5.5",
        status: 200,
      },
      { name: "depth beyond the list gives no IP", host: "depth2", xff: "1.2.3.4", status: 403 },
      { name: "depth without header gives no IP", host: "depth1", status: 403 },
      {
        name: "excludedIPs skips excluded from the right",
        host: "excluded",
        xff: "7.7.7.7, 1.2.3.4, 9.9.9.1, 8.8.8.8",
        status: 200,
      },
      {
        name: "excludedIPs stops at the first non-excluded",
        host: "excluded",
        xff: "1.2.3.4, 7.7.7.7, 8.8.8.8",
        status: 403,
      },
      { name: "all excluded gives no IP", host: "excluded", xff: "9.9.9.9, 8.8.8.8", status: 403 },
      {
        name: "untrusted entrypoint ignores X-Forwarded-For",
        host: "depth1",
        xff: "1.2.3.4",
        ep: "untrusted",
        status: 403,
      },
      { name: "ipWhiteList alias works", host: "alias", status: 403 },
    ];
    for (const tc of cases) {
      const headers: Record<string, string> = { host: `${tc.host}.test` };
      if (tc.xff) headers["x-forwarded-for"] = tc.xff;
      const res = await rawGet(proxy.port(tc.ep ?? "web"), "/x", headers);
      assert.equal(res.status, tc.status, tc.name);
      if (tc.status === 200) assert.equal((JSON.parse(res.body) as Echo).path, "/x", tc.name);
      if (tc.status === 403) assert.equal(res.body, "Forbidden", tc.name);
    }

    const bad: BadMiddlewareCase[] = [
      { router: "bad_empty", error: /sourceRange: must list at least one/ },
      { router: "bad_cidr", error: /sourceRange: "10\.0\.0\.0\/33" is not a valid CIDR/ },
      { router: "bad_ip", error: /sourceRange: "300\.1\.1\.1" is not a valid IP/ },
      { router: "bad_status", error: /rejectStatusCode: expected an HTTP status from 200 to 599/ },
      { router: "bad_depth", error: /ipStrategy\.depth: must be 0 or more/ },
      { router: "bad_excluded", error: /ipStrategy\.excludedIPs: "nope"/ },
      { router: "bad_key", error: /unknown option sourceRanges \(did you mean "sourceRange"\?\)/ },
    ];
    assertBadMiddlewaresDisableRouters(proxy, bad);
    for (const tc of bad) {
      const res = await rawGet(proxy.port(), "/", { host: `${tc.router}.test` });
      assert.equal(res.status, 404, tc.router);
    }
    // Other routers kept serving after the bad ones were rejected.
    assert.equal((await rawGet(proxy.port(), "/", { host: "loopback.test" })).status, 200);
  } finally {
    await proxy.close();
    await backend.close();
  }
});

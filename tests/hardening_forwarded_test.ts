/**
 * Forged forwarding headers: `ClientIP` rules and `ipAllowList` judge the
 * socket peer unless the entrypoint trusts the client (`trustedIPs` /
 * `insecure`) and the middleware asks for X-Forwarded-For (`ipStrategy`).
 */

import assert from "node:assert/strict";
import { startEchoBackend } from "./fixtures/backend.ts";
import { startTestProxy } from "./fixtures/proxy.ts";

function dynamic(url: string): string {
  return `
[http.routers.byip]
rule = "PathPrefix(\`/rule\`) && ClientIP(\`10.9.9.9\`)"
service = "b"
[http.routers.allow]
rule = "PathPrefix(\`/allow\`)"
service = "b"
middlewares = ["office"]
[http.routers.allowdepth]
rule = "PathPrefix(\`/depth\`)"
service = "b"
middlewares = ["officeDepth"]
[http.routers.allowexcluded]
rule = "PathPrefix(\`/excluded\`)"
service = "b"
middlewares = ["officeExcluded"]
[http.middlewares.office.ipAllowList]
sourceRange = ["10.9.9.9"]
[http.middlewares.officeDepth.ipAllowList]
sourceRange = ["10.9.9.9"]
[http.middlewares.officeDepth.ipAllowList.ipStrategy]
depth = 1
[http.middlewares.officeExcluded.ipAllowList]
sourceRange = ["10.9.9.9"]
[http.middlewares.officeExcluded.ipAllowList.ipStrategy]
excludedIPs = ["127.0.0.1"]
[http.services.b.loadBalancer]
servers = [{ url = "${url}" }]
`;
}

const FORGED: { name: string; headers: Record<string, string> }[] = [
  { name: "X-Forwarded-For", headers: { "x-forwarded-for": "10.9.9.9" } },
  { name: "X-Real-Ip", headers: { "x-real-ip": "10.9.9.9" } },
  { name: "Forwarded", headers: { forwarded: "for=10.9.9.9" } },
  { name: "X-Forwarded-For list", headers: { "x-forwarded-for": "10.9.9.9, 10.9.9.9" } },
];

Deno.test("untrusted clients cannot pass ClientIP or ipAllowList with forged headers", async () => {
  const backend = startEchoBackend("b");
  const proxy = await startTestProxy({ dynamic: dynamic(backend.url) });
  try {
    for (const tc of FORGED) {
      for (const path of ["/rule", "/allow", "/depth", "/excluded"]) {
        const res = await fetch(proxy.url() + path, { headers: tc.headers });
        await res.body?.cancel();
        assert.ok(
          res.status === 404 || res.status === 403,
          `${tc.name} on ${path}: got ${res.status}`,
        );
      }
    }
    assert.equal(backend.hits, 0, "nothing forged got through");
  } finally {
    await proxy.close();
    await backend.close();
  }
});

Deno.test("trusted clients: ipStrategy reads X-Forwarded-For, the default strategy and ClientIP still use the peer", async () => {
  const backend = startEchoBackend("b");
  const proxy = await startTestProxy({
    dynamic: dynamic(backend.url),
    entryPointExtra: { web: `[entryPoints.web.forwardedHeaders]\ntrustedIPs = ["127.0.0.1"]\n` },
  });
  try {
    const status = async (path: string, xff?: string) => {
      const res = await fetch(proxy.url() + path, {
        headers: xff ? { "x-forwarded-for": xff } : {},
      });
      await res.body?.cancel();
      return res.status;
    };
    const table = [
      {
        path: "/depth",
        xff: "10.9.9.9",
        want: 200,
        why: "depth 1 takes the right-most entry from a trusted peer",
      },
      {
        path: "/depth",
        xff: "10.9.9.9, 1.2.3.4",
        want: 403,
        why: "depth 1 is the right-most, which is not allowed",
      },
      { path: "/depth", xff: undefined, want: 403, why: "no header, no address" },
      {
        path: "/excluded",
        xff: "10.9.9.9, 127.0.0.1",
        want: 200,
        why: "excludedIPs skips the proxy hop",
      },
      {
        path: "/allow",
        xff: "10.9.9.9",
        want: 403,
        why: "without ipStrategy the socket peer is judged",
      },
      { path: "/rule", xff: "10.9.9.9", want: 404, why: "ClientIP always matches the socket peer" },
    ];
    for (const tc of table) assert.equal(await status(tc.path, tc.xff), tc.want, tc.why);
  } finally {
    await proxy.close();
    await backend.close();
  }
});

Deno.test("insecure entrypoint trusts everyone; a non-matching trustedIPs range does not", async () => {
  const backend = startEchoBackend("b");
  for (
    const tc of [
      { extra: `[entryPoints.web.forwardedHeaders]\ninsecure = true\n`, want: 200 },
      { extra: `[entryPoints.web.forwardedHeaders]\ntrustedIPs = ["10.0.0.0/8"]\n`, want: 403 },
    ]
  ) {
    const proxy = await startTestProxy({
      dynamic: dynamic(backend.url),
      entryPointExtra: { web: tc.extra },
    });
    try {
      const res = await fetch(proxy.url() + "/depth", {
        headers: { "x-forwarded-for": "10.9.9.9" },
      });
      await res.body?.cancel();
      assert.equal(res.status, tc.want, tc.extra);
    } finally {
      await proxy.close();
    }
  }
  await backend.close();
});

/**
 * Traefik's own table for the contentType middleware
 * (tests/data/traefik_mw_content_type.json, notes in the .md beside it),
 * sent over real HTTP through a running Portico. The upstream is a raw
 * socket, so nothing but the case decides whether Content-Type is present.
 */

import assert from "node:assert/strict";
import { startTestProxy } from "./fixtures/proxy.ts";
import { startRawBackend } from "./fixtures/raw_backend.ts";
import { rawGet } from "./fixtures/http_client.ts";
import { readTestData, routerToml, serviceToml } from "./fixtures/traefik_tables.ts";

interface Case {
  desc: string;
  autoDetect: boolean;
  contentType: string;
  want: string;
}

Deno.test("Traefik table: contentType auto-detection, and none without the middleware", async () => {
  const { cases } = readTestData<{ cases: Case[] }>("traefik_mw_content_type");
  assert.equal(cases.length, 4);
  const typed = startRawBackend("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 4\r\n\r\nTest");
  const bare = startRawBackend("HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nTest");
  let dynamic = serviceToml("typed", [`http://127.0.0.1:${typed.port}`]) +
    serviceToml("bare", [`http://127.0.0.1:${bare.port}`]) +
    `[http.middlewares.detect.contentType]\n`;
  cases.forEach((c, i) => {
    dynamic += routerToml(
      `c${i}`,
      `Header(\`X-Case\`, \`${i}\`)`,
      c.contentType === "" ? "bare" : "typed",
      c.autoDetect ? ["detect"] : [],
    );
  });
  const proxy = await startTestProxy({ dynamic });
  try {
    for (const [i, c] of cases.entries()) {
      const res = await rawGet(proxy.port(), "/", { "x-case": String(i) });
      assert.equal(res.status, 200, c.desc);
      assert.equal(res.body, "Test", c.desc);
      assert.equal(res.headers["content-type"] ?? "", c.want, c.desc);
    }
  } finally {
    await proxy.close();
    typed.close();
    bare.close();
  }
});

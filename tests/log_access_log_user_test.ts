/**
 * The access log's user (Traefik's ClientUsername): basicAuth and
 * digestAuth record the user they let through, forwardAuth records the
 * value of its `headerField` in the auth server's answer (on any answer,
 * as Traefik does), and a request no auth middleware saw logs "-".
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { startEchoBackend } from "./fixtures/backend.ts";
import { startTestProxy } from "./fixtures/proxy.ts";
import { rawGet } from "./fixtures/http_client.ts";

function startAuthServer() {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/ok") return new Response(null, { headers: { "x-auth-user": "alice" } });
    if (path === "/silent") return new Response(null);
    return new Response("no", { status: 403, headers: { "x-auth-user": "mallory" } });
  });
  return { url: `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}`, close: () => server.shutdown() };
}

async function logLines(file: string, want: number): Promise<Record<string, unknown>[]> {
  // Lines are flushed off the request path; give the writer a bounded moment.
  for (let i = 0; i < 50; i++) {
    const text = await Deno.readTextFile(file).catch(() => "");
    const lines = text.trim() === "" ? [] : text.trim().split("\n");
    if (lines.length >= want) return lines.map((l) => JSON.parse(l));
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`fewer than ${want} access log lines in ${file}`);
}

Deno.test("access log: the user an auth middleware let through, forwardAuth headerField included", async () => {
  const backend = startEchoBackend("b");
  const auth = startAuthServer();
  const dir = await Deno.makeTempDir();
  const sha = "{SHA}" + createHash("sha1").update("s3cret").digest("base64");
  const routers = {
    basic: `[http.middlewares.basic.basicAuth]\nusers = ["bob:${sha}"]`,
    fa: `[http.middlewares.fa.forwardAuth]\naddress = "${auth.url}/ok"\nheaderField = "X-Auth-User"`,
    fadeny: `[http.middlewares.fadeny.forwardAuth]\naddress = "${auth.url}/deny"\nheaderField = "x-auth-user"`,
    fasilent: `[http.middlewares.fasilent.forwardAuth]\naddress = "${auth.url}/silent"\nheaderField = "X-Auth-User"`,
    // Without headerField the auth server's header names nobody.
    faplain: `[http.middlewares.faplain.forwardAuth]\naddress = "${auth.url}/ok"`,
  };
  let dynamic = `[http.services.echo.loadBalancer]\nservers = [{ url = "${backend.url}" }]\n`;
  dynamic += `[http.routers.open]\nrule = "Host(\`open.test\`)"\nservice = "echo"\n`;
  for (const [name, mw] of Object.entries(routers)) {
    dynamic += `[http.routers.${name}]\nrule = "Host(\`${name}.test\`)"\nservice = "echo"\nmiddlewares = ["${name}"]\n${mw}\n`;
  }
  const file = `${dir}/access.log`;
  const proxy = await startTestProxy({ extraStatic: `[accessLog]\nfilePath = "${file}"\nformat = "json"\n`, dynamic });
  try {
    const port = proxy.port();
    const basicOk = "Basic " + btoa("bob:s3cret");
    const sent: [string, Record<string, string>, number, string][] = [
      ["open", {}, 200, "-"],
      ["basic", { authorization: basicOk }, 200, "bob"],
      ["basic", { authorization: "Basic " + btoa("bob:wrong") }, 401, "-"],
      ["fa", {}, 200, "alice"],
      ["fadeny", {}, 403, "mallory"],
      ["fasilent", {}, 200, "-"],
      ["faplain", {}, 200, "-"],
    ];
    for (const [host, headers, status] of sent) {
      const res = await rawGet(port, "/", { host: `${host}.test`, ...headers });
      assert.equal(res.status, status, host);
    }
    const lines = await logLines(file, sent.length);
    assert.equal(lines.length, sent.length);
    sent.forEach(([host, , status, user], i) => {
      assert.equal(lines[i].RouterName, `${host}@file`, `line ${i}`);
      assert.equal(lines[i].DownstreamStatus, status, `line ${i}`);
      assert.equal(lines[i].ClientUsername, user, `line ${i} (${host})`);
    });
    // The password never reaches the log.
    assert.ok(!(await Deno.readTextFile(file)).includes("s3cret"));
  } finally {
    await proxy.close();
    await backend.close();
    await auth.close();
    await Deno.remove(dir, { recursive: true });
  }
});

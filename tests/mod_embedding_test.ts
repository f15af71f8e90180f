/**
 * `startServer` from mod.ts, in a process that imports nothing else of ours,
 * builds routers with middlewares: the middleware table needs no import for
 * its side effect.
 */

import assert from "node:assert/strict";
import { freePort } from "./fixtures/ports.ts";

Deno.test("mod.ts alone: startServer serves a router with middlewares", async () => {
  const dir = await Deno.makeTempDir({ prefix: "portico-embed-" });
  const port = freePort();
  await Deno.writeTextFile(
    `${dir}/dynamic.toml`,
    `[http.routers.r]
rule = "PathPrefix(\`/api\`)"
service = "s"
middlewares = ["strip", "tag"]
[http.middlewares.strip.stripPrefix]
prefixes = ["/api"]
[http.middlewares.tag.headers.customResponseHeaders]
X-Embedded = "yes"
[http.services.s.loadBalancer]
[[http.services.s.loadBalancer.servers]]
url = "http://127.0.0.1:BACKEND"
`,
  );
  await Deno.writeTextFile(
    `${dir}/portico.toml`,
    `[entryPoints.web]\naddress = "127.0.0.1:${port}"\n[providers.file]\nfilename = "${dir}/dynamic.toml"\n`,
  );
  const script = `
import { loadStaticFile, startServer } from ${JSON.stringify(new URL("../mod.ts", import.meta.url).href)};
const backend = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => new Response(new URL(req.url).pathname));
const dyn = ${JSON.stringify(`${dir}/dynamic.toml`)};
await Deno.writeTextFile(dyn, (await Deno.readTextFile(dyn)).replace("BACKEND", String(backend.addr.port)));
const server = await startServer(await loadStaticFile(${JSON.stringify(`${dir}/portico.toml`)}));
const res = await fetch("http://127.0.0.1:${port}/api/users");
console.log(JSON.stringify({ status: res.status, tag: res.headers.get("x-embedded"), body: await res.text() }));
await server.shutdown();
await backend.shutdown();
`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--unstable-net", script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1) ?? "";
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  assert.deepEqual(JSON.parse(stdout), { status: 200, tag: "yes", body: "/users" });
  await Deno.remove(dir, { recursive: true });
});

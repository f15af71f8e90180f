/**
 * `deno task quickstart`: starts two demo backends on 127.0.0.1:9001 and
 * :9002, then Portico on examples/quickstart.toml. Try
 * `curl http://localhost:8000/` (answers alternate between the backends) and
 * `curl http://localhost:8080/api/http/routers`.
 *
 * @module
 */

import { runCli } from "../lib/cli/main.ts";

for (const port of [9001, 9002]) {
  Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, (req) => {
    const url = new URL(req.url);
    if (url.pathname === "/health") return new Response("ok");
    return Response.json({ backend: `demo-${port}`, method: req.method, path: url.pathname + url.search });
  });
}
console.error("demo backends on http://127.0.0.1:9001 and :9002");
console.error("proxy on http://localhost:8000 · API on http://127.0.0.1:8080/api/overview");
Deno.exit(await runCli(["--configFile=examples/quickstart.toml", ...Deno.args]));

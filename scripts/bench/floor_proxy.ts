/**
 * The floor for a proxy on Deno: `Deno.serve` in front of Portico's own
 * HTTP/1.1 upstream client, and nothing else — no routing, middlewares,
 * header rules, access log or metrics. The bench runs it beside Portico so
 * the report can say how much of Portico's cost per request is Portico and
 * how much is the runtime's server plus one upstream exchange.
 *
 * ```sh
 * deno run -A scripts/bench/floor_proxy.ts LISTEN_PORT BACKEND_PORT
 * ```
 *
 * @module
 */

import { forward, UpstreamPool } from "../../lib/proxy/forward.ts";

const [listen, backend] = Deno.args.map(Number);
if (!(listen > 0 && backend > 0)) {
  console.error("usage: floor_proxy.ts LISTEN_PORT BACKEND_PORT");
  Deno.exit(2);
}
const pool = new UpstreamPool();
const target = new URL(`http://127.0.0.1:${backend}`);

Deno.serve({ hostname: "127.0.0.1", port: listen, onListen() {} }, (request) => {
  const url = request.url;
  return forward(pool, {
    target,
    method: request.method,
    pathAndQuery: url.slice(url.indexOf("/", url.indexOf("//") + 2)),
    headers: { host: request.headers.get("host") ?? "" },
    body: null,
  });
});

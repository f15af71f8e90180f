/**
 * The TCP floor on `node:net` instead of Deno's own sockets: accept,
 * connect, `pipe` both ways (half-close by `allowHalfOpen`). Measured beside
 * scripts/bench/tcp_floor.ts to see whether Deno's Node layer reaches a higher
 * connection rate than its native socket ops. A yardstick, not product code.
 *
 * ```sh
 * deno run -A scripts/bench/tcp_floor_node.ts LISTEN_PORT BACKEND_PORT
 * ```
 *
 * @module
 */

import net from "node:net";

const [listenPort, backendPort] = Deno.args.map(Number);
if (!(listenPort > 0 && backendPort > 0)) {
  console.error("usage: tcp_floor_node.ts LISTEN_PORT BACKEND_PORT");
  Deno.exit(2);
}

const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
  const backend = net.connect({ host: "127.0.0.1", port: backendPort, allowHalfOpen: true, noDelay: true });
  const end = () => {
    client.destroy();
    backend.destroy();
  };
  client.on("error", end);
  backend.on("error", end);
  client.on("close", () => backend.destroy());
  backend.on("close", () => client.destroy());
  client.pipe(backend);
  backend.pipe(client);
});
server.listen(listenPort, "127.0.0.1", () => console.log(`tcp floor (node:net) on ${listenPort} -> ${backendPort}`));

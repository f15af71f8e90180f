/**
 * The "TCP floor": the least a TCP relay on Deno can do per connection,
 * for scenario tcp. Accept, connect to the backend, copy both ways with one
 * buffer per direction, half-close on FIN, close. No routing, no timeouts,
 * no metrics, no ClientHello peek. It separates what Deno's socket ops cost
 * from what Portico's TCP router adds. A yardstick, not product code.
 *
 * ```sh
 * deno run -A scripts/bench/tcp_floor.ts LISTEN_PORT BACKEND_PORT
 * ```
 *
 * @module
 */

const [listenPort, backendPort] = Deno.args.map(Number);
if (!(listenPort > 0 && backendPort > 0)) {
  console.error("usage: tcp_floor.ts LISTEN_PORT BACKEND_PORT");
  Deno.exit(2);
}

async function pipe(from: Deno.Conn, to: Deno.TcpConn): Promise<void> {
  const buf = new Uint8Array(32 * 1024);
  try {
    for (;;) {
      const n = await from.read(buf);
      if (n === null) break;
      let off = 0;
      while (off < n) off += await to.write(buf.subarray(off, n));
    }
    await to.closeWrite();
  } catch {
    // A reset ends this direction; the other ends on its own read.
  }
}

async function relay(client: Deno.TcpConn): Promise<void> {
  let backend: Deno.TcpConn;
  try {
    backend = await Deno.connect({ hostname: "127.0.0.1", port: backendPort });
  } catch {
    client.close();
    return;
  }
  client.setNoDelay(true);
  backend.setNoDelay(true);
  await Promise.all([pipe(client, backend), pipe(backend, client)]);
  try {
    client.close();
  } catch { /* already closed */ }
  try {
    backend.close();
  } catch { /* already closed */ }
}

const listener = Deno.listen({ hostname: "127.0.0.1", port: listenPort });
console.log(`tcp floor on ${listenPort} -> ${backendPort}`);
for await (const conn of listener) void relay(conn);

/**
 * Ends TLS after the first bytes were read, three ways, measured side by
 * side: Deno's TLS listener directly ("direct", the ceiling: nothing was
 * peeked), a plain listener carrying the bytes to a loopback TLS listener
 * ("handoff", what Portico does for HTTPS on a sniffed port), and node:tls
 * as a server over a Duplex that replays the peeked bytes ("nodetls").
 * Ping-pong of 64-byte messages over 20 TLS connections, client in the
 * same process.
 *
 * ```sh
 * cd DIR_WITH_cert.pem_key.pem_ca.pem   # a CA and a server certificate for bench.local
 * deno run -A scripts/bench/tls_after_peek.ts direct|handoff|nodetls [ROUNDS]
 * ```
 *
 * @module
 */
import tls from "node:tls";
import { Duplex } from "node:stream";
const cert = Deno.readTextFileSync("cert.pem"),
  key = Deno.readTextFileSync("key.pem"),
  ca = Deno.readTextFileSync("ca.pem");
const ROUNDS = Number(Deno.args[1] ?? 2000), CONNS = 20;
const mode = Deno.args[0];
async function echoLoop(
  read: (b: Uint8Array) => Promise<number | null>,
  write: (b: Uint8Array) => Promise<unknown>,
) {
  const b = new Uint8Array(4096);
  for (;;) {
    const n = await read(b);
    if (n === null) return;
    await write(b.subarray(0, n));
  }
}
let port = 0;
if (mode === "direct") {
  const l = Deno.listenTls({ hostname: "127.0.0.1", port: 0, cert, key });
  port = (l.addr as Deno.NetAddr).port;
  (async () => {
    for await (const c of l) echoLoop((b) => c.read(b), (b) => c.write(b)).catch(() => {});
  })();
} else if (mode === "handoff") {
  const inner = Deno.listenTls({ hostname: "127.0.0.1", port: 0, cert, key });
  (async () => {
    for await (const c of inner) echoLoop((b) => c.read(b), (b) => c.write(b)).catch(() => {});
  })();
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  port = (l.addr as Deno.NetAddr).port;
  const pipe = async (a: Deno.Conn, b: Deno.Conn) => {
    const buf = new Uint8Array(16384);
    try {
      for (;;) {
        const n = await a.read(buf);
        if (n === null) break;
        await b.write(buf.subarray(0, n));
      }
    } catch { /**/ }
  };
  (async () => {
    for await (const c of l) {
      (async () => {
        const first = new Uint8Array(16384);
        const n = await c.read(first);
        const i = await Deno.connect({
          hostname: "127.0.0.1",
          port: (inner.addr as Deno.NetAddr).port,
        });
        c.setNoDelay(true);
        i.setNoDelay(true);
        await i.write(first.subarray(0, n!));
        await Promise.all([pipe(c, i), pipe(i, c)]);
      })().catch(() => {});
    }
  })();
} else {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  port = (l.addr as Deno.NetAddr).port;
  (async () => {
    for await (const conn of l) {
      (async () => {
        conn.setNoDelay(true);
        const first = new Uint8Array(16384);
        const n0 = await conn.read(first);
        let pending: Uint8Array | null = first.slice(0, n0!);
        const buf = new Uint8Array(16384);
        const duplex = new Duplex({
          read() {
            if (pending) {
              const p = pending;
              pending = null;
              this.push(p);
              return;
            }
            conn.read(buf).then(
              (n) => this.push(n === null ? null : buf.slice(0, n)),
              (e) => this.destroy(e),
            );
          },
          write(chunk, _e, cb) {
            conn.write(chunk).then(() => cb(), cb);
          },
        });
        const t = new tls.TLSSocket(duplex, { isServer: true, cert, key });
        t.on("data", (d) => t.write(d));
        t.on("error", () => {});
      })().catch(() => {});
    }
  })();
}
const msg = new Uint8Array(64).fill(97);
const t0 = performance.now();
await Promise.all(Array.from({ length: CONNS }, async () => {
  const c = await Deno.connectTls({ hostname: "bench.local", port, caCerts: [ca] }).catch(
    async () => {
      const tcp = await Deno.connect({ hostname: "127.0.0.1", port });
      return Deno.startTls(tcp, { hostname: "bench.local", caCerts: [ca] });
    },
  );
  const b = new Uint8Array(4096);
  for (let i = 0; i < ROUNDS; i++) {
    await c.write(msg);
    let got = 0;
    while (got < 64) {
      const n = await c.read(b);
      if (n === null) throw new Error("eof");
      got += n;
    }
  }
  c.close();
}));
const ms = performance.now() - t0;
console.log(mode, `${Math.round(CONNS * ROUNDS / ms * 1000)} round trips/s`);
Deno.exit(0);

/**
 * Entrypoint limits at the level of a whole instance, on the connection
 * engine (the only serving mode):
 * - TLS entrypoints get the same request limits as plain ones (431 here);
 * - the head `readTimeout`, `idleTimeout` and `maxConnections` as a socket
 *   cap are enforced on plain and TLS entrypoints, while normal requests
 *   are served.
 */

import assert from "node:assert/strict";
import net from "node:net";
import tls from "node:tls";
import { startTestProxy } from "./fixtures/proxy.ts";

const ROUTES = `
[http.routers.plain]
rule = "PathPrefix(\`/\`)"
service = "ping@internal"
entryPoints = ["web"]
[http.routers.secure]
rule = "PathPrefix(\`/\`)"
service = "ping@internal"
entryPoints = ["websecure"]
[http.routers.secure.tls]
`;

const LIMITS = `[entryPoints.NAME.transport]
maxConnections = 3
[entryPoints.NAME.transport.respondingTimeouts]
readTimeout = "700ms"
idleTimeout = "1200ms"
[entryPoints.NAME.http]
maxHeaderBytes = 2048
`;

/** A raw client on a plain or TLS socket: bytes out, everything read until close or a deadline. */
interface RawClient {
  write(text: string): void;
  /** Text received and whether the server closed, waiting at most `ms`. */
  settle(ms: number): Promise<{ text: string; closed: boolean; after: number }>;
  destroy(): void;
}

function rawClient(port: number, secure: boolean): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    let text = "";
    let closed = false;
    const started = Date.now();
    let closedAt = 0;
    const socket = secure
      ? tls.connect({ host: "127.0.0.1", port, servername: "a.test", rejectUnauthorized: false })
      : net.connect({ host: "127.0.0.1", port });
    socket.once(secure ? "secureConnect" : "connect", () =>
      resolve({
        write: (t) => socket.write(t),
        async settle(ms) {
          const deadline = Date.now() + ms;
          while (!closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
          return { text, closed, after: (closed ? closedAt : Date.now()) - started };
        },
        destroy: () => socket.destroy(),
      }));
    socket.on("data", (d: Uint8Array) => (text += new TextDecoder("latin1").decode(d)));
    socket.on("close", () => {
      closed = true;
      closedAt = Date.now();
    });
    socket.on("error", () => {});
    socket.once("error", reject);
  });
}

async function withProxy(fn: (ports: { web: number; websecure: number }) => Promise<void>) {
  const proxy = await startTestProxy({
    entryPoints: ["web", "websecure"],
    entryPointExtra: {
      web: LIMITS.replaceAll("NAME", "web"),
      websecure: LIMITS.replaceAll("NAME", "websecure") + "[entryPoints.websecure.http.tls]\n",
    },
    dynamic: ROUTES,
  });
  try {
    await fn({ web: proxy.port("web"), websecure: proxy.port("websecure") });
  } finally {
    await proxy.close();
  }
}

/** Each entrypoint with its name and whether it speaks TLS. */
function bothKinds(ports: { web: number; websecure: number }) {
  return [["web", ports.web, false], ["websecure", ports.websecure, true]] as const;
}

const BIG_HEAD = `GET /ping HTTP/1.1\r\nHost: a.test\r\nX-Big: ${"b".repeat(3000)}\r\n\r\n`;

Deno.test({
  name: "TLS entrypoints enforce the request limits too (431 over maxHeaderBytes)",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withProxy(async (ports) => {
      for (const [name, port, secure] of bothKinds(ports)) {
        const c = await rawClient(port, secure);
        c.write(BIG_HEAD);
        const r = await c.settle(2000);
        c.destroy();
        assert.match(r.text, /^HTTP\/1\.1 431 /, `${name}: ${r.text.slice(0, 40)}`);
      }
    });
  },
});

Deno.test({
  name:
    "slowloris cut at readTimeout, idle at idleTimeout, sockets capped, on plain and TLS",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withProxy(async (ports) => {
      for (const [name, port, secure] of bothKinds(ports)) {
        const loris = await rawClient(port, secure);
        const idle = await rawClient(port, secure);
        idle.write("GET /ping HTTP/1.1\r\nHost: a.test\r\n\r\n");
        let stop = false;
        const dribble = (async () => {
          for (const ch of "GET /ping HTTP/1.1\r\nHost: a.test\r\nX-Slow: aaaaaaaaaaaaaaaa") {
            if (stop) break;
            loris.write(ch);
            await new Promise((r) => setTimeout(r, 150));
          }
        })();
        // A third connection fits under maxConnections = 3 and is served; a fourth is refused.
        const normal = await rawClient(port, secure);
        normal.write("GET /ping HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n");
        const served = await normal.settle(2000);
        assert.match(served.text, /^HTTP\/1\.1 200 [\s\S]*OK$/, `${name}: normal request served`);
        const held = await rawClient(port, secure);
        const extra = await rawClient(port, secure);
        extra.write("GET /ping HTTP/1.1\r\nHost: a.test\r\n\r\n");
        const refused = await extra.settle(2000);
        assert.match(refused.text, /^HTTP\/1\.1 503 /, `${name}: a fourth socket is refused`);
        assert.ok(refused.closed, `${name}: and closed`);
        held.destroy();

        const [l, i] = await Promise.all([loris.settle(4000), idle.settle(4000)]);
        stop = true;
        await dribble;
        assert.ok(l.closed && l.after < 2000, `${name}: slowloris closed after ${l.after} ms`);
        assert.equal(l.text, "", `${name}: no answer to an unfinished head`);
        assert.ok(i.closed, `${name}: idle keep-alive connection closed`);
        assert.ok(i.after >= 1100, `${name}: not before idleTimeout (${i.after} ms)`);
        assert.match(
          i.text,
          /^HTTP\/1\.1 200 /,
          `${name}: the idle connection's request was answered first`,
        );
        for (const c of [loris, idle, normal, extra]) c.destroy();
      }
    });
  },
});

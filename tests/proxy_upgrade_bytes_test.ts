/**
 * Any `Upgrade` is piped as bytes once the upstream answers 101: a
 * made-up protocol, the upstream's 101 head passed on byte for byte (its
 * subprotocol and extension choices included), bytes sent together with
 * the upgrade request delivered, and both directions closing cleanly.
 */

import assert from "node:assert/strict";
import { startTestProxy } from "./fixtures/proxy.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Answers the upgrade with a fixed 101 head, then echoes every byte upper-cased. */
function upgradingBackend(head101: string) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const requests: string[] = [];
  (async () => {
    for await (const conn of listener) {
      (async () => {
        const buf = new Uint8Array(4096);
        let text = "";
        while (!text.includes("\r\n\r\n")) {
          const n = await conn.read(buf);
          if (n === null) return conn.close();
          text += dec.decode(buf.subarray(0, n));
        }
        const at = text.indexOf("\r\n\r\n") + 4;
        requests.push(text.slice(0, at));
        await conn.write(enc.encode(head101));
        const early = text.slice(at);
        if (early) await conn.write(enc.encode(early.toUpperCase()));
        for (;;) {
          const n = await conn.read(buf);
          if (n === null) break;
          await conn.write(enc.encode(dec.decode(buf.subarray(0, n)).toUpperCase()));
        }
        conn.close();
      })().catch(() => {});
    }
  })().catch(() => {});
  return { port: (listener.addr as Deno.NetAddr).port, requests, close: () => listener.close() };
}

async function readUntil(conn: Deno.Conn, want: (t: string) => boolean, ms = 3000): Promise<string> {
  const buf = new Uint8Array(4096);
  let text = "";
  const deadline = Date.now() + ms;
  while (!want(text) && Date.now() < deadline) {
    const n = await Promise.race([
      conn.read(buf),
      new Promise<null>((r) => setTimeout(() => r(null), Math.max(1, deadline - Date.now()))),
    ]);
    if (n === null) break;
    text += dec.decode(buf.subarray(0, n));
  }
  return text;
}

Deno.test({
  name: "upgrade: a non-WebSocket protocol is piped as bytes after the upstream's 101, head passed on as sent",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const head101 = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: shout/1\r\nConnection: Upgrade\r\n" +
      "Sec-WebSocket-Protocol: chosen.by.upstream\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n";
    const backend = upgradingBackend(head101);
    const proxy = await startTestProxy({
      dynamic: `
[http.routers.up]
rule = "PathPrefix(\`/\`)"
service = "up"
[http.services.up.loadBalancer]
servers = [{ url = "http://127.0.0.1:${backend.port}" }]
`,
    });
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port() });
    try {
      // The first bytes of the new protocol ride along with the request.
      await conn.write(enc.encode(
        "GET /chat?x=1 HTTP/1.1\r\nHost: a.test\r\nUpgrade: shout/1\r\nConnection: keep-alive, Upgrade\r\n" +
          "Sec-WebSocket-Protocol: a, chosen.by.upstream\r\n\r\nearly",
      ));
      const first = await readUntil(conn, (t) => t.includes("EARLY"));
      assert.ok(first.startsWith(head101), `the 101 head byte for byte: ${JSON.stringify(first.slice(0, 80))}`);
      assert.ok(first.endsWith("EARLY"), "bytes sent with the request reached the upstream");
      for (const word of ["hello", "binary\u0000\u00ff?"]) {
        await conn.write(enc.encode(word));
        const echoed = await readUntil(conn, (t) => t === word.toUpperCase());
        assert.equal(echoed, word.toUpperCase());
      }
      const seen = backend.requests[0];
      assert.match(seen, /^GET \/chat\?x=1 HTTP\/1\.1\r\n/);
      assert.match(seen, /\r\nupgrade: shout\/1\r\n/i);
      assert.match(seen, /\r\nconnection: Upgrade\r\n/i);
      assert.match(seen, /\r\nsec-websocket-protocol: a, chosen\.by\.upstream\r\n/i);
      assert.match(seen, /\r\nx-forwarded-for: 127\.0\.0\.1\r\n/i);
      // Closing our write side ends the upstream side, which then closes ours.
      await conn.closeWrite();
      const rest = await readUntil(conn, () => false, 1500);
      assert.equal(rest, "", "nothing after the close");
    } finally {
      try {
        conn.close();
      } catch { /* closed */ }
      await proxy.close();
      backend.close();
    }
  },
});

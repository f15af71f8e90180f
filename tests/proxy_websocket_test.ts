/**
 * WebSocket upgrades are relayed both ways, with the subprotocol the
 * upstream chose, and closes propagate.
 */

import assert from "node:assert/strict";
import { startTestProxy } from "./fixtures/proxy.ts";

Deno.test("websocket: messages flow both ways through the proxy", async () => {
  let upstreamHeaders: Headers | undefined;
  let upstreamPath = "";
  const closed = Promise.withResolvers<number>();
  const upstream = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    upstreamHeaders = new Headers(req.headers);
    upstreamPath = new URL(req.url).pathname + new URL(req.url).search;
    const { socket, response } = Deno.upgradeWebSocket(req, { protocol: "chat.v2" });
    socket.onmessage = (e) => {
      if (typeof e.data === "string") socket.send(`echo:${e.data}`);
      else socket.send(new Uint8Array(e.data as ArrayBuffer).reverse());
    };
    socket.onclose = (e) => closed.resolve(e.code);
    return response;
  });
  const proxy = await startTestProxy({
    dynamic: `
[http.routers.ws]
rule = "PathPrefix(\`/ws\`)"
service = "ws"
[http.services.ws.loadBalancer]
servers = [{ url = "http://127.0.0.1:${(upstream.addr as Deno.NetAddr).port}" }]
`,
  });
  try {
    const ws = new WebSocket(`ws://127.0.0.1:${proxy.port()}/ws/room?id=7`, ["chat.v1", "chat.v2"]);
    ws.binaryType = "arraybuffer";
    const messages: (string | number[])[] = [];
    const gotTwo = Promise.withResolvers<void>();
    ws.onmessage = (e) => {
      messages.push(typeof e.data === "string" ? e.data : [...new Uint8Array(e.data)]);
      if (messages.length === 2) gotTwo.resolve();
    };
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = () => reject(new Error("websocket through the proxy failed"));
    });
    assert.equal(ws.protocol, "chat.v2", "the upstream's subprotocol reaches the client");
    ws.send("hello");
    ws.send(new Uint8Array([1, 2, 3]));
    await gotTwo.promise;
    assert.deepEqual(messages, ["echo:hello", [3, 2, 1]]);
    assert.equal(upstreamPath, "/ws/room?id=7");
    assert.equal(upstreamHeaders?.get("x-forwarded-for"), "127.0.0.1");
    ws.close(1000, "bye");
    assert.equal(await closed.promise, 1000, "the client's close reaches the upstream");
  } finally {
    await proxy.close();
    await upstream.shutdown();
  }
});

Deno.test("websocket: an upstream that refuses the upgrade has its answer passed on, as Go's proxy does", async () => {
  const upstream = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response("no", { status: 400 }),
  );
  const proxy = await startTestProxy({
    dynamic: `
[http.routers.ws]
rule = "PathPrefix(\`/\`)"
service = "ws"
[http.services.ws.loadBalancer]
servers = [{ url = "http://127.0.0.1:${(upstream.addr as Deno.NetAddr).port}" }]
`,
  });
  try {
    const res = await fetch(`http://127.0.0.1:${proxy.port()}/`, {
      headers: {
        upgrade: "websocket",
        connection: "Upgrade",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
        "sec-websocket-version": "13",
      },
    });
    assert.equal(res.status, 400);
    assert.equal(await res.text(), "no");
    // An upstream that is not there at all is a 502.
    await upstream.shutdown();
    const gone = await fetch(`http://127.0.0.1:${proxy.port()}/`, {
      headers: { upgrade: "websocket", connection: "Upgrade", "sec-websocket-version": "13" },
    });
    await gone.body?.cancel();
    assert.equal(gone.status, 502);
  } finally {
    await proxy.close();
    await upstream.shutdown().catch(() => {});
  }
});

/**
 * A minimal WebSocket client over node:tls (SNI set, certificate not
 * verified): it sends the upgrade itself and speaks single-frame text
 * messages, so nothing on the client side hides what the server does.
 */
async function wssConnect(port: number, servername: string, path: string) {
  const tls = await import("node:tls");
  const socket = tls.connect({ host: "127.0.0.1", port, servername, rejectUnauthorized: false });
  let buffered = new Uint8Array(0);
  let wake: (() => void) | undefined;
  let ended = false;
  socket.on("data", (d: Uint8Array) => {
    const next = new Uint8Array(buffered.length + d.length);
    next.set(buffered);
    next.set(d, buffered.length);
    buffered = next;
    wake?.();
  });
  socket.on("close", () => {
    ended = true;
    wake?.();
  });
  socket.on("error", () => {});
  const waitFor = async (ready: () => number) => {
    const deadline = Date.now() + 5000;
    while (true) {
      const n = ready();
      if (n > 0) {
        const out = buffered.subarray(0, n);
        buffered = buffered.slice(n);
        return out;
      }
      if (ended) throw new Error("connection closed");
      if (Date.now() > deadline) throw new Error("timed out");
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, 100);
      });
    }
  };
  socket.write(
    `GET ${path} HTTP/1.1\r\nHost: ${servername}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
  );
  const head = new TextDecoder().decode(
    await waitFor(() => {
      const at = new TextDecoder().decode(buffered).indexOf("\r\n\r\n");
      return at < 0 ? 0 : at + 4;
    }),
  );
  return {
    status: Number(head.split(" ")[1]),
    async echo(text: string): Promise<string> {
      const payload = new TextEncoder().encode(text);
      const frame = new Uint8Array(6 + payload.length); // short text frame, zero mask
      frame[0] = 0x81;
      frame[1] = 0x80 | payload.length;
      frame.set(payload, 6);
      socket.write(frame);
      const reply = await waitFor(() =>
        buffered.length >= 2 && buffered.length >= 2 + buffered[1] ? 2 + buffered[1] : 0
      );
      return new TextDecoder().decode(reply.subarray(2));
    },
    close: () => socket.destroy(),
  };
}

Deno.test({
  name:
    "websocket over a TLS entrypoint (wss): relayed, and unaffected by an unrelated certificate change",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { generateSelfSigned } = await import("../lib/tls/self_signed.ts");
    const upstream = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
      const { socket, response } = Deno.upgradeWebSocket(req);
      socket.onmessage = (e) => socket.send(`echo:${e.data}`);
      return response;
    });
    const dir = await Deno.makeTempDir();
    const certs: string[] = [];
    for (const name of ["a.test", "b.test"]) {
      const pair = await generateSelfSigned({ dnsNames: [name] });
      await Deno.writeTextFile(`${dir}/${name}.crt`, pair.certPem);
      await Deno.writeTextFile(`${dir}/${name}.key`, pair.keyPem);
      certs.push(
        `[[tls.certificates]]\ncertFile = "${dir}/${name}.crt"\nkeyFile = "${dir}/${name}.key"\n`,
      );
    }
    const routes = `
[http.routers.ws]
rule = "Host(\`a.test\`)"
service = "ws"
[http.routers.ws.tls]
[http.services.ws.loadBalancer]
servers = [{ url = "http://127.0.0.1:${(upstream.addr as Deno.NetAddr).port}" }]
`;
    const proxy = await startTestProxy({
      entryPoints: ["websecure"],
      entryPointExtra: { websecure: "[entryPoints.websecure.http.tls]\n" },
      dynamic: routes + certs[0],
    });
    try {
      const ws = await wssConnect(proxy.port("websecure"), "a.test", "/chat");
      assert.equal(ws.status, 101);
      assert.equal(await ws.echo("one"), "echo:one");
      // A certificate for a name this socket never resolved: no swap, the session goes on.
      await proxy.writeDynamic(routes + certs[0] + certs[1]);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(await ws.echo("two"), "echo:two");
      ws.close();
    } finally {
      await proxy.close();
      await upstream.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

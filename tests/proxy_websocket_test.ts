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

Deno.test("websocket: an upstream that refuses the upgrade gives 502", async () => {
  const upstream = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => new Response("no", { status: 400 }));
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
      headers: { upgrade: "websocket", connection: "Upgrade", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version": "13" },
    });
    await res.body?.cancel();
    assert.equal(res.status, 502);
  } finally {
    await proxy.close();
    await upstream.shutdown();
  }
});

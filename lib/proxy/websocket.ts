/**
 * WebSocket relay for requests that come from Deno's native server (HTTP/2
 * connections), which gives no raw socket after an upgrade; HTTP/1.1
 * upgrades are piped as bytes instead (upgrade.ts). This relay works at the
 * message level: it opens the upstream WebSocket first (so
 * the upstream picks the subprotocol, or refuses), then upgrades the client
 * with the same subprotocol and pipes messages and closes both ways.
 *
 * @module
 */

/** True when the client asks for a WebSocket upgrade. */
export function isWebSocketUpgrade(request: Request): boolean {
  const upgrade = request.headers.get("upgrade");
  return upgrade !== null && upgrade.toLowerCase() === "websocket";
}

/** Headers a WebSocket client sets itself; forwarding them would clash. */
const WS_OWN_HEADERS = new Set([
  "sec-websocket-key",
  "sec-websocket-version",
  "sec-websocket-extensions",
  "sec-websocket-protocol",
  "upgrade",
  "connection",
]);

/**
 * Relays a WebSocket upgrade to `upstreamUrl` (ws: or wss:). Resolves with the
 * 101 response for the client, or rejects if the upstream refuses.
 */
export function relayWebSocket(
  request: Request,
  upstreamUrl: string,
  headers: Record<string, string | string[]>,
  connectTimeoutMs: number,
): Promise<Response> {
  const protocols = (request.headers.get("sec-websocket-protocol") ?? "")
    .split(",").map((p) => p.trim()).filter(Boolean);
  const forwardHeaders: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (!WS_OWN_HEADERS.has(k)) forwardHeaders[k] = Array.isArray(v) ? v.join(", ") : v;
  }
  return new Promise((resolve, reject) => {
    // Deno's WebSocket accepts a headers option (checked on 2.9); the type
    // definitions lag behind.
    const upstream = new WebSocket(
      upstreamUrl,
      { protocols, headers: forwardHeaders } as unknown as string[],
    );
    upstream.binaryType = "arraybuffer";
    const timer = setTimeout(() => {
      upstream.close();
      reject(new Error("websocket upstream timed out"));
    }, connectTimeoutMs);
    upstream.onerror = () => {
      clearTimeout(timer);
      reject(new Error("websocket upstream refused"));
    };
    upstream.onopen = () => {
      clearTimeout(timer);
      upstream.onerror = null;
      const { socket: client, response } = Deno.upgradeWebSocket(request, {
        protocol: upstream.protocol || undefined,
        idleTimeout: 0,
      });
      client.binaryType = "arraybuffer";
      const pending: (string | ArrayBuffer)[] = [];
      client.onopen = () => {
        for (const m of pending) upstream.send(m);
        pending.length = 0;
      };
      client.onmessage = (e) => {
        if (upstream.readyState === WebSocket.OPEN) upstream.send(e.data);
      };
      upstream.onmessage = (e) => {
        if (client.readyState === WebSocket.OPEN) client.send(e.data);
        else if (client.readyState === WebSocket.CONNECTING) pending.push(e.data);
      };
      const closeOther = (other: WebSocket, code: number, reason: string) => {
        if (other.readyState === WebSocket.OPEN || other.readyState === WebSocket.CONNECTING) {
          // 1005/1006 cannot be sent on the wire.
          const sendable = code === 1000 || (code >= 3000 && code < 5000);
          try {
            if (sendable) other.close(code, reason);
            else other.close();
          } catch {
            other.close();
          }
        }
      };
      client.onclose = (e) => closeOther(upstream, e.code, e.reason);
      upstream.onclose = (e) => closeOther(client, e.code, e.reason);
      client.onerror = () => closeOther(upstream, 1011, "");
      upstream.onerror = () => closeOther(client, 1011, "");
      resolve(response);
    };
  });
}

/**
 * Protocol upgrades (WebSocket or any other `Upgrade`) on the connection
 * engine: the request goes to the upstream on a fresh connection; when it
 * answers 101, its head goes to the client as it came and from then on
 * bytes are piped both ways untouched, so subprotocols and extensions are
 * whatever the two ends agreed. Any other answer is passed on as a normal
 * response.
 *
 * @module
 */

import { withDeadline } from "../deadline.ts";
import type { Exchange } from "../engine/exchange.ts";
import { encodeLatin1 } from "../engine/response_head.ts";
import { writeAll } from "../engine/socket.ts";
import { parseResponseHead } from "../engine/response_parser.ts";
import { downstreamResponseHeaders, type ForwardedInfo, upstreamHeaderLines } from "./headers.ts";
import { UpstreamError } from "./upstream.ts";

/** A Response standing for a 101 already sent by the upgrade path; its status reads 101. */
export function switchedResponse(): Response {
  const response = new Response(null, { status: 200 });
  Object.defineProperty(response, "status", { value: 101 });
  SWITCHED.add(response);
  return response;
}

const SWITCHED = new WeakSet<Response>();

/** True for the stand-in of a 101 that the upgrade path has already written. */
export function alreadySwitched(response: Response): boolean {
  return SWITCHED.has(response);
}

/** Copies `from` into `to` until EOF, then half-closes `to` where it can. */
export async function pipe(from: Deno.Conn, to: Deno.Conn): Promise<void> {
  const buf = new Uint8Array(32 * 1024);
  try {
    for (;;) {
      const n = await from.read(buf);
      if (n === null) break;
      await writeAll(to, buf.subarray(0, n));
    }
  } catch {
    // either side went away
  }
  try {
    await (to as Deno.TcpConn).closeWrite();
  } catch {
    try {
      to.close();
    } catch { /* closed */ }
  }
}

/**
 * Forwards an upgrade request. Resolves with the upstream's non-101
 * response, or with {@linkcode switchedResponse} once the pipe runs.
 */
export async function upgradeUpstream(
  exchange: Exchange,
  target: URL,
  pathAndQuery: string,
  headerList: readonly string[],
  info: ForwardedInfo,
  host: string | undefined,
  dialTimeout: number,
): Promise<Response> {
  const { head } = exchange;
  const secure = target.protocol === "https:" || target.protocol === "wss:";
  const hostname = target.hostname.replace(/^\[|\]$/g, "");
  const port = target.port ? Number(target.port) : secure ? 443 : 80;
  const connecting: Promise<Deno.Conn> = secure
    ? Deno.connectTls({ hostname, port, alpnProtocols: ["http/1.1"] })
    : Deno.connect({ hostname, port });
  let upstream: Deno.Conn;
  try {
    upstream = await withDeadline(connecting, dialTimeout, () => new Error("dial timeout"));
  } catch {
    connecting.then((c) => c.close(), () => {});
    // Nothing was sent: the retry middleware may try the next server.
    throw new UpstreamError("upstream connect failed", 502, true);
  }
  try {
    let text = `${head.method} ${pathAndQuery} HTTP/1.1\r\n` + upstreamHeaderLines(headerList, info, host);
    text += `connection: Upgrade\r\nupgrade: ${head.upgrade}\r\n`;
    await writeAll(upstream, encodeLatin1(text + "\r\n"));
    let buf = new Uint8Array(16 * 1024);
    let end = 0;
    for (;;) {
      if (end === buf.length) {
        const bigger = new Uint8Array(buf.length * 2);
        bigger.set(buf);
        buf = bigger;
      }
      const n = await upstream.read(buf.subarray(end));
      if (n === null) throw new Error("upstream closed before answering the upgrade");
      end += n;
      const r = parseResponseHead(buf, 0, end);
      if (r.kind === "incomplete") continue;
      if (r.kind === "error") throw new Error(r.reason);
      if (r.head.status !== 101) {
        // Refused: pass the answer on and close (the body, if any, was short or ends with the socket).
        const rest = buf.slice(r.end, end);
        const body = r.head.contentLength > 0 ? await readRest(upstream, rest, r.head.contentLength) : null;
        upstream.close();
        exchange.closeAfter = true;
        return new Response(body, {
          status: r.head.status,
          statusText: r.head.reason,
          headers: downstreamResponseHeaders(r.head.headers),
        });
      }
      // The 101 goes to the client byte for byte, then the pipe.
      await exchange.write(buf.slice(0, r.end));
      const taken = exchange.takeSocket();
      if (r.end < end) await exchange.write(buf.slice(r.end, end)).catch(() => {});
      if (taken.buffered.length) await writeAll(upstream, taken.buffered);
      Promise.all([pipe(taken.conn, upstream), pipe(upstream, taken.conn)]).finally(() => {
        for (const c of [taken.conn, upstream]) {
          try {
            c.close();
          } catch { /* closed */ }
        }
      });
      return switchedResponse();
    }
  } catch {
    try {
      upstream.close();
    } catch { /* closed */ }
    if (exchange.started) {
      exchange.closeAfter = true;
      return switchedResponse();
    }
    return new Response("Bad Gateway", { status: 502 });
  }
}

async function readRest(conn: Deno.Conn, have: Uint8Array, length: number): Promise<Uint8Array<ArrayBuffer>> {
  const out = new Uint8Array(Math.min(length, 1024 * 1024));
  out.set(have.subarray(0, out.length));
  let off = Math.min(have.length, out.length);
  while (off < out.length) {
    const n = await conn.read(out.subarray(off));
    if (n === null) break;
    off += n;
  }
  return out.subarray(0, off) as Uint8Array<ArrayBuffer>;
}

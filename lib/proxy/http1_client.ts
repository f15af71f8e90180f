/**
 * A small HTTP/1.1 client for upstreams, on `Deno.connect` and (HTTPS)
 * `Deno.connectTls`, which verifies the chain against the system roots plus
 * the transport's `rootCAs`.
 *
 * Why not `node:http`: in the CPU profile of a proxied request its client
 * was about 45 % of the work (agent bookkeeping, header validation, event
 * emitters, timers per request). This client keeps a LIFO pool of idle
 * connections per upstream, writes the request head in one write, parses
 * the response head with the engine's parser (response_parser.ts), and hands small bodies with a known length to
 * the response writer as one buffer (one write with the head) while streaming the rest.
 *
 * It sends the path and headers exactly as given (no normalisation), frames
 * request bodies by the given Content-Length or else chunked, and refuses a
 * malformed or ambiguous response (conflicting lengths, bad status line,
 * oversized head) with a 502.
 *
 * @module
 */

import { withDeadline } from "../deadline.ts";
import { type ForwardingTimeouts, UpstreamError, type UpstreamRequest } from "./upstream.ts";
import { downstreamResponseHeaders } from "./headers.ts";
import { closeQuietly, ReadBuffer, writeAll } from "../engine/socket.ts";
import { encodeLatin1 } from "../engine/response_head.ts";
import { parseResponseHead, type ResponseHead } from "../engine/response_parser.ts";
import { ChunkedDecoder, encodeChunk, LAST_CHUNK } from "../engine/chunked.ts";

/** Response bodies up to this size with a Content-Length are read whole before answering. */
const BUFFER_BODY_LIMIT = 64 * 1024;
/** A pooled connection used this recently may carry a request body. */
const RECENT_MS = 2000;



/** One upstream connection with its read buffer. */
export class Connection extends ReadBuffer {
  lastUsed = 0;
  uses = 0;
  closed = false;

  /** Reads more bytes into the buffer; false at EOF. */
  fill(): Promise<boolean> {
    return this.readMore();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeQuietly(this.conn);
  }
}

/**
 * A pool of keep-alive connections to plain-HTTP upstreams.
 *
 * @example
 * ```ts
 * const pool = new Http1Pool(DEFAULT_TIMEOUTS);
 * const res = await pool.request({ target: new URL("http://127.0.0.1:9000"), method: "GET",
 *   pathAndQuery: "/x", headers: { host: "a.test" }, body: null });
 * ```
 */
export interface UpstreamTls {
  /** PEM roots trusted besides the system's (a servers transport's `rootCAs`). */
  caCerts?: string[];
  insecureSkipVerify: boolean;
  /** SNI and verified name, when not the URL's host (a servers transport's `serverName`). */
  serverName?: string;
  clientCertificate?: { cert: string; key: string };
}

export class Http1Pool {
  private readonly idle = new Map<string, Connection[]>();
  private sweeper?: ReturnType<typeof setTimeout>;

  constructor(
    private readonly timeouts: ForwardingTimeouts,
    private readonly maxIdlePerHost = 256,
    private readonly tls: UpstreamTls = { insecureSkipVerify: false },
  ) {}

  /**
   * Whether this client can carry a request to `target`. Not HTTPS with
   * `insecureSkipVerify`: Deno's TLS client always verifies the chain, so
   * those upstreams stay on node:https.
   */
  serves(target: URL): boolean {
    return target.protocol === "http:" || (target.protocol === "https:" && !this.tls.insecureSkipVerify);
  }

  key(target: URL): string {
    return target.protocol === "https:" ? `s:${target.host}` : target.host;
  }

  /** Opens a new connection to `target` within the dial timeout. */
  async dial(target: URL): Promise<Connection> {
    const hostname = target.hostname.replace(/^\[|\]$/g, "");
    const secure = target.protocol === "https:";
    const port = target.port ? Number(target.port) : secure ? 443 : 80;
    const connecting: Promise<Deno.Conn> = secure
      ? this.connectTls(hostname, port).then(
        async (conn) => {
          // The handshake runs inside the dial timeout, and a bad certificate is a dial error.
          try {
            await conn.handshake();
          } catch (err) {
            closeQuietly(conn);
            throw new UpstreamError(`upstream TLS handshake failed: ${(err as Error).message}`, 502, true, { cause: err });
          }
          return conn;
        },
      )
      : Deno.connect({ hostname, port });
    try {
      const conn = await withDeadline(
        connecting,
        this.timeouts.dialTimeout,
        () => new UpstreamError("upstream connect timed out", 504, true),
      );
      (conn as Deno.TcpConn).setNoDelay?.(true);
      return new Connection(conn);
    } catch (err) {
      // A connect that finishes after the timeout must not leak its socket.
      connecting.then((c) => c.close(), () => {});
      if (err instanceof UpstreamError) throw err;
      throw new UpstreamError(`upstream connect failed: ${(err as Error).name}`, 502, true, { cause: err });
    }
  }

  private connectTls(hostname: string, port: number): Promise<Deno.TlsConn> {
    const { caCerts, serverName, clientCertificate } = this.tls;
    const alpnProtocols = ["http/1.1"];
    if (serverName === undefined) {
      return Deno.connectTls({ hostname, port, caCerts, alpnProtocols, ...clientCertificate });
    }
    // connectTls names the peer by the address it dials; startTls can name it otherwise.
    return Deno.connect({ hostname, port }).then((tcp) => {
      tcp.setNoDelay(true);
      return Deno.startTls(tcp, { hostname: serverName, caCerts, alpnProtocols });
    });
  }

  /** The most recently used idle connection to `key` (a target's host), if any. */
  acquireIdle(key: string): Connection | undefined {
    const list = this.idle.get(key);
    if (!list) return undefined;
    const now = Date.now();
    while (list.length) {
      const c = list.pop()!;
      if (!c.closed && now - c.lastUsed < this.timeouts.idleConnTimeout) return c;
      c.close();
    }
    return undefined;
  }

  /** Gives a connection whose exchange is complete back to the pool. */
  release(key: string, c: Connection): void {
    if (c.closed) return;
    if (c.buffered > 0) {
      // Bytes after the response: the upstream is out of sync; do not reuse.
      c.close();
      return;
    }
    let list = this.idle.get(key);
    if (!list) this.idle.set(key, list = []);
    if (list.length >= this.maxIdlePerHost) {
      c.close();
      return;
    }
    c.lastUsed = Date.now();
    list.push(c);
    this.scheduleSweep();
  }

  /** Closes idle connections older than the idle timeout, off the request path. */
  private scheduleSweep(): void {
    if (this.sweeper !== undefined || this.timeouts.idleConnTimeout <= 0) return;
    this.sweeper = setTimeout(() => {
      this.sweeper = undefined;
      const now = Date.now();
      let remaining = 0;
      for (const [key, list] of this.idle) {
        const keep = list.filter((c) => {
          const fresh = !c.closed && now - c.lastUsed < this.timeouts.idleConnTimeout;
          if (!fresh) c.close();
          return fresh;
        });
        if (keep.length) this.idle.set(key, keep);
        else this.idle.delete(key);
        remaining += keep.length;
      }
      if (remaining) this.scheduleSweep();
    }, Math.max(1000, this.timeouts.idleConnTimeout / 2));
    Deno.unrefTimer(this.sweeper as unknown as number);
  }

  close(): void {
    clearTimeout(this.sweeper);
    this.sweeper = undefined;
    for (const list of this.idle.values()) for (const c of list) c.close();
    this.idle.clear();
  }

  /** Sends the request; resolves with the response once its head (and small body) arrived. */
  async request(req: UpstreamRequest): Promise<Response> {
    const key = this.key(req.target);
    let reused = this.acquireIdle(key);
    // A body can be sent once: only risk it on a connection used moments ago,
    // which the upstream is very unlikely to have closed meanwhile.
    if (reused && req.body !== null && Date.now() - reused.lastUsed > RECENT_MS) {
      reused.close();
      reused = undefined;
    }
    if (reused) {
      try {
        return await this.exchange(key, reused, req);
      } catch (err) {
        // A pooled connection the upstream closed while idle fails before any
        // response byte; bodiless requests are retried once, as Go and Node do.
        if (!(err instanceof StaleConnection)) throw err;
        if (req.body !== null) throw new UpstreamError("upstream closed a pooled connection", 502, false);
      }
    }
    return await this.exchange(key, await this.dial(req.target), req, true);
  }

  private async exchange(key: string, c: Connection, req: UpstreamRequest, fresh = false): Promise<Response> {
    c.uses++;
    let head = `${req.method} ${req.pathAndQuery} HTTP/1.1\r\n`;
    let hasLength = false;
    for (const name in req.headers) {
      const value = req.headers[name];
      if (name === "content-length") hasLength = true;
      if (typeof value === "string") head += `${name}: ${value}\r\n`;
      else for (const v of value) head += `${name}: ${v}\r\n`;
    }
    const chunked = req.body !== null && !hasLength;
    if (chunked) head += "transfer-encoding: chunked\r\n";
    head += "\r\n";

    let bodyDone = req.body === null;
    let bodyStarted = false;
    try {
      await writeAll(c.conn, encodeLatin1(head));
    } catch (err) {
      c.close();
      if (!fresh) throw new StaleConnection();
      throw new UpstreamError(`upstream write failed: ${(err as Error).name}`, 502, true, { cause: err });
    }
    let bodyError: unknown;
    if (req.body !== null) {
      bodyStarted = true;
      // Sent alongside reading the response: an upstream may answer early (413).
      pumpBody(c, req.body, chunked).then(() => (bodyDone = true), (err) => {
        bodyError = err;
        c.close();
      });
    }

    let timer: ReturnType<typeof setTimeout> | undefined;
    let timedOut = false;
    if (this.timeouts.responseHeaderTimeout > 0) {
      timer = setTimeout(() => {
        timedOut = true;
        c.close();
      }, this.timeouts.responseHeaderTimeout);
    }
    let parsed: ResponseHead;
    try {
      parsed = await readHead(c, fresh);
    } catch (err) {
      c.close();
      if (timedOut) throw new UpstreamError("upstream did not answer in time", 504, !bodyStarted);
      if (err instanceof StaleConnection || err instanceof UpstreamError) throw err;
      if (bodyError) throw new UpstreamError("reading the request body failed", 502, false, { cause: bodyError });
      // Closed or reset before any answer: replayable unless a body was sent.
      throw new UpstreamError(`upstream read failed: ${(err as Error).message}`, 502, !bodyStarted, { cause: err });
    } finally {
      clearTimeout(timer);
    }

    const headers = downstreamResponseHeaders(parsed.headers);
    const noBody = req.method === "HEAD" || parsed.status === 204 || parsed.status === 304;
    const reusable = () => parsed.keepAlive && bodyDone && !c.closed;
    const init = { status: parsed.status, statusText: parsed.reason, headers };

    if (noBody || (!parsed.chunked && parsed.contentLength === 0)) {
      if (reusable()) this.release(key, c);
      else c.close();
      return new Response(null, init);
    }

    if (!parsed.chunked && parsed.contentLength > 0 && parsed.contentLength <= BUFFER_BODY_LIMIT) {
      // Small, known length: read it whole so the writer sends head and body at once.
      try {
        while (c.buffered < parsed.contentLength) {
          if (!(await c.fill())) throw new Error("closed mid-body");
        }
      } catch (err) {
        c.close();
        throw new UpstreamError(`upstream closed mid-body`, 502, false, { cause: err });
      }
      const body = c.take(parsed.contentLength);
      if (reusable()) this.release(key, c);
      else c.close();
      return new Response(body as Uint8Array<ArrayBuffer>, init);
    }

    return new Response(bodyStream(c, parsed, () => {
      if (reusable()) this.release(key, c);
      else c.close();
    }), init);
  }
}

/** A reused connection turned out closed before any response byte. */
class StaleConnection extends Error {
  constructor() {
    super("stale pooled connection");
  }
}

async function readHead(c: Connection, fresh: boolean): Promise<ResponseHead> {
  let sawByte = false;
  for (;;) {
    if (c.buffered > 0) {
      const r = parseResponseHead(c.buf, c.start, c.end);
      if (r.kind === "error") throw new UpstreamError(`upstream sent a bad response: ${r.reason}`, 502, false);
      if (r.kind === "head") {
        c.start = r.end;
        // Skip 1xx interim responses (100 Continue, 103 Early Hints).
        if (r.head.status >= 100 && r.head.status < 200 && r.head.status !== 101) continue;
        if (r.head.status === 101) throw new UpstreamError("upstream switched protocols unasked", 502, false);
        return r.head;
      }
    }
    let more: boolean;
    try {
      more = await c.fill();
    } catch (err) {
      if (!sawByte && c.buffered === 0 && !fresh) throw new StaleConnection();
      throw err;
    }
    if (!more) {
      if (!sawByte && c.buffered === 0 && !fresh) throw new StaleConnection();
      throw new Error("upstream closed the connection before answering");
    }
    sawByte = true;
  }
}

async function pumpBody(c: Connection, body: ReadableStream<Uint8Array>, chunked: boolean): Promise<void> {
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (c.closed) throw new Error("upstream connection closed");
      if (value.length === 0) continue;
      await writeAll(c.conn, chunked ? encodeChunk(value) : value);
    }
    if (chunked) await writeAll(c.conn, LAST_CHUNK);
  } finally {
    reader.releaseLock();
  }
}

/** Streams a response body: by length, chunked, or until the upstream closes. */
function bodyStream(c: Connection, head: ResponseHead, done: () => void): ReadableStream<Uint8Array> {
  let remaining = head.contentLength; // -1: chunked or until close
  const chunks = head.chunked ? new ChunkedDecoder() : undefined;
  let finished = false;
  const finish = (controller: ReadableStreamDefaultController<Uint8Array>) => {
    finished = true;
    controller.close();
    done();
  };
  const fail = (controller: ReadableStreamDefaultController<Uint8Array>, err: unknown) => {
    finished = true;
    c.close();
    controller.error(err);
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (finished) return;
      try {
        if (!chunks) {
          if (remaining === 0) return finish(controller);
          if (c.buffered === 0 && !(await c.fill())) {
            if (remaining < 0) return finish(controller); // read until close: EOF ends it
            throw new Error("closed mid-body");
          }
          const part = c.take(remaining < 0 ? Infinity : remaining);
          if (remaining > 0) remaining -= part.length;
          controller.enqueue(part);
          if (remaining === 0) finish(controller);
          return;
        }
        // Chunked: the shared decoder finds the data; trailers are dropped.
        for (;;) {
          if (c.buffered === 0 && !(await c.fill())) throw new Error("closed mid-body");
          const parts: Uint8Array[] = [];
          c.start = chunks.decode(c.buf, c.start, c.end, (from, to) => {
            if (to > from) parts.push(c.buf.slice(from, to));
          });
          for (const part of parts) controller.enqueue(part);
          if (chunks.done) return finish(controller);
          if (parts.length) return;
        }
      } catch (err) {
        fail(controller, err);
      }
    },
    cancel() {
      finished = true;
      c.close();
    },
  }, { highWaterMark: 0 });
}

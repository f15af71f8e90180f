/**
 * The HTTP/1.1 connection engine: serves accepted sockets (TCP or TLS)
 * request by request, with the strict head parser, keep-alive and
 * pipelining in order, `Expect: 100-continue`, streamed request bodies
 * with backpressure, and every entrypoint limit enforced here because the
 * engine owns the socket:
 * - `readTimeout`: the head and the body of a request must arrive within
 *   it (from accept for the first request, from its first byte for later
 *   ones); a slowloris or silent connection is cut;
 * - `idleTimeout`: a keep-alive connection waiting for its next request;
 * - `writeTimeout`: from the end of the head to the end of the response;
 * - `maxConnections`: a socket cap, refused with a raw 503 at accept.
 *
 * Deadlines are checked by one sweep per engine rather than a timer per
 * request, so the hot path only stores a number.
 *
 * @module
 */

import { ChunkedDecoder, ChunkedError } from "./chunked.ts";
import { type HeadLimits, parseRequestHead, type RequestHead } from "./request_head.ts";
import { errorHead } from "./response_head.ts";
import { closeQuietly, ReadBuffer, writeAll } from "./socket.ts";

import type { ConnectionInfo } from "../contracts.ts";
import type { Exchange, ExchangeHandler, TakenSocket } from "./exchange.ts";

/** What the engine enforces; times in ms, 0 = no limit. */
export interface EngineLimits extends HeadLimits {
  readTimeout: number;
  writeTimeout: number;
  idleTimeout: number;
  /** Open sockets at most; undefined = unlimited. */
  maxConnections?: number;
}

/** Options of {@linkcode HttpEngine}. */
export interface EngineOptions {
  limits: EngineLimits;
  handler: ExchangeHandler;
  onError?: (error: unknown) => void;
  /** Connection-level events (timeouts, refusals, bad requests), for debug logging. */
  onEvent?: (event: string, fields: Record<string, unknown>) => void;
}

/** Unread request body beyond this is not drained for reuse: the connection is closed. */
const DRAIN_LIMIT = 256 * 1024;
const CONTINUE = new TextEncoder().encode("HTTP/1.1 100 Continue\r\n\r\n");

/** The sweep interval: a quarter of the smallest active timeout, within [10 ms, 1 s]. */
export function sweepInterval(limits: Pick<EngineLimits, "readTimeout" | "idleTimeout" | "writeTimeout">): number {
  const active = [limits.readTimeout, limits.idleTimeout, limits.writeTimeout].filter((t) => t > 0);
  if (active.length === 0) return 0;
  return Math.min(1000, Math.max(10, Math.floor(Math.min(...active) / 4)));
}

/**
 * Serves accepted connections with the HTTP/1.1 engine.
 *
 * @example
 * ```ts
 * const engine = new HttpEngine({ limits, handler: async (ex) => { await ex.write(bytes); } });
 * for await (const conn of Deno.listen({ port: 8000 })) {
 *   engine.serve(conn, { remoteAddr: (conn.remoteAddr as Deno.NetAddr).hostname, tls: false, port: 8000 });
 * }
 * ```
 */
export class HttpEngine {
  readonly #conns = new Set<HttpConnection>();
  readonly #sweep?: ReturnType<typeof setInterval>;
  #draining = false;
  #drained?: () => void;

  constructor(readonly options: EngineOptions) {
    const interval = sweepInterval(options.limits);
    if (interval > 0) {
      this.#sweep = setInterval(() => this.#expire(), interval);
      Deno.unrefTimer(this.#sweep as unknown as number);
    }
  }

  /** Connections open now. */
  get connections(): number {
    return this.#conns.size;
  }

  /**
   * Takes over an accepted connection: refuses it over the cap, else serves
   * it. `initial` is what was already read from it (a first-byte sniff).
   */
  serve(conn: Deno.Conn, info: ConnectionInfo, initial?: Uint8Array): void {
    if (this.#draining) {
      closeQuietly(conn);
      return;
    }
    if (this.refuseOverCap(conn, 0)) return;
    try {
      (conn as Deno.TcpConn).setNoDelay?.(true);
    } catch { /* TLS connections have none; closed ones throw */ }
    const c = new HttpConnection(conn, info, this);
    if (initial && initial.length) {
      if (initial.length > c.buf.length) c.buf = new Uint8Array(initial.length * 2);
      c.buf.set(initial);
      c.end = initial.length;
    }
    this.#conns.add(c);
    c.run().catch((err) => this.options.onError?.(err)).finally(() => {
      this.#conns.delete(c);
      if (this.#draining && this.#conns.size === 0) this.#drained?.();
    });
  }

  /**
   * Refuses `conn` with a raw 503 when the engine's sockets plus `held`
   * (sockets the listener still holds, e.g. while sniffing for TLS) reach
   * `maxConnections`. True when it refused.
   */
  refuseOverCap(conn: Deno.Conn, held: number): boolean {
    const { maxConnections } = this.options.limits;
    const open = this.#conns.size + held;
    if (maxConnections === undefined || open < maxConnections) return false;
    this.options.onEvent?.("connection refused", { reason: "maxConnections", open });
    writeAll(conn, errorHead(503, true)).catch(() => {}).finally(() => closeQuietly(conn));
    return true;
  }

  /** True while shutting down: idle connections close, busy ones finish their response. */
  get draining(): boolean {
    return this.#draining;
  }

  /** Stops taking connections; resolves once every connection has closed. */
  shutdown(): Promise<void> {
    this.#draining = true;
    const done = new Promise<void>((resolve) => (this.#drained = resolve));
    for (const c of this.#conns) c.drain();
    if (this.#conns.size === 0) this.#drained?.();
    return done.finally(() => {
      if (this.#sweep !== undefined) clearInterval(this.#sweep);
    });
  }

  /** Closes every connection at once (after the grace period). */
  closeAll(): void {
    for (const c of this.#conns) c.close();
  }

  #expire(): void {
    const now = performance.now();
    for (const c of this.#conns) {
      const why = c.expired(now);
      if (!why) continue;
      this.options.onEvent?.("connection closed", { reason: why });
      if (why === "readTimeout" && c.phase === Phase.Serving && !c.responseStarted) {
        // The body did not arrive in time and nothing was answered yet: say so.
        c.responseStarted = true;
        writeAll(c.conn, errorHead(408, true)).catch(() => {}).finally(() => c.close());
        continue;
      }
      c.close();
    }
  }
}

const enum Phase {
  /** Waiting for the first byte of a request after another one. */
  Idle,
  /** Reading a head or a body. */
  Reading,
  /** The handler runs; the body (if any) is being read by it. */
  Serving,
  /** The socket was handed over after an upgrade. */
  Taken,
}

/** Heads and small bodies of up to this size are encoded without allocating. */
const SCRATCH_SIZE = 8 * 1024;

/** One accepted socket. */
class HttpConnection extends ReadBuffer {
  phase = Phase.Reading;
  /** performance.now() deadlines; 0 = none. */
  readDeadline = 0;
  writeDeadline = 0;
  closed = false;
  /** Whether any byte of the current response was written. */
  responseStarted = false;
  #scratch?: Uint8Array;
  readonly limits: EngineLimits;

  constructor(conn: Deno.Conn, readonly info: ConnectionInfo, readonly engine: HttpEngine) {
    super(conn);
    this.limits = engine.options.limits;
    if (this.limits.readTimeout > 0) this.readDeadline = performance.now() + this.limits.readTimeout;
  }

  get scratch(): Uint8Array {
    return this.#scratch ??= new Uint8Array(SCRATCH_SIZE);
  }

  expired(now: number): string | undefined {
    if (this.closed || this.phase === Phase.Taken) return undefined;
    if (this.readDeadline !== 0 && now >= this.readDeadline) {
      return this.phase === Phase.Idle ? "idleTimeout" : "readTimeout";
    }
    if (this.writeDeadline !== 0 && now >= this.writeDeadline) return "writeTimeout";
    return undefined;
  }

  /** Shutting down: an idle connection closes now, a busy one after its response. */
  drain(): void {
    if (this.phase === Phase.Idle && this.start === this.end) this.close();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeQuietly(this.conn);
  }

  /** Reads more bytes; false at EOF or on a failed read (a reset or closed socket). */
  async fill(): Promise<boolean> {
    try {
      return await this.readMore();
    } catch {
      return false;
    }
  }

  async run(): Promise<void> {
    try {
      while (!this.closed) {
        const head = await this.readHead();
        if (!head) return;
        const keepGoing = await this.serveOne(head);
        if (!keepGoing) return;
      }
    } finally {
      if (this.phase !== Phase.Taken) this.close();
    }
  }

  /** Reads and parses the next head; answers and returns undefined when it is bad or absent. */
  async readHead(): Promise<RequestHead | undefined> {
    // Where the terminator search resumes, relative to `start`: fill() may
    // move the buffered bytes to the front.
    let scannedFromStart = 0;
    let first = true;
    for (;;) {
      if (this.start < this.end) {
        if (this.phase === Phase.Idle) {
          // The next request has begun: the read deadline replaces the idle one.
          this.phase = Phase.Reading;
          this.readDeadline = this.limits.readTimeout > 0 ? performance.now() + this.limits.readTimeout : 0;
        }
        const r = parseRequestHead(this.buf, this.start, this.end, this.limits, this.start + scannedFromStart);
        if (r.kind === "head") {
          this.start = r.end;
          return r.head;
        }
        if (r.kind === "error") {
          this.engine.options.onEvent?.("bad request", { status: r.status, reason: r.reason, remoteAddr: this.info.remoteAddr });
          await writeAll(this.conn, errorHead(r.status, true)).catch(() => {});
          return undefined;
        }
        scannedFromStart = r.scanned - this.start;
      } else if (!first && this.engine.draining) {
        return undefined;
      }
      first = false;
      if (this.closed || !(await this.fill())) return undefined;
    }
  }

  /** Serves one request; false when the connection must not carry another. */
  async serveOne(head: RequestHead): Promise<boolean> {
    const limits = this.limits;
    this.phase = Phase.Serving;
    this.responseStarted = false;
    if (limits.writeTimeout > 0) this.writeDeadline = performance.now() + limits.writeTimeout;
    const body = new BodyReader(this, head);
    if (!body.remaining) this.readDeadline = 0;
    const exchange = new ConnectionExchange(this, head, body);
    try {
      await this.engine.options.handler(exchange);
    } catch (err) {
      if (exchange.started) {
        // Mostly a client that went away mid-response: not an error of ours.
        this.engine.options.onEvent?.("response aborted", { error: (err as Error).message });
        return false;
      }
      this.engine.options.onError?.(err);
      if (!this.closed) {
        await writeAll(this.conn, errorHead(500, true)).catch(() => {});
      }
      return false;
    }
    if (exchange.taken) {
      this.phase = Phase.Taken;
      return false;
    }
    this.writeDeadline = 0;
    if (!exchange.started) {
      // A handler that wrote nothing: answer for it rather than hang the client.
      await writeAll(this.conn, errorHead(500, true)).catch(() => {});
      return false;
    }
    if (exchange.closeAfter || !head.keepAlive || this.closed || this.engine.draining) return false;
    if (!(await body.drain(DRAIN_LIMIT))) return false;
    this.phase = Phase.Idle;
    this.readDeadline = limits.idleTimeout > 0 ? performance.now() + limits.idleTimeout : 0;
    return true;
  }
}

/** Reads one request body from the connection buffer: by length or chunked. */
class BodyReader {
  /** Bytes left for a Content-Length body; -1 for chunked until done. */
  remaining: number;
  readonly chunked?: ChunkedDecoder;
  failed?: Error;
  continueSent = false;

  constructor(readonly c: HttpConnection, readonly head: RequestHead) {
    if (head.chunked) {
      this.chunked = new ChunkedDecoder();
      this.remaining = -1;
    } else {
      this.remaining = head.contentLength > 0 ? head.contentLength : 0;
    }
  }

  get done(): boolean {
    return this.chunked ? this.chunked.done : this.remaining === 0;
  }

  async #more(): Promise<void> {
    if (this.head.expectContinue && !this.continueSent && this.c.start === this.c.end) {
      this.continueSent = true;
      await writeAll(this.c.conn, CONTINUE);
    }
    if (!(await this.c.fill())) throw new Error("client closed the connection mid-body");
  }

  async read(): Promise<Uint8Array | null> {
    if (this.failed) throw this.failed;
    try {
      const chunk = await this.#read();
      if (chunk === null) this.c.readDeadline = 0;
      return chunk;
    } catch (err) {
      // The connection is not reused after a broken body (drain() says no),
      // but stays open so that the handler can still answer 400.
      this.failed = err as Error;
      throw err;
    }
  }

  async #read(): Promise<Uint8Array | null> {
    const c = this.c;
    if (!this.chunked) {
      if (this.remaining === 0) return null;
      if (c.start === c.end) await this.#more();
      const n = Math.min(this.remaining, c.end - c.start);
      const out = c.buf.slice(c.start, c.start + n);
      c.start += n;
      this.remaining -= n;
      return out;
    }
    for (;;) {
      if (this.chunked.done) return null;
      if (c.start === c.end) await this.#more();
      const ranges: number[] = [];
      const upTo = this.chunked.decode(c.buf, c.start, c.end, (from, to) => {
        if (to > from) ranges.push(from, to);
      });
      let size = 0;
      for (let i = 0; i < ranges.length; i += 2) size += ranges[i + 1] - ranges[i];
      const out = new Uint8Array(size);
      let off = 0;
      for (let i = 0; i < ranges.length; i += 2) {
        out.set(c.buf.subarray(ranges[i], ranges[i + 1]), off);
        off += ranges[i + 1] - ranges[i];
      }
      c.start = upTo;
      if (size > 0) return out;
    }
  }

  /** Reads and drops what the handler left unread, up to `limit` bytes; false if it could not. */
  async drain(limit: number): Promise<boolean> {
    if (this.failed) return false;
    if (this.done) return true;
    // The client was never told to send the body: do not wait for it.
    if (this.head.expectContinue && !this.continueSent) return false;
    let dropped = 0;
    try {
      while (!this.done) {
        const part = await this.read();
        if (part === null) break;
        dropped += part.length;
        if (dropped > limit) return false;
      }
    } catch {
      return false;
    }
    return true;
  }
}

class ConnectionExchange implements Exchange {
  started = false;
  closeAfter = false;
  taken = false;
  #stream?: ReadableStream<Uint8Array> | null;

  constructor(readonly c: HttpConnection, readonly head: RequestHead, readonly body: BodyReader) {}

  get info(): ConnectionInfo {
    return this.c.info;
  }

  get scratch(): Uint8Array {
    return this.c.scratch;
  }

  get hasBody(): boolean {
    return !this.body.done;
  }

  readBody(): Promise<Uint8Array | null> {
    return this.body.read();
  }

  bodyStream(): ReadableStream<Uint8Array> | null {
    if (this.#stream !== undefined) return this.#stream;
    if (this.body.done) return this.#stream = null;
    const body = this.body;
    return this.#stream = new ReadableStream<Uint8Array>({
      async pull(controller) {
        try {
          const part = await body.read();
          if (part === null) controller.close();
          else controller.enqueue(part);
        } catch (err) {
          controller.error(err);
        }
      },
    }, { highWaterMark: 0 });
  }

  write(bytes: Uint8Array): Promise<void> {
    if (!this.taken && this.c.responseStarted && !this.started) {
      // The engine already answered (408): this response has nowhere to go.
      return Promise.reject(new Error("connection already answered"));
    }
    this.started = true;
    this.c.responseStarted = true;
    if (this.c.closed) return Promise.reject(new Error("connection closed"));
    return writeAll(this.c.conn, bytes);
  }

  takeSocket(): TakenSocket {
    this.taken = true;
    this.c.phase = Phase.Taken;
    this.c.readDeadline = 0;
    this.c.writeDeadline = 0;
    const buffered = this.c.buf.slice(this.c.start, this.c.end);
    this.c.start = this.c.end = 0;
    return { conn: this.c.conn, buffered };
  }
}

export type { RequestHead };
export { ChunkedError };

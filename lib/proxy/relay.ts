/**
 * The fast forwarding path: one request from the connection engine to one
 * plain-HTTP upstream, and the response back, on bytes. No Web `Request`,
 * `Response` or `Headers` is made: the upstream head is one string written
 * with a small body in one write, the response head is parsed by the
 * byte-level parser and re-emitted, and a small response body already
 * read goes out with its head in one write. Bodies stream both ways with
 * backpressure (each write is awaited before the next read).
 *
 * @module
 */

import { ChunkedDecoder, encodeChunk, LAST_CHUNK } from "../engine/chunked.ts";
import type { Exchange } from "../engine/exchange.ts";
import { bodiless, encodeHeadInto, errorHead } from "../engine/response_head.ts";
import { STATUS_TEXT } from "../http_status.ts";
import { writeAll } from "../engine/socket.ts";
import { parseResponseHead, type ResponseHead } from "../engine/response_parser.ts";
import type { ForwardingTimeouts } from "./upstream.ts";
import { connectionListedIn, HOP_BY_HOP } from "./headers.ts";
import type { Connection, Http1Pool } from "./http1_client.ts";

/** Request bodies up to this size are read whole and sent with the head. */
const SMALL_BODY = 64 * 1024;
/** Read buffer of an upstream connection while it relays a body larger than its default buffer. */
const LARGE_BODY_BUFFER = 64 * 1024;

/** What the fast path needs besides the exchange. */
export interface RelayRequest {
  target: URL;
  /** The upstream request head without its final CRLF and without framing lines. */
  head: string;
  /** Lines to add to the client's response head (e.g. from header middlewares), each ending in CRLF. */
  responseLines?: string;
  /** Response header names (lower-case) to drop before they reach the client. */
  dropResponse?: ReadonlySet<string>;
  /** Sees the upstream's response headers before they are relayed (tracing's captured headers). */
  onResponseHead?: (header: (name: string) => string | null) => void;
}

class RelayFailure extends Error {
  constructor(readonly status: 502 | 504, message: string, readonly replayable: boolean) {
    super(message);
  }
}

/** What was sent to the client: status, and the body size when it was announced. */
export interface RelayResult {
  status: number;
  size: number | undefined;
}

/**
 * Forwards the exchange's request to `req.target` and writes the response.
 * Resolves with what was sent to the client.
 */
export async function relay(
  pool: Http1Pool,
  timeouts: ForwardingTimeouts,
  exchange: Exchange,
  req: RelayRequest,
): Promise<RelayResult> {
  const { head } = exchange;
  let headText = req.head;
  let bodyBytes: Uint8Array | undefined;
  let streamBody = false;
  try {
    if (exchange.hasBody) {
      if (!head.chunked && head.contentLength <= SMALL_BODY) {
        bodyBytes = await readWhole(exchange, head.contentLength);
      } else if (head.chunked) {
        // Like nginx, a small chunked body is read before the upstream sees
        // anything: broken framing gets 400 here, and the upstream gets a
        // Content-Length. A larger one is streamed on, chunked.
        const { bytes, complete } = await readUpTo(exchange, SMALL_BODY);
        if (complete) {
          headText += `content-length: ${bytes.length}\r\n`;
          bodyBytes = bytes;
        } else {
          headText += "transfer-encoding: chunked\r\n";
          bodyBytes = encodeChunk(bytes);
          streamBody = true;
        }
      } else {
        streamBody = true;
      }
    } else if (head.chunked) {
      headText += "content-length: 0\r\n";
    }
  } catch {
    exchange.closeAfter = true;
    await exchange.write(errorHead(400, true)).catch(() => {});
    return { status: 400, size: undefined };
  }
  // The exchange's scratch holds this until the response head is encoded,
  // which happens only once the upstream has answered (no replay after that).
  const first = encodeHeadInto(headText + "\r\n", exchange.scratch, bodyBytes);

  const key = pool.key(req.target);
  let c = pool.acquireIdle(key);
  let fresh = false;
  for (let attempt = 0;; attempt++) {
    if (!c) {
      try {
        c = await pool.dial(req.target);
      } catch (err) {
        const status = (err as { status?: number }).status === 504 ? 504 : 502;
        return await answerError(exchange, status);
      }
      fresh = true;
    }
    try {
      const response = await exchangeOn(c, first, streamBody, exchange, timeouts, fresh);
      return await sendResponse(pool, key, c, response, exchange, req);
    } catch (err) {
      c.close();
      if (err instanceof RelayFailure) {
        if (err.replayable && !fresh && attempt === 0 && !streamBody) {
          c = undefined;
          continue;
        }
        if (!exchange.started) return await answerError(exchange, err.status);
        exchange.closeAfter = true;
        return { status: err.status, size: undefined };
      }
      if (!exchange.started) return await answerError(exchange, 502);
      exchange.closeAfter = true;
      return { status: 502, size: undefined };
    }
  }
}

async function answerError(exchange: Exchange, status: number): Promise<RelayResult> {
  await exchange.write(errorHead(status, !exchange.head.keepAlive));
  if (!exchange.head.keepAlive) exchange.closeAfter = true;
  return { status, size: undefined };
}

async function readWhole(exchange: Exchange, length: number): Promise<Uint8Array> {
  const first = await exchange.readBody();
  if (first === null) return new Uint8Array(0);
  if (first.length === length) {
    await exchange.readBody(); // sees the end, which clears the read deadline
    return first;
  }
  const out = new Uint8Array(length);
  out.set(first);
  let off = first.length;
  for (;;) {
    const part = await exchange.readBody();
    if (part === null) break;
    out.set(part, off);
    off += part.length;
  }
  return out.subarray(0, off);
}

/** Reads the body until its end or until more than `limit` bytes came. */
async function readUpTo(exchange: Exchange, limit: number): Promise<{ bytes: Uint8Array; complete: boolean }> {
  const parts: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const part = await exchange.readBody();
    if (part === null) return { bytes: concatAll(parts), complete: true };
    parts.push(part);
    size += part.length;
    if (size > limit) return { bytes: concatAll(parts), complete: false };
  }
}

/** Sends the request on `c` and reads the response head (1xx other than 101 skipped). */
async function exchangeOn(
  c: Connection,
  first: Uint8Array,
  streamBody: boolean,
  exchange: Exchange,
  timeouts: ForwardingTimeouts,
  fresh: boolean,
): Promise<ResponseHead> {
  c.uses++;
  try {
    await writeAll(c.conn, first);
  } catch {
    throw new RelayFailure(502, "upstream write failed", !fresh);
  }
  let bodyFailed = false;
  if (streamBody) {
    pumpBody(c, exchange).catch(() => {
      bodyFailed = true;
      c.close();
    });
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  let timedOut = false;
  if (timeouts.responseHeaderTimeout > 0) {
    timer = setTimeout(() => {
      timedOut = true;
      c.close();
    }, timeouts.responseHeaderTimeout);
  }
  try {
    let sawByte = false;
    for (;;) {
      if (c.buffered > 0) {
        const r = parseResponseHead(c.buf, c.start, c.end, false);
        if (r.kind === "error") throw new RelayFailure(502, r.reason, false);
        if (r.kind === "head") {
          c.start = r.end;
          const s = r.head.status;
          if (s >= 100 && s < 200 && s !== 101) continue;
          if (s === 101) throw new RelayFailure(502, "upstream switched protocols unasked", false);
          return r.head;
        }
      }
      let more = false;
      try {
        more = await c.fill();
      } catch {
        more = false;
      }
      if (!more) {
        if (timedOut) throw new RelayFailure(504, "upstream did not answer in time", false);
        if (bodyFailed) throw new RelayFailure(502, "reading the request body failed", false);
        throw new RelayFailure(502, "upstream closed before answering", !sawByte && !fresh);
      }
      sawByte = true;
    }
  } finally {
    clearTimeout(timer);
  }
}

/** Streams a large or chunked request body to the upstream. */
async function pumpBody(c: Connection, exchange: Exchange): Promise<void> {
  const chunked = exchange.head.chunked;
  for (;;) {
    const part = await exchange.readBody();
    if (part === null) break;
    if (c.closed) throw new Error("upstream connection closed");
    if (part.length) await writeAll(c.conn, chunked ? encodeChunk(part) : part);
  }
  if (chunked) await writeAll(c.conn, LAST_CHUNK);
}

/** Writes the response head and body to the client; releases or closes `c`. */
async function sendResponse(
  pool: Http1Pool,
  key: string,
  c: Connection,
  r: ResponseHead,
  exchange: Exchange,
  req: RelayRequest,
): Promise<RelayResult> {
  const client = exchange.head;
  if (req.onResponseHead) req.onResponseHead(responseHeaderLookup(c.buf, r));
  const noBody = bodiless(client.method, r.status);
  let mode: "none" | "length" | "chunked-raw" | "chunked-decode" | "close";
  if (noBody) mode = "none";
  else if (!r.chunked && r.contentLength >= 0) mode = r.contentLength === 0 ? "none" : "length";
  else if (r.chunked) mode = client.minor === 1 ? "chunked-raw" : "chunked-decode";
  else mode = "close";
  if (mode === "close" || mode === "chunked-decode") exchange.closeAfter = true;
  const closing = exchange.closeAfter || !client.keepAlive;
  const head = new HeadBytes(c.buf, r, req, mode === "chunked-raw", closing ? CONN_CLOSE : client.minor === 0 ? CONN_KEEP : undefined);

  let upstreamReusable = r.keepAlive;
  if (mode === "none") {
    await exchange.write(head.into(exchange.scratch));
  } else if (mode === "length") {
    let remaining = r.contentLength;
    const now = Math.min(remaining, c.buffered);
    const out = head.into(exchange.scratch, now > 0 ? c.buf.subarray(c.start, c.start + now) : undefined);
    c.start += now;
    remaining -= now;
    await exchange.write(out);
    if (remaining > c.buf.length) c.reserve(LARGE_BODY_BUFFER);
    while (remaining > 0) {
      if (!(await c.fill())) throw new RelayFailure(502, "upstream closed mid-body", false);
      const n = Math.min(remaining, c.buffered);
      // A view is enough: the buffer is refilled only after this write finished.
      const part = c.buf.subarray(c.start, c.start + n);
      c.start += n;
      remaining -= n;
      await exchange.write(part);
    }
  } else if (mode === "close") {
    upstreamReusable = false;
    const pending = c.buffered > 0 ? c.buf.subarray(c.start, c.end) : undefined;
    const out = head.into(exchange.scratch, pending);
    c.start = c.end;
    await exchange.write(out);
    c.reserve(LARGE_BODY_BUFFER);
    while (await c.fill().catch(() => false)) {
      const part = c.buf.subarray(c.start, c.end);
      c.start = c.end;
      await exchange.write(part);
    }
  } else {
    // Chunked: the decoder finds the end; the raw bytes are passed on as
    // they are (HTTP/1.1 client) or decoded (HTTP/1.0 client).
    const decoder = new ChunkedDecoder();
    const raw = mode === "chunked-raw";
    let headSent = false;
    if (c.buffered === 0) {
      // The next fill reuses the buffer the head's lines are copied from.
      await exchange.write(head.into(exchange.scratch));
      headSent = true;
    }
    for (;;) {
      if (c.buffered > 0) {
        const from = c.start;
        const pieces: Uint8Array[] = [];
        const upTo = decoder.decode(c.buf, c.start, c.end, (a, b) => {
          if (!raw && b > a) pieces.push(c.buf.slice(a, b));
        });
        const forwarded = raw ? c.buf.subarray(from, upTo) : concatAll(pieces);
        c.start = upTo;
        const out = headSent ? forwarded : head.into(exchange.scratch, forwarded);
        headSent = true;
        if (out.length) await exchange.write(out);
        if (decoder.done) break;
        c.reserve(LARGE_BODY_BUFFER);
      }
      if (!(await c.fill())) throw new RelayFailure(502, "upstream closed mid-body", false);
    }
    if (!headSent) await exchange.write(head.into(exchange.scratch));
  }
  if (upstreamReusable && !c.closed) pool.release(key, c);
  else c.close();
  return { status: r.status, size: r.contentLength >= 0 && !noBody ? r.contentLength : undefined };
}

const ascii = (text: string) => new TextEncoder().encode(text);
const TE_CHUNKED = ascii("transfer-encoding: chunked\r\n");
const CONN_CLOSE = ascii("connection: close\r\n");
const CONN_KEEP = ascii("connection: keep-alive\r\n");

/**
 * The client's response head, assembled from the upstream head's own bytes:
 * kept header lines are copied as they arrived (no decoding and
 * re-encoding), hop-by-hop and dropped ones are left out, and the
 * middlewares' lines and the framing the client connection needs are
 * added. Made before the upstream buffer is refilled, while the lines are
 * still in it.
 */
class HeadBytes {
  /** [start, end) pairs of `src` to copy, in order. */
  readonly #ranges: number[] = [];
  readonly #status: string | undefined;
  readonly #extra: string;
  readonly #framing: Uint8Array[] = [];
  readonly size: number;

  constructor(
    readonly src: Uint8Array,
    r: ResponseHead,
    req: RelayRequest,
    chunked: boolean,
    connection: Uint8Array | undefined,
  ) {
    const lines = r.lines!;
    let size = 2;
    // An HTTP/1.0 upstream, or one without a reason phrase, gets a status line of ours.
    if (r.minor === 1 && r.reason !== "") {
      this.#ranges.push(lines[0], lines[1]);
      size += lines[1] - lines[0];
    } else {
      this.#status = `HTTP/1.1 ${r.status} ${r.reason || STATUS_TEXT[r.status] || ""}\r\n`;
      size += this.#status.length;
    }
    const h = r.headers;
    const listed = connectionListedIn(h);
    const drop = req.dropResponse;
    for (let i = 0, k = 2; i < h.length; i += 2, k += 2) {
      const name = h[i];
      if (HOP_BY_HOP.has(name) || (listed !== undefined && listed.has(name))) continue;
      if (drop !== undefined && drop.has(name)) continue;
      const ranges = this.#ranges;
      // Neighbouring kept lines are one copy.
      if (ranges.length > 0 && ranges[ranges.length - 1] === lines[k]) ranges[ranges.length - 1] = lines[k + 1];
      else ranges.push(lines[k], lines[k + 1]);
      size += lines[k + 1] - lines[k];
    }
    this.#extra = req.responseLines ?? "";
    size += this.#extra.length;
    if (chunked) this.#framing.push(TE_CHUNKED);
    if (connection) this.#framing.push(connection);
    for (const f of this.#framing) size += f.length;
    this.size = size;
  }

  /** The head followed by `body`, in `scratch` when it fits, else in a new array. */
  into(scratch: Uint8Array, body?: Uint8Array): Uint8Array {
    const total = this.size + (body?.length ?? 0);
    const out = total <= scratch.length ? scratch : new Uint8Array(total);
    let off = 0;
    const ranges = this.#ranges;
    if (this.#status !== undefined) off = putLatin1(out, off, this.#status);
    for (let i = 0; i < ranges.length; i += 2) {
      out.set(this.src.subarray(ranges[i], ranges[i + 1]), off);
      off += ranges[i + 1] - ranges[i];
    }
    off = putLatin1(out, off, this.#extra);
    for (const f of this.#framing) {
      out.set(f, off);
      off += f.length;
    }
    out[off++] = 13;
    out[off++] = 10;
    if (body !== undefined && body.length > 0) {
      out.set(body, off);
      off += body.length;
    }
    return out.subarray(0, off);
  }
}

/** Header text is bytes: each char one latin1 byte. */
function putLatin1(out: Uint8Array, off: number, text: string): number {
  for (let i = 0; i < text.length; i++) out[off++] = text.charCodeAt(i) & 0xff;
  return off;
}

function concatAll(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  if (parts.length === 0) return new Uint8Array(0);
  let size = 0;
  for (const p of parts) size += p.length;
  const out = new Uint8Array(size);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

const LATIN1 = new TextDecoder("latin1");

/** Reads header values of a head parsed for relaying (names only) from its line ranges. */
function responseHeaderLookup(buf: Uint8Array, r: ResponseHead): (name: string) => string | null {
  const names = r.headers;
  const lines = r.lines!;
  return (name) => {
    let out: string | null = null;
    for (let i = 0, k = 2; i < names.length; i += 2, k += 2) {
      if (names[i] !== name) continue;
      const line = LATIN1.decode(buf.subarray(lines[k], lines[k + 1]));
      const value = line.slice(line.indexOf(":") + 1).trim();
      out = out === null ? value : `${out}, ${value}`;
    }
    return out;
  };
}

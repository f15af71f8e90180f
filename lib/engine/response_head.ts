/**
 * Writing responses on the engine: status lines, the engine's own error
 * answers, and a Web `Response` serialised onto an {@linkcode Exchange}
 * (for routes whose middlewares work on Web objects, and internal
 * services). A small body goes out with its head in one write.
 *
 * @module
 */

import { encodeChunk, LAST_CHUNK } from "./chunked.ts";
import type { Exchange } from "./exchange.ts";
import { STATUS_TEXT } from "../http_status.ts";

const encoder = new TextEncoder();

/** Header values are byte strings: encode them as latin1, not UTF-8. */
export function encodeLatin1(text: string): Uint8Array {
  // UTF-8 of pure ASCII is as long as the text: then it is the latin1 bytes too.
  const utf8 = encoder.encode(text);
  if (utf8.length === text.length) return utf8;
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i) & 0xff;
  return out;
}

/**
 * Encodes a head (and a small body after it) into `scratch` when both fit
 * and the head is ASCII, else into a new array. `TextEncoder.encode`
 * allocates a buffer per call, which costs more than the encoding itself
 * on the hot path; `encodeInto` a reused buffer does not.
 */
export function encodeHeadInto(text: string, scratch: Uint8Array, body?: Uint8Array): Uint8Array {
  const bodyLength = body === undefined ? 0 : body.length;
  if (text.length + bodyLength <= scratch.length) {
    const { read, written } = encoder.encodeInto(text, scratch);
    if (read === text.length && written === text.length) {
      if (bodyLength === 0) return scratch.subarray(0, written);
      scratch.set(body!, written);
      return scratch.subarray(0, written + bodyLength);
    }
  }
  const head = encodeLatin1(text);
  if (bodyLength === 0) return head;
  const out = new Uint8Array(head.length + bodyLength);
  out.set(head);
  out.set(body!, head.length);
  return out;
}

const errorHeads = new Map<string, Uint8Array>();

/** A complete plain-text error response, for answers the engine gives itself. */
export function errorHead(status: number, close: boolean): Uint8Array {
  const key = `${status}:${close}`;
  let bytes = errorHeads.get(key);
  if (!bytes) {
    const reason = STATUS_TEXT[status] ?? "Error";
    const body = status === 404 ? "404 page not found" : reason;
    bytes = encoder.encode(
      `HTTP/1.1 ${status} ${reason}\r\ncontent-type: text/plain; charset=utf-8\r\n` +
        `content-length: ${body.length}\r\n${close ? "connection: close\r\n" : ""}\r\n${body}`,
    );
    errorHeads.set(key, bytes);
  }
  return bytes;
}

let dateText = "";
let dateAt = 0;
/** The `Date` header value, recomputed at most once a second. */
export function httpDate(): string {
  const now = Date.now();
  if (now - dateAt >= 1000 || dateText === "") {
    dateAt = now - (now % 1000);
    dateText = new Date(dateAt).toUTCString();
  }
  return dateText;
}

/** Whether a response to `method` with `status` carries no body (RFC 9112 §6.3). */
export function bodiless(method: string, status: number): boolean {
  return method === "HEAD" || status === 204 || status === 304 || (status >= 100 && status < 200);
}

/** Headers the engine owns on the client connection; a handler's values are not copied. */
const CONNECTION_OWNED = new Set(["connection", "keep-alive", "transfer-encoding"]);

/**
 * Writes `response` on `exchange`: framing by Content-Length when known
 * (or when the whole body turns out to be one piece), else chunked on
 * HTTP/1.1 and close-delimited on HTTP/1.0.
 */
export async function writeWebResponse(exchange: Exchange, response: Response): Promise<void> {
  const { head } = exchange;
  const status = response.status;
  let text = `HTTP/1.1 ${status} ${response.statusText || STATUS_TEXT[status] || "Unknown"}\r\n`;
  let length: string | null = null;
  let hasDate = false;
  response.headers.forEach((value, name) => {
    if (CONNECTION_OWNED.has(name)) return;
    if (name === "content-length") length = value;
    else if (name === "date") hasDate = true;
    text += `${name}: ${value}\r\n`;
  });
  if (!hasDate) text += `date: ${httpDate()}\r\n`;
  const keepAlive = head.keepAlive && !exchange.closeAfter;
  const connectionLine = keepAlive ? (head.minor === 0 ? "connection: keep-alive\r\n" : "") : "connection: close\r\n";

  if (bodiless(head.method, status) || response.body === null) {
    if (!bodiless(head.method, status) && length === null) text += "content-length: 0\r\n";
    await response.body?.cancel().catch(() => {});
    await exchange.write(encodeLatin1(text + connectionLine + "\r\n"));
    return;
  }

  const reader = response.body.getReader();
  let first: Uint8Array | undefined;
  let finished = false;
  try {
    const r1 = await reader.read();
    if (r1.done) finished = true;
    else first = r1.value;
    if (!finished && length === null) {
      // A body made in memory ends at once: it is sent with a length, in one
      // write with its head. One still arriving (a stream from upstream)
      // must not hold back what came already, so the wait is one macrotask.
      const next = reader.read();
      const r2 = await Promise.race([next, nextMacrotask()]);
      if (r2 && r2.done) finished = true;
      else {
        await writeStreaming(exchange, reader, text, connectionLine, first!, r2 ? r2.value : undefined, next);
        return;
      }
    }
    const size = first?.length ?? 0;
    if (length === null) text += `content-length: ${size}\r\n`;
    const headBytes = encodeLatin1(text + connectionLine + "\r\n");
    if (size === 0) {
      await exchange.write(headBytes);
    } else {
      const out = new Uint8Array(headBytes.length + size);
      out.set(headBytes);
      out.set(first!, headBytes.length);
      await exchange.write(out);
    }
    if (!finished) {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        if (value.length) await exchange.write(value);
      }
    }
    finished = true;
  } catch (err) {
    // The client went away (or the body failed): the source must learn it,
    // so that whatever holds resources for it (an upstream socket, an
    // inFlightReq slot) lets go.
    await reader.cancel(err).catch(() => {});
    throw err;
  } finally {
    reader.releaseLock();
  }
}

function nextMacrotask(): Promise<undefined> {
  return new Promise((resolve) => setTimeout(() => resolve(undefined), 0));
}

/** A body of unknown length in several pieces: chunked on 1.1, until close on 1.0. */
async function writeStreaming(
  exchange: Exchange,
  reader: ReadableStreamDefaultReader<Uint8Array>,
  text: string,
  connectionLine: string,
  first: Uint8Array,
  second: Uint8Array | undefined,
  pending: Promise<ReadableStreamReadResult<Uint8Array>>,
): Promise<void> {
  const chunked = exchange.head.minor === 1;
  if (chunked) {
    text += "transfer-encoding: chunked\r\n" + connectionLine + "\r\n";
  } else {
    exchange.closeAfter = true;
    text += "connection: close\r\n\r\n";
  }
  const frame = (b: Uint8Array) => (chunked ? encodeChunk(b) : b);
  await exchange.write(encodeLatin1(text));
  if (first.length) await exchange.write(frame(first));
  if (second === undefined) {
    const r = await pending;
    if (!r.done && r.value.length) await exchange.write(frame(r.value));
    if (r.done) {
      if (chunked) await exchange.write(LAST_CHUNK);
      return;
    }
  } else if (second.length) {
    await exchange.write(frame(second));
  }
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (value.length) await exchange.write(frame(value));
  }
  if (chunked) await exchange.write(LAST_CHUNK);
}

/**
 * A plain-text answer with extra header lines (e.g. a 429 with
 * `retry-after`), shaped like the Web path's `plainResponse`.
 */
export function errorHeadWith(status: number, headers: Record<string, string>, close: boolean): Uint8Array {
  const reason = STATUS_TEXT[status] ?? "Error";
  const bodiless = status === 204 || status === 304 || status < 200;
  const body = bodiless ? "" : reason;
  let text = `HTTP/1.1 ${status} ${reason}\r\ncontent-type: text/plain; charset=utf-8\r\nx-content-type-options: nosniff\r\n`;
  for (const name in headers) text += `${name}: ${headers[name]}\r\n`;
  text += `date: ${httpDate()}\r\n`;
  if (!bodiless) text += `content-length: ${body.length}\r\n`;
  if (close) text += "connection: close\r\n";
  return encodeLatin1(text + "\r\n" + body);
}

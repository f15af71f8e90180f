/**
 * The upstream response-head parser (RFC 9112), pure like the request
 * parser: bytes in, a parsed head or a refusal out. A response the proxy
 * cannot frame unambiguously is refused (the client gets 502): a bare LF,
 * obs-fold, whitespace before a colon, a bad status line, conflicting
 * Content-Length values, or a Transfer-Encoding that does not end in
 * `chunked`.
 *
 * @module
 */

import { field, latin1, readFieldLine } from "./field_line.ts";

/** A parsed response head; header names lower-cased, values trimmed. */
export interface ResponseHead {
  status: number;
  reason: string;
  minor: 0 | 1;
  /** Flat list: name, value, … in arrival order. */
  headers: string[];
  /** -1 when absent or when chunked wins. */
  contentLength: number;
  chunked: boolean;
  /** Whether the upstream connection may be reused after the body. */
  keepAlive: boolean;
  /**
   * Only when parsed for relaying (`values` false): each header line's
   * `[start, end)` in the buffer, CRLF included, two numbers per header,
   * and the status line's (`lines[0]`, `lines[1]`). Valid until the buffer
   * is refilled.
   */
  lines?: number[];
}

export type ResponseHeadResult =
  | { kind: "incomplete" }
  | { kind: "error"; reason: string }
  | { kind: "head"; head: ResponseHead; end: number };

const CR = 13, LF = 10, SP = 32, HTAB = 9;

/** Upstream heads larger than this are refused. */
export const MAX_RESPONSE_HEAD = 64 * 1024;

const bad = (reason: string): ResponseHeadResult => ({ kind: "error", reason });

/**
 * Parses one response head from `buf[start, end)`. With `values` false,
 * only the framing headers' values are decoded (the others are "") and
 * `lines` locates every line, for a relay that copies lines as bytes.
 *
 * @example
 * ```ts
 * const b = new TextEncoder().encode("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
 * const r = parseResponseHead(b, 0, b.length); // { kind: "head", head: { status: 200, … }, end: 38 }
 * ```
 */
export function parseResponseHead(
  buf: Uint8Array,
  start: number,
  end: number,
  values = true,
): ResponseHeadResult {
  let headEnd = -1;
  for (let i = start; i < end; i++) {
    if (buf[i] !== LF) continue;
    if (i === start || buf[i - 1] !== CR) return bad("bare LF in response head");
    if (i - 3 >= start && buf[i - 2] === LF && buf[i - 3] === CR) {
      headEnd = i + 1;
      break;
    }
  }
  if (headEnd < 0) return end - start > MAX_RESPONSE_HEAD ? bad("response head too large") : { kind: "incomplete" };
  if (headEnd - start > MAX_RESPONSE_HEAD) return bad("response head too large");

  // HTTP/1.x SP 3DIGIT SP reason
  if (
    end - start < 12 || buf[start] !== 72 || buf[start + 1] !== 84 || buf[start + 2] !== 84 ||
    buf[start + 3] !== 80 || buf[start + 4] !== 47 || buf[start + 5] !== 49 || buf[start + 6] !== 46 ||
    (buf[start + 7] !== 48 && buf[start + 7] !== 49) || buf[start + 8] !== SP
  ) return bad("malformed status line");
  const minor = (buf[start + 7] - 48) as 0 | 1;
  let status = 0;
  for (let k = start + 9; k < start + 12; k++) {
    const d = buf[k] - 48;
    if (d < 0 || d > 9) return bad("malformed status line");
    status = status * 10 + d;
  }
  if (status < 100) return bad("malformed status line");
  let lineEnd = start + 12;
  while (buf[lineEnd] !== CR) lineEnd++;
  if (lineEnd > start + 12 && buf[start + 12] !== SP) return bad("malformed status line");
  for (let k = start + 13; k < lineEnd; k++) {
    const c = buf[k];
    if ((c < 32 && c !== HTAB) || c === 127) return bad("malformed status line");
  }
  if (buf[lineEnd + 1] !== LF) return bad("malformed status line");
  const reason = lineEnd > start + 13 ? latin1(buf, start + 13, lineEnd) : "";

  const headers: string[] = [];
  const lines = values ? undefined : [start, lineEnd + 2];
  let contentLength = -1;
  let te = "";
  let connection = "";
  let ls = lineEnd + 2;
  while (ls < headEnd - 2) {
    const refused = readFieldLine(buf, ls, values);
    if (refused) return bad(`${refused} in response`);
    const name = field.name;
    let value = field.value;
    if (!values && (name === "content-length" || name === "transfer-encoding" || name === "connection")) {
      value = latin1(buf, field.valueStart, field.valueEnd);
    }
    headers.push(name, value);
    lines?.push(ls, field.next);
    ls = field.next;
    if (name === "content-length") {
      if (!/^[0-9]{1,15}$/.test(value)) return bad("invalid Content-Length in response");
      const n = Number(value);
      if (contentLength !== -1 && contentLength !== n) return bad("conflicting Content-Length in response");
      contentLength = n;
    } else if (name === "transfer-encoding") {
      te = te ? `${te},${value}` : value;
    } else if (name === "connection") {
      connection = connection ? `${connection},${value}` : value;
    }
  }
  let chunked = false;
  if (te) {
    const codings = te.toLowerCase().split(",").map((s) => s.trim()).filter(Boolean);
    if (codings[codings.length - 1] !== "chunked") return bad("unsupported Transfer-Encoding in response");
    chunked = true;
  }
  let close = false, keep = false;
  for (const token of connection.toLowerCase().split(",")) {
    const t = token.trim();
    if (t === "close") close = true;
    else if (t === "keep-alive") keep = true;
  }
  const keepAlive = (minor === 1 ? !close : keep && !close) &&
    // Both framings: read as chunked, and the connection is not trusted again.
    !(chunked && contentLength !== -1);
  return {
    kind: "head",
    end: headEnd,
    head: { status, reason, minor, headers, contentLength: chunked ? -1 : contentLength, chunked, keepAlive, lines },
  };
}

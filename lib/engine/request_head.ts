/**
 * The strict HTTP/1.1 request-head parser of the connection engine
 * (RFC 9112). Pure: it reads bytes from a buffer and returns either the
 * parsed head, "need more bytes", or the status to refuse the request
 * with. No I/O, no allocation of Web `Request`/`Headers`.
 *
 * Refused with 400 (and nothing reaches an upstream): a bare LF anywhere
 * in the head, obs-fold, whitespace before a header colon, an invalid
 * method, target or header byte, CL together with TE, a repeated or
 * malformed Content-Length, a Transfer-Encoding other than a single
 * `chunked`, a repeated or (on 1.1) missing Host. 414 for an overlong
 * request line, 431 for an oversized head, 505 for an HTTP version other
 * than 1.0 and 1.1.
 *
 * @module
 */

/** A parsed request head; header names are lower-cased, values trimmed. */
export interface RequestHead {
  method: string;
  /** The request-target exactly as sent. */
  target: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  minor: 0 | 1;
  /** Flat list: name, value, name, value … in arrival order. */
  headers: string[];
  /** The Host header's value; "" when absent (HTTP/1.0 only). */
  host: string;
  /** -1 when the request has no Content-Length. */
  contentLength: number;
  chunked: boolean;
  /** Whether the connection may carry another request after this one. */
  keepAlive: boolean;
  /** The Upgrade header when `Connection: upgrade` asks for it. */
  upgrade: string | undefined;
  expectContinue: boolean;
  /** Bytes of the head on the wire, request line and final CRLF included. */
  headBytes: number;
}

/** Limits the parser enforces. */
export interface HeadLimits {
  /** Request line plus header lines: above it, 431. */
  maxHeaderBytes: number;
  /** The request line alone: above it, 414. */
  maxRequestLine: number;
}

export const DEFAULT_HEAD_LIMITS: HeadLimits = { maxHeaderBytes: 32 * 1024, maxRequestLine: 16 * 1024 };

export type HeadResult =
  | { kind: "incomplete"; /** Where to resume the terminator search. */ scanned: number }
  | { kind: "error"; status: 400 | 414 | 431 | 505; reason: string }
  | { kind: "head"; head: RequestHead; /** Index just past the head. */ end: number };

import { field, latin1, readFieldLine, TCHAR } from "./field_line.ts";

const CR = 13, LF = 10, SP = 32;

/** Bytes allowed in a request-target: visible ASCII and obs-text, no controls or spaces. */
function targetByte(c: number): boolean {
  return c > 32 && c !== 127;
}

export { latin1 };

const err = (status: 400 | 414 | 431 | 505, reason: string): HeadResult => ({ kind: "error", status, reason });

/**
 * Looks for a complete head in `buf[start, end)`. Call again with more
 * bytes (and the returned `scanned`) while the result is `incomplete`.
 *
 * @example
 * ```ts
 * const bytes = new TextEncoder().encode("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
 * const r = parseRequestHead(bytes, 0, bytes.length);
 * if (r.kind === "head") console.log(r.head.method, r.head.target, r.head.host);
 * ```
 */
export function parseRequestHead(
  buf: Uint8Array,
  start: number,
  end: number,
  limits: HeadLimits = DEFAULT_HEAD_LIMITS,
  scanned = start,
): HeadResult {
  // Leading empty lines before a request line are allowed (RFC 9112 §2.2).
  let lineStart = start;
  while (lineStart + 1 < end && buf[lineStart] === CR && buf[lineStart + 1] === LF) lineStart += 2;
  // Find the empty line that ends the head; every LF must follow a CR.
  let headEnd = -1;
  for (let i = Math.max(scanned, lineStart); i < end; i++) {
    if (buf[i] !== LF) continue;
    if (i === 0 || buf[i - 1] !== CR) return err(400, "bare LF in request head");
    if (i - 3 >= lineStart && buf[i - 2] === LF && buf[i - 3] === CR) {
      headEnd = i + 1;
      break;
    }
  }
  let requestLineEnd = -1;
  const searchTo = headEnd < 0 ? end : headEnd;
  for (let j = lineStart; j < searchTo; j++) {
    if (buf[j] === LF) {
      requestLineEnd = j - 1;
      break;
    }
  }
  if (headEnd < 0) {
    const lineLength = requestLineEnd < 0 ? end - lineStart : requestLineEnd - lineStart;
    if (lineLength > limits.maxRequestLine) return err(414, "request line too long");
    if (end - lineStart > limits.maxHeaderBytes) return err(431, "request header fields too large");
    return { kind: "incomplete", scanned: Math.max(lineStart, end - 3) };
  }
  if (requestLineEnd - lineStart > limits.maxRequestLine) return err(414, "request line too long");
  if (headEnd - lineStart > limits.maxHeaderBytes) return err(431, "request header fields too large");
  return parseComplete(buf, lineStart, requestLineEnd, headEnd);
}

function parseComplete(buf: Uint8Array, lineStart: number, lineEnd: number, headEnd: number): HeadResult {
  // request-line = method SP request-target SP HTTP-version
  let p = lineStart;
  while (p < lineEnd && TCHAR[buf[p]]) p++;
  if (p === lineStart || p >= lineEnd || buf[p] !== SP) return err(400, "invalid method");
  const method = latin1(buf, lineStart, p);
  const targetStart = ++p;
  while (p < lineEnd && targetByte(buf[p])) p++;
  if (p === targetStart || p >= lineEnd || buf[p] !== SP) return err(400, "invalid request target");
  const target = latin1(buf, targetStart, p);
  const versionStart = ++p;
  if (lineEnd - versionStart !== 8) return err(400, "invalid HTTP version");
  // "HTTP/" then DIGIT "." DIGIT
  if (
    buf[versionStart] !== 72 || buf[versionStart + 1] !== 84 || buf[versionStart + 2] !== 84 ||
    buf[versionStart + 3] !== 80 || buf[versionStart + 4] !== 47 || buf[versionStart + 6] !== 46
  ) return err(400, "invalid HTTP version");
  const major = buf[versionStart + 5] - 48, minorDigit = buf[versionStart + 7] - 48;
  if (major < 0 || major > 9 || minorDigit < 0 || minorDigit > 9) return err(400, "invalid HTTP version");
  if (major !== 1 || minorDigit > 1) return err(505, "HTTP version not supported");
  const minor = minorDigit as 0 | 1;
  if (!validTargetForm(method, target)) return err(400, "invalid request target");

  const headers: string[] = [];
  let host: string | undefined;
  let contentLength = -1;
  let transferEncoding: string | undefined;
  let connection = "";
  let upgradeValue: string | undefined;
  let expect = "";

  let ls = lineEnd + 2;
  while (ls < headEnd - 2) {
    const refused = readFieldLine(buf, ls);
    if (refused) return err(400, refused);
    const name = field.name, value = field.value;
    headers.push(name, value);
    ls = field.next;

    switch (name) {
      case "host":
        if (host !== undefined) return err(400, "repeated Host header");
        host = value;
        break;
      case "content-length": {
        if (contentLength !== -1) return err(400, "repeated Content-Length");
        if (value.length === 0 || value.length > 15 || !/^[0-9]+$/.test(value)) return err(400, "invalid Content-Length");
        contentLength = Number(value);
        break;
      }
      case "transfer-encoding":
        if (transferEncoding !== undefined) return err(400, "repeated Transfer-Encoding");
        transferEncoding = value;
        break;
      case "connection":
        connection = connection ? `${connection},${value}` : value;
        break;
      case "upgrade":
        upgradeValue = value;
        break;
      case "expect":
        expect = value;
        break;
    }
  }

  let chunked = false;
  if (transferEncoding !== undefined) {
    if (contentLength !== -1) return err(400, "both Content-Length and Transfer-Encoding");
    if (minor === 0) return err(400, "Transfer-Encoding on HTTP/1.0");
    if (transferEncoding.toLowerCase() !== "chunked") return err(400, "unsupported Transfer-Encoding");
    chunked = true;
  }
  if (host === undefined) {
    if (minor === 1) return err(400, "missing Host header");
    host = "";
  } else if (!validHost(host)) {
    return err(400, "invalid Host header");
  }

  let close = false, keep = false, wantsUpgrade = false;
  if (connection) {
    for (const token of connection.split(",")) {
      const t = token.trim().toLowerCase();
      if (t === "close") close = true;
      else if (t === "keep-alive") keep = true;
      else if (t === "upgrade") wantsUpgrade = true;
    }
  }
  return {
    kind: "head",
    end: headEnd,
    head: {
      method,
      target,
      minor,
      headers,
      host,
      contentLength,
      chunked,
      keepAlive: minor === 1 ? !close : keep && !close,
      upgrade: wantsUpgrade && upgradeValue ? upgradeValue : undefined,
      expectContinue: expect.toLowerCase() === "100-continue",
      headBytes: headEnd - lineStart,
    },
  };
}

/** origin-form for most methods; absolute-form anywhere; authority-form for CONNECT; `*` for OPTIONS. */
function validTargetForm(method: string, target: string): boolean {
  const c = target.charCodeAt(0);
  if (c === 47 /* / */) return true;
  if (target === "*") return method === "OPTIONS";
  if (method === "CONNECT") return /^[^/?#@\s]+:\d+$/.test(target);
  return /^https?:\/\/[^/?#\s]*/i.test(target);
}

/** A Host value: reg-name or IP literal, with an optional port; no spaces, slashes or userinfo. */
function validHost(host: string): boolean {
  if (host === "") return true;
  return /^(\[[0-9a-fA-F:.]+(%[^\]]+)?\]|[^\s/?#@\[\]\\:]+)(:\d*)?$/.test(host);
}

/** The value of header `name` (lower-case) in a flat list, or undefined. */
export function headerValue(headers: readonly string[], name: string): string | undefined {
  for (let i = 0; i < headers.length; i += 2) if (headers[i] === name) return headers[i + 1];
  return undefined;
}

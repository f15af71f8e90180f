/**
 * Reads the SNI name and the ALPN list out of the TLS ClientHello that opens
 * a connection, without terminating TLS. TCP routers with `HostSNI` rules
 * and TLS passthrough have to choose a backend (or a local certificate)
 * before any handshake happens, from nothing but the first bytes the client
 * sent; this is the parser for those bytes. Pure: bytes in, a verdict out.
 * The caller keeps reading until the verdict is no longer "incomplete" and
 * then replays everything it read to whoever takes the connection.
 *
 * The checks follow Go's crypto/tls server (what Traefik runs), read in
 * `src/crypto/tls/conn.go` (`readRecordOrCCS`), `common.go` (its size
 * constants) and `handshake_messages.go` (`clientHelloMsg.unmarshal`), so a
 * hello that Traefik would refuse is refused here too, and routing never
 * acts on a name that a real TLS stack would reject:
 *
 * - every record's version is 0x03 0x0X (stricter than Go, which only
 *   refuses a first record of version 0x1000 or more: SSL 3.0 to TLS 1.3
 *   all send 3.x, and anything else is not worth routing);
 * - a handshake record holds 1 to 2^14 bytes (RFC 8446 §5.1 plaintext limit;
 *   Go refuses an empty one and anything over 2^14 once "decrypted" with the
 *   null cipher the first flight uses);
 * - the hello may span several consecutive handshake records, and no other
 *   record type may cut into it;
 * - no extension type appears twice;
 * - server_name: a non-empty list, every entry non-empty, unknown name types
 *   skipped, at most one host_name, and a host_name ending in "." refused
 *   (Go does not strip the dot, it fails the handshake); and, beyond Go,
 *   a host_name byte outside printable ASCII (0x21 to 0x7e) refused;
 * - ALPN: a non-empty list of non-empty names;
 * - the extensions block, and the SNI and ALPN bodies, fill their space
 *   exactly.
 *
 * Only the framing of the other extensions is checked: their contents are
 * for the TLS stack that finishes the handshake.
 *
 * @module
 */

/** What routing needs from a ClientHello. */
export interface ClientHelloInfo {
  /** The SNI host_name, lower-cased, "" when absent. */
  serverName: string;
  /** ALPN protocol names offered, in order; [] when absent. */
  alpn: string[];
}

export type ClientHelloResult =
  /** Need more bytes: buf[0, end) is a valid prefix of a ClientHello. */
  | { kind: "incomplete" }
  /**
   * The first byte is not 0x16 (a handshake record), or the first handshake
   * message is not a client_hello (type 1), e.g. a ServerHello: this is not
   * a client opening TLS, and a router may try it as something else.
   */
  | { kind: "not-tls" }
  /** It opens like TLS but is malformed, or larger than MAX_CLIENT_HELLO. */
  | { kind: "error"; reason: string }
  /** `length`: the bytes of the TLS records that carried the ClientHello. */
  | { kind: "hello"; info: ClientHelloInfo; length: number };

/**
 * The most bytes, record headers included, that the records carrying one
 * ClientHello may take: 64 KiB. Go caps a handshake message at 64 KiB too
 * (`maxHandshake`); counting the record headers in keeps this a hard bound
 * on the buffer a caller needs, however the client fragments. Real hellos
 * take 0.2 to 2 KiB, and one with a post-quantum key share stays under 2 KiB.
 */
export const MAX_CLIENT_HELLO = 65536;

const RECORD_HANDSHAKE = 0x16;
const HANDSHAKE_CLIENT_HELLO = 1;
const RECORD_HEADER = 5;
const HANDSHAKE_HEADER = 4;
/** RFC 8446 §5.1: a TLSPlaintext fragment is at most 2^14 bytes. */
const MAX_FRAGMENT = 16384;
const EXT_SERVER_NAME = 0;
const EXT_ALPN = 16;
const NAME_TYPE_HOST = 0;

// Shared, frozen: the verdicts a caller sees on every read but the last
// must not cost an allocation each.
const INCOMPLETE: ClientHelloResult = Object.freeze({ kind: "incomplete" });
const NOT_TLS: ClientHelloResult = Object.freeze({ kind: "not-tls" });

const fail = (reason: string): ClientHelloResult => ({ kind: "error", reason });

/**
 * Parses the ClientHello at buf[0, end). Pure; never throws; never reads
 * beyond end (nor beyond buf.length, should end exceed it).
 */
export function parseClientHello(buf: Uint8Array, end: number): ClientHelloResult {
  end = Math.min(Math.floor(end), buf.length);
  // NaN and negative ends land here too: nothing to judge yet.
  if (!(end > 0)) return INCOMPLETE;
  if (buf[0] !== RECORD_HANDSHAKE) return NOT_TLS;

  let pos = 0; // start of the record being read
  let carried = 0; // handshake bytes the records so far declare
  let headerGot = 0; // handshake header bytes seen: it may be split over records
  let bodyLength = 0;
  let total = -1; // the whole handshake message, header included, once known
  for (;;) {
    if (pos >= end) return INCOMPLETE;
    if (buf[pos] !== RECORD_HANDSHAKE) {
      return fail(`a record of type ${buf[pos]} interrupts the ClientHello`);
    }
    // The version is judged byte by byte so a bogus one fails on arrival.
    if (pos + 1 < end && buf[pos + 1] !== 3) {
      return fail(`record version ${hex(buf, pos + 1, end)}`);
    }
    if (pos + 2 < end && buf[pos + 2] > 0x0f) {
      return fail(`record version ${hex(buf, pos + 1, end)}`);
    }
    if (end - pos < RECORD_HEADER) return INCOMPLETE;
    const n = (buf[pos + 3] << 8) | buf[pos + 4];
    if (n === 0) return fail("empty handshake record");
    if (n > MAX_FRAGMENT) return fail(`record of ${n} bytes exceeds the 2^14 plaintext limit`);
    const fragment = pos + RECORD_HEADER;
    const recordEnd = fragment + n;
    const upTo = Math.min(end, recordEnd);
    for (let i = fragment; headerGot < HANDSHAKE_HEADER && i < upTo; i++, headerGot++) {
      if (headerGot === 0) {
        if (buf[i] !== HANDSHAKE_CLIENT_HELLO) return NOT_TLS;
      } else {
        bodyLength = (bodyLength << 8) | buf[i];
      }
    }
    if (total < 0 && headerGot === HANDSHAKE_HEADER) total = HANDSHAKE_HEADER + bodyLength;
    carried += n;
    if (total < 0) {
      // No size check is due yet: every record holds at least one byte, so
      // the 4-byte header is complete within 4 records, far below the cap.
      if (recordEnd > end) return INCOMPLETE;
      pos = recordEnd;
      continue;
    }
    // A ClientHello is the client's whole first flight. Bytes after it in
    // its own record would be another message, which Go's server refuses
    // (before its HelloRetryRequest or its key change: see its tests
    // TestClientHelloTrailingMessage, TestDoubleClientHelloHRR); refusing
    // them here also keeps `length` on a record boundary.
    if (carried > total) return fail("a record carries bytes past the ClientHello");
    const rest = total - carried;
    // Judged before the bytes arrive, so a huge declared length is refused
    // after 9 bytes rather than after 64 KiB.
    if (recordEnd + rest + RECORD_HEADER * Math.ceil(rest / MAX_FRAGMENT) > MAX_CLIENT_HELLO) {
      return tooLarge();
    }
    if (recordEnd > end) return INCOMPLETE;
    if (rest === 0) {
      if (pos === 0) {
        return parseBody(buf, RECORD_HEADER + HANDSHAKE_HEADER, recordEnd, recordEnd);
      }
      // Rare (a hello over 16 KiB, or a client that fragments): one copy
      // makes the body contiguous for the parser.
      return parseBody(reassemble(buf, recordEnd, bodyLength), 0, bodyLength, recordEnd);
    }
    pos = recordEnd;
  }
}

function tooLarge(): ClientHelloResult {
  return fail(`ClientHello records exceed ${MAX_CLIENT_HELLO} bytes`);
}

/** Record version bytes for an error message. */
function hex(buf: Uint8Array, at: number, end: number): string {
  let s = "0x";
  for (let i = at; i < at + 2 && i < end; i++) s += buf[i].toString(16).padStart(2, "0");
  return s;
}

/** The handshake body (header dropped) from the records in buf[0, upTo). */
function reassemble(buf: Uint8Array, upTo: number, bodyLength: number): Uint8Array {
  const body = new Uint8Array(bodyLength);
  let skip = HANDSHAKE_HEADER;
  let at = 0;
  for (let pos = 0; pos < upTo;) {
    let from = pos + RECORD_HEADER;
    const to = from + ((buf[pos + 3] << 8) | buf[pos + 4]);
    const drop = Math.min(skip, to - from);
    from += drop;
    skip -= drop;
    body.set(buf.subarray(from, to), at);
    at += to - from;
    pos = to;
  }
  return body;
}

/** Stamp per extension type, so duplicates are found in O(1) without a Set per hello. */
let seen: Uint16Array | undefined;
let stamp = 0;

function nextStamp(): Uint16Array {
  seen ??= new Uint16Array(65536);
  stamp = (stamp + 1) & 0xffff;
  if (stamp === 0) {
    seen.fill(0);
    stamp = 1;
  }
  return seen;
}

/** The ClientHello body at m[p, stop) (RFC 8446 §4.1.2; RFC 5246 §7.4.1.2 for older ones). */
function parseBody(m: Uint8Array, p: number, stop: number, length: number): ClientHelloResult {
  // legacy_version is not judged: the version is negotiated later, and
  // routing does not depend on it.
  if (stop - p < 2 + 32 + 1) return fail("ClientHello shorter than version, random and session_id");
  p += 2 + 32;
  const sessionId = m[p++];
  if (sessionId > 32) return fail(`session_id of ${sessionId} bytes (at most 32)`);
  p += sessionId;
  if (p + 2 > stop) return fail("session_id overruns the ClientHello");
  const suites = (m[p] << 8) | m[p + 1];
  p += 2;
  if (suites < 2 || suites % 2 !== 0) return fail(`cipher_suites of ${suites} bytes`);
  p += suites;
  if (p + 1 > stop) return fail("cipher_suites overrun the ClientHello");
  const compressions = m[p++];
  if (compressions < 1) return fail("no compression_methods");
  p += compressions;
  if (p > stop) return fail("compression_methods overrun the ClientHello");
  // SSLv3 and early TLS clients may send no extensions at all.
  if (p === stop) return { kind: "hello", info: { serverName: "", alpn: [] }, length };
  if (p + 2 > stop) return fail("a stray byte after compression_methods");
  const extensionsEnd = p + 2 + ((m[p] << 8) | m[p + 1]);
  p += 2;
  if (extensionsEnd !== stop) return fail("extensions length does not match the ClientHello");

  const types = nextStamp();
  const mark = stamp;
  let serverName = "";
  let alpn: string[] = [];
  while (p < stop) {
    if (p + 4 > stop) return fail("truncated extension header");
    const type = (m[p] << 8) | m[p + 1];
    const dataEnd = p + 4 + ((m[p + 2] << 8) | m[p + 3]);
    p += 4;
    if (dataEnd > stop) return fail(`extension ${type} overruns the extensions`);
    if (types[type] === mark) return fail(`extension ${type} appears twice`);
    types[type] = mark;
    if (type === EXT_SERVER_NAME) {
      const name = readServerName(m, p, dataEnd);
      if (typeof name !== "string") return name;
      serverName = name;
    } else if (type === EXT_ALPN) {
      const names = readAlpn(m, p, dataEnd);
      if (!Array.isArray(names)) return names;
      alpn = names;
    }
    p = dataEnd;
  }
  return { kind: "hello", info: { serverName, alpn }, length };
}

/** server_name (RFC 6066 §3) at m[p, stop): the host_name, "" for none, or the error. */
function readServerName(m: Uint8Array, p: number, stop: number): string | ClientHelloResult {
  if (p + 2 > stop) return fail("server_name without its list length");
  const listEnd = p + 2 + ((m[p] << 8) | m[p + 1]);
  p += 2;
  if (listEnd !== stop) return fail("server_name list length does not match the extension");
  if (p === stop) return fail("empty server_name list");
  let name = "";
  let found = false;
  while (p < stop) {
    if (p + 3 > stop) return fail("truncated server_name entry");
    const type = m[p];
    const nameEnd = p + 3 + ((m[p + 1] << 8) | m[p + 2]);
    p += 3;
    if (nameEnd > stop) return fail("server_name entry overruns the list");
    if (nameEnd === p) return fail("empty server_name entry");
    // RFC 6066 leaves room for other name types; like Go, skip them.
    if (type === NAME_TYPE_HOST) {
      // RFC 6066 allows one name per type; Go refuses a second host_name
      // rather than pick one, so a router cannot be steered by the order.
      if (found) return fail("two host_names in server_name");
      found = true;
      let upper = false;
      for (let i = p; i < nameEnd; i++) {
        const c = m[i];
        // Space, controls, DEL and non-ASCII: no DNS name has them, and a
        // UTF-8 name would need IDNA's A-label form anyway.
        if (c < 0x21 || c > 0x7e) {
          return fail(`host_name byte 0x${c.toString(16)} is not printable ASCII`);
        }
        if (c >= 0x41 && c <= 0x5a) upper = true;
      }
      // Go refuses a host_name ending in "." (a client is to strip it before
      // sending, RFC 6066 §3); stripping it here would route a hello that the
      // TLS stack behind us then fails.
      if (m[nameEnd - 1] === 0x2e) return fail("host_name ends in a dot");
      name = latin1(m, p, nameEnd);
      // Validated as ASCII above, where toLowerCase is ASCII lower-casing.
      if (upper) name = name.toLowerCase();
    }
    p = nameEnd;
  }
  return name;
}

/** application_layer_protocol_negotiation (RFC 7301 §3.1) at m[p, stop). */
function readAlpn(m: Uint8Array, p: number, stop: number): string[] | ClientHelloResult {
  if (p + 2 > stop) return fail("ALPN without its list length");
  const listEnd = p + 2 + ((m[p] << 8) | m[p + 1]);
  p += 2;
  if (listEnd !== stop) return fail("ALPN list length does not match the extension");
  if (p === stop) return fail("empty ALPN list");
  const names: string[] = [];
  while (p < stop) {
    const nameEnd = p + 1 + m[p];
    p += 1;
    if (nameEnd === p) return fail("empty ALPN protocol name");
    if (nameEnd > stop) return fail("ALPN protocol name overruns the list");
    names.push(latin1(m, p, nameEnd));
    p = nameEnd;
  }
  return names;
}

/** Bytes as latin1 (one char per byte): TextDecoder's "latin1" is windows-1252. */
function latin1(m: Uint8Array, from: number, to: number): string {
  let s = "";
  // In slices: spreading a very long host_name could exceed the engine's
  // argument limit.
  for (let i = from; i < to; i += 4096) {
    s += String.fromCharCode(...m.subarray(i, Math.min(to, i + 4096)));
  }
  return s;
}

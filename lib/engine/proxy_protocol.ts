/**
 * The PROXY protocol header (HAProxy's spec, versions 1 and 2) that an L4
 * load balancer puts before the client's bytes, so the proxy behind it
 * learns the real client address. Pure: bytes in, a verdict out.
 *
 * @module
 */

import { parseIp } from "../rules/ip.ts";

/** The 12-byte signature that opens a version 2 header. */
const V2_SIGNATURE = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
const V1_PREFIX = [0x50, 0x52, 0x4f, 0x58, 0x59, 0x20]; // "PROXY "
/** The longest version 1 line the spec allows, CRLF included. */
export const V1_MAX = 107;

export type ProxyHeader =
  /** `source` is undefined for LOCAL (v2) and UNKNOWN (v1): keep the peer's own address. */
  | { kind: "header"; end: number; source?: { address: string; port: number } }
  | { kind: "incomplete" }
  | { kind: "none" }
  | { kind: "error"; reason: string };

/** How `buf[0, end)` stands against `prefix`: all of it is there, a start of it, or something else. */
function against(buf: Uint8Array, end: number, prefix: readonly number[]): "match" | "partial" | "no" {
  const n = Math.min(end, prefix.length);
  for (let i = 0; i < n; i++) if (buf[i] !== prefix[i]) return "no";
  return end >= prefix.length ? "match" : "partial";
}

/**
 * Reads a PROXY header at the start of `buf[0, end)`. "none" when the bytes
 * cannot be one; "incomplete" when more bytes could still make one.
 */
export function parseProxyHeader(buf: Uint8Array, end: number): ProxyHeader {
  const v2 = against(buf, end, V2_SIGNATURE);
  if (v2 === "match") return parseV2(buf, end);
  const v1 = against(buf, end, V1_PREFIX);
  if (v1 === "match") return parseV1(buf, end);
  return v1 === "partial" || v2 === "partial" ? { kind: "incomplete" } : { kind: "none" };
}

function parseV1(buf: Uint8Array, end: number): ProxyHeader {
  let lf = -1;
  for (let i = 0; i < Math.min(end, V1_MAX); i++) {
    if (buf[i] === 0x0a) {
      lf = i;
      break;
    }
  }
  if (lf < 0) return end >= V1_MAX ? { kind: "error", reason: "PROXY v1 line too long" } : { kind: "incomplete" };
  if (buf[lf - 1] !== 0x0d) return { kind: "error", reason: "PROXY v1 line not ended by CRLF" };
  const line = String.fromCharCode(...buf.subarray(0, lf - 1));
  const parts = line.split(" ");
  if (parts[1] === "UNKNOWN") return { kind: "header", end: lf + 1 };
  if (parts.length !== 6) return { kind: "error", reason: "PROXY v1 line needs 6 fields" };
  const [, family, source, destination, sourcePort, destinationPort] = parts;
  const ip = family === "TCP4" ? isIPv4 : family === "TCP6" ? isIPv6 : undefined;
  if (!ip) return { kind: "error", reason: `PROXY v1 family ${JSON.stringify(family)}` };
  if (!ip(source) || !ip(destination)) return { kind: "error", reason: "PROXY v1 address" };
  if (!isPort(sourcePort) || !isPort(destinationPort)) return { kind: "error", reason: "PROXY v1 port" };
  return { kind: "header", end: lf + 1, source: { address: source, port: Number(sourcePort) } };
}

function parseV2(buf: Uint8Array, end: number): ProxyHeader {
  if (end < 16) return { kind: "incomplete" };
  const versionCommand = buf[12];
  if (versionCommand >> 4 !== 2) return { kind: "error", reason: "PROXY v2 version" };
  const command = versionCommand & 0x0f;
  if (command > 1) return { kind: "error", reason: "PROXY v2 command" };
  const family = buf[13];
  const length = (buf[14] << 8) | buf[15];
  const total = 16 + length;
  if (end < total) return { kind: "incomplete" };
  // LOCAL: a health check from the balancer itself; the peer address stands.
  if (command === 0) return { kind: "header", end: total };
  if (family === 0x11 || family === 0x12) {
    if (length < 12) return { kind: "error", reason: "PROXY v2 IPv4 block too short" };
    const address = `${buf[16]}.${buf[17]}.${buf[18]}.${buf[19]}`;
    return { kind: "header", end: total, source: { address, port: (buf[24] << 8) | buf[25] } };
  }
  if (family === 0x21 || family === 0x22) {
    if (length < 36) return { kind: "error", reason: "PROXY v2 IPv6 block too short" };
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(((buf[16 + i] << 8) | buf[17 + i]).toString(16));
    return { kind: "header", end: total, source: { address: compressIPv6(groups), port: (buf[48] << 8) | buf[49] } };
  }
  // UNSPEC or UNIX sockets: nothing the proxy can use as a client address.
  return { kind: "header", end: total };
}

function isPort(text: string): boolean {
  return /^(0|[1-9][0-9]{0,4})$/.test(text) && Number(text) <= 65535;
}

function isIPv4(text: string): boolean {
  const parts = text.split(".");
  return parts.length === 4 && parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255);
}

function isIPv6(text: string): boolean {
  return /^[0-9a-fA-F:.]+$/.test(text) && text.includes(":") && text.length <= 45;
}

/** The canonical text form (RFC 5952): the longest run of zero groups becomes "::". */
function compressIPv6(groups: string[]): string {
  let best = -1, bestLength = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > bestLength && j - i > 1) {
      best = i;
      bestLength = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(":");
  return `${groups.slice(0, best).join(":")}::${groups.slice(best + bestLength).join(":")}`;
}

/** The two ends of a proxied connection, as a PROXY header announces them. */
export interface ProxyEndpoints {
  source: { address: string; port: number };
  destination: { address: string; port: number };
}

/**
 * The PROXY header (v1 text or v2 binary) that tells a backend who the
 * client is. Addresses of different families, or ones that do not parse,
 * give v1's `UNKNOWN` and v2's LOCAL command: the backend then keeps the
 * connection's own addresses, as the spec says.
 */
export function encodeProxyHeader(version: 1 | 2, ends: ProxyEndpoints): Uint8Array {
  const src = parseIp(ends.source.address), dst = parseIp(ends.destination.address);
  const family = src && dst && src.length === dst.length ? (src.length === 4 ? 4 : 6) : 0;
  if (version === 1) {
    const line = family === 0
      ? "PROXY UNKNOWN\r\n"
      : `PROXY TCP${family} ${textOf(src!, ends.source.address)} ${
        textOf(dst!, ends.destination.address)
      } ${ends.source.port} ${ends.destination.port}\r\n`;
    return new TextEncoder().encode(line);
  }
  const addrLength = family === 4 ? 12 : family === 6 ? 36 : 0;
  const out = new Uint8Array(16 + addrLength);
  out.set(V2_SIGNATURE);
  out[12] = family === 0 ? 0x20 : 0x21; // version 2; LOCAL or PROXY
  out[13] = family === 4 ? 0x11 : family === 6 ? 0x21 : 0x00; // TCP over IPv4 / IPv6, or unspecified
  out[14] = addrLength >> 8;
  out[15] = addrLength & 0xff;
  if (family !== 0) {
    const n = family === 4 ? 4 : 16;
    out.set(src!, 16);
    out.set(dst!, 16 + n);
    const ports = 16 + 2 * n;
    out[ports] = ends.source.port >> 8;
    out[ports + 1] = ends.source.port & 0xff;
    out[ports + 2] = ends.destination.port >> 8;
    out[ports + 3] = ends.destination.port & 0xff;
  }
  return out;
}

/** An IPv4 address in dotted form even when it was written IPv4-mapped (`::ffff:1.2.3.4`). */
function textOf(bytes: Uint8Array, written: string): string {
  return bytes.length === 4 ? bytes.join(".") : written;
}

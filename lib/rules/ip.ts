/**
 * @module
 * IP address and CIDR parsing and matching with Go `net` semantics: IPv4 (no leading
 * zeros), IPv6 (with `::` and an embedded IPv4 tail, no zone), and IPv4-mapped IPv6
 * addresses comparing equal to their IPv4 form. Addresses being checked may also be
 * read as Go's `netip.ParseAddr` reads them (an IPv6 zone such as `%eth0` allowed and
 * ignored), which is how Traefik's `ip.Checker` reads a request's address.
 */

/** A parsed address: 4 bytes for IPv4 (and IPv4-mapped IPv6), 16 for IPv6. */
export type IpBytes = Uint8Array;

function parseV4(s: string): IpBytes | undefined {
  const parts = s.split(".");
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let k = 0; k < 4; k++) {
    const p = parts[k];
    if (!/^\d{1,3}$/.test(p) || (p.length > 1 && p[0] === "0")) return undefined;
    const v = Number(p);
    if (v > 255) return undefined;
    out[k] = v;
  }
  return out;
}

function parseV6(s: string): Uint8Array | undefined {
  const out = new Uint8Array(16);
  const halves = s.split("::");
  if (halves.length > 2) return undefined;
  const groups = (h: string): number[] | undefined => {
    if (h === "") return [];
    const words: number[] = [];
    const parts = h.split(":");
    for (let k = 0; k < parts.length; k++) {
      const p = parts[k];
      if (k === parts.length - 1 && p.includes(".")) {
        const v4 = parseV4(p);
        if (!v4) return undefined;
        words.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return undefined;
        words.push(parseInt(p, 16));
      }
    }
    return words;
  };
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  if (!head || !tail) return undefined;
  const total = head.length + tail.length;
  if (halves.length === 1 ? total !== 8 : total > 7) return undefined;
  const words = [...head, ...new Array(8 - total).fill(0), ...tail];
  words.forEach((w, k) => {
    out[2 * k] = w >> 8;
    out[2 * k + 1] = w & 0xff;
  });
  return out;
}

function isV4Mapped(b: Uint8Array): boolean {
  for (let k = 0; k < 10; k++) if (b[k] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

/**
 * Parses an IP address like Go's `net.ParseIP`, returning the `To4` form for IPv4 and
 * IPv4-mapped IPv6 addresses; `undefined` if `s` is not an address.
 */
export function parseIp(s: string): IpBytes | undefined {
  if (s.includes(":")) {
    const b = parseV6(s);
    if (!b) return undefined;
    return isV4Mapped(b) ? b.slice(12) : b;
  }
  return parseV4(s);
}

/**
 * Splits an IPv6 zone off like Go's `netip.ParseAddr`: `[address, zone]`,
 * the zone undefined when there is none; undefined when the zone is empty
 * or on an IPv4 address.
 */
export function splitZone(s: string): [string, string | undefined] | undefined {
  const at = s.indexOf("%");
  if (at < 0) return [s, undefined];
  const zone = s.slice(at + 1);
  if (zone === "" || !s.slice(0, at).includes(":")) return undefined;
  return [s.slice(0, at), zone];
}

/** The 16 bytes of an IPv6 address (zone allowed and dropped), as `netip.ParseAddr` reads it. */
export function parseIpv6Bytes(s: string): Uint8Array | undefined {
  const split = splitZone(s);
  if (!split || !split[0].includes(":")) return undefined;
  return parseV6(split[0]);
}

/** Parses like Go's `netip.ParseAddr` (IPv6 zones allowed, ignored), in {@linkcode parseIp}'s form. */
export function parseAddr(s: string): IpBytes | undefined {
  const split = splitZone(s);
  return split ? parseIp(split[0]) : undefined;
}

/** A network as Go's `net.ParseCIDR` gives it; IPv4 networks are 4 bytes long. */
export interface IpNet {
  ip: Uint8Array;
  bits: number;
}

/** Parses `addr/bits`; `undefined` if invalid. */
export function parseCidr(s: string): IpNet | undefined {
  const slash = s.indexOf("/");
  if (slash < 0) return undefined;
  const addr = s.slice(0, slash);
  const bitsText = s.slice(slash + 1);
  if (!/^\d{1,3}$/.test(bitsText)) return undefined;
  const bits = Number(bitsText);
  let ip: Uint8Array | undefined;
  if (addr.includes(":")) ip = parseV6(addr);
  else ip = parseV4(addr);
  if (!ip || bits > ip.length * 8) return undefined;
  return { ip, bits };
}

function inNet(net: IpNet, ip: IpBytes): boolean {
  if (ip.length !== net.ip.length) return false;
  const full = net.bits >> 3;
  for (let k = 0; k < full; k++) if (ip[k] !== net.ip[k]) return false;
  const rem = net.bits & 7;
  if (rem === 0) return true;
  const mask = (0xff << (8 - rem)) & 0xff;
  return (ip[full] & mask) === (net.ip[full] & mask);
}

function sameIp(a: IpBytes, b: IpBytes): boolean {
  if (a.length !== b.length) return false;
  for (let k = 0; k < a.length; k++) if (a[k] !== b[k]) return false;
  return true;
}

/**
 * Builds a checker for a list of IPs and CIDRs (Traefik's `ip.NewChecker`).
 * With `acceptZones`, a checked address is read like `netip.ParseAddr`
 * (`fe80::1%eth0` is `fe80::1`), as Traefik's middlewares read them; the
 * entries themselves never take a zone, as in Go's `net.ParseIP`.
 *
 * @throws {Error} naming the first entry that is neither an IP nor a CIDR.
 */
export function ipChecker(
  entries: string[],
  options: { acceptZones?: boolean } = {},
): (ip: string) => boolean {
  const parse = options.acceptZones ? parseAddr : parseIp;
  const ips: IpBytes[] = [];
  const nets: IpNet[] = [];
  for (const e of entries) {
    if (e.includes("/")) {
      const net = parseCidr(e);
      if (!net) {
        throw new Error(`${JSON.stringify(e)} is not a valid CIDR such as 10.0.0.0/8 or fd00::/8`);
      }
      nets.push(net);
    } else {
      const ip = parseIp(e);
      if (!ip) {
        throw new Error(
          `${JSON.stringify(e)} is not a valid IP address or CIDR such as 10.0.0.1 or 10.0.0.0/8`,
        );
      }
      ips.push(ip);
    }
  }
  // Requests often repeat the same peer; keep the last parse.
  let lastText = "";
  let lastIp: IpBytes | undefined;
  return (text: string) => {
    if (text !== lastText) {
      lastText = text;
      lastIp = text === "" ? undefined : parse(text);
    }
    const ip = lastIp;
    if (!ip) return false;
    for (const a of ips) if (sameIp(a, ip)) return true;
    for (const n of nets) if (inNet(n, ip)) return true;
    return false;
  };
}

/** The first `bits` bits of an address's bytes, the rest zeroed (a network prefix). */
export function maskPrefix(bytes: Uint8Array, bits: number): Uint8Array {
  return bytes.map((b, i) => b & ((0xff << (8 - Math.max(0, Math.min(8, bits - i * 8)))) & 0xff));
}

/**
 * 16 address bytes as Go's `netip.Addr.String` writes them: `::ffff:a.b.c.d`
 * for IPv4-mapped, else RFC 5952 (lower-case hex, the longest run of two or
 * more zero groups shortened to `::`).
 */
export function formatIpv6(b: Uint8Array): string {
  if (b.slice(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) {
    return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  }
  const groups = Array.from({ length: 8 }, (_, i) => (b[2 * i] << 8) | b[2 * i + 1]);
  let bestStart = -1, bestLength = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) [bestStart, bestLength] = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLength).join(":")}`;
}

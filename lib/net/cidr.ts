/**
 * IPv4/IPv6 address and CIDR parsing and matching, for forwarded-header
 * trust, `ipAllowList` and the like. Addresses become bigints so v4 and v6
 * share one comparison.
 *
 * @module
 */

/** A parsed network: family, base address and prefix length. */
export interface Network {
  v6: boolean;
  base: bigint;
  bits: number;
}

function parseV4(s: string): bigint | undefined {
  const parts = s.split(".");
  if (parts.length !== 4) return undefined;
  let n = 0n;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return undefined;
    const v = Number(p);
    if (v > 255) return undefined;
    n = (n << 8n) | BigInt(v);
  }
  return n;
}

function parseV6(s: string): bigint | undefined {
  const zone = s.indexOf("%");
  if (zone !== -1) s = s.slice(0, zone);
  let tail: bigint | undefined;
  let tailGroups = 0;
  const lastColon = s.lastIndexOf(":");
  if (s.includes(".", lastColon)) {
    tail = parseV4(s.slice(lastColon + 1));
    if (tail === undefined) return undefined;
    s = s.slice(0, lastColon + 1) + "0:0";
    tailGroups = 2;
  }
  const halves = s.split("::");
  if (halves.length > 2) return undefined;
  const head = halves[0] ? halves[0].split(":") : [];
  const rest = halves.length === 2 && halves[1] ? halves[1].split(":") : [];
  const missing = 8 - head.length - rest.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const groups = [...head, ...Array(halves.length === 2 ? missing : 0).fill("0"), ...rest];
  let n = 0n;
  for (const g of groups) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
    n = (n << 16n) | BigInt(parseInt(g, 16));
  }
  if (tail !== undefined && tailGroups) n = (n & ~0xffffffffn) | tail;
  return n;
}

/** Parses an IP address (v4, v6, v4-mapped v6 as v4); undefined if it is not one. */
export function parseIp(s: string): { v6: boolean; value: bigint } | undefined {
  if (s.startsWith("[") && s.endsWith("]")) s = s.slice(1, -1);
  const v4 = parseV4(s);
  if (v4 !== undefined) return { v6: false, value: v4 };
  const v6 = parseV6(s);
  if (v6 === undefined) return undefined;
  // ::ffff:a.b.c.d is the same host as a.b.c.d.
  if (v6 >> 32n === 0xffffn) return { v6: false, value: v6 & 0xffffffffn };
  return { v6: true, value: v6 };
}

/** Parses "10.0.0.0/8", "::1/128" or a bare address (a /32 or /128); undefined if invalid. */
export function parseNetwork(s: string): Network | undefined {
  const slash = s.indexOf("/");
  const ip = parseIp(slash === -1 ? s : s.slice(0, slash));
  if (!ip) return undefined;
  const max = ip.v6 ? 128 : 32;
  let bits = max;
  if (slash !== -1) {
    const b = s.slice(slash + 1);
    if (!/^\d{1,3}$/.test(b)) return undefined;
    bits = Number(b);
    if (bits > max) return undefined;
  }
  const mask = bits === 0 ? 0n : ((1n << BigInt(bits)) - 1n) << BigInt(max - bits);
  return { v6: ip.v6, base: ip.value & mask, bits };
}

/** True if `address` lies inside `network`. */
export function networkContains(network: Network, address: { v6: boolean; value: bigint }): boolean {
  if (network.v6 !== address.v6) return false;
  const max = network.v6 ? 128 : 32;
  const mask = network.bits === 0 ? 0n : ((1n << BigInt(network.bits)) - 1n) << BigInt(max - network.bits);
  return (address.value & mask) === network.base;
}

/** A set of networks; invalid entries are rejected at construction with the entry named. */
export class NetworkSet {
  private readonly networks: Network[];
  constructor(ranges: string[], what = "IP range") {
    this.networks = ranges.map((r) => {
      const n = parseNetwork(r.trim());
      if (!n) throw new Error(`invalid ${what} "${r}": expected an IP address or CIDR such as 10.0.0.0/8 or ::1/128`);
      return n;
    });
  }
  get size(): number {
    return this.networks.length;
  }
  contains(address: string): boolean {
    if (this.networks.length === 0) return false;
    const ip = parseIp(address);
    if (!ip) return false;
    return this.networks.some((n) => networkContains(n, ip));
  }
}

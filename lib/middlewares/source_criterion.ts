/**
 * Who a request comes from, as Traefik's `ipStrategy` and `sourceCriterion`
 * define it. `ipAllowList` uses the IP strategy alone; `rateLimit` and
 * `inFlightReq` group requests by a source key (client IP, a request header,
 * or the Host).
 *
 * The X-Forwarded-For list is only read when the entrypoint trusts the
 * client's forwarded headers (`forwardedHeaders.trustedIPs` / `insecure`):
 * Traefik strips untrusted X-Forwarded-* before any middleware runs, so an
 * untrusted client's header counts as absent here too.
 *
 * @example
 * ```ts
 * const ipOf = readIpStrategy(o.object("ipStrategy"));
 * const keyOf = readSourceCriterion(o.object("sourceCriterion"));
 * ```
 *
 * @module
 */

import type { HeaderLookup } from "../rules/request.ts";

/** What a source criterion reads: the Web path's ProxyRequest and the fast path's request both fit. */
export interface SourceView {
  clientIp: string;
  trustForwarded: boolean;
  host: string;
  headers: HeaderLookup;
}
import { ipChecker, parseIp } from "../rules/ip.ts";
import type { OptionReader } from "./options.ts";

/** Extracts the client IP a middleware should judge; "" when there is none. */
export type IpExtractor = (proxy: SourceView) => string;

/** Extracts the key a request is counted under. */
export type SourceExtractor = (proxy: SourceView) => string;

/** Parsed `ipStrategy` options. */
export interface IpStrategyOptions {
  /** Take the Nth address from the right of X-Forwarded-For (0 = not used). */
  depth?: number;
  /** Walk X-Forwarded-For from the right, skipping these IPs/CIDRs. */
  excludedIPs?: string[];
  /** When set, an IPv6 result is replaced by the first address of its /N subnet. */
  ipv6Subnet?: number;
}

/** The socket peer address (Traefik's RemoteAddrStrategy). */
export const remoteAddr: IpExtractor = (proxy) => proxy.clientIp;

/** The X-Forwarded-For entries, trimmed, left to right; empty when untrusted or absent. */
export function forwardedFor(proxy: SourceView): string[] {
  if (!proxy.trustForwarded) return [];
  const value = proxy.headers.get("x-forwarded-for");
  if (!value) return [];
  const out: string[] = [];
  for (const part of value.split(",")) {
    const ip = part.trim();
    if (ip !== "") out.push(ip);
  }
  return out;
}

/**
 * Builds the client-IP extractor for an `ipStrategy`: `depth` wins over
 * `excludedIPs` (as in Traefik), and neither means the socket peer.
 *
 * @throws {Error} when an excluded entry is not an IP or CIDR.
 */
export function ipStrategy(options: IpStrategyOptions | undefined): IpExtractor {
  const base = baseStrategy(options);
  const bits = options?.ipv6Subnet;
  if (bits === undefined) return base;
  return (proxy) => ipv6SubnetOf(base(proxy), bits);
}

function baseStrategy(options: IpStrategyOptions | undefined): IpExtractor {
  const depth = options?.depth ?? 0;
  if (depth > 0) {
    return (proxy) => {
      const list = forwardedFor(proxy);
      return depth > list.length ? "" : list[list.length - depth];
    };
  }
  const excluded = options?.excludedIPs ?? [];
  if (excluded.length > 0) {
    const isExcluded = ipChecker(excluded);
    return (proxy) => {
      const list = forwardedFor(proxy);
      for (let i = list.length - 1; i >= 0; i--) {
        if (!isExcluded(list[i])) return list[i];
      }
      return "";
    };
  }
  return remoteAddr;
}

/** Reads an `ipStrategy` table (`depth`, `excludedIPs`) into an extractor. */
export function readIpStrategy(o: OptionReader | undefined): IpExtractor {
  if (!o) return remoteAddr;
  o.unknownKeysCheck(["depth", "excludedIPs", "ipv6Subnet"]);
  const depth = o.int("depth", { default: 0 });
  if (depth < 0) o.fail("depth", `must be 0 or more, found ${depth}`);
  const excludedIPs = o.stringList("excludedIPs", { default: [] });
  const ipv6Subnet = o.int("ipv6Subnet");
  if (ipv6Subnet !== undefined && (ipv6Subnet < 0 || ipv6Subnet > 128)) {
    o.fail("ipv6Subnet", `expected a prefix length between 0 and 128, found ${ipv6Subnet}`);
  }
  try {
    return ipStrategy({ depth, excludedIPs, ipv6Subnet });
  } catch (err) {
    return o.fail("excludedIPs", (err as Error).message);
  }
}

/**
 * Reads a `sourceCriterion` table: exactly one of `ipStrategy`,
 * `requestHeaderName`, `requestHost`; none means the socket peer address.
 */
export function readSourceCriterion(o: OptionReader | undefined): SourceExtractor {
  if (!o) return remoteAddr;
  o.unknownKeysCheck(["ipStrategy", "requestHeaderName", "requestHost"]);
  const strategy = o.object("ipStrategy");
  const headerName = o.string("requestHeaderName", { default: "" });
  const byHost = o.bool("requestHost", { default: false });
  const chosen = [strategy !== undefined, headerName !== "", byHost].filter(Boolean).length;
  if (chosen > 1) {
    o.fail(
      "ipStrategy",
      "ipStrategy, requestHeaderName and requestHost are mutually exclusive; set only one",
    );
  }
  if (headerName !== "") {
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(headerName)) {
      o.fail(
        "requestHeaderName",
        `expected an HTTP header name, found ${JSON.stringify(headerName)}`,
      );
    }
    const lower = headerName.toLowerCase();
    return (proxy) => proxy.headers.get(lower) ?? "";
  }
  if (byHost) return (proxy) => proxy.host;
  return readIpStrategy(strategy);
}

/**
 * The first address of the /bits subnet of an IPv6 address, in canonical
 * text (RFC 5952); IPv4 and non-addresses are returned unchanged.
 */
export function ipv6SubnetOf(ip: string, bits: number): string {
  const bytes = ip.includes(":") ? parseIp(ip) : undefined;
  if (!bytes || bytes.length !== 16) return ip;
  const masked = bytes.map((b, i) => {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    return b & ((0xff << (8 - keep)) & 0xff);
  });
  const groups = Array.from({ length: 8 }, (_, i) => (masked[2 * i] << 8) | masked[2 * i + 1]);
  // Compress the longest run of two or more zero groups.
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

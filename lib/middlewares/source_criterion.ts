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
  /** The engine exchange (HTTP/1.1), whose head keeps repeated header lines apart. */
  exchange?: { readonly head: { readonly headers: readonly string[] } };
}
import { formatIpv6, ipChecker, maskPrefix, parseIp } from "../rules/ip.ts";
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

/**
 * The X-Forwarded-For entries, trimmed, left to right, as Traefik's depth
 * strategy splits them: empty entries are kept (`"a, ,"` has three), so a
 * depth counts the same commas Traefik counts. Empty when untrusted or absent.
 */
export function forwardedForEntries(proxy: SourceView): string[] {
  if (!proxy.trustForwarded) return [];
  const value = proxy.headers.get("x-forwarded-for");
  if (!value) return [];
  return value.split(",").map((part) => part.trim());
}

/** The X-Forwarded-For entries, trimmed, left to right, empty ones dropped; empty when untrusted or absent. */
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
 * `ipv6Subnet` applies to the socket peer and to `depth`, not to
 * `excludedIPs`: Traefik's pool strategy ignores it.
 *
 * @throws {Error} when an excluded entry is not an IP or CIDR.
 */
export function ipStrategy(options: IpStrategyOptions | undefined): IpExtractor {
  const base = baseStrategy(options);
  const bits = options?.ipv6Subnet;
  if (bits === undefined || usesExcludedIPs(options)) return base;
  return (proxy) => ipv6SubnetOf(base(proxy), bits);
}

function usesExcludedIPs(options: IpStrategyOptions | undefined): boolean {
  return (options?.depth ?? 0) <= 0 && (options?.excludedIPs?.length ?? 0) > 0;
}

function baseStrategy(options: IpStrategyOptions | undefined): IpExtractor {
  const depth = options?.depth ?? 0;
  if (depth > 0) {
    return (proxy) => {
      // Traefik reads an absent header as one empty entry.
      const list = forwardedForEntries(proxy);
      if (list.length === 0) list.push("");
      return depth > list.length ? "" : list[list.length - depth];
    };
  }
  const excluded = options?.excludedIPs ?? [];
  if (excluded.length > 0) {
    // Checked addresses are read as Go's netip reads them: `fe80::1%eth0` is `fe80::1`.
    const isExcluded = ipChecker(excluded, { acceptZones: true });
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

/**
 * Reads an `ipStrategy` table (`depth`, `excludedIPs`, `ipv6Subnet`) into an
 * extractor, checked as `ipAllowList` checks its own: where Traefik silently
 * ignores an option (`excludedIPs` with `depth`, `ipv6Subnet` with
 * `excludedIPs`), Portico refuses the combination instead.
 */
export function readIpStrategy(o: OptionReader | undefined): IpExtractor {
  if (!o) return remoteAddr;
  o.unknownKeysCheck(["depth", "excludedIPs", "ipv6Subnet"]);
  const depth = o.int("depth", { default: 0 });
  if (depth < 0) o.fail("depth", `must be 0 or more, found ${depth}`);
  const excludedIPs = o.stringList("excludedIPs", { default: [] });
  const ipv6Subnet = o.int("ipv6Subnet");
  if (depth > 0 && excludedIPs.length > 0) {
    o.fail(
      "excludedIPs",
      "has no effect together with depth (Traefik uses depth and ignores it); set only one",
    );
  }
  if (ipv6Subnet !== undefined && usesExcludedIPs({ depth, excludedIPs })) {
    o.fail(
      "ipv6Subnet",
      "has no effect with excludedIPs (Traefik ignores it there); use it with depth or alone",
    );
  }
  if (ipv6Subnet !== undefined && (ipv6Subnet < 1 || ipv6Subnet > 128)) {
    o.fail("ipv6Subnet", `expected a prefix length from 1 to 128, found ${ipv6Subnet}`);
  }
  try {
    return ipStrategy({ depth, excludedIPs, ipv6Subnet });
  } catch (err) {
    return o.fail("excludedIPs", (err as Error).message);
  }
}

/** The Host of the request, port included when the client sent one (Go's `req.Host`). */
export const requestHost: SourceExtractor = (proxy) => proxy.host;

/**
 * Reads a `sourceCriterion` table: at most one of `ipStrategy`,
 * `requestHeaderName`, `requestHost`. With none of them (no table, an empty
 * one, `requestHost = false`, an empty header name) the source is
 * `fallback`: the socket peer address for `rateLimit` (Traefik's default),
 * the Host for `inFlightReq`.
 *
 * @example
 * ```ts
 * const byHost = readSourceCriterion(o.object("sourceCriterion"), requestHost);
 * ```
 */
export function readSourceCriterion(
  o: OptionReader | undefined,
  fallback: SourceExtractor = remoteAddr,
): SourceExtractor {
  if (!o) return fallback;
  o.unknownKeysCheck(["ipStrategy", "requestHeaderName", "requestHost"]);
  const strategy = o.object("ipStrategy");
  const headerName = o.string("requestHeaderName", { default: "" });
  const byHost = o.bool("requestHost", { default: false });
  // Traefik's checks, in its order and naming the pair.
  if (strategy !== undefined && headerName !== "") {
    o.fail("ipStrategy", "ipStrategy and requestHeaderName are mutually exclusive; set only one");
  }
  if (strategy !== undefined && byHost) {
    o.fail("ipStrategy", "ipStrategy and requestHost are mutually exclusive; set only one");
  }
  if (headerName !== "" && byHost) {
    o.fail("requestHost", "requestHost and requestHeaderName are mutually exclusive; set only one");
  }
  if (headerName !== "") {
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(headerName)) {
      o.fail(
        "requestHeaderName",
        `expected an HTTP header name, found ${JSON.stringify(headerName)}`,
      );
    }
    const lower = headerName.toLowerCase();
    return (proxy) => firstHeaderValue(proxy, lower);
  }
  if (byHost) return requestHost;
  if (strategy === undefined) return fallback;
  return readIpStrategy(strategy);
}

/**
 * The first value of a request header, as Go's `Header.Get` gives it: with
 * the header sent twice, the first line alone. Keying on every line joined
 * would let a client mint a fresh source by adding a second line.
 */
export function firstHeaderValue(proxy: SourceView, lower: string): string {
  const combined = proxy.headers.get(lower);
  if (combined === null) return "";
  const list = (proxy.headers as { list?: unknown }).list;
  const lines = Array.isArray(list) ? list as string[] : proxy.exchange?.head.headers;
  if (!lines) return combined;
  const values: string[] = [];
  for (let i = 0; i < lines.length; i += 2) {
    if (lines[i].toLowerCase() === lower) values.push(lines[i + 1]);
  }
  // The lines describe the header only if no middleware has rewritten it since.
  return values.length > 1 && values.join(", ") === combined ? values[0] : combined;
}

/**
 * The first address of the /bits subnet of an IPv6 address, as Go's
 * `netip.Addr.Prefix(bits).Addr().String()` prints it: RFC 5952 text, the
 * zone dropped, `::ffff:a.b.c.d` for IPv4-mapped results. IPv4, non-addresses
 * and prefix lengths outside 0–128 give `ip` back unchanged.
 */
export function ipv6SubnetOf(ip: string, bits: number): string {
  if (!ip.includes(":") || !Number.isInteger(bits) || bits < 0 || bits > 128) return ip;
  const zone = ip.indexOf("%");
  // Go accepts any non-empty zone after "%".
  if (zone === 0 || zone === ip.length - 1) return ip;
  const parsed = parseIp(zone > 0 ? ip.slice(0, zone) : ip);
  if (!parsed) return ip;
  // parseIp shortens IPv4-mapped addresses to their 4 bytes; Go keeps them IPv6.
  const bytes = parsed.length === 16
    ? parsed
    : Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...parsed]);
  return formatIpv6(maskPrefix(bytes, bits));
}

/**
 * Traefik's `ipStrategy` as `ipAllowList` applies it (pkg/ip/strategy.go
 * and `IPStrategy.Get`): which address of a request is checked.
 *
 * - `depth = N` (N > 0): the Nth entry from the right of
 *   `X-Forwarded-For`, empty entries counted; "" when there are fewer.
 * - `excludedIPs`: walking `X-Forwarded-For` from the right, the first
 *   non-empty entry not in the list (an unparseable entry counts as not
 *   in it); "" when every entry is excluded.
 * - neither: the socket peer (after PROXY protocol).
 * - `ipv6Subnet = B` (1–128) with depth or the peer: an IPv6 result
 *   becomes the first address of its /B network (`::abcd:0:0:0`).
 *
 * Traefik ignores `excludedIPs` when `depth` is set, and `ipv6Subnet` with
 * `excludedIPs`; Portico refuses those combinations instead of ignoring an
 * option. X-Forwarded-For only counts when the entrypoint trusts the
 * client: Traefik deletes it on entry otherwise, and so does Portico.
 *
 * @example
 * ```ts
 * const clientIp = readAllowListStrategy(o.object("ipStrategy"));
 * clientIp(proxy); // "10.0.0.3"
 * ```
 *
 * @module
 */

import { formatIpv6, ipChecker, maskPrefix, parseIpv6Bytes } from "../../rules/ip.ts";
import type { OptionReader } from "../options.ts";

/** What a strategy reads of a request. */
export interface StrategyView {
  clientIp: string;
  trustForwarded: boolean;
  headers: { get(name: string): string | null };
}

/** Picks the address a request is judged by; "" when there is none. */
export type AddressPicker = (request: StrategyView) => string;

/** `X-Forwarded-For` split on commas as Go's `strings.Split` does ("" is one empty entry). */
function forwardedEntries(request: StrategyView): string[] {
  const value = request.trustForwarded ? request.headers.get("x-forwarded-for") ?? "" : "";
  return value.split(",");
}

/** Reads an `ipStrategy` table into a picker; none means the socket peer. */
export function readAllowListStrategy(o: OptionReader | undefined): AddressPicker {
  if (!o) return (request) => request.clientIp;
  o.unknownKeysCheck(["depth", "excludedIPs", "ipv6Subnet"]);
  const depth = o.int("depth", { default: 0 });
  if (depth < 0) o.fail("depth", `must be 0 or more, found ${depth}`);
  const excluded = o.stringList("excludedIPs", { default: [] });
  const subnet = o.int("ipv6Subnet");
  if (depth > 0 && excluded.length > 0) {
    o.fail(
      "excludedIPs",
      "has no effect together with depth (Traefik uses depth and ignores it); set only one",
    );
  }
  if (subnet !== undefined && depth === 0 && excluded.length > 0) {
    o.fail(
      "ipv6Subnet",
      "has no effect with excludedIPs (Traefik ignores it there); use it with depth or alone",
    );
  }
  if (subnet !== undefined && (subnet <= 0 || subnet > 128)) {
    o.fail("ipv6Subnet", `expected a prefix length from 1 to 128, found ${subnet}`);
  }
  const masked = subnet === undefined
    ? (ip: string) => ip
    : (ip: string) => ipv6SubnetAddress(ip, subnet);
  if (depth > 0) {
    return (request) => {
      const entries = forwardedEntries(request);
      return entries.length < depth ? "" : masked(entries[entries.length - depth].trim());
    };
  }
  if (excluded.length > 0) {
    let isExcluded: (ip: string) => boolean;
    try {
      isExcluded = ipChecker(excluded, { acceptZones: true });
    } catch (err) {
      return o.fail("excludedIPs", (err as Error).message);
    }
    return (request) => {
      const entries = forwardedEntries(request);
      for (let i = entries.length - 1; i >= 0; i--) {
        const entry = entries[i].trim();
        if (entry !== "" && !isExcluded(entry)) return entry;
      }
      return "";
    };
  }
  return (request) => masked(request.clientIp);
}

/**
 * Go's `getIPv6SubnetIP`: the first address of the /bits network of an
 * IPv6 address (zone dropped), written as `netip.Addr.String` writes it;
 * anything else unchanged.
 */
export function ipv6SubnetAddress(ip: string, bits: number): string {
  const bytes = parseIpv6Bytes(ip);
  if (!bytes) return ip;
  return formatIpv6(maskPrefix(bytes, bits));
}


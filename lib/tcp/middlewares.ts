/**
 * The TCP middlewares Traefik has: `ipAllowList` (and its deprecated name
 * `ipWhiteList`), which refuses a connection from outside `sourceRange`,
 * and `inFlightConn`, which caps simultaneous connections per client IP.
 * Each is a gate: it admits a connection (and is told when it ends) or
 * refuses it, in which case the connection is closed before any byte is
 * sent to a backend.
 *
 * @module
 */

import type { TcpMiddlewareConfig } from "../config/types.ts";
import { ipChecker } from "../rules/ip.ts";

/** Admits a connection from `clientIp` (returning its release) or refuses it (null). */
export type TcpGate = (clientIp: string) => (() => void) | null;

const NOTHING = () => {};

/** Builds the gate a middleware config describes. */
export function buildTcpMiddleware(name: string, config: TcpMiddlewareConfig): TcpGate {
  if ("ipAllowList" in config || "ipWhiteList" in config) {
    const ranges = "ipAllowList" in config
      ? config.ipAllowList.sourceRange
      : config.ipWhiteList.sourceRange;
    let allowed: (ip: string) => boolean;
    try {
      allowed = ipChecker(ranges);
    } catch (err) {
      throw new Error(`TCP middleware "${name}": sourceRange: ${(err as Error).message}`);
    }
    return (ip) => (allowed(ip) ? NOTHING : null);
  }
  const amount = config.inFlightConn.amount;
  const open = new Map<string, number>();
  return (ip) => {
    const now = open.get(ip) ?? 0;
    if (now >= amount) return null;
    open.set(ip, now + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (open.get(ip) ?? 1) - 1;
      if (left <= 0) open.delete(ip);
      else open.set(ip, left);
    };
  };
}

/** The type name of a TCP middleware config (its one key). */
export function tcpMiddlewareType(config: TcpMiddlewareConfig): string {
  return Object.keys(config)[0];
}

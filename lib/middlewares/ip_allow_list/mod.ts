/**
 * `ipAllowList` (and its deprecated alias `ipWhiteList`): only clients whose
 * IP, as chosen by `ipStrategy`, is in `sourceRange` get through; the others
 * get `rejectStatusCode` (403 by default).
 *
 * @module
 */

import { ipChecker } from "../../rules/ip.ts";
import { readOptions } from "../options.ts";
import type { MiddlewareFactory } from "../types.ts";
import { STATUS_TEXT } from "../../http_status.ts";
import { readAllowListStrategy } from "./ip_strategy.ts";

/**
 * Builds an `ipAllowList` middleware. The chosen address is checked as
 * Traefik's `ip.Checker.IsAuthorized` does: a `host:port` or `[v6]:port`
 * form counts as its host, an IPv6 zone (`fe80::1%eth0`) is ignored, and
 * anything that is not an address (octal `0127.0.0.1`, "") is refused.
 * `rejectStatusCode` must be a status Go has a text for (0 means 403); the
 * refusal's body is that text.
 *
 * @example
 * ```toml
 * [http.middlewares.office.ipAllowList]
 * sourceRange = ["10.0.0.0/8", "192.168.1.7"]
 * rejectStatusCode = 404
 * [http.middlewares.office.ipAllowList.ipStrategy]
 * depth = 1
 * ```
 */
export const ipAllowList: MiddlewareFactory = (options, context) => {
  const o = readOptions(context.name, options);
  o.unknownKeysCheck(["sourceRange", "ipStrategy", "rejectStatusCode"]);
  const ranges = o.stringList("sourceRange", { default: [] });
  if (ranges.length === 0) {
    o.fail("sourceRange", 'must list at least one IP or CIDR, e.g. ["10.0.0.0/8"]');
  }
  let allowed: (ip: string) => boolean;
  try {
    allowed = ipChecker(ranges, { acceptZones: true });
  } catch (err) {
    return o.fail("sourceRange", (err as Error).message);
  }
  const clientIp = readAllowListStrategy(o.object("ipStrategy"));
  const status = o.int("rejectStatusCode", { default: 0 }) || 403;
  if (status < 200 || STATUS_TEXT[status] === undefined) {
    o.fail(
      "rejectStatusCode",
      `expected an HTTP status from 200 to 599 that has a standard reason phrase (e.g. 403, 404), found ${status}`,
    );
  }
  const bodiless = status === 204 || status === 304;
  const refuse = () =>
    new Response(bodiless ? null : STATUS_TEXT[status], {
      status,
      headers: bodiless ? {} : { "content-type": "text/plain; charset=utf-8" },
    });

  return async (c, next) => {
    if (!allowed(hostOf(clientIp(c.get("proxy"))))) return refuse();
    await next();
  };
};

/**
 * Builds the deprecated `ipWhiteList`: `ipAllowList` without
 * `rejectStatusCode`, which Traefik's ipWhiteList does not have (it always
 * answers 403).
 *
 * @example
 * ```toml
 * [http.middlewares.office.ipWhiteList]
 * sourceRange = ["10.0.0.0/8"]
 * ```
 */
export const ipWhiteList: MiddlewareFactory = (options, context) => {
  const o = readOptions(context.name, options);
  if (o.has("rejectStatusCode")) {
    o.fail(
      "rejectStatusCode",
      "is not an ipWhiteList option in Traefik (it always answers 403); use ipAllowList",
    );
  }
  return ipAllowList(options, context);
};

/** Go's `net.SplitHostPort` host, or the whole text when it has no port. */
export function hostOf(address: string): string {
  const colon = address.lastIndexOf(":");
  if (colon < 0) return address;
  if (address[0] === "[") {
    const end = address.indexOf("]");
    if (end < 0 || end + 1 !== colon) return address;
    const host = address.slice(1, end);
    return /[[\]]/.test(host) || address.slice(colon).includes("]") ? address : host;
  }
  const host = address.slice(0, colon);
  return host.includes(":") || /[[\]]/.test(address) ? address : host;
}

/**
 * `ipAllowList` (and its deprecated alias `ipWhiteList`): only clients whose
 * IP, as chosen by `ipStrategy`, is in `sourceRange` get through; the others
 * get `rejectStatusCode` (403 by default).
 *
 * @module
 */

import { ipChecker } from "../../rules/ip.ts";
import { readOptions } from "../options.ts";
import { readIpStrategy } from "../source_criterion.ts";
import type { MiddlewareFactory } from "../types.ts";
import { plainResponse, validStatus } from "../access_common.ts";

/**
 * Builds an `ipAllowList` middleware.
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
    allowed = ipChecker(ranges);
  } catch (err) {
    return o.fail("sourceRange", (err as Error).message);
  }
  const clientIp = readIpStrategy(o.object("ipStrategy"));
  const status = o.int("rejectStatusCode", { default: 0 }) || 403;
  if (!validStatus(status)) {
    o.fail("rejectStatusCode", `expected an HTTP status code between 100 and 599, found ${status}`);
  }

  return async (c, next) => {
    if (!allowed(clientIp(c.get("proxy")))) return plainResponse(status);
    await next();
  };
};

/**
 * The source an `inFlightReq` counts requests under. Traefik's default
 * differs from `rateLimit`'s: with no criterion (or an empty one) requests
 * are grouped by their Host header, not by client IP. Any criterion that is
 * set is read by the shared `sourceCriterion` reader.
 *
 * @module
 */

import type { OptionReader } from "../options.ts";
import { readSourceCriterion, type SourceExtractor } from "../source_criterion.ts";

/** The Host header as the client sent it (oxy's `request.host`). */
const requestHost: SourceExtractor = (proxy) => proxy.host;

/**
 * The extractor for `inFlightReq.sourceCriterion`.
 *
 * @example
 * ```ts
 * const sourceOf = inFlightSource(o.object("sourceCriterion"));
 * ```
 */
export function inFlightSource(o: OptionReader | undefined): SourceExtractor {
  if (!o) return requestHost;
  const chosen = o.has("ipStrategy") ||
    (o.has("requestHeaderName") && o.raw("requestHeaderName") !== "") ||
    o.bool("requestHost", { default: false });
  if (!chosen) {
    o.unknownKeysCheck(["ipStrategy", "requestHeaderName", "requestHost"]);
    return requestHost;
  }
  return readSourceCriterion(o);
}

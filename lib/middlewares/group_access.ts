/**
 * The access and traffic middlewares: authentication, IP
 * allow-listing, rate and concurrency limits, retry and circuit breaking.
 *
 * @module
 */

import type { MiddlewareFactory } from "./types.ts";
import { basicAuth } from "./basic_auth/mod.ts";
import { circuitBreaker } from "./circuit_breaker/mod.ts";
import { digestAuth } from "./digest_auth/mod.ts";
import { forwardAuth } from "./forward_auth/mod.ts";
import { inFlightReq } from "./in_flight_req/mod.ts";
import { ipAllowList, ipWhiteList } from "./ip_allow_list/mod.ts";
import { rateLimit } from "./rate_limit/mod.ts";
import { retry } from "./retry/mod.ts";

export const ACCESS_MIDDLEWARES: Readonly<Record<string, MiddlewareFactory>> = {
  basicAuth,
  circuitBreaker,
  digestAuth,
  forwardAuth,
  inFlightReq,
  ipAllowList,
  // Deprecated Traefik v2 name, still accepted by Traefik v3.
  ipWhiteList,
  rateLimit,
  retry,
};

/**
 * `retry`: re-sends a request to the service (whose load balancer moves to
 * its next server) when the upstream could not be reached or dropped the
 * connection before answering. It never retries once a response exists, so
 * no byte of a response has reached the client, and it never replays a
 * request whose body was already (partly) sent.
 *
 * @module
 */

import { UpstreamError } from "../../proxy/forward.ts";
import type { ProxyRequest } from "../../services/types.ts";
import { readOptions } from "../options.ts";
import type { MiddlewareFactory } from "../types.ts";
import { backoffDelay } from "./backoff.ts";

/**
 * Builds a `retry` middleware.
 *
 * @example
 * ```toml
 * [http.middlewares.retry-3.retry]
 * attempts = 3
 * initialInterval = "100ms"
 * ```
 */
export const retry: MiddlewareFactory = (options, context) => {
  const o = readOptions(context.name, options);
  o.unknownKeysCheck(["attempts", "initialInterval"]);
  const attempts = o.int("attempts", { required: true });
  if (attempts < 1) {
    o.fail("attempts", `must be 1 or more (the total number of tries), found ${attempts}`);
  }
  const initialInterval = o.duration("initialInterval", { default: 100 });

  return async (c, next) => {
    const proxy = c.get("proxy");
    const saved = snapshot(proxy);
    for (let attempt = 1;; attempt++) {
      try {
        await next();
        return;
      } catch (err) {
        const retryable = err instanceof UpstreamError && err.beforeSend &&
          !proxy.request.signal.aborted &&
          !proxy.request.bodyUsed;
        if (!retryable || attempt >= attempts) throw err;
      }
      const wait = backoffDelay(initialInterval, attempts, attempt);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      if (proxy.request.signal.aborted) throw new UpstreamError("client went away", 502, true);
      restore(proxy, saved);
    }
  };
};

interface Snapshot {
  pathAndQuery: string;
  headers: Headers;
  responseHeaders?: Headers;
}

// Middlewares after this one run again on each attempt; undo their changes
// first so e.g. addPrefix does not prefix twice.
function snapshot(proxy: ProxyRequest): Snapshot {
  return {
    pathAndQuery: proxy.pathAndQuery,
    headers: proxy.headers === proxy.request.headers ? proxy.headers : new Headers(proxy.headers),
    responseHeaders: proxy.responseHeaders ? new Headers(proxy.responseHeaders) : undefined,
  };
}

function restore(proxy: ProxyRequest, saved: Snapshot): void {
  proxy.pathAndQuery = saved.pathAndQuery;
  proxy.headers = saved.headers === proxy.request.headers
    ? saved.headers
    : new Headers(saved.headers);
  proxy.responseHeaders = saved.responseHeaders ? new Headers(saved.responseHeaders) : undefined;
}

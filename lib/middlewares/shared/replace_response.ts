/**
 * Replacing the response a middleware got back from `next()`.
 *
 * Hono's `c.res` setter merges the previous response's headers into the new
 * one (for its own header helpers). A proxy must not do that: a replaced
 * error page would inherit the upstream's Content-Length, a compressed body
 * the old length, a removed header would come back. So clear first.
 *
 * @module
 */

import type { Context } from "hono";
import type { PorticoEnv } from "../types.ts";

/**
 * Makes `response` the chain's response without merging any headers from
 * the previous one.
 *
 * @example
 * ```ts
 * await next();
 * replaceResponse(c, new Response("page", { status: c.res.status }));
 * ```
 */
export function replaceResponse(c: Context<PorticoEnv>, response: Response): void {
  (c as unknown as { res: Response | undefined }).res = undefined;
  c.res = response;
}

/**
 * Forgets the response from an earlier `next()`, so that calling `next()`
 * again (a retry) does not merge the failed attempt's headers into the new
 * response.
 */
export function clearResponse(c: Context<PorticoEnv>): void {
  (c as unknown as { res: Response | undefined }).res = undefined;
}

/**
 * Runs a list of Hono middlewares around a final handler with Hono's own
 * semantics (onion order; a returned Response short-circuits; after `next()`
 * the downstream response is in `c.res`), without a Hono app per route. A
 * middleware may call `next()` again after a failure (retry).
 *
 * @module
 */

import type { Context } from "hono";
import type { PorticoEnv, PorticoMiddleware } from "../middlewares/types.ts";

/**
 * Sets the chain's response without Hono's header merge: Hono's `c.res`
 * setter copies the previous response's headers into the new one, which for
 * a proxy would resurrect stale Content-Length and removed headers.
 */
function setResponse(c: Context<PorticoEnv>, response: Response): void {
  (c as unknown as { res: Response | undefined }).res = undefined;
  c.res = response;
}

export type FinalHandler = (c: Context<PorticoEnv>) => Promise<Response>;

/** Composes middlewares once at build time into one function per route. */
export function composeChain(
  middlewares: PorticoMiddleware[],
  final: FinalHandler,
): (c: Context<PorticoEnv>) => Promise<Response> {
  if (middlewares.length === 0) return final;
  return async (c) => {
    const dispatch = async (i: number): Promise<void> => {
      if (i === middlewares.length) {
        setResponse(c, await final(c));
        return;
      }
      const res = await middlewares[i](c, () => dispatch(i + 1));
      if (res instanceof Response) setResponse(c, res);
    };
    await dispatch(0);
    return c.res;
  };
}

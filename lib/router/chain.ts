/**
 * Runs a list of Hono middlewares around a final handler with Hono's own
 * semantics (onion order; a returned Response short-circuits; after `next()`
 * the downstream response is in `c.res`), without a Hono app per route.
 *
 * @module
 */

import type { Context } from "hono";
import type { PorticoEnv, PorticoMiddleware } from "../middlewares/types.ts";

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
        c.res = await final(c);
        return;
      }
      const res = await middlewares[i](c, () => dispatch(i + 1));
      if (res instanceof Response) c.res = res;
    };
    await dispatch(0);
    return c.res;
  };
}

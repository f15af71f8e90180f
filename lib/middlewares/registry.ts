/**
 * The table of middleware types Portico can build, by Traefik's type name.
 * It is assembled from explicit imports, so whoever builds a router gets every
 * middleware without an import for its side effect. Adding a middleware means
 * adding its folder and one line in its group's table.
 *
 * @module
 */

import { ACCESS_MIDDLEWARES } from "./group_access.ts";
import { REQUEST_MIDDLEWARES } from "./group_request.ts";
import type { MiddlewareFactory } from "./types.ts";

const factories: ReadonlyMap<string, MiddlewareFactory> = new Map(
  Object.entries({ ...REQUEST_MIDDLEWARES, ...ACCESS_MIDDLEWARES }),
);

/** The factory for `type`, or undefined if Portico does not implement it yet. */
export function middlewareFactory(type: string): MiddlewareFactory | undefined {
  return factories.get(type);
}

/** Every implemented type name, for error messages. */
export function middlewareTypes(): string[] {
  return [...factories.keys()].sort();
}

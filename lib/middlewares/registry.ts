/**
 * The table of middleware types Portico can build, by Traefik's type name.
 * Adding a middleware means adding its folder and one line here.
 *
 * @module
 */

import type { MiddlewareFactory } from "./types.ts";

const factories = new Map<string, MiddlewareFactory>();

/** Registers a factory under a Traefik type name such as `stripPrefix`. */
export function registerMiddleware(type: string, factory: MiddlewareFactory): void {
  factories.set(type, factory);
}

/** The factory for `type`, or undefined if Portico does not implement it yet. */
export function middlewareFactory(type: string): MiddlewareFactory | undefined {
  return factories.get(type);
}

/** Every implemented type name, for error messages. */
export function middlewareTypes(): string[] {
  return [...factories.keys()].sort();
}

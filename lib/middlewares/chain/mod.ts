/**
 * The `chain` middleware: runs other middlewares, in order, as one.
 *
 * @module
 */

import { replaceResponse } from "../shared/replace_response.ts";
import { readOptions } from "../options.ts";
import type { MiddlewareFactory, PorticoMiddleware } from "../types.ts";

/**
 * Builds `chain` from `{ middlewares }`. Names without `@provider` resolve
 * in the chain's own provider. A chain that reaches itself, directly or
 * through other chains, fails to build with the cycle named
 * (`middleware cycle: a@file -> b@file -> a@file`).
 *
 * @example
 * ```toml
 * [http.middlewares.secured.chain]
 * middlewares = ["https-only", "known-ips", "auth"]
 * ```
 */
export const chain: MiddlewareFactory = (options, context) => {
  const o = readOptions(context.name, options);
  o.unknownKeysCheck(["middlewares"]);
  const names = o.stringList("middlewares", { default: [] });
  names.forEach((n, i) => {
    if (n.trim() === "") o.fail(`middlewares[${i}]`, "must not be empty");
  });
  const handlers: PorticoMiddleware[] = names.map((n) => context.middleware(n));
  if (handlers.length === 0) return async (_c, next) => await next();
  return async (c, next) => {
    const run = async (i: number): Promise<void> => {
      if (i === handlers.length) return await next();
      const res = await handlers[i](c, () => run(i + 1));
      if (res instanceof Response) replaceResponse(c, res);
    };
    await run(0);
  };
};

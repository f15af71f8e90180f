/**
 * The middleware contract: Traefik's "constructor validates, handler only
 * serves", in Hono's shape. A factory takes the middleware's options, checks
 * them once, and returns a Hono `MiddlewareHandler`; the handler reads and
 * rewrites the forwarding state in `c.get("proxy")`.
 *
 * @module
 */

import type { MiddlewareHandler } from "hono";
import type { ProxyRequest, Service } from "../services/types.ts";

/** Hono environment shared by every Portico handler. */
export type PorticoEnv = {
  Variables: { proxy: ProxyRequest };
};

export type PorticoMiddleware = MiddlewareHandler<PorticoEnv>;

/** What a factory may look up while it is being built. */
export interface MiddlewareBuildContext {
  /** The middleware's qualified name, e.g. `strip@file`, for error messages. */
  name: string;
  /** The provider the middleware came from, for resolving unqualified references. */
  provider: string;
  /** A built service by (possibly unqualified) name; throws if unknown. */
  service(name: string): Service;
  /** Another middleware by (possibly unqualified) name, for `chain`; throws if unknown or cyclic. */
  middleware(name: string): PorticoMiddleware;
  /** Registers a stop hook (timers, watchers) for when this config generation retires. */
  onStop(fn: () => void): void;
}

/** Builds one middleware type from its options. Throws MiddlewareConfigError on bad options. */
export type MiddlewareFactory = (
  options: Record<string, unknown>,
  context: MiddlewareBuildContext,
) => PorticoMiddleware;

/** A build-time error that names the middleware and the option. */
export class MiddlewareConfigError extends Error {
  constructor(readonly middleware: string, message: string) {
    super(`middleware "${middleware}": ${message}`);
    this.name = "MiddlewareConfigError";
  }
}

/**
 * The forwarded request headers, made writable. Headers of a request from
 * `Deno.serve` are immutable, so the first middleware that changes one
 * copies them once; later ones reuse the copy.
 */
export function writableRequestHeaders(proxy: ProxyRequest): Headers {
  if (proxy.headers === proxy.request.headers) proxy.headers = new Headers(proxy.headers);
  return proxy.headers;
}

/** Responses already probed, so a chain of 50 middlewares probes once. */
const knownWritable = new WeakSet<Response>();

/**
 * A response whose headers can be changed: the same one when they already
 * can, else a copy sharing the body stream (e.g. for `Response.redirect`).
 */
export function writableResponse(response: Response): Response {
  if (knownWritable.has(response)) return response;
  try {
    response.headers.set("x-portico-probe", "1");
    response.headers.delete("x-portico-probe");
    knownWritable.add(response);
    return response;
  } catch {
    return new Response(response.body, {
      status: response.status,
      statusText: response.statusText,
      headers: new Headers(response.headers),
    });
  }
}

/**
 * Entrypoint listeners: `Deno.serve` for plain HTTP (its fastest path) or,
 * in the `connection` serving mode, a listener that serves each connection
 * itself (connection_guard.ts); or the TLS listener an extension provides.
 *
 * @module
 */

import type { EntryPointConfig } from "../config/types.ts";
import type { Logger } from "../log/logger.ts";
import type { ConnectionInfo } from "../router/build.ts";
import { ConnectionGuard, listenGuarded } from "./connection_guard.ts";
import type { EntryPointHandler, Listener, TlsListenerFactory } from "./extension.ts";
import { guardHandler, limitsFor } from "./limits.ts";
import type { ServingMode } from "./serving_mode.ts";

/** How one entrypoint serves requests: see {@linkcode servingFor}. */
export interface EntryPointServing {
  /** The handler with the request-level limits, for `listener` mode. */
  handler: EntryPointHandler;
  /** In `connection` mode: takes accepted connections, with every limit. */
  connections?: ConnectionGuard;
}

/** The limits of `entryPoint` around `handler`, in the shape `mode` serves. */
export function servingFor(
  name: string,
  entryPoint: EntryPointConfig,
  handler: EntryPointHandler,
  mode: ServingMode,
  log: Logger,
): EntryPointServing {
  const limits = limitsFor(entryPoint);
  if (mode === "listener") return { handler: guardHandler(limits, handler) };
  return {
    handler,
    connections: new ConnectionGuard({
      limits,
      handler,
      onError: (err) =>
        log.error("request handling failed", { entryPoint: name, error: (err as Error).message }),
      onEvent: (event, fields) => log.debug(event, { entryPoint: name, ...fields }),
    }),
  };
}

/** Starts a plain HTTP listener for one entrypoint. */
export function startPlainListener(
  name: string,
  entryPoint: EntryPointConfig,
  serving: EntryPointServing,
  log: Logger,
): Listener {
  if (serving.connections) {
    return listenGuarded(entryPoint.hostname || "0.0.0.0", entryPoint.port, serving.connections);
  }
  let boundPort = entryPoint.port;
  // Head size, body and write deadlines, in-flight cap: see limits.ts for
  // what Deno.serve enforces itself and what it cannot.
  const guarded = serving.handler;
  const server = Deno.serve({
    hostname: entryPoint.hostname || "0.0.0.0",
    port: entryPoint.port,
    onListen: (addr) => {
      boundPort = (addr as Deno.NetAddr).port;
    },
    onError: (err) => {
      log.error("request handling failed", { entryPoint: name, error: (err as Error).message });
      return new Response("Internal Server Error", { status: 500 });
    },
  }, (request, info) => {
    const conn: ConnectionInfo = {
      remoteAddr: (info.remoteAddr as Deno.NetAddr).hostname,
      tls: false,
      port: boundPort,
    };
    return guarded(request, conn);
  });
  return {
    port: (server.addr as Deno.NetAddr).port,
    shutdown: () => server.shutdown(),
  };
}

/** Starts every entrypoint; on failure closes those already started and rethrows. */
export async function startEntryPoints(
  entryPoints: Record<string, EntryPointConfig>,
  handlerFor: (name: string) => EntryPointHandler,
  tlsListener: TlsListenerFactory | undefined,
  log: Logger,
  mode: ServingMode = "listener",
): Promise<Map<string, Listener>> {
  const listeners = new Map<string, Listener>();
  try {
    for (const [name, ep] of Object.entries(entryPoints)) {
      const handler = handlerFor(name);
      const tls = tlsListener?.(name, ep, handler, mode);
      const listener = tls
        ? await tls
        : startPlainListener(name, ep, servingFor(name, ep, handler, mode, log), log);
      listeners.set(name, listener);
      log.info("entrypoint listening", {
        entryPoint: name,
        address: ep.address,
        port: listener.port,
        tls: Boolean(tls),
        serving: mode,
      });
    }
  } catch (err) {
    await Promise.all([...listeners.values()].map((l) => l.shutdown()));
    const ep = entryPoints[[...Object.keys(entryPoints)][listeners.size]];
    const where = ep
      ? `entryPoint ${[...Object.keys(entryPoints)][listeners.size]} (${ep.address})`
      : "entrypoint";
    throw new Error(`cannot listen on ${where}: ${(err as Error).message}`);
  }
  return listeners;
}

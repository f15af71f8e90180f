/**
 * An entrypoint with `http.tls` that TCP routers also use. Deno's TLS
 * listener is the fast way to serve it, but it takes every socket from
 * the first byte, so nothing can look at a ClientHello first. While the
 * configuration puts TCP routes on the entrypoint, its port is served by
 * the sniffing plain listener instead (ClientHello peeked, TCP routes
 * dispatched, HTTPS handed to the entrypoint's TLS side over loopback,
 * which costs about one extra relay per request); when they go, the port
 * goes back to the TLS listener. A switch closes one socket and binds the
 * other on the same port; connections already accepted are untouched.
 *
 * @module
 */

import type { Logger } from "../log/logger.ts";
import type { Listener } from "./listener.ts";

export type ListenMode = "tls" | "sniff";

export interface SwitchingOptions {
  name: string;
  log: Logger;
  /** Which mode the current configuration wants. */
  wanted(): ListenMode;
  /** Starts the port in a mode (binds the socket). */
  start(mode: ListenMode): Listener | Promise<Listener>;
  /** Drains what both modes share (the engine, the TLS side) once, at shutdown. */
  shutdownShared(): Promise<void>;
  closeAllShared(): void;
}

/** The modes' listener, switched by {@linkcode Listener.reconsider}. */
export async function startSwitchingListener(
  options: SwitchingOptions,
  first?: { mode: ListenMode; listener: Listener },
): Promise<Listener & { readonly mode: ListenMode }> {
  let mode = first?.mode ?? options.wanted();
  let current = first?.listener ?? await options.start(mode);
  let switching: Promise<void> | undefined;
  let closed = false;

  const bindWithRetry = async (next: ListenMode): Promise<Listener> => {
    // The old socket frees the port within a few milliseconds; keep trying for a second.
    for (let attempt = 0;; attempt++) {
      try {
        return await options.start(next);
      } catch (err) {
        if (attempt >= 200) throw err;
        await new Promise((r) => setTimeout(r, 5));
      }
    }
  };

  const switchTo = async (next: ListenMode) => {
    const old = current;
    await (old.stopAccepting?.() ?? Promise.resolve());
    try {
      current = await bindWithRetry(next);
      mode = next;
      options.log.info("entrypoint listening mode switched", { entryPoint: options.name, mode: next });
    } catch (err) {
      // Back to the mode that worked, so the port is not left closed.
      options.log.error("entrypoint mode switch failed", { entryPoint: options.name, mode: next, error: String(err) });
      current = await bindWithRetry(mode);
    }
  };

  return {
    get port() {
      return current.port;
    },
    get mode() {
      return mode;
    },
    accepted: () => current.accepted?.() ?? 0,
    reconsider() {
      switching = (switching ?? Promise.resolve()).then(async () => {
        if (closed) return;
        const next = options.wanted();
        if (next !== mode) await switchTo(next);
      }).catch((err) => options.log.error("entrypoint mode switch failed", { entryPoint: options.name, error: String(err) }));
      return switching;
    },
    async shutdown() {
      closed = true;
      await switching;
      await (current.stopAccepting?.() ?? Promise.resolve());
      await options.shutdownShared();
    },
    closeAll: () => options.closeAllShared(),
  };
}

/**
 * The TCP connections open through each router, across configuration
 * generations. A reload keeps established connections; once a router is
 * gone from the configuration, its connections are closed after the
 * entrypoint's `lifeCycle.graceTimeOut`.
 *
 * @module
 */

import { closeQuietly } from "../engine/socket.ts";

export class TcpConnections {
  readonly #byRouter = new Map<string, Set<Deno.Conn>>();
  /** Per router, the grace time of the entrypoint its connections arrived on. */
  readonly #grace = new Map<string, number>();
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();

  /** Tracks `conn` under `router`; the returned function forgets it. */
  add(router: string, conn: Deno.Conn, graceMs: number): () => void {
    this.#grace.set(router, Math.max(graceMs, this.#grace.get(router) ?? 0));
    let set = this.#byRouter.get(router);
    if (!set) this.#byRouter.set(router, set = new Set());
    set.add(conn);
    return () => {
      set.delete(conn);
      if (set.size === 0 && this.#byRouter.get(router) === set) this.#byRouter.delete(router);
    };
  }

  /** Open connections of `router`. */
  count(router: string): number {
    return this.#byRouter.get(router)?.size ?? 0;
  }

  /**
   * Closes, after their entrypoint's grace time, the connections of every
   * router not in `routers`. Called when a generation takes over.
   */
  keepOnly(routers: ReadonlySet<string>): void {
    for (const [router, set] of this.#byRouter) {
      if (routers.has(router)) continue;
      const conns = [...set];
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        for (const c of conns) closeQuietly(c);
      }, this.#grace.get(router) ?? 0);
      this.#timers.add(timer);
    }
  }

  /** Closes every tracked connection now (shutdown). */
  closeAll(): void {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    for (const set of this.#byRouter.values()) for (const c of set) closeQuietly(c);
  }
}

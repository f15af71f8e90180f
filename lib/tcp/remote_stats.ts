/**
 * TCP router counters of other isolates (data-plane workers), merged into
 * this one's. Each source sends snapshots of its own running totals; what
 * grew since its last snapshot is added to the shared counters, so they
 * stay monotonic when a source restarts from zero (its first snapshot
 * then counts whole). Open connections are a gauge: the latest value of
 * each source, summed.
 *
 * @module
 */

import type { TcpRouterCounters } from "./build.ts";

/** One router's totals in one isolate. */
export interface TcpStatsSnapshot {
  router: string;
  counters: TcpRouterCounters;
  open: number;
}

const FIELDS = ["connections", "refused", "failed", "bytesIn", "bytesOut"] as const;

export class RemoteTcpStats {
  /** Per source, per router: the counters of its last snapshot. */
  readonly #last = new Map<string, Map<string, TcpRouterCounters>>();
  readonly #open = new Map<string, Map<string, number>>();

  /** `counters` are the ones this isolate's routers count into (and the metrics read). */
  constructor(readonly counters: Map<string, TcpRouterCounters>) {}

  /** Adds what `source`'s totals grew by since its previous snapshot. */
  apply(source: string, snapshot: readonly TcpStatsSnapshot[]): void {
    const last = this.#last.get(source) ?? new Map<string, TcpRouterCounters>();
    const open = new Map<string, number>();
    for (const s of snapshot) {
      const before = last.get(s.router);
      // A total below the previous one means the source started over: count it whole.
      const restarted = before !== undefined && FIELDS.some((f) => s.counters[f] < before[f]);
      const into = this.#countersOf(s.router);
      for (const f of FIELDS) into[f] += s.counters[f] - (before && !restarted ? before[f] : 0);
      last.set(s.router, { ...s.counters });
      if (s.open > 0) open.set(s.router, s.open);
    }
    this.#last.set(source, last);
    this.#open.set(source, open);
  }

  /** A source went away: its open connections are gone, its next snapshot starts from zero. */
  forget(source: string): void {
    this.#last.delete(source);
    this.#open.delete(source);
  }

  /** Connections open through `router` in every source now. */
  open(router: string): number {
    let n = 0;
    for (const perRouter of this.#open.values()) n += perRouter.get(router) ?? 0;
    return n;
  }

  #countersOf(router: string): TcpRouterCounters {
    let c = this.counters.get(router);
    if (!c) {
      this.counters.set(
        router,
        c = { connections: 0, refused: 0, failed: 0, bytesIn: 0, bytesOut: 0 },
      );
    }
    return c;
  }
}

/**
 * How the cluster looks from one node: the `/api/cluster` status plus its
 * role history and counters. One shape, read by the cluster API, the
 * dashboard and metrics alike.
 *
 * @module
 */

import type { RefusalReason } from "./transport_auth.ts";

/** Role as the API names it. */
export type ApiRole = "manager" | "worker" | "candidate";

/** `/api/cluster` payload. */
export interface ClusterStatus {
  id: string;
  address: string;
  role: ApiRole;
  term: number;
  manager: { nodeId: string | null; address: string; term: number } | null;
  peers: { address: string; lastContact: string | null; reachable: boolean }[];
}

/** Counters at zero (a new node, or an instance without a cluster). */
export function emptyClusterCounters(): ClusterCounters {
  return {
    elections: 0,
    rejected: {
      unauthenticated: 0,
      malformed: 0,
      stale: 0,
      forged: 0,
      replayed: 0,
      overloaded: 0,
      badRequest: 0,
    },
  };
}

export interface ClusterCounters {
  /** Elections this node started (became candidate). */
  elections: number;
  /** Peer messages refused, by reason. */
  rejected: Record<RefusalReason | "badRequest", number>;
}

/** How many role changes a node remembers. */
export const ROLE_HISTORY = 50;

/** One role change, newest last in a history. */
export interface RoleChange {
  /** ISO 8601. */
  time: string;
  /** The role before; null for the first entry. */
  from: ApiRole | null;
  role: ApiRole;
  term: number;
  reason: string;
}

/** A node's view of the cluster. */
export interface ClusterView extends ClusterStatus {
  /** False without `[cluster]`: a standalone instance is its own manager. */
  clustered: boolean;
  /** True once this node is manager and holds the leader record. */
  isManager: boolean;
  roleChanges: RoleChange[];
  counters: ClusterCounters;
  /** Same as `counters.elections`, for `portico_cluster_elections_total`. */
  elections: number;
}

/** The last {@linkcode ROLE_HISTORY} role changes. */
export class RoleHistory {
  readonly #changes: RoleChange[] = [];

  record(role: ApiRole, term: number, reason: string, at: Date): void {
    const from = this.#changes.at(-1)?.role ?? null;
    this.#changes.push({ time: at.toISOString(), from, role, term, reason });
    if (this.#changes.length > ROLE_HISTORY) this.#changes.shift();
  }

  list(): RoleChange[] {
    return [...this.#changes];
  }
}

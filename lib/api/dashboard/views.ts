/**
 * The shapes `/api/portico/cluster` and `/api/portico/certificates` answer
 * with, from the instance's typed views: flat, with nulls where a value is
 * unknown, as the dashboard's script reads them.
 *
 * @module
 */

import type { CertificateView } from "../../acme/manager.ts";
import type { ClusterView } from "../../cluster/view.ts";

/** A role change as the dashboard lists it. */
export interface DashboardRoleChange {
  time: string;
  from: string | null;
  to: string;
  term: number;
  reason?: string;
}

/** The cluster as the dashboard shows it. */
export interface DashboardCluster {
  /** False for a standalone instance (no `[cluster]`), which is its own manager. */
  enabled: boolean;
  id: string | null;
  address: string | null;
  role: string;
  term: number;
  manager: { nodeId: string | null; address: string; term: number } | null;
  peers: { address: string; lastContact: string | null; reachable: boolean }[];
  elections: number | null;
  rejected: Record<string, number>;
  roleChanges: DashboardRoleChange[];
}

/** One certificate as the dashboard shows it. */
export interface DashboardCertificate {
  domains: string[];
  issuer: string | null;
  notAfter: string | null;
  daysLeft: number | null;
  serial: string | null;
  resolver: string | null;
  renewal: string | null;
  lastError: string | null;
  failureKind?: string;
  problem?: unknown;
  nextAttempt?: string;
  readiness?: unknown;
  orderUrl?: string;
}

export interface DashboardCertificates {
  /** False when the instance serves no TLS at all. */
  enabled: boolean;
  certificates: DashboardCertificate[];
}

/** Without a cluster view: nothing to show. */
export const NO_CLUSTER: DashboardCluster = {
  enabled: false,
  id: null,
  address: null,
  role: "standalone",
  term: 0,
  manager: null,
  peers: [],
  elections: null,
  rejected: {},
  roleChanges: [],
};

export function dashboardCluster(view: ClusterView | undefined): DashboardCluster {
  if (!view) return NO_CLUSTER;
  return {
    enabled: view.clustered,
    id: view.id || null,
    address: view.address || null,
    role: view.role,
    term: view.term,
    manager: view.manager,
    peers: view.peers,
    elections: view.counters.elections,
    rejected: { ...view.counters.rejected },
    roleChanges: view.roleChanges.map((c) => ({
      time: c.time,
      from: c.from,
      to: c.role,
      term: c.term,
      ...(c.reason ? { reason: c.reason } : {}),
    })),
  };
}

export function dashboardCertificates(
  views: CertificateView[] | undefined,
  nowMs: number,
): DashboardCertificates {
  if (!views) return { enabled: false, certificates: [] };
  return {
    enabled: true,
    certificates: views.map((c) => {
      const notAfter = c.notAfter ?? null;
      return {
        domains: c.domains,
        issuer: c.issuer ?? null,
        notAfter,
        daysLeft: notAfter === null ? null : Math.floor((Date.parse(notAfter) - nowMs) / 86_400_000),
        serial: c.serial ?? null,
        resolver: c.resolver,
        renewal: c.state,
        lastError: c.lastError ?? null,
        ...(c.failureKind ? { failureKind: c.failureKind } : {}),
        ...(c.problem ? { problem: c.problem } : {}),
        ...(c.nextAttempt ? { nextAttempt: c.nextAttempt } : {}),
        ...(c.readiness ? { readiness: c.readiness } : {}),
        ...(c.orderUrl ? { orderUrl: c.orderUrl } : {}),
      };
    }),
  };
}

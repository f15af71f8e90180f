/**
 * Reads the `cluster` and `certificates` views other extensions register in
 * `InstanceState.views`, tolerating their absence and small differences of
 * shape, into the two shapes metrics and the dashboard use.
 *
 * Expected `cluster` view (lib/server/cluster_setup.ts `ClusterView`):
 * `{ clustered, id, address, role: "manager"|"worker"|"candidate", term,
 * manager: {nodeId, address, term} | null, peers: [{address, lastContact,
 * reachable}], counters?: {elections, rejected: {reason: n}},
 * roleChanges?: [{time, role (or to), from?, term, reason?}] }`. With
 * `clustered: false` the instance is standalone and its own manager.
 *
 * Expected `certificates` view: an array of certificates, or
 * `{ certificates: [...], lastError?, lastErrorTime? }`, each certificate
 * `{ domains: string[] | main+sans, issuer?, notAfter: ISO string | ms | Date,
 * serial?, resolver?, renewal?: string, lastError? }`.
 *
 * @module
 */

import type { InstanceState } from "../api/state.ts";

/** A role change, newest last. */
export interface RoleChange {
  time: string;
  from: string | null;
  to: string;
  term: number;
  reason?: string;
}

/** The cluster as metrics and the dashboard see it. */
export interface ClusterView {
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
  roleChanges: RoleChange[];
}

/** One certificate as metrics and the dashboard see it. */
export interface CertificateInfo {
  domains: string[];
  issuer: string | null;
  notAfter: string | null;
  daysLeft: number | null;
  serial: string | null;
  resolver: string | null;
  renewal: string | null;
  lastError: string | null;
  /** ACME (issue 16), passed through when present: how the last failure was classified. */
  failureKind?: string;
  /** The CA's problem document of the last failure. */
  problem?: unknown;
  nextAttempt?: string;
  /** The last readiness wait before validation (members, confirmation times). */
  readiness?: unknown;
  /** The journalled order in flight. */
  orderUrl?: string;
}

/** The certificates view, normalised. */
export interface CertificatesView {
  enabled: boolean;
  certificates: CertificateInfo[];
  lastError: string | null;
  lastErrorTime: string | null;
}

type Rec = Record<string, unknown>;
const isRec = (v: unknown): v is Rec => typeof v === "object" && v !== null && !Array.isArray(v);
const str = (v: unknown): string | null => (typeof v === "string" && v !== "" ? v : null);
const num = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);

function readView(state: Pick<InstanceState, "views">, name: string): unknown {
  const view = state.views.get(name);
  if (!view) return undefined;
  try {
    return view();
  } catch {
    // A view that throws is treated as absent rather than failing a scrape.
    return undefined;
  }
}

/** A standalone instance: the dashboard shows "no cluster", this node managing itself. */
export const NO_CLUSTER: ClusterView = {
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

/** The normalised cluster view, or {@linkcode NO_CLUSTER} when none is registered. */
export function clusterView(state: Pick<InstanceState, "views">): ClusterView {
  const raw = readView(state, "cluster");
  if (!isRec(raw)) return NO_CLUSTER;
  const counters = isRec(raw.counters) ? raw.counters : raw;
  const rejected: Record<string, number> = {};
  if (isRec(counters.rejected)) {
    for (const [k, v] of Object.entries(counters.rejected)) {
      if (num(v) !== null) rejected[k] = v as number;
    }
  }
  const manager = isRec(raw.manager)
    ? {
      nodeId: str(raw.manager.nodeId),
      address: String(raw.manager.address ?? ""),
      term: num(raw.manager.term) ?? 0,
    }
    : null;
  const peers = Array.isArray(raw.peers)
    ? raw.peers.filter(isRec).map((p) => ({
      address: String(p.address ?? ""),
      lastContact: str(p.lastContact),
      reachable: p.reachable === true,
    }))
    : [];
  const changes = raw.roleChanges ?? raw.recentRoleChanges;
  const roleChanges: RoleChange[] = [];
  if (Array.isArray(changes)) {
    for (const c of changes.filter(isRec)) {
      const to = str(c.to) ?? str(c.role) ?? "";
      roleChanges.push({
        time: str(c.time) ?? (num(c.time) !== null ? new Date(c.time as number).toISOString() : ""),
        from: str(c.from) ?? roleChanges[roleChanges.length - 1]?.to ?? null,
        to,
        term: num(c.term) ?? 0,
        ...(str(c.reason) ? { reason: c.reason as string } : {}),
      });
    }
  }
  return {
    enabled: raw.clustered !== false,
    id: str(raw.id) ?? str(raw.nodeId),
    address: str(raw.address),
    role: str(raw.role) ?? "unknown",
    term: num(raw.term) ?? 0,
    manager,
    peers,
    elections: num(counters.elections),
    rejected,
    roleChanges,
  };
}

function toIso(v: unknown): string | null {
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? null : v.toISOString();
  if (typeof v === "number" && Number.isFinite(v)) return new Date(v).toISOString();
  if (typeof v === "string") {
    const t = Date.parse(v);
    return Number.isNaN(t) ? null : new Date(t).toISOString();
  }
  return null;
}

function domainsOf(c: Rec): string[] {
  if (Array.isArray(c.domains)) return c.domains.filter((d): d is string => typeof d === "string");
  const d = isRec(c.domain) ? c.domain : c;
  const main = str(d.main);
  const sans = Array.isArray(d.sans)
    ? d.sans.filter((s): s is string => typeof s === "string")
    : [];
  return main ? [main, ...sans] : sans;
}

/** The normalised certificates view at `nowMs`; `enabled` is false when none is registered. */
export function certificatesView(
  state: Pick<InstanceState, "views">,
  nowMs: number,
): CertificatesView {
  const raw = readView(state, "certificates");
  if (raw === undefined) {
    return { enabled: false, certificates: [], lastError: null, lastErrorTime: null };
  }
  const list = Array.isArray(raw)
    ? raw
    : isRec(raw) && Array.isArray(raw.certificates)
    ? raw.certificates
    : [];
  const certificates = list.filter(isRec).map((c): CertificateInfo => {
    const notAfter = toIso(c.notAfter ?? c.expires ?? c.validTo);
    return {
      domains: domainsOf(c),
      issuer: str(c.issuer),
      notAfter,
      daysLeft: notAfter === null ? null : Math.floor((Date.parse(notAfter) - nowMs) / 86_400_000),
      serial: str(c.serial),
      resolver: str(c.resolver) ?? str(c.certResolver),
      renewal: str(c.renewal) ?? str(c.renewalState) ?? str(c.state),
      lastError: str(c.lastError),
      ...(str(c.failureKind) ? { failureKind: str(c.failureKind)! } : {}),
      ...(isRec(c.problem) ? { problem: c.problem } : {}),
      ...(str(c.nextAttempt) ? { nextAttempt: str(c.nextAttempt)! } : {}),
      ...(isRec(c.readiness) ? { readiness: c.readiness } : {}),
      ...(str(c.orderUrl) ? { orderUrl: str(c.orderUrl)! } : {}),
    };
  });
  const top = isRec(raw) ? raw : {};
  return {
    enabled: true,
    certificates,
    lastError: str(top.lastError) ?? str(top.lastAcmeError),
    lastErrorTime: toIso(top.lastErrorTime),
  };
}

/** The `acme` view (lib/server/tls_setup.ts), normalised: failed orders by resolver. */
export function acmeFailures(state: Pick<InstanceState, "views">): Record<string, number> | null {
  const raw = readView(state, "acme");
  if (!isRec(raw)) return null;
  const out: Record<string, number> = {};
  if (isRec(raw.failuresByResolver)) {
    for (const [k, v] of Object.entries(raw.failuresByResolver)) {
      if (num(v) !== null) out[k] = v as number;
    }
  }
  return out;
}

/**
 * Remembers role changes seen by sampling the cluster view, for a cluster
 * extension that does not report its own history. Keeps the newest `limit`.
 */
export class RoleChangeTracker {
  readonly #changes: RoleChange[] = [];
  #last: string | null = null;
  constructor(private readonly limit = 20) {}

  /** Records a change when `view`'s role or term differs from the last sample. */
  sample(view: ClusterView, now: Date): void {
    if (!view.enabled) return;
    const key = `${view.role}/${view.term}`;
    if (key === this.#last) return;
    const from = this.#last === null ? null : this.#last.split("/")[0];
    this.#last = key;
    this.#changes.push({ time: now.toISOString(), from, to: view.role, term: view.term });
    if (this.#changes.length > this.limit) this.#changes.shift();
  }

  /** The view's own history when it has one, else what was sampled. */
  merged(view: ClusterView): RoleChange[] {
    return view.roleChanges.length > 0 ? view.roleChanges : [...this.#changes];
  }
}

/**
 * Scrape-time metrics read from the instance's state: config reloads,
 * server health, open connections, certificate expiry and the cluster.
 * Nothing here runs on the request path.
 *
 * @module
 */

import type { InstanceState } from "../instance/state.ts";
import type { ReloadStatus } from "../contracts.ts";
import { formatFamily, type Sample } from "./exposition.ts";
import type { RequestMetrics } from "./request_metrics.ts";
import type { TcpGeneration } from "../tcp/build.ts";

/** Remembers when reloads last succeeded and failed (the watcher keeps only the latest). */
export class ReloadTimes {
  lastSuccess?: Date;
  lastFailure?: Date;
  /** Feed every `onReload` status here. */
  observe(status: ReloadStatus): void {
    if (status.success) this.lastSuccess = status.time;
    else this.lastFailure = status.time;
  }
}

const CLUSTER_ROLES = ["manager", "worker", "candidate"];

const seconds = (d: Date) => d.getTime() / 1000;

/** Renders every state-derived family. `nowMs` is wall-clock time. */
export function renderStateMetrics(
  state: InstanceState,
  reloads: ReloadTimes,
  requests: RequestMetrics,
  nowMs: number,
): string {
  let out = "";
  const counts = state.reloadCounts();
  const last = state.lastReload();
  // The first generation is built before any reload is reported: it counts as
  // a success at start time.
  const lastSuccess = reloads.lastSuccess ?? (last?.success ? last.time : state.startDate);
  const lastFailure = reloads.lastFailure ?? (last && !last.success ? last.time : undefined);
  out += formatFamily("traefik_config_reloads_total", "counter", "Config reloads.", [
    { labels: [], value: counts.success },
  ]);
  out += formatFamily(
    "traefik_config_reloads_failure_total",
    "counter",
    "Config failure reloads.",
    [
      { labels: [], value: counts.failure },
    ],
  );
  out += formatFamily(
    "traefik_config_last_reload_success",
    "gauge",
    "Last config reload success.",
    [
      { labels: [], value: seconds(lastSuccess) },
    ],
  );
  if (lastFailure) {
    out += formatFamily(
      "traefik_config_last_reload_failure",
      "gauge",
      "Last config reload failure.",
      [
        { labels: [], value: seconds(lastFailure) },
      ],
    );
  }

  const open = new Map<string, Sample>();
  for (const name of Object.keys(state.staticConfig.entryPoints)) {
    open.set(`${name}\u0000http`, {
      labels: [["entrypoint", name], ["protocol", "http"]],
      value: 0,
    });
  }
  for (const o of requests.openConnections(nowMs)) {
    if (o.value === 0 && o.protocol !== "http") continue;
    open.set(`${o.entryPoint}\u0000${o.protocol}`, {
      labels: [["entrypoint", o.entryPoint], ["protocol", o.protocol]],
      value: o.value,
    });
  }
  out += formatFamily(
    "traefik_open_connections",
    "gauge",
    "How many open connections exist, by entryPoint and protocol (Portico: mean requests in flight over the last 10 s).",
    [...open.values()],
  );

  const generation = state.generation();
  out += renderTcpMetrics(generation.tcp.stats());

  const up: Sample[] = [];
  for (const [name, service] of generation.services) {
    if (name.endsWith("@internal")) continue;
    for (const [url, status] of Object.entries(service.serverStatus())) {
      up.push({ labels: [["service", name], ["url", url]], value: status === "UP" ? 1 : 0 });
    }
  }
  out += formatFamily(
    "traefik_service_server_up",
    "gauge",
    "service server is up, described by gauge value of 0 or 1.",
    up,
  );

  const notAfter: Sample[] = [];
  for (const c of state.views.certificates?.() ?? []) {
    if (c.notAfter === undefined) continue;
    notAfter.push({
      labels: [["cn", c.domains[0] ?? ""], ["sans", c.domains.join(",")], ["serial", c.serial ?? ""]],
      value: Date.parse(c.notAfter) / 1000,
    });
  }
  out += formatFamily(
    "traefik_tls_certs_not_after",
    "gauge",
    "Certificate expiration timestamp",
    notAfter,
  );

  // Registered only when ACME runs; one sample per resolver that failed.
  const acme = state.views.acme?.();
  if (acme) {
    out += formatFamily(
      "portico_acme_order_failures_total",
      "counter",
      "Failed ACME certificate orders, by resolver.",
      Object.entries(acme.failuresByResolver).map(([resolver, value]) => ({
        labels: [["resolver", resolver]],
        value,
      })),
    );
  }

  const cluster = state.views.cluster?.();
  if (cluster?.clustered) {
    out += formatFamily(
      "portico_cluster_role",
      "gauge",
      "This node's cluster role: 1 for the current one.",
      CLUSTER_ROLES.map((role) => ({
        labels: [["role", role]],
        value: cluster.role === role ? 1 : 0,
      })),
    );
    out += formatFamily("portico_cluster_term", "gauge", "This node's current election term.", [
      { labels: [], value: cluster.term },
    ]);
    out += formatFamily("portico_cluster_elections_total", "counter", "Elections this node started.", [
      { labels: [], value: cluster.elections },
    ]);
    out += formatFamily(
      "portico_cluster_peer_messages_rejected_total",
      "counter",
      "Peer messages this node refused, by reason.",
      Object.entries(cluster.counters.rejected).map(([reason, value]) => ({
        labels: [["reason", reason]],
        value,
      })),
    );
    out += formatFamily(
      "portico_cluster_peer_reachable",
      "gauge",
      "Whether a peer answered recently: 1 or 0.",
      cluster.peers.map((p) => ({ labels: [["peer", p.address]], value: p.reachable ? 1 : 0 })),
    );
  }
  return out;
}

/** Per TCP router: connections, refusals, dial failures, bytes each way, and connections open now. */
function renderTcpMetrics(stats: ReturnType<TcpGeneration["stats"]>): string {
  const of = (pick: (s: (typeof stats)[number]) => number): Sample[] =>
    stats.map((s) => ({ labels: [["router", s.router]], value: pick(s) }));
  return formatFamily("portico_tcp_router_connections_total", "counter", "TCP connections a router took.", of((s) => s.counters.connections)) +
    formatFamily("portico_tcp_router_refused_total", "counter", "TCP connections a router's middlewares refused.", of((s) => s.counters.refused)) +
    formatFamily("portico_tcp_router_backend_failures_total", "counter", "TCP connections whose backend could not be reached.", of((s) => s.counters.failed)) +
    formatFamily(
      "portico_tcp_router_bytes_total",
      "counter",
      "Bytes relayed by a TCP router; direction in is client to backend.",
      stats.flatMap((s) => [
        { labels: [["router", s.router], ["direction", "in"]], value: s.counters.bytesIn },
        { labels: [["router", s.router], ["direction", "out"]], value: s.counters.bytesOut },
      ]),
    ) +
    formatFamily("portico_tcp_router_open_connections", "gauge", "TCP connections open through a router now.", of((s) => s.open));
}

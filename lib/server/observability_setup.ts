/**
 * The metrics and dashboard extension (see lib/server/extension.ts).
 *
 * - `[metrics.prometheus]`: the request observer and `prometheus@internal`
 *   (`/metrics`); lib/server/internal.ts routes to it.
 * - `[api]`: `/api/portico/*` (provider connections, cluster, certificates)
 *   and, with `api.dashboard`, `dashboard@internal` (`/dashboard/`).
 *   `api@internal` is replaced by a wrapper that also serves those paths
 *   and otherwise delegates to the plain API, so a user router to
 *   `api@internal` (e.g. guarded by basicAuth, with `api.insecure = false`)
 *   reaches the dashboard too, as in Traefik.
 *
 * Views read: `cluster` and `certificates` (lib/metrics/instance_views.ts
 * documents the shapes); both may be absent.
 *
 * @module
 */

import { apiApp, internalService } from "../api/api.ts";
import { dashboardApp } from "../api/dashboard/dashboard_app.ts";
import { porticoApiApp } from "../api/dashboard/portico_api.ts";
import { clusterView, RoleChangeTracker } from "../metrics/instance_views.ts";
import { PROMETHEUS_SERVICE, PrometheusMetrics } from "../metrics/prometheus.ts";
import type { ProxyRequest, Service } from "../services/types.ts";
import type { ExtensionContext, ServerExtension } from "./extension.ts";

/** How often the cluster role is sampled for "recent role changes". */
const ROLE_SAMPLE_MS = 1000;

/** Undefined when neither metrics nor the API are configured. */
export function observabilityExtension(
  context: ExtensionContext,
): Promise<ServerExtension | undefined> {
  const { staticConfig, state } = context;
  const services = new Map<string, Service>();
  const extension: { -readonly [K in keyof ServerExtension]: ServerExtension[K] } = {
    name: "observability",
  };

  const prometheus = staticConfig.metrics?.prometheus;
  if (prometheus) {
    const metrics = new PrometheusMetrics(state, prometheus.buckets, {
      entryPoints: prometheus.addEntryPointsLabels ?? true,
      routers: prometheus.addRoutersLabels ?? true,
      services: prometheus.addServicesLabels ?? true,
    });
    services.set(PROMETHEUS_SERVICE, metrics.service());
    extension.onRequest = metrics.observer();
    extension.onReload = (status) => metrics.onReload(status);
    (extension as { metrics?: PrometheusMetrics }).metrics = metrics;
  }

  let timer: ReturnType<typeof setInterval> | undefined;
  if (staticConfig.api) {
    const roleChanges = new RoleChangeTracker();
    const portico = porticoApiApp(state, roleChanges);
    const dashboard = staticConfig.api.dashboard ? dashboardApp() : undefined;
    const earlierApi = [...context.earlier.values()]
      .map((e) => e.internalServices?.get("api@internal"))
      .filter((s): s is Service => s !== undefined)
      .pop();
    const plainApi = earlierApi ?? internalService("api@internal", apiApp(state));
    const porticoService = internalService("api@internal", portico);
    const dashboardService = dashboard
      ? internalService("dashboard@internal", dashboard)
      : undefined;
    // The cluster extension serves /api/cluster from its own service; reach it through api@internal too.
    const clusterService = context.earlier.get("cluster")?.internalServices?.get(
      "cluster@internal",
    );
    services.set("api@internal", {
      ...plainApi,
      name: "api@internal",
      serve(request: ProxyRequest) {
        const path = request.pathAndQuery;
        if (path.startsWith("/api/portico/")) return porticoService.serve(request);
        if (
          clusterService &&
          (path === "/api/cluster" || path.startsWith("/api/cluster/") ||
            path.startsWith("/api/cluster?"))
        ) {
          return clusterService.serve(request);
        }
        if (
          dashboardService &&
          (path === "/dashboard" || path.startsWith("/dashboard/") ||
            path.startsWith("/dashboard?"))
        ) {
          return dashboardService.serve(request);
        }
        return plainApi.serve(request);
      },
    });
    if (dashboardService) services.set("dashboard@internal", dashboardService);
    const interval = setInterval(
      () => roleChanges.sample(clusterView(state), new Date()),
      ROLE_SAMPLE_MS,
    );
    Deno.unrefTimer(interval);
    timer = interval;
  }

  if (services.size === 0) return Promise.resolve(undefined);
  extension.internalServices = services;
  extension.stop = () => {
    if (timer !== undefined) clearInterval(timer);
    return Promise.resolve();
  };
  return Promise.resolve(extension);
}

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
 * - `[tracing]`: the tracer the router generations use (lib/tracing/), and
 *   its export counters on `/metrics` when Prometheus is on.
 * - `[metrics.otlp]`: the request metrics pushed over OTLP.
 *
 * The OpenTelemetry code is imported only when one of those is configured.
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
import { qualify } from "../providers/merge.ts";
import type { RouterGeneration } from "../router/build.ts";
import type { ProxyRequest, Service } from "../services/types.ts";
import type { Tracer } from "../tracing/tracer.ts";
import type { OtlpMetricsPusher } from "../metrics/otlp_metrics.ts";
import type { Logger } from "../log/logger.ts";
import type { ExtensionContext, ServerExtension } from "./extension.ts";

/** How often the cluster role is sampled for "recent role changes". */
const ROLE_SAMPLE_MS = 1000;

/** How often an exporter that keeps failing is logged, at most. */
const EXPORT_ERROR_LOG_MS = 30_000;

/** Logs export failures, at most once per interval. */
function exportErrorLog(log: Logger, what: string): (message: string) => void {
  let last = -Infinity;
  return (message) => {
    const now = performance.now();
    if (now - last < EXPORT_ERROR_LOG_MS) return;
    last = now;
    log.warn(`${what} export failed; data is dropped until the receiver answers`, { error: message });
  };
}

/** The qualified service of a router in the current generation (rebuilt per generation). */
function serviceResolver(state: ExtensionContext["state"]): (router: string) => string | undefined {
  let generation: RouterGeneration | undefined;
  let serviceOf = new Map<string, string>();
  return (router) => {
    const current = state.generation();
    if (current !== generation) {
      generation = current;
      serviceOf = new Map();
      for (const [name, r] of current.routers) serviceOf.set(name, qualify(r.config.service, r.provider));
    }
    return serviceOf.get(router);
  };
}

/** Undefined when neither metrics, tracing nor the API are configured. */
export async function observabilityExtension(
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

  const stops: (() => Promise<void>)[] = [];
  let tracer: Tracer | undefined;
  if (staticConfig.tracing) {
    const { Tracer } = await import("../tracing/tracer.ts");
    tracer = await Tracer.start(staticConfig.tracing, exportErrorLog(context.log, "tracing"));
    extension.tracer = tracer;
    const started = tracer;
    stops.push(() => started.stop());
  }
  const prometheusMetrics = (extension as { metrics?: PrometheusMetrics }).metrics;
  if (tracer && prometheusMetrics) {
    const t = tracer;
    prometheusMetrics.extraFamilies = () => t.renderMetrics();
  }

  let pusher: OtlpMetricsPusher | undefined;
  if (staticConfig.metrics?.otlp) {
    const { OtlpMetricsPusher } = await import("../metrics/otlp_metrics.ts");
    pusher = await OtlpMetricsPusher.start(staticConfig.metrics.otlp, state, exportErrorLog(context.log, "metrics.otlp"));
    const push = pusher;
    const observe = push.observer(serviceResolver(state));
    const previous = extension.onRequest;
    extension.onRequest = previous
      ? (...args) => {
        previous(...args);
        observe(...args);
      }
      : observe;
    (extension as { otlpMetrics?: OtlpMetricsPusher }).otlpMetrics = push;
    stops.push(() => push.stop());
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

  if (services.size === 0 && stops.length === 0) return undefined;
  extension.internalServices = services;
  extension.stop = async () => {
    if (timer !== undefined) clearInterval(timer);
    for (const stop of stops) await stop().catch(() => {});
  };
  return extension;
}

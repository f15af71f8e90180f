/**
 * `api@internal` as an instance serves it: Traefik's API, plus the
 * `/api/portico/*` endpoints, `/api/cluster` and, with `api.dashboard`,
 * the dashboard. A user router to `api@internal` (e.g. guarded by
 * basicAuth, with `api.insecure = false`) reaches all of them, as in Traefik.
 *
 * @module
 */

import type { InstanceState } from "../instance/state.ts";
import type { ProxyRequest, Service } from "../services/types.ts";
import { apiApp, internalService } from "./api.ts";
import { dashboardApp } from "./dashboard/dashboard_app.ts";
import { porticoApiApp } from "./dashboard/portico_api.ts";

/** The API service and, with the dashboard on, `dashboard@internal`. */
export function apiServices(
  state: InstanceState,
  options: { dashboard: boolean; cluster?: Service },
): Map<string, Service> {
  const plainApi = internalService("api@internal", apiApp(state));
  const portico = internalService("api@internal", porticoApiApp(state));
  const dashboard = options.dashboard ? internalService("dashboard@internal", dashboardApp()) : undefined;
  const cluster = options.cluster;
  const under = (path: string, prefix: string) =>
    path === prefix || path.startsWith(prefix + "/") || path.startsWith(prefix + "?");
  const services = new Map<string, Service>([["api@internal", {
    ...plainApi,
    serve(request: ProxyRequest) {
      const path = request.pathAndQuery;
      if (path.startsWith("/api/portico/")) return portico.serve(request);
      if (cluster && under(path, "/api/cluster")) return cluster.serve(request);
      if (dashboard && under(path, "/dashboard")) return dashboard.serve(request);
      return plainApi.serve(request);
    },
  }]]);
  if (dashboard) services.set("dashboard@internal", dashboard);
  return services;
}

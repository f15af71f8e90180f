/**
 * Read-only JSON endpoints the dashboard needs beyond Traefik's API, under
 * `/api/portico/`: provider connection states and reload history, the
 * cluster, and certificates. Each reads `InstanceState` in memory.
 *
 * @module
 */

import { Hono } from "hono";
import type { InstanceState } from "../../instance/state.ts";
import { dashboardCertificates, dashboardCluster } from "./views.ts";

/**
 * The `/api/portico/*` app.
 *
 * - `GET /api/portico/overview`: `{version, startDate, lastReload, reloadCounts, providerConnections, providerErrors}`
 * - `GET /api/portico/cluster`: `DashboardCluster` (`enabled: false` without a cluster)
 * - `GET /api/portico/certificates`: `DashboardCertificates`
 */
export function porticoApiApp(
  state: InstanceState,
  now: () => number = Date.now,
): Hono {
  const app = new Hono();
  app.get("/api/portico/overview", (c) => {
    const last = state.lastReload();
    return c.json({
      version: state.version,
      startDate: state.startDate.toISOString(),
      lastReload: last
        ? {
          time: last.time.toISOString(),
          success: last.success,
          provider: last.provider ?? null,
          error: last.error ?? null,
        }
        : null,
      reloadCounts: state.reloadCounts(),
      providerConnections: state.providerConnections().map((p) => ({
        provider: p.provider,
        state: p.state,
        since: p.since.toISOString(),
        lastError: p.lastError ?? null,
      })),
      providerErrors: Object.fromEntries(state.providerErrors()),
    });
  });
  app.get("/api/portico/cluster", (c) => c.json(dashboardCluster(state.views.cluster?.())));
  app.get(
    "/api/portico/certificates",
    (c) => c.json(dashboardCertificates(state.views.certificates?.(), now())),
  );
  app.all("/api/portico/*", (c) => c.json({ message: "not found" }, 404));
  return app;
}

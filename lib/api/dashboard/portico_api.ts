/**
 * Read-only JSON endpoints the dashboard needs beyond Traefik's API, under
 * `/api/portico/`: provider connection states and reload history, the
 * cluster, and certificates. Each reads `InstanceState` in memory.
 *
 * @module
 */

import { Hono } from "hono";
import type { InstanceState } from "../state.ts";
import {
  certificatesView,
  clusterView,
  type RoleChangeTracker,
} from "../../metrics/instance_views.ts";

/**
 * The `/api/portico/*` app.
 *
 * - `GET /api/portico/overview`: `{version, startDate, lastReload, reloadCounts, providerConnections, providerErrors}`
 * - `GET /api/portico/cluster`: `ClusterView` (`enabled: false` without a cluster)
 * - `GET /api/portico/certificates`: `CertificatesView` (`enabled: false` without TLS/ACME)
 */
export function porticoApiApp(
  state: InstanceState,
  roleChanges: RoleChangeTracker,
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
  app.get("/api/portico/cluster", (c) => {
    const view = clusterView(state);
    roleChanges.sample(view, new Date(now()));
    return c.json({ ...view, roleChanges: roleChanges.merged(view) });
  });
  app.get("/api/portico/certificates", (c) => c.json(certificatesView(state, now())));
  app.all("/api/portico/*", (c) => c.json({ message: "not found" }, 404));
  return app;
}

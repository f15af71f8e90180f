/**
 * The `internal` provider: the routers and middlewares Portico creates from
 * the static config, as Traefik's `pkg/provider/traefik` does: the API,
 * dashboard, ping and metrics routers, and each entrypoint redirection as a
 * router with a `redirectScheme` middleware in front of `noop@internal`.
 *
 * @module
 */

import { type DynamicConfig, INTERNAL_ENTRYPOINT, type RouterConfig, type StaticConfig } from "../config/types.ts";
import { emptyDynamicConfig } from "../config/dynamic.ts";

/** Internal routers win over user routers, as in Traefik (MaxInt priority). */
const INTERNAL_PRIORITY = Number.MAX_SAFE_INTEGER - 1;

function router(rule: string, service: string, entryPoints: string[], priority = INTERNAL_PRIORITY): RouterConfig {
  return { rule, service, entryPoints, middlewares: [], priority };
}

/**
 * The internal provider's snapshot for a static config. Routers whose
 * internal service this instance does not have (`available`) are left out;
 * `extra` are the routers other parts add (the ACME HTTP-01 router).
 */
export function internalConfig(
  staticConfig: StaticConfig,
  available: ReadonlySet<string>,
  extra: Readonly<Record<string, RouterConfig>> = {},
): DynamicConfig {
  const config = emptyDynamicConfig();
  const routers = config.http.routers;
  if (staticConfig.api?.insecure) {
    routers["api"] = router("PathPrefix(`/api`)", "api@internal", [INTERNAL_ENTRYPOINT]);
    // Above the general `/api` router, so /api/cluster is the cluster's.
    if (available.has("cluster@internal")) {
      routers["cluster"] = router("PathPrefix(`/api/cluster`)", "cluster@internal", [INTERNAL_ENTRYPOINT], Number.MAX_SAFE_INTEGER);
    }
    if (staticConfig.api.dashboard && available.has("dashboard@internal")) {
      routers["dashboard"] = router("PathPrefix(`/`)", "dashboard@internal", [INTERNAL_ENTRYPOINT], INTERNAL_PRIORITY - 2);
    }
  }
  if (staticConfig.ping) {
    routers["ping"] = router("PathPrefix(`/ping`)", "ping@internal", [staticConfig.ping.entryPoint]);
  }
  if (staticConfig.metrics?.prometheus && available.has("prometheus@internal")) {
    routers["prometheus"] = router("PathPrefix(`/metrics`)", "prometheus@internal", [
      staticConfig.metrics.prometheus.entryPoint,
    ]);
  }
  for (const [name, ep] of Object.entries(staticConfig.entryPoints)) {
    const redirect = ep.http.redirections?.entryPoint;
    if (!redirect) continue;
    const routerName = `${name}-to-${redirect.to}`;
    const middleware = `redirect-${routerName}`;
    routers[routerName] = {
      ...router("HostRegexp(`^.+$`)", "noop@internal", [name], redirect.priority || INTERNAL_PRIORITY - 1),
      middlewares: [middleware],
    };
    const port = staticConfig.entryPoints[redirect.to]?.port;
    config.http.middlewares[middleware] = {
      redirectScheme: {
        scheme: redirect.scheme,
        permanent: redirect.permanent,
        ...(port ? { port: String(port) } : {}),
      },
    };
  }
  Object.assign(routers, extra);
  return config;
}

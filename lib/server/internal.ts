/**
 * The `internal` provider: routers and services that Portico creates from
 * the static config, as Traefik does (`api@internal`, `ping@internal`,
 * entrypoint redirections).
 *
 * @module
 */

import type { DynamicConfig, RouterConfig, StaticConfig } from "../config/types.ts";
import { emptyDynamicConfig } from "../config/dynamic.ts";
import type { ProxyRequest, Service } from "../services/types.ts";

/** Internal routers win over user routers, as in Traefik (MaxInt priority). */
const INTERNAL_PRIORITY = Number.MAX_SAFE_INTEGER - 1;

function router(rule: string, service: string, entryPoints: string[], priority = INTERNAL_PRIORITY): RouterConfig {
  return { rule, service, entryPoints, middlewares: [], priority };
}

/**
 * The internal provider's snapshot for a static config. Routers whose
 * internal service this build does not have (`available`) are left out.
 */
export function internalConfig(staticConfig: StaticConfig, available: ReadonlySet<string>): DynamicConfig {
  const config = emptyDynamicConfig();
  const routers = config.http.routers;
  if (staticConfig.api?.insecure) {
    routers["api"] = router("PathPrefix(`/api`)", "api@internal", ["traefik"]);
    if (staticConfig.api.dashboard && available.has("dashboard@internal")) {
      routers["dashboard"] = router("PathPrefix(`/`)", "dashboard@internal", ["traefik"], INTERNAL_PRIORITY - 2);
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
    routers[`${name}-to-${redirect.to}`] = router(
      "HostRegexp(`^.+$`)",
      `redirect-${name}-to-${redirect.to}@internal`,
      [name],
      redirect.priority || INTERNAL_PRIORITY - 1,
    );
  }
  return config;
}

/** Redirect status as Traefik picks it: 301/302 for GET, 308/307 otherwise. */
export function redirectStatus(permanent: boolean, method: string): number {
  if (permanent) return method === "GET" ? 301 : 308;
  return method === "GET" ? 302 : 307;
}

/** The services behind the entrypoint redirection routers. */
export function redirectServices(staticConfig: StaticConfig): Map<string, Service> {
  const out = new Map<string, Service>();
  for (const [name, ep] of Object.entries(staticConfig.entryPoints)) {
    const redirect = ep.http.redirections?.entryPoint;
    if (!redirect) continue;
    const target = staticConfig.entryPoints[redirect.to];
    const port = target?.port;
    const defaultPort = redirect.scheme === "https" ? 443 : 80;
    const serviceName = `redirect-${name}-to-${redirect.to}@internal`;
    out.set(serviceName, {
      name: serviceName,
      serve(request: ProxyRequest) {
        const host = request.host.replace(/:\d+$/, "").replace(/^\[(.*)\]$/, "[$1]");
        const portPart = port && port !== defaultPort ? `:${port}` : "";
        const location = `${redirect.scheme}://${host}${portPart}${request.pathAndQuery}`;
        return Promise.resolve(
          new Response(null, {
            status: redirectStatus(redirect.permanent, request.request.method),
            headers: { location },
          }),
        );
      },
      available: () => true,
      serverStatus: () => ({}),
      start() {},
      stop() {},
    });
  }
  return out;
}

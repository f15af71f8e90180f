/**
 * Merges the snapshots of every provider into one configuration whose names
 * are qualified as `name@provider`, as Traefik does. A reference without a
 * suffix means the referring object's own provider.
 *
 * @module
 */

import type {
  DynamicConfig,
  MiddlewareConfig,
  RouterConfig,
  ServersTransportConfig,
  ServiceConfig,
  TcpMiddlewareConfig,
  TcpRouterConfig,
  TcpServersTransportConfig,
  TcpServiceConfig,
  TLSCertificateConfig,
  TLSOptionsConfig,
} from "../config/types.ts";

/** A config object under its qualified name. */
export interface Qualified<T> {
  /** e.g. `app@file`. */
  name: string;
  provider: string;
  config: T;
}

export interface MergedConfig {
  routers: Map<string, Qualified<RouterConfig>>;
  services: Map<string, Qualified<ServiceConfig>>;
  middlewares: Map<string, Qualified<MiddlewareConfig>>;
  serversTransports: Map<string, Qualified<ServersTransportConfig>>;
  tcp: {
    routers: Map<string, Qualified<TcpRouterConfig>>;
    services: Map<string, Qualified<TcpServiceConfig>>;
    middlewares: Map<string, Qualified<TcpMiddlewareConfig>>;
    serversTransports: Map<string, Qualified<TcpServersTransportConfig>>;
  };
  tls: {
    certificates: (TLSCertificateConfig & { provider: string })[];
    options: Map<string, TLSOptionsConfig>;
    stores: DynamicConfig["tls"]["stores"];
  };
}

/** `name` qualified with `provider` unless it already carries an `@provider`. */
export function qualify(name: string, provider: string): string {
  return name.includes("@") ? name : `${name}@${provider}`;
}

/** Providers are merged in name order so the result does not depend on arrival order. */
export function mergeProviders(snapshots: ReadonlyMap<string, DynamicConfig>): MergedConfig {
  const merged: MergedConfig = {
    routers: new Map(),
    services: new Map(),
    middlewares: new Map(),
    serversTransports: new Map(),
    tcp: {
      routers: new Map(),
      services: new Map(),
      middlewares: new Map(),
      serversTransports: new Map(),
    },
    tls: { certificates: [], options: new Map(), stores: {} },
  };
  const put = <T>(
    into: Map<string, Qualified<T>>,
    from: Record<string, T> | undefined,
    provider: string,
  ) => {
    for (const [name, c] of Object.entries(from ?? {})) {
      into.set(`${name}@${provider}`, { name: `${name}@${provider}`, provider, config: c });
    }
  };
  for (const provider of [...snapshots.keys()].sort()) {
    const config = snapshots.get(provider)!;
    for (const [name, c] of Object.entries(config.http.routers)) {
      merged.routers.set(`${name}@${provider}`, { name: `${name}@${provider}`, provider, config: c });
    }
    for (const [name, c] of Object.entries(config.http.services)) {
      merged.services.set(`${name}@${provider}`, { name: `${name}@${provider}`, provider, config: c });
    }
    for (const [name, c] of Object.entries(config.http.middlewares)) {
      merged.middlewares.set(`${name}@${provider}`, { name: `${name}@${provider}`, provider, config: c });
    }
    for (const [name, c] of Object.entries(config.http.serversTransports ?? {})) {
      merged.serversTransports.set(`${name}@${provider}`, { name: `${name}@${provider}`, provider, config: c });
    }
    put(merged.tcp.routers, config.tcp?.routers, provider);
    put(merged.tcp.services, config.tcp?.services, provider);
    put(merged.tcp.middlewares, config.tcp?.middlewares, provider);
    put(merged.tcp.serversTransports, config.tcp?.serversTransports, provider);
    for (const cert of config.tls.certificates) merged.tls.certificates.push({ ...cert, provider });
    // TLS options and stores are global in Traefik; the first provider to define a name wins.
    for (const [name, o] of Object.entries(config.tls.options)) {
      if (!merged.tls.options.has(name)) merged.tls.options.set(name, o);
    }
    for (const [name, s] of Object.entries(config.tls.stores)) {
      merged.tls.stores[name] ??= s;
    }
  }
  return merged;
}

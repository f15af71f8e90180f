/**
 * Builds every service of a merged config, resolving the references of
 * weighted/failover/mirroring services. A service whose references are
 * missing or cyclic is not built; its error names the reference.
 *
 * @module
 */

import type { ServersTransportConfig, ServiceConfig } from "../config/types.ts";
import { type Qualified, qualify } from "../providers/merge.ts";
import type { UpstreamPools } from "../proxy/pools.ts";
import { FailoverService, MirroringService, WeightedService } from "./composites.ts";
import { type HealthLogger, LoadBalancerService } from "./load_balancer.ts";
import type { Service } from "./types.ts";

export interface BuiltServices {
  services: Map<string, Service>;
  /** Qualified service name → why it could not be built. */
  errors: Map<string, string>;
}

/**
 * @example
 * ```ts
 * const { services, errors } = buildServices(merged.services, merged.serversTransports, pools, internal);
 * ```
 */
export function buildServices(
  configs: ReadonlyMap<string, Qualified<ServiceConfig>>,
  transports: ReadonlyMap<string, Qualified<ServersTransportConfig>>,
  pools: UpstreamPools,
  internal: ReadonlyMap<string, Service>,
  onHealth?: HealthLogger,
): BuiltServices {
  const services = new Map<string, Service>(internal);
  const errors = new Map<string, string>();
  const building = new Set<string>();

  const build = (name: string, path: string[]): Service => {
    const existing = services.get(name);
    if (existing) return existing;
    if (errors.has(name)) throw new Error(errors.get(name));
    const entry = configs.get(name);
    if (!entry) throw new Error(`service "${name}" does not exist`);
    if (building.has(name)) throw new Error(`service cycle: ${[...path, name].join(" -> ")}`);
    building.add(name);
    try {
      const child = (ref: string) => build(qualify(ref, entry.provider), [...path, name]);
      const c = entry.config;
      let service: Service;
      if ("loadBalancer" in c) {
        let transport: ServersTransportConfig | undefined;
        if (c.loadBalancer.serversTransport) {
          const ref = qualify(c.loadBalancer.serversTransport, entry.provider);
          transport = transports.get(ref)?.config;
          if (!transport) throw new Error(`serversTransport "${ref}" does not exist`);
        }
        service = new LoadBalancerService(name, c.loadBalancer, pools.get(transport), onHealth);
      } else if ("weighted" in c) {
        service = new WeightedService(
          name,
          c.weighted.services.map((s) => ({ service: child(s.name), weight: s.weight })),
          c.weighted.sticky?.cookie,
        );
      } else if ("failover" in c) {
        service = new FailoverService(name, child(c.failover.service), child(c.failover.fallback), c.failover.errors);
      } else {
        service = new MirroringService(
          name,
          child(c.mirroring.service),
          c.mirroring.mirrors.map((m) => ({ service: child(m.name), percent: m.percent })),
          c.mirroring,
        );
      }
      services.set(name, service);
      return service;
    } finally {
      building.delete(name);
    }
  };

  for (const name of configs.keys()) {
    try {
      build(name, []);
    } catch (err) {
      errors.set(name, (err as Error).message);
    }
  }
  return { services, errors };
}

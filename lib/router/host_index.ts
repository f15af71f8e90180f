/**
 * Dispatch by Host before any rule runs: routes that require specific hosts
 * are listed under each of those hosts, merged with the host-agnostic routes,
 * in priority order. A request then evaluates only the routes that could
 * match its host, so 10,000 Host routers cost about what 10 do.
 *
 * @module
 */

import type { Context } from "hono";
import type { PorticoEnv } from "../middlewares/types.ts";
import type { CompiledRule } from "../rules/mod.ts";
import type { FastServe } from "../services/types.ts";
import type { RouteTraceInfo } from "../tracing/request_trace.ts";

export interface Route {
  name: string;
  priority: number;
  rule: CompiledRule;
  run: (c: Context<PorticoEnv>) => Promise<Response>;
  /** Set when the route can forward on bytes (no Web objects): see `FastServe`. */
  fast?: FastServe;
  /** What tracing records for this route's Router span. */
  trace?: RouteTraceInfo;
}

export interface HostIndex {
  /** Routes to try for a request to `host` (lowercase, no port), highest priority first. */
  candidates(host: string): readonly Route[];
}

/** Higher priority first; ties broken by name so the order never depends on map order. */
export function compareRoutes(a: Route, b: Route): number {
  return b.priority - a.priority || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

export function buildHostIndex(routes: Route[]): HostIndex {
  const agnostic: Route[] = [];
  const byHost = new Map<string, Route[]>();
  for (const route of routes) {
    const hosts = route.rule.hosts;
    if (!hosts) {
      agnostic.push(route);
      continue;
    }
    for (const h of hosts) {
      let list = byHost.get(h);
      if (!list) byHost.set(h, list = []);
      list.push(route);
    }
  }
  agnostic.sort(compareRoutes);
  for (const [host, list] of byHost) {
    byHost.set(host, [...list, ...agnostic].sort(compareRoutes));
  }
  return {
    candidates(host: string) {
      return byHost.get(host) ?? agnostic;
    },
  };
}

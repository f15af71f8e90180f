/**
 * One generation of TCP routing, built whole from the merged configuration
 * beside the HTTP routers: per entrypoint, the dispatch table of TCP
 * routes (each a compiled rule in front of its middlewares' gates and its
 * service), and the state of every TCP router, service and middleware for
 * the API. A bad router is disabled alone, with its errors.
 *
 * @module
 */

import { INTERNAL_ENTRYPOINT, type StaticConfig, type TcpRouterConfig } from "../config/types.ts";
import type { MergedConfig } from "../providers/merge.ts";
import { qualify } from "../providers/merge.ts";
import { parseDomains } from "../rules/parser.ts";
import { type CompiledTcpRule, compileTcpRule } from "../rules/tcp.ts";
import { closeQuietly } from "../engine/socket.ts";
import type { TcpConnections } from "./connections.ts";
import type { DispatchTable } from "./dispatch.ts";
import { buildTcpMiddleware, type TcpGate, tcpMiddlewareType } from "./middlewares.ts";
import { buildTcpServices, serveTcp, type TcpClient, type TcpService } from "./service.ts";
import { compileTerminationOptions, type TerminationOptions } from "../tls/options.ts";

/** How a TCP route takes its connections. */
export type TcpRouteKind = "plain" | "passthrough" | "terminate";

/** A routable TCP route. */
export interface TcpRoute {
  readonly name: string;
  readonly kind: TcpRouteKind;
  readonly rule: CompiledTcpRule;
  /** A terminating route's `tls.options` (its own, else `default`), applied where its TLS ends. */
  readonly tlsOptions?: TerminationOptions;
  /** Takes the connection over; resolves when it is closed, never rejects (failures close the client and are counted). */
  serve(client: TcpClient): Promise<void>;
}

export interface TcpRouterState {
  name: string;
  provider: string;
  config: TcpRouterConfig;
  entryPoints: string[];
  priority: number;
  status: "enabled" | "disabled";
  errors: string[];
}

export interface TcpServiceState {
  name: string;
  provider: string;
  type: string;
  status: "enabled" | "disabled";
  errors: string[];
  usedBy: string[];
}

export interface TcpMiddlewareState {
  name: string;
  provider: string;
  type: string;
  /** The middleware's options (what is under its type key). */
  config: Record<string, unknown>;
  status: "enabled" | "disabled";
  errors: string[];
  usedBy: string[];
}

/** Per router: connections accepted, refused by a middleware, failed to dial, and bytes each way. */
export interface TcpRouterCounters {
  connections: number;
  refused: number;
  failed: number;
  bytesIn: number;
  bytesOut: number;
}

export interface TcpGeneration {
  readonly routers: ReadonlyMap<string, TcpRouterState>;
  readonly services: ReadonlyMap<string, TcpServiceState>;
  readonly middlewares: ReadonlyMap<string, TcpMiddlewareState>;
  /** The dispatch table of `entryPoint`, or undefined when no TCP route is on it. */
  entryPoint(entryPoint: string): DispatchTable<TcpRoute> | undefined;
  /** A terminating route by name on `entryPoint` (the TLS side looks it up after the handshake). */
  terminating(entryPoint: string, router: string): TcpRoute | undefined;
  /** Called when this generation takes over: connections of removed routers close after their grace time. */
  start(): void;
  /** Per router ever seen by this process: its counters and its open connections now. */
  stats(): { router: string; counters: TcpRouterCounters; open: number }[];
}

export interface TcpBuildOptions {
  merged: MergedConfig;
  staticConfig: StaticConfig;
  /** Shared across generations (connections outlive a reload). */
  connections: TcpConnections;
  /** Shared across generations too, so counters survive reloads. */
  counters: Map<string, TcpRouterCounters>;
  /** Connections open in other isolates (data-plane workers), added to this one's. */
  remote?: { open(router: string): number };
  onEvent?: (event: string, fields: Record<string, unknown>) => void;
}

/** Every entrypoint TCP routers use when they name none: all but `traefik`. */
function defaultEntryPoints(staticConfig: StaticConfig): string[] {
  return Object.keys(staticConfig.entryPoints).filter((e) => e !== INTERNAL_ENTRYPOINT);
}

/** HTTPS routers per entrypoint, as the SNI names their Host rules give (Traefik's HTTPS muxer). */
function httpsByEntryPoint(
  merged: MergedConfig,
  staticConfig: StaticConfig,
): Map<string, DispatchTable["https"]> {
  const all = Object.keys(staticConfig.entryPoints);
  const names = new Map<string, CompiledTcpRule[]>();
  const catchAll = new Set<string>();
  for (const { config, provider } of merged.routers.values()) {
    if (provider === "internal") continue;
    const eps = config.entryPoints.length ? config.entryPoints : all.filter((e) => e !== INTERNAL_ENTRYPOINT);
    for (const ep of eps) {
      const epConfig = staticConfig.entryPoints[ep];
      if (!epConfig || !(config.tls || epConfig.http.tls)) continue;
      const domains = parseDomains(config.rule);
      if (domains.length === 0) catchAll.add(ep);
      const list = names.get(ep) ?? [];
      names.set(ep, list);
      for (const d of domains) {
        try {
          list.push(compileTcpRule(`HostSNI(\`${d}\`)`));
        } catch { /* not a name a ClientHello can carry */ }
      }
    }
  }
  const out = new Map<string, DispatchTable["https"]>();
  for (const ep of all) {
    const list = names.get(ep) ?? [];
    out.set(ep, {
      names: (serverName) => list.some((r) => r.match({ serverName, clientIp: "", alpn: [] })),
      catchAll: catchAll.has(ep),
      any: names.has(ep),
    });
  }
  return out;
}

/** Builds the TCP side of a generation. */
export function buildTcp(options: TcpBuildOptions): TcpGeneration {
  const { merged, staticConfig, connections, counters } = options;
  const { services, errors: serviceErrors } = buildTcpServices(
    merged.tcp.services,
    merged.tcp.serversTransports,
  );
  const serviceStates = new Map<string, TcpServiceState>();
  for (const [name, entry] of merged.tcp.services) {
    const error = serviceErrors.get(name);
    serviceStates.set(name, {
      name,
      provider: entry.provider,
      type: Object.keys(entry.config)[0],
      status: error ? "disabled" : "enabled",
      errors: error ? [error] : [],
      usedBy: [],
    });
  }
  const middlewareStates = new Map<string, TcpMiddlewareState>();
  const gates = new Map<string, TcpGate>();
  for (const [name, entry] of merged.tcp.middlewares) {
    const state: TcpMiddlewareState = {
      name,
      provider: entry.provider,
      type: tcpMiddlewareType(entry.config),
      config: Object.values(entry.config)[0] as Record<string, unknown>,
      status: "enabled",
      errors: [],
      usedBy: [],
    };
    try {
      gates.set(name, buildTcpMiddleware(name, entry.config));
    } catch (err) {
      state.status = "disabled";
      state.errors.push((err as Error).message);
    }
    middlewareStates.set(name, state);
  }

  const https = httpsByEntryPoint(merged, staticConfig);
  const tables = new Map<string, { plain: TcpRoute[]; tls: TcpRoute[] }>();
  const routerStates = new Map<string, TcpRouterState>();
  for (const [name, entry] of merged.tcp.routers) {
    const config = entry.config;
    const errors: string[] = [];
    const eps = config.entryPoints.length ? config.entryPoints : defaultEntryPoints(staticConfig);
    for (const ep of eps) {
      if (!staticConfig.entryPoints[ep]) errors.push(`entryPoint "${ep}" does not exist`);
    }
    let rule: CompiledTcpRule | undefined;
    try {
      rule = compileTcpRule(config.rule, config.priority);
      // As Traefik: only the first HostSNI decides (HostSNI(`*`) first is the non-TLS exception).
      if (!config.tls && rule.hostSNIs.length > 0 && rule.hostSNIs[0] !== "*") {
        errors.push(
          `invalid rule ${
            JSON.stringify(config.rule)
          }: it has a HostSNI matcher, but the router has no tls`,
        );
      }
    } catch (err) {
      errors.push((err as Error).message);
    }
    const { options: tlsOptions, error: tlsError } = routeTlsOptions(config, merged);
    if (tlsError) errors.push(tlsError);
    const serviceName = qualify(config.service, entry.provider);
    const service = services.get(serviceName);
    if (!service) {
      errors.push(serviceErrors.get(serviceName) ?? `TCP service "${serviceName}" does not exist`);
    } else serviceStates.get(serviceName)?.usedBy.push(name);
    const chain: TcpGate[] = [];
    for (const m of config.middlewares.map((m) => qualify(m, entry.provider))) {
      const state = middlewareStates.get(m);
      const gate = gates.get(m);
      if (!state) errors.push(`TCP middleware "${m}" does not exist`);
      else if (!gate) errors.push(state.errors[0]);
      else {
        chain.push(gate);
        state.usedBy.push(name);
      }
    }
    routerStates.set(name, {
      name,
      provider: entry.provider,
      config,
      entryPoints: eps,
      priority: rule?.priority ?? config.priority,
      status: errors.length ? "disabled" : "enabled",
      errors,
    });
    if (errors.length || !rule || !service) continue;
    const kind: TcpRouteKind = !config.tls
      ? "plain"
      : config.tls.passthrough
      ? "passthrough"
      : "terminate";
    for (const ep of eps) {
      const grace = staticConfig.entryPoints[ep].transport.lifeCycle.graceTimeOut;
      const route = makeRoute(
        name,
        kind,
        rule,
        chain,
        service,
        grace,
        connections,
        counterFor(counters, name),
        options.onEvent,
        kind === "terminate" ? tlsOptions : undefined,
      );
      const table = tables.get(ep) ?? { plain: [], tls: [] };
      tables.set(ep, table);
      (kind === "plain" ? table.plain : table.tls).push(route);
    }
  }
  const byPriority = (a: TcpRoute, b: TcpRoute) => b.rule.priority - a.rule.priority;
  const dispatch = new Map<string, DispatchTable<TcpRoute>>();
  for (const [ep, t] of tables) {
    dispatch.set(ep, {
      plain: t.plain.sort(byPriority),
      tls: t.tls.sort(byPriority),
      https: https.get(ep)!,
    });
  }
  const enabled = new Set(
    [...routerStates.values()].filter((r) => r.status === "enabled").map((r) => r.name),
  );
  return {
    routers: routerStates,
    services: serviceStates,
    middlewares: middlewareStates,
    entryPoint: (ep) => dispatch.get(ep),
    terminating: (ep, router) =>
      dispatch.get(ep)?.tls.find((r) => r.name === router && r.kind === "terminate"),
    start: () => connections.keepOnly(enabled),
    stats: () =>
      [...counters].map(([router, c]) => ({
        router,
        counters: c,
        open: connections.count(router) + (options.remote?.open(router) ?? 0),
      })),
  };
}

/**
 * The TLS options of a TLS TCP router: those it names (`name@provider` is
 * looked up by name, as TLS options are shared), else `default`, compiled
 * once here so the handshake reads nothing from disk.
 */
function routeTlsOptions(
  config: TcpRouterConfig,
  merged: MergedConfig,
): { options?: TerminationOptions; error?: string } {
  if (!config.tls) return {};
  const named = config.tls.options?.replace(/@.*$/, "");
  const name = named || "default";
  const o = merged.tls.options.get(name);
  if (!o) return named && named !== "default" ? { error: `tls.options "${named}" does not exist` } : {};
  try {
    return { options: compileTerminationOptions(name, o) };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

function counterFor(counters: Map<string, TcpRouterCounters>, name: string): TcpRouterCounters {
  let c = counters.get(name);
  if (!c) {
    counters.set(name, c = { connections: 0, refused: 0, failed: 0, bytesIn: 0, bytesOut: 0 });
  }
  return c;
}

function makeRoute(
  name: string,
  kind: TcpRouteKind,
  rule: CompiledTcpRule,
  chain: TcpGate[],
  service: TcpService,
  graceMs: number,
  connections: TcpConnections,
  counters: TcpRouterCounters,
  onEvent?: (event: string, fields: Record<string, unknown>) => void,
  tlsOptions?: TerminationOptions,
): TcpRoute {
  return {
    name,
    kind,
    rule,
    tlsOptions,
    serve(client) {
      const releases: (() => void)[] = [];
      for (const gate of chain) {
        const release = gate(client.clientIp);
        if (!release) {
          for (const r of releases) r();
          counters.refused++;
          onEvent?.("TCP connection refused by a middleware", {
            router: name,
            clientIp: client.clientIp,
          });
          closeQuietly(client.conn);
          return Promise.resolve();
        }
        releases.push(release);
      }
      counters.connections++;
      const forget = connections.add(name, client.conn, graceMs);
      return serveTcp(service, client, counters).catch((err) => {
        counters.failed++;
        onEvent?.("TCP backend unreachable", { router: name, error: (err as Error).message });
      }).finally(() => {
        forget();
        for (const r of releases) r();
      });
    },
  };
}

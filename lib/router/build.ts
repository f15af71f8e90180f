/**
 * Builds one immutable router generation from a merged config: rules
 * compiled, middlewares built, services built, one Hono app per entrypoint.
 * A router whose rule, middleware or service is bad is disabled with its
 * error; every other router keeps working.
 *
 * @module
 */

import { Context, Hono } from "hono";
import { INTERNAL_ENTRYPOINT, type RouterConfig, type StaticConfig } from "../config/types.ts";
import type { MiddlewareBuildContext, PorticoEnv, PorticoMiddleware } from "../middlewares/types.ts";
import { middlewareFactory, middlewareTypes } from "../middlewares/registry.ts";
import { type MergedConfig, qualify } from "../providers/merge.ts";
import { UpstreamError } from "../proxy/upstream.ts";
import { listWithoutForwarded, withoutForwardedHeaders } from "../proxy/headers.ts";
import { alreadySwitched } from "../proxy/upgrade.ts";
import { buildTcp, type TcpGeneration, type TcpRouterCounters } from "../tcp/build.ts";
import { TcpConnections } from "../tcp/connections.ts";
import type { Exchange } from "../engine/exchange.ts";
import { errorHead, writeWebResponse } from "../engine/response_head.ts";
import { HeadHeaders, pathAndQueryOf, toWebRequest } from "../engine/web_request.ts";
import { LoadBalancerService } from "../services/load_balancer.ts";
import { type FastRequest, type FastStep, fastStepOf, FlatHeaders } from "../middlewares/fast.ts";
import type { FastServe } from "../services/types.ts";
import type { UpstreamPools } from "../proxy/pools.ts";
import { compileRule, hostIndexKey, type MatchRequest, matchRequestFrom, matchRequestFromTarget } from "../rules/mod.ts";
import { buildServices } from "../services/build.ts";
import type { HealthLogger } from "../services/load_balancer.ts";
import { errorResponse, type Service } from "../services/types.ts";
import { composeChain } from "./chain.ts";
import { type HostIndex, buildHostIndex, type Route } from "./host_index.ts";
import { TrustedNetworks } from "./trusted.ts";
import type { RuleCache } from "./rule_cache.ts";
import type { RequestTrace, Tracer } from "../tracing/tracer.ts";

import type { ConnectionInfo, ObservedRequest, RequestObserver } from "../contracts.ts";

export interface RouterState {
  name: string;
  provider: string;
  config: RouterConfig;
  entryPoints: string[];
  priority: number;
  status: "enabled" | "disabled";
  errors: string[];
}

export interface ServiceState {
  name: string;
  provider: string;
  status: "enabled" | "disabled";
  errors: string[];
  usedBy: string[];
}

export interface MiddlewareState {
  name: string;
  provider: string;
  type: string;
  config: Record<string, unknown>;
  status: "enabled" | "disabled";
  errors: string[];
  usedBy: string[];
}

/** One generation of routing. Swapped whole on every accepted config change. */
export interface RouterGeneration {
  readonly generation: number;
  /** The merged configuration this generation was built from. */
  readonly merged: MergedConfig;
  readonly routers: ReadonlyMap<string, RouterState>;
  readonly services: ReadonlyMap<string, Service>;
  readonly serviceStates: ReadonlyMap<string, ServiceState>;
  readonly middlewareStates: ReadonlyMap<string, MiddlewareState>;
  /** Handles one request that arrived on `entryPoint` as a Web Request (HTTP/2). */
  handle(entryPoint: string, request: Request, conn: ConnectionInfo): Promise<Response>;
  /** Serves one request the HTTP/1.1 engine parsed on `entryPoint`. */
  serveExchange(entryPoint: string, exchange: Exchange): Promise<void>;
  /** The TCP routers, services and middlewares of this generation. */
  readonly tcp: TcpGeneration;
  start(): void;
  stop(): void;
}

export interface BuildOptions {
  generation: number;
  staticConfig: StaticConfig;
  merged: MergedConfig;
  pools: UpstreamPools;
  /** `api@internal`, `ping@internal`, …: services implemented in code. */
  internalServices: ReadonlyMap<string, Service>;
  serverName: string;
  onHealth?: HealthLogger;
  /** Keeps compiled rules across generations (optional). */
  ruleCache?: RuleCache;
  /** Called once per finished request, for access logs and metrics. */
  onRequest?: RequestObserver;
  /** `[tracing]`: spans per request, `traceparent` to the upstream. */
  tracer?: Tracer;
  /** TCP connections and counters, shared across generations so reloads keep them. */
  tcp?: { connections: TcpConnections; counters: Map<string, TcpRouterCounters>; remote?: { open(router: string): number } };
  /** Connection-level TCP events (refusals, dial failures), for debug logging. */
  onTcpEvent?: (event: string, fields: Record<string, unknown>) => void;
}

const NOT_FOUND = () => errorResponse(404);

/**
 * @example
 * ```ts
 * const gen = buildRouter({ generation: 1, staticConfig, merged, pools, internalServices, serverName: "edge-1" });
 * const res = await gen.handle("web", request, { remoteAddr: "127.0.0.1", tls: false, port: 80 });
 * ```
 */
export function buildRouter(options: BuildOptions): RouterGeneration {
  const { merged, staticConfig } = options;
  const { services, errors: serviceErrors } = buildServices(
    merged.services,
    merged.serversTransports,
    options.pools,
    options.internalServices,
    options.onHealth,
  );

  const serviceStates = new Map<string, ServiceState>();
  for (const [name, entry] of merged.services) {
    const error = serviceErrors.get(name);
    serviceStates.set(name, {
      name,
      provider: entry.provider,
      status: error ? "disabled" : "enabled",
      errors: error ? [error] : [],
      usedBy: [],
    });
  }

  const middlewareStates = new Map<string, MiddlewareState>();
  for (const [name, entry] of merged.middlewares) {
    const type = Object.keys(entry.config)[0] ?? "";
    middlewareStates.set(name, {
      name,
      provider: entry.provider,
      type,
      config: entry.config[type] ?? {},
      status: "enabled",
      errors: [],
      usedBy: [],
    });
  }

  const stopHooks: (() => void)[] = [];
  const builtMiddlewares = new Map<string, PorticoMiddleware>();
  const middlewareErrors = new Map<string, string>();
  const building: string[] = [];

  const buildMiddleware = (qualified: string): PorticoMiddleware => {
    const done = builtMiddlewares.get(qualified);
    if (done) return done;
    const failed = middlewareErrors.get(qualified);
    if (failed) throw new Error(failed);
    const entry = merged.middlewares.get(qualified);
    if (!entry) throw new Error(`middleware "${qualified}" does not exist`);
    if (building.includes(qualified)) {
      throw new Error(`middleware cycle: ${[...building.slice(building.indexOf(qualified)), qualified].join(" -> ")}`);
    }
    building.push(qualified);
    try {
      const type = Object.keys(entry.config)[0];
      const factory = middlewareFactory(type);
      if (!factory) {
        throw new Error(
          `middleware "${qualified}": type "${type}" is not supported yet; supported: ${middlewareTypes().join(", ") || "none"}`,
        );
      }
      const context: MiddlewareBuildContext = {
        name: qualified,
        provider: entry.provider,
        service: (ref) => {
          const s = services.get(qualify(ref, entry.provider));
          if (!s) throw new Error(`middleware "${qualified}": service "${qualify(ref, entry.provider)}" does not exist`);
          return s;
        },
        middleware: (ref) => buildMiddleware(qualify(ref, entry.provider)),
        onStop: (fn) => stopHooks.push(fn),
      };
      const handler = factory(entry.config[type] ?? {}, context);
      builtMiddlewares.set(qualified, handler);
      return handler;
    } catch (err) {
      const message = (err as Error).message;
      // Only the middleware that is itself bad records the error; those that
      // merely reference it are reported through the router.
      if (!middlewareErrors.has(qualified) && building[building.length - 1] === qualified) {
        middlewareErrors.set(qualified, message);
        const state = middlewareStates.get(qualified);
        if (state) {
          state.status = "disabled";
          state.errors.push(message);
        }
      }
      throw err;
    } finally {
      building.pop();
    }
  };

  const entryPointNames = Object.keys(staticConfig.entryPoints);
  // Traefik serves a router with `tls` (or on an entrypoint with `http.tls`)
  // only on TLS connections, and one without only on plain connections;
  // internal routers (API, ping, ACME challenges) answer on both.
  const routesByEntryPoint = new Map<string, { plain: Route[]; tls: Route[] }>(
    entryPointNames.map((n) => [n, { plain: [], tls: [] }]),
  );
  const routerStates = new Map<string, RouterState>();

  for (const [name, entry] of merged.routers) {
    const config = entry.config;
    const errors: string[] = [];
    const eps = config.entryPoints.length ? config.entryPoints : entryPointNames.filter((e) => e !== INTERNAL_ENTRYPOINT || entry.provider === "internal");
    for (const ep of eps) {
      if (!staticConfig.entryPoints[ep]) errors.push(`entryPoint "${ep}" does not exist`);
    }
    let compiled: ReturnType<typeof compileRule> | undefined;
    try {
      compiled = (options.ruleCache?.compile(config.rule, config.priority)) ?? compileRule(config.rule, config.priority);
    } catch (err) {
      errors.push((err as Error).message);
    }
    const priority = compiled?.priority ?? config.priority;

    const serviceName = qualify(config.service, entry.provider);
    const service = services.get(serviceName);
    if (!service) {
      errors.push(serviceErrors.get(serviceName) ?? `service "${serviceName}" does not exist`);
    } else {
      serviceStates.get(serviceName)?.usedBy.push(name);
    }

    const chainNames = config.middlewares.map((m) => qualify(m, entry.provider));
    const perEntryPoint = new Map<string, PorticoMiddleware[]>();
    for (const ep of eps) {
      const epConfig = staticConfig.entryPoints[ep];
      if (!epConfig) continue;
      const names = [...(entry.provider === "internal" ? [] : epConfig.http.middlewares.map((m) => qualify(m, entry.provider))), ...chainNames];
      const handlers: PorticoMiddleware[] = [];
      for (const m of names) {
        try {
          handlers.push(buildMiddleware(m));
          middlewareStates.get(m)?.usedBy.push(name);
        } catch (err) {
          const message = (err as Error).message;
          if (!errors.includes(message)) errors.push(message);
        }
      }
      perEntryPoint.set(ep, handlers);
    }

    const state: RouterState = {
      name,
      provider: entry.provider,
      config,
      entryPoints: eps,
      priority,
      status: errors.length ? "disabled" : "enabled",
      errors,
    };
    routerStates.set(name, state);
    if (errors.length || !compiled || !service) continue;

    for (const ep of eps) {
      const handlers = perEntryPoint.get(ep);
      if (!handlers) continue;
      const serve = (c: Context<PorticoEnv>) => service.serve(c.get("proxy"));
      const route: Route = {
        name,
        priority,
        rule: compiled,
        run: composeChain(handlers, serve),
        trace: options.tracer ? { rule: config.rule, service: serviceName } : undefined,
      };
      if (service instanceof LoadBalancerService) route.fast = fastRoute(handlers, service.fastServe());
      const lists = routesByEntryPoint.get(ep)!;
      const tlsRoute = Boolean(config.tls || staticConfig.entryPoints[ep].http.tls);
      if (entry.provider === "internal" || !tlsRoute) lists.plain.push(route);
      if (entry.provider === "internal" || tlsRoute) lists.tls.push(route);
    }
  }

  // A middleware no router uses is still validated, so `check` and the API
  // report its bad options instead of passing it silently.
  for (const name of merged.middlewares.keys()) {
    if (builtMiddlewares.has(name) || middlewareErrors.has(name)) continue;
    try {
      buildMiddleware(name);
    } catch { /* recorded in its state */ }
  }

  const apps = new Map<string, EntryPointHandlers>();
  for (const ep of entryPointNames) {
    const lists = routesByEntryPoint.get(ep)!;
    apps.set(ep, entryPointHandlers(ep, buildHostIndex(lists.plain), buildHostIndex(lists.tls), staticConfig, options));
  }

  options.ruleCache?.finishBuild();
  const tcp = buildTcp({
    merged,
    staticConfig,
    connections: options.tcp?.connections ?? new TcpConnections(),
    counters: options.tcp?.counters ?? new Map(),
    remote: options.tcp?.remote,
    onEvent: options.onTcpEvent,
  });
  return {
    tcp,
    generation: options.generation,
    merged,
    routers: routerStates,
    services,
    serviceStates,
    middlewareStates,
    handle(entryPoint, request, conn) {
      const app = apps.get(entryPoint);
      if (!app) return Promise.resolve(NOT_FOUND());
      return app.app.fetch(request, conn) as Promise<Response>;
    },
    serveExchange(entryPoint, exchange) {
      const app = apps.get(entryPoint);
      if (!app) return exchange.write(errorHead(404, false));
      return app.serveExchange(exchange);
    },
    start() {
      for (const s of services.values()) s.start();
      tcp.start();
    },
    stop() {
      for (const s of services.values()) s.stop();
      for (const fn of stopHooks) fn();
    },
  };
}

/**
 * The byte-level version of a route: its service's fast path behind the
 * fast steps of its middlewares, when every one of them has one.
 */
function fastRoute(handlers: PorticoMiddleware[], serve: FastServe | undefined): FastServe | undefined {
  if (!serve) return undefined;
  const steps: FastStep[] = [];
  for (const h of handlers) {
    const step = fastStepOf(h);
    if (!step) return undefined;
    steps.push(step);
  }
  if (steps.length === 0) return serve;
  return async (exchange, headers, info, pathAndQuery) => {
    const request: FastRequest = {
      ...info,
      exchange,
      method: exchange.head.method,
      headers: new FlatHeaders(headers as string[]),
      pathAndQuery,
    };
    for (const step of steps) {
      let answer = step(request);
      if (answer instanceof Promise) answer = await answer;
      if (answer) {
        await exchange.write(answer.bytes);
        if (!exchange.head.keepAlive) exchange.closeAfter = true;
        return { status: answer.status, size: undefined };
      }
    }
    return serve(exchange, request.headers.list, request, request.pathAndQuery, request.responseEdits);
  };
}

interface EntryPointHandlers {
  /** For Web Requests (HTTP/2 from the native server). */
  app: Hono<PorticoEnv>;
  /** For the HTTP/1.1 engine. */
  serveExchange(exchange: Exchange): Promise<void>;
}

/** What observers see of a Web request and its response. */
function observedWeb(request: Request, response: Response, target: string, user?: string): ObservedRequest {
  const len = response.headers.get("content-length");
  return {
    method: request.method,
    target,
    status: response.status,
    size: len === null ? undefined : Number(len),
    header: (name) => request.headers.get(name),
    user,
  };
}

/** The host[:port] of an absolute URL, without parsing all of it. */
function authorityOf(url: string): string {
  const from = url.indexOf("//") + 2;
  const to = url.indexOf("/", from);
  return to === -1 ? url.slice(from) : url.slice(from, to);
}

/** Path and query of a native server's `request.url` (kept as sent). */
function rawPathAndQuery(url: string): string {
  const pathStart = url.indexOf("/", url.indexOf("//") + 2);
  return pathStart === -1 ? "/" : url.slice(pathStart);
}

/** Runs a matched route's chain on a Web request; never throws. */
async function runRoute(
  route: Route,
  c: Context<PorticoEnv>,
): Promise<Response> {
  try {
    return await route.run(c);
  } catch (err) {
    if (!(err instanceof UpstreamError)) console.error(`router ${route.name}: ${(err as Error).stack ?? err}`);
    return err instanceof UpstreamError ? errorResponse(err.status) : errorResponse(500);
  }
}

/** Routing for one entrypoint: match by host index, then run the route's chain. */
function entryPointHandlers(
  entryPoint: string,
  plainIndex: HostIndex,
  tlsIndex: HostIndex,
  staticConfig: StaticConfig,
  options: BuildOptions,
): EntryPointHandlers {
  const epConfig = staticConfig.entryPoints[entryPoint];
  const trusted = new TrustedNetworks(epConfig.forwardedHeaders.trustedIPs);
  const insecure = epConfig.forwardedHeaders.insecure;
  const observe = options.onRequest;
  const pick = (index: HostIndex, match: MatchRequest): Route | undefined => {
    const routes = index.candidates(hostIndexKey(match.host));
    for (let i = 0; i < routes.length; i++) if (routes[i].rule.match(match)) return routes[i];
    return undefined;
  };

  const tracer = options.tracer;
  const serveExchange = async (exchange: Exchange): Promise<void> => {
    // The clock is read only for observers (tracing reads it for sampled requests): it is an op call.
    const started = observe ? performance.now() : 0;
    const head = exchange.head;
    const conn = exchange.info;
    const lookup = new HeadHeaders(head.headers);
    const target = pathAndQueryOf(head.target);
    const trace = tracer?.begin(
      entryPoint,
      head.method,
      target,
      head.host,
      conn.remoteAddr,
      conn.tls,
      (n) => lookup.get(n),
      head.chunked ? 0 : Math.max(0, head.contentLength),
      started,
    );
    const done = (status: number, router: string | undefined, size?: number) => {
      if (trace) tracer!.finish(trace, status);
      if (observe) observe(entryPoint, { method: head.method, target, status, size, header: (n) => lookup.get(n) }, conn, router, started);
    };
    let match: MatchRequest;
    try {
      match = matchRequestFromTarget(head.method, head.target, head.host, lookup, conn.remoteAddr);
    } catch {
      // An invalid percent-encoding in the path: Traefik answers 400 too.
      await exchange.write(errorHead(400, true));
      exchange.closeAfter = true;
      return done(400, undefined);
    }
    const route = pick(conn.tls ? tlsIndex : plainIndex, match);
    if (!route) {
      await exchange.write(errorHead(404, !head.keepAlive));
      return done(404, undefined);
    }
    if (trace) tracer!.routed(trace, route.name, route.trace);
    const trustForwarded = insecure || trusted.contains(conn.remoteAddr);
    const info = {
      clientIp: conn.remoteAddr,
      proto: conn.tls ? "https" as const : "http" as const,
      host: head.host,
      port: conn.port,
      serverName: options.serverName,
      trustForwarded,
      trace: trace?.discarded ? undefined : trace,
    };
    if (route.fast && head.upgrade === undefined) {
      let headers: readonly string[] = trustForwarded ? head.headers : listWithoutForwarded(head.headers);
      // The upstream gets this hop's trace context, never the client's own traceparent.
      if (info.trace) headers = withoutTraceparent(headers);
      const sent = await route.fast(exchange, headers, info, target);
      return done(sent.status, route.name, sent.size);
    }
    let request: Request;
    try {
      request = toWebRequest(exchange);
    } catch {
      await exchange.write(errorHead(400, true));
      exchange.closeAfter = true;
      return done(400, route.name);
    }
    // deno-lint-ignore no-explicit-any
    const c = new Context<PorticoEnv>(request, { env: conn as any });
    c.set("proxy", {
      request,
      pathAndQuery: target,
      headers: trustForwarded ? request.headers : withoutForwardedHeaders(request.headers),
      entryPoint,
      routerName: route.name,
      exchange,
      detachedBody: request.body === null ? exchange.bodyStream() : undefined,
      ...info,
    });
    const response = await runRoute(route, c);
    if (!alreadySwitched(response)) await writeWebResponse(exchange, response);
    if (trace) tracer!.finish(trace, response.status, (n) => response.headers.get(n));
    observe?.(entryPoint, observedWeb(request, response, target, c.get("proxy").user), conn, route.name, started);
  };

  const app = new Hono<PorticoEnv>();
  app.all("*", async (c) => {
    const started = performance.now();
    const conn = c.env as unknown as ConnectionInfo;
    const request = c.req.raw;
    const trace = tracer ? beginWebTrace(tracer, entryPoint, request, conn, started) : undefined;
    let match: MatchRequest;
    try {
      // Deno's parser already refuses CL+TE, conflicting lengths and bad
      // Transfer-Encoding; identical repeated lengths arrive joined ("4, 4")
      // and must not be forwarded as such.
      if (request.headers.get("content-length")?.includes(",")) throw new Error("repeated Content-Length");
      match = matchRequestFrom(request, conn.remoteAddr);
    } catch {
      // An invalid percent-encoding in the path: Traefik answers 400 too.
      const response = errorResponse(400);
      if (trace) tracer!.finish(trace, 400);
      observe?.(entryPoint, observedWeb(request, response, rawPathAndQuery(request.url)), conn, undefined, started);
      return response;
    }
    const route = pick(conn.tls ? tlsIndex : plainIndex, match);
    let response: Response;
    const pathAndQuery = rawPathAndQuery(request.url);
    if (!route) {
      response = NOT_FOUND();
    } else {
      if (trace) tracer!.routed(trace, route.name, route.trace);
      const trustForwarded = insecure || trusted.contains(conn.remoteAddr);
      c.set("proxy", {
        request,
        pathAndQuery,
        headers: trustForwarded ? request.headers : withoutForwardedHeaders(request.headers),
        entryPoint,
        routerName: route.name,
        clientIp: conn.remoteAddr,
        proto: conn.tls ? "https" : "http",
        // HTTP/2 carries the host as :authority, which Deno's Request keeps only in its URL.
        host: request.headers.get("host") ?? authorityOf(request.url),
        port: conn.port,
        serverName: options.serverName,
        trustForwarded,
        trace: trace?.discarded ? undefined : trace,
      });
      response = await runRoute(route, c);
    }
    if (trace) tracer!.finish(trace, response.status, (n) => response.headers.get(n));
    observe?.(
      entryPoint,
      observedWeb(request, response, pathAndQuery, route ? c.get("proxy").user : undefined),
      conn,
      route?.name,
      started,
    );
    return response;
  });
  return { app, serveExchange };
}

/** The header list without `traceparent` (the upstream gets this hop's). */
function withoutTraceparent(list: readonly string[]): readonly string[] {
  let found = false;
  for (let i = 0; i < list.length; i += 2) if (list[i] === "traceparent") found = true;
  if (!found) return list;
  const out: string[] = [];
  for (let i = 0; i < list.length; i += 2) if (list[i] !== "traceparent") out.push(list[i], list[i + 1]);
  return out;
}

/** Starts the trace of a Web (HTTP/2) request. */
function beginWebTrace(
  tracer: Tracer,
  entryPoint: string,
  request: Request,
  conn: ConnectionInfo,
  started: number,
): RequestTrace {
  const len = request.headers.get("content-length");
  return tracer.begin(
    entryPoint,
    request.method,
    rawPathAndQuery(request.url),
    request.headers.get("host") ?? authorityOf(request.url),
    conn.remoteAddr,
    conn.tls,
    (n) => request.headers.get(n),
    len === null ? 0 : Number(len),
    started,
  );
}

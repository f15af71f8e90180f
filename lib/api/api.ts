/**
 * Traefik's `/api/*` endpoints in Traefik's JSON shapes, as the internal
 * service `api@internal`, plus `ping@internal`.
 *
 * @module
 */

import { type Context, Hono } from "hono";
import type { Service } from "../services/types.ts";
import type { ProxyRequest } from "../services/types.ts";
import type { InstanceState } from "../instance/state.ts";
import type { MiddlewareState, RouterState, ServiceState } from "../router/build.ts";
import type { TcpMiddlewareState, TcpRouterState, TcpServiceState } from "../tcp/build.ts";

function routerJson(r: RouterState | TcpRouterState) {
  const c = r.config;
  return {
    entryPoints: r.entryPoints,
    ...(c.middlewares.length ? { middlewares: c.middlewares.map((m) => (m.includes("@") ? m : `${m}@${r.provider}`)) } : {}),
    service: c.service.includes("@") ? c.service.split("@")[0] : c.service,
    rule: c.rule,
    priority: r.priority,
    ...(c.tls ? { tls: c.tls } : {}),
    status: r.status,
    ...(r.errors.length ? { error: r.errors } : {}),
    using: r.entryPoints,
    name: r.name,
    provider: r.provider,
  };
}

function serviceJson(s: ServiceState, state: InstanceState) {
  const gen = state.generation();
  const svc = gen.services.get(s.name);
  const raw = gen.merged.services.get(s.name)?.config as Record<string, unknown> | undefined;
  const type = raw ? Object.keys(raw)[0].toLowerCase() : "internal";
  return {
    ...(raw ? maskSecrets(raw) as Record<string, unknown> : {}),
    status: s.status,
    ...(s.errors.length ? { error: s.errors } : {}),
    usedBy: s.usedBy,
    ...(svc && type === "loadbalancer" ? { serverStatus: svc.serverStatus() } : {}),
    name: s.name,
    provider: s.provider,
    type,
  };
}

/** Config keys whose values are credentials; shown as {@linkcode MASK}. */
const SECRET_KEY = /(password|secret|token|apikey|api_key|privatekey|private_key|credentials?|hmacencoded)$/i;
/** Request headers that carry credentials when set by `headers.customRequestHeaders`. */
const SECRET_HEADER = /^(authorization|proxy-authorization|cookie|x-api-key)$/i;
export const MASK = "********";

/**
 * A copy of a middleware or service config with credentials masked: values
 * of keys named like a password/secret/token, credential headers, and the
 * hash part of basicAuth/digestAuth `users` ("name:hash" shows as
 * "name:********"; Traefik shows the hashes, Portico does not).
 */
export function maskSecrets(value: unknown, key = ""): unknown {
  if (Array.isArray(value)) {
    if (/^users$/i.test(key)) {
      return value.map((u) => (typeof u === "string" && u.includes(":") ? `${u.slice(0, u.indexOf(":"))}:${MASK}` : MASK));
    }
    return value.map((v) => maskSecrets(v));
  }
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (typeof v === "string" && v !== "" && SECRET_KEY.test(k)) out[k] = MASK;
      else if (/^custom(Request|Response)Headers$/i.test(k) && v && typeof v === "object") {
        out[k] = Object.fromEntries(Object.entries(v).map(([h, hv]) => [h, SECRET_HEADER.test(h) && hv ? MASK : hv]));
      } else out[k] = maskSecrets(v, k);
    }
    return out;
  }
  return value;
}

function tcpServiceJson(s: TcpServiceState, state: InstanceState) {
  const raw = state.generation().merged.tcp.services.get(s.name)?.config;
  return {
    ...(raw ? maskSecrets(raw) as Record<string, unknown> : {}),
    status: s.status,
    ...(s.errors.length ? { error: s.errors } : {}),
    usedBy: s.usedBy,
    name: s.name,
    provider: s.provider,
    type: s.type.toLowerCase(),
  };
}

function middlewareJson(m: MiddlewareState | TcpMiddlewareState) {
  return {
    [m.type]: maskSecrets(m.config),
    status: m.status,
    ...(m.errors.length ? { error: m.errors } : {}),
    usedBy: m.usedBy,
    name: m.name,
    provider: m.provider,
    type: m.type.toLowerCase(),
  };
}

/** Applies Traefik's `search`, `status`, `page` and `per_page` query parameters. */
function page<T extends { name: string; status: string }>(items: T[], query: URLSearchParams): T[] {
  const search = query.get("search")?.toLowerCase();
  const status = query.get("status");
  let out = items.sort((a, b) => (a.name < b.name ? -1 : 1));
  if (search) out = out.filter((i) => JSON.stringify(i).toLowerCase().includes(search));
  if (status) out = out.filter((i) => i.status === status);
  const perPage = Number(query.get("per_page") ?? 100) || 100;
  const pageNo = Number(query.get("page") ?? 1) || 1;
  return out.slice((pageNo - 1) * perPage, pageNo * perPage);
}

function counts(items: { status: string; errors: string[] }[]) {
  return {
    total: items.length,
    warnings: items.filter((i) => i.status === "warning").length,
    errors: items.filter((i) => i.status === "disabled").length,
  };
}

/** Builds the Hono app behind `api@internal`. */
export function apiApp(state: InstanceState): Hono {
  const app = new Hono();
  const gen = () => state.generation();
  app.get("/api/version", (c) =>
    c.json({ Version: state.version, Codename: "portico", startDate: state.startDate.toISOString() }));
  app.get("/api/overview", (c) => {
    const g = gen();
    const last = state.lastReload();
    const providers = ["file", "etcd", "redis", "consul"]
      .filter((p) => (state.staticConfig.providers as Record<string, unknown>)[p])
      .map((p) => p[0].toUpperCase() + p.slice(1));
    return c.json({
      http: {
        routers: counts([...g.routers.values()].filter((r) => r.provider !== "internal")),
        services: counts([...g.serviceStates.values()]),
        middlewares: counts([...g.middlewareStates.values()]),
      },
      tcp: {
        routers: counts([...g.tcp.routers.values()]),
        services: counts([...g.tcp.services.values()]),
        middlewares: counts([...g.tcp.middlewares.values()]),
      },
      udp: { routers: counts([]), services: counts([]) },
      features: {
        tracing: state.staticConfig.tracing ? "OpenTelemetry" : "",
        metrics: state.staticConfig.metrics?.prometheus
          ? "Prometheus"
          : state.staticConfig.metrics?.otlp
          ? "OpenTelemetry"
          : "",
        accessLog: Boolean(state.staticConfig.accessLog),
      },
      providers,
      lastReload: last
        ? { time: last.time.toISOString(), success: last.success, ...(last.error ? { error: last.error } : {}), ...(last.provider ? { provider: last.provider } : {}) }
        : null,
      providerErrors: Object.fromEntries(state.providerErrors()),
    });
  });
  // Entrypoints hold no credentials today; masked anyway so a future field cannot leak.
  app.get("/api/entrypoints", (c) =>
    c.json(Object.entries(state.staticConfig.entryPoints).map(([name, ep]) => ({ ...maskSecrets(ep) as object, name }))));
  app.get("/api/entrypoints/:name", (c) => {
    const ep = state.staticConfig.entryPoints[c.req.param("name")];
    return ep ? c.json({ ...maskSecrets(ep) as object, name: c.req.param("name") }) : c.json({ message: "entry point not found" }, 404);
  });
  app.get("/api/http/routers", (c) =>
    c.json(page([...gen().routers.values()].map(routerJson), new URL(c.req.url).searchParams)));
  app.get("/api/http/routers/:name", (c) => {
    const r = gen().routers.get(c.req.param("name"));
    return r ? c.json(routerJson(r)) : c.json({ message: "router not found" }, 404);
  });
  app.get("/api/http/services", (c) =>
    c.json(page([...gen().serviceStates.values()].map((s) => serviceJson(s, state)), new URL(c.req.url).searchParams)));
  app.get("/api/http/services/:name", (c) => {
    const s = gen().serviceStates.get(c.req.param("name"));
    return s ? c.json(serviceJson(s, state)) : c.json({ message: "service not found" }, 404);
  });
  app.get("/api/http/middlewares", (c) =>
    c.json(page([...gen().middlewareStates.values()].map(middlewareJson), new URL(c.req.url).searchParams)));
  app.get("/api/http/middlewares/:name", (c) => {
    const m = gen().middlewareStates.get(c.req.param("name"));
    return m ? c.json(middlewareJson(m)) : c.json({ message: "middleware not found" }, 404);
  });
  const one = <T>(items: ReadonlyMap<string, T>, json: (t: T) => unknown, what: string) => (c: Context) => {
    const item = items.get(c.req.param("name") ?? "");
    return item ? c.json(json(item)) : c.json({ message: `${what} not found` }, 404);
  };
  app.get("/api/tcp/routers", (c) =>
    c.json(page([...gen().tcp.routers.values()].map(routerJson), new URL(c.req.url).searchParams)));
  app.get("/api/tcp/routers/:name", (c) => one(gen().tcp.routers, routerJson, "router")(c));
  app.get("/api/tcp/services", (c) =>
    c.json(page([...gen().tcp.services.values()].map((s) => tcpServiceJson(s, state)), new URL(c.req.url).searchParams)));
  app.get("/api/tcp/services/:name", (c) => one(gen().tcp.services, (s) => tcpServiceJson(s, state), "service")(c));
  app.get("/api/tcp/middlewares", (c) =>
    c.json(page([...gen().tcp.middlewares.values()].map(middlewareJson), new URL(c.req.url).searchParams)));
  app.get("/api/tcp/middlewares/:name", (c) => one(gen().tcp.middlewares, middlewareJson, "middleware")(c));
  app.get("/api/rawdata", (c) => {
    const g = gen();
    return c.json({
      routers: Object.fromEntries([...g.routers.values()].map((r) => [r.name, routerJson(r)])),
      services: Object.fromEntries([...g.serviceStates.values()].map((s) => [s.name, serviceJson(s, state)])),
      middlewares: Object.fromEntries([...g.middlewareStates.values()].map((m) => [m.name, middlewareJson(m)])),
      tcpRouters: Object.fromEntries([...g.tcp.routers.values()].map((r) => [r.name, routerJson(r)])),
      tcpServices: Object.fromEntries([...g.tcp.services.values()].map((s) => [s.name, tcpServiceJson(s, state)])),
      tcpMiddlewares: Object.fromEntries([...g.tcp.middlewares.values()].map((m) => [m.name, middlewareJson(m)])),
    });
  });
  app.all("/api/*", (c) => c.json({ message: "not found" }, 404));
  return app;
}

/** Wraps a Hono app as an internal service that answers with the request's own path. */
export function internalService(name: string, app: Hono): Service {
  return {
    name,
    serve(request: ProxyRequest) {
      const req = request.request;
      const url = new URL(request.pathAndQuery, req.url);
      // Not `new Request(url, req)`: copying a request copies its signal, and
      // touching a served request's signal makes Deno warn about legacy aborts.
      const init: RequestInit & { duplex?: string } = { method: req.method, headers: request.headers };
      if (req.body) {
        init.body = req.body;
        init.duplex = "half";
      }
      return Promise.resolve(app.fetch(new Request(url, init)));
    },
    available: () => true,
    serverStatus: () => ({}),
    start() {},
    stop() {},
  };
}

/** `ping@internal`: "OK", or 503 while the instance drains for shutdown. */
export function pingService(state: Pick<InstanceState, "draining">): Service {
  return {
    name: "ping@internal",
    serve: () =>
      Promise.resolve(
        state.draining() ? new Response("Service Unavailable", { status: 503 }) : new Response("OK", { status: 200 }),
      ),
    available: () => true,
    serverStatus: () => ({}),
    start() {},
    stop() {},
  };
}

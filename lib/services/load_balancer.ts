/**
 * The `loadBalancer` service: smooth weighted round robin over servers,
 * skipping unhealthy ones, with optional sticky cookies, forwarding through
 * the shared upstream pool.
 *
 * @module
 */

import type { LoadBalancerConfig } from "../config/types.ts";
import { forward, UpstreamError, type UpstreamPool } from "../proxy/forward.ts";
import { upstreamRequestHeaders } from "../proxy/headers.ts";
import { isWebSocketUpgrade, relayWebSocket } from "../proxy/websocket.ts";
import { HealthChecker } from "./health_check.ts";
import { SmoothWeightedRoundRobin } from "./smooth_wrr.ts";
import { defaultCookieName, hashServer, readCookie, stickyCookie } from "./sticky.ts";
import { errorResponse, type ProxyRequest, type Service, type ServerStatus } from "./types.ts";

interface Server {
  url: string;
  target: URL;
  hash: string;
  /** The target's origin without a trailing slash and its base path, for joining. */
  basePath: string;
}

/** Logs a server's health transitions; injected so services stay free of a logger. */
export type HealthLogger = (service: string, server: string, status: ServerStatus) => void;

export class LoadBalancerService implements Service {
  private readonly servers: Server[];
  private readonly byHash = new Map<string, Server>();
  private readonly wrr: SmoothWeightedRoundRobin<Server>;
  private readonly health?: HealthChecker;
  private readonly cookieName?: string;

  constructor(
    readonly name: string,
    private readonly config: LoadBalancerConfig,
    private readonly pool: UpstreamPool,
    onHealth?: HealthLogger,
  ) {
    this.servers = config.servers.map((s) => {
      const target = new URL(s.url);
      const server = {
        url: s.url,
        target,
        hash: hashServer(s.url),
        basePath: target.pathname === "/" ? "" : target.pathname.replace(/\/$/, ""),
      };
      this.byHash.set(server.hash, server);
      return server;
    });
    this.wrr = new SmoothWeightedRoundRobin(
      this.servers.map((item, i) => ({ item, weight: config.servers[i].weight })),
    );
    if (config.healthCheck) {
      this.health = new HealthChecker(
        this.servers.map((s) => s.url),
        config.healthCheck,
        (server, status) => onHealth?.(name, server, status),
      );
    }
    if (config.sticky) this.cookieName = config.sticky.cookie.name || defaultCookieName(name);
  }

  private readonly isUp = (s: Server): boolean => !this.health || this.health.isUp(s.url);

  available(): boolean {
    return this.servers.some(this.isUp) && this.wrr.size > 0;
  }

  serverStatus(): Record<string, ServerStatus> {
    if (this.health) return this.health.snapshot();
    return Object.fromEntries(this.servers.map((s) => [s.url, "UP" as const]));
  }

  start(): void {
    this.health?.start();
  }

  stop(): void {
    this.health?.stop();
  }

  private pick(request: ProxyRequest): { server?: Server; setCookie: boolean } {
    if (this.cookieName) {
      const pinned = readCookie(request.headers.get("cookie"), this.cookieName);
      const server = pinned ? this.byHash.get(pinned) : undefined;
      if (server && this.isUp(server)) return { server, setCookie: false };
      return { server: this.wrr.next(this.isUp), setCookie: true };
    }
    return { server: this.wrr.next(this.isUp), setCookie: false };
  }

  async serve(request: ProxyRequest): Promise<Response> {
    const { server, setCookie } = this.pick(request);
    if (!server) return errorResponse(503);

    const headers = upstreamRequestHeaders(request.headers, request, {
      keepUpgrade: false,
    });
    if (!this.config.passHostHeader) headers["host"] = server.target.host;
    const pathAndQuery = server.basePath + request.pathAndQuery;

    let response: Response;
    if (isWebSocketUpgrade(request.request)) {
      const wsUrl = `${server.target.protocol === "https:" ? "wss" : "ws"}://${server.target.host}${pathAndQuery}`;
      try {
        response = await relayWebSocket(request.request, wsUrl, headers, this.pool.timeouts.dialTimeout);
      } catch {
        return errorResponse(502);
      }
    } else {
      try {
        response = await forward(this.pool, {
          target: server.target,
          method: request.request.method,
          pathAndQuery,
          headers,
          body: request.request.body,
        });
      } catch (err) {
        if (err instanceof UpstreamError) throw err;
        return errorResponse(502);
      }
    }
    if (setCookie && this.cookieName && this.config.sticky) {
      response.headers.append("set-cookie", stickyCookie(this.cookieName, server.hash, this.config.sticky.cookie));
    }
    return response;
  }
}

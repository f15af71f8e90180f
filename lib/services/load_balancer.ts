/**
 * The `loadBalancer` service: servers picked by the configured balancing
 * policy (see `balancing/`), skipping unhealthy ones, with optional sticky cookies, forwarding through
 * the shared upstream pool.
 *
 * @module
 */

import type { LoadBalancerConfig } from "../config/types.ts";
import { forward, type UpstreamPool } from "../proxy/forward.ts";
import { UpstreamError } from "../proxy/upstream.ts";
import { upstreamHeaderLines, upstreamRequestHeaders } from "../proxy/headers.ts";
import { relay } from "../proxy/relay.ts";
import { upgradeUpstream } from "../proxy/upgrade.ts";
import { isWebSocketUpgrade, relayWebSocket } from "../proxy/websocket.ts";
import { HealthChecker } from "./health_check.ts";
import { type BalancingPolicy, policyFor } from "./balancing/mod.ts";
import { defaultCookieName, hashServer, readCookie, stickyCookie } from "./sticky.ts";
import { errorHead } from "../engine/response_head.ts";
import { errorResponse, type FastServe, type ProxyRequest, type Service, type ServerStatus } from "./types.ts";
import { readEnv, UPSTREAM_CLIENT_ENV } from "../env.ts";

interface Server {
  url: string;
  weight: number;
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
  private readonly policy: BalancingPolicy<Server>;
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
        weight: s.weight,
        target,
        hash: hashServer(s.url),
        basePath: target.pathname === "/" ? "" : target.pathname.replace(/\/$/, ""),
      };
      this.byHash.set(server.hash, server);
      return server;
    });
    const policy = policyFor(config.strategy, this.servers);
    // The schema only admits registered names, so this is a programming error.
    if (!policy) throw new Error(`service ${name}: loadBalancer.strategy "${config.strategy}" has no policy`);
    this.policy = policy;
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

  /** The next server by the configured policy; `clientIp` feeds hrw. */
  private next(clientIp: string): Server | undefined {
    return this.policy.select(this.isUp, { clientIp });
  }

  /** Starts the policy's accounting for one request; the result reports its first byte. */
  private begin(server: Server): () => void {
    this.policy.begin?.(server);
    const firstByte = this.policy.firstByte;
    if (!firstByte) return noop;
    const start = performance.now();
    return () => firstByte(server, performance.now() - start);
  }

  private end(server: Server): void {
    this.policy.end?.(server);
  }

  available(): boolean {
    return this.servers.some(this.isUp) && this.policy.size > 0;
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
      return { server: this.next(request.clientIp), setCookie: true };
    }
    return { server: this.next(request.clientIp), setCookie: false };
  }

  async serve(request: ProxyRequest): Promise<Response> {
    const { server, setCookie } = this.pick(request);
    if (!server) return errorResponse(503);
    const headIn = this.begin(server);
    try {
      const response = await this.serveOn(server, setCookie, request);
      headIn();
      return response;
    } finally {
      this.end(server);
    }
  }

  private async serveOn(server: Server, setCookie: boolean, request: ProxyRequest): Promise<Response> {

    const headers = upstreamRequestHeaders(request.headers, request, {
      keepUpgrade: false,
    });
    if (!this.config.passHostHeader) headers["host"] = server.target.host;
    const pathAndQuery = server.basePath + request.pathAndQuery;
    const trace = request.trace;
    if (trace !== undefined) {
      headers["traceparent"] = trace.outgoing();
      trace.forwarding(server.target, pathAndQuery);
    }

    let response: Response;
    const exchange = request.exchange;
    if (exchange?.head.upgrade !== undefined) {
      // On the engine any upgrade is piped as bytes once the upstream says 101.
      response = await upgradeUpstream(
        exchange,
        server.target,
        pathAndQuery,
        headerListOf(request.headers),
        request,
        this.config.passHostHeader ? undefined : server.target.host,
        this.pool.timeouts.dialTimeout,
      );
    } else if (isWebSocketUpgrade(request.request)) {
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
          body: request.request.body ?? request.detachedBody ?? null,
        });
      } catch (err) {
        trace?.forwarded(err instanceof UpstreamError ? err.status : 502);
        if (err instanceof UpstreamError) throw err;
        return errorResponse(502);
      }
      trace?.forwarded(response.status);
    }
    if (setCookie && this.cookieName && this.config.sticky) {
      response.headers.append("set-cookie", stickyCookie(this.cookieName, server.hash, this.config.sticky.cookie));
    }
    return response;
  }

  /**
   * The byte-level path for this service, when it applies: servers the own
   * client can reach (HTTP, or HTTPS with verification) and no sticky cookie (which needs the cookie parsed and a
   * header added on every answer).
   */
  fastServe(): FastServe | undefined {
    if (this.cookieName || FORCE_NODE) return undefined;
    const pool = this.pool;
    if (!this.servers.every((s) => pool.http1.serves(s.target))) return undefined;
    const passHost = this.config.passHostHeader;
    return async (exchange, headers, info, pathAndQuery, responseEdits) => {
      const server = this.next(info.clientIp);
      if (!server) {
        await exchange.write(errorHead(503, !exchange.head.keepAlive));
        return { status: 503, size: undefined };
      }
      const upstreamTarget = server.basePath + pathAndQuery;
      let head = `${exchange.head.method} ${upstreamTarget} HTTP/1.1\r\n` +
        upstreamHeaderLines(headers, info, passHost ? undefined : server.target.host);
      const trace = info.trace;
      if (trace !== undefined) {
        head += `traceparent: ${trace.outgoing()}\r\n`;
        trace.forwarding(server.target, upstreamTarget);
      }
      const headIn = this.begin(server);
      const capture = trace?.responseHeaderNames ? trace : undefined;
      try {
        const sent = await relay(pool.http1, pool.timeouts, exchange, {
          target: server.target,
          head,
          responseLines: responseEdits?.lines,
          dropResponse: responseEdits?.dropped,
          onResponseHead: headIn === noop && !capture ? undefined : (h) => {
            headIn();
            capture?.captureResponse(h);
          },
        });
        trace?.forwarded(sent.status);
        return sent;
      } finally {
        this.end(server);
      }
    };
  }
}

const noop = (): void => {};

/** `PORTICO_UPSTREAM_CLIENT=node` keeps every request on the Web path (comparison runs). */
const FORCE_NODE = readEnv(UPSTREAM_CLIENT_ENV) === "node";

/** A Headers object as the flat list the byte-level helpers take. */
function headerListOf(headers: Headers): string[] {
  const out: string[] = [];
  headers.forEach((value, name) => out.push(name, value));
  return out;
}

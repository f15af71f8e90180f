/**
 * Wires one Portico instance: providers → config watcher → router
 * generations, entrypoint listeners, internal services, access log, and a
 * graceful shutdown.
 *
 * @module
 */

import type { DynamicConfig, StaticConfig } from "../config/types.ts";
import { apiApp, internalService, pingService } from "../api/api.ts";
import type { InstanceState } from "../api/state.ts";
import { AccessLogWriter } from "../log/access_log.ts";
import { Logger } from "../log/logger.ts";
import { FileProvider } from "../providers/file.ts";
import { mergeProviders } from "../providers/merge.ts";
import type { Provider } from "../providers/types.ts";
import { UpstreamPools } from "../proxy/pools.ts";
import { buildRouter, type ConnectionInfo } from "../router/build.ts";
import type { Service } from "../services/types.ts";
import { ConfigWatcher } from "./config_watcher.ts";
import { internalConfig, redirectServices } from "./internal.ts";
import { VERSION } from "../version.ts";

export interface ServerOptions {
  /** Extra providers (KV) besides the file provider from the static config. */
  providers?: Provider[];
  /** Replaces the logger built from `[log]` (tests). */
  logger?: Logger;
  /** Debounce for config changes, ms. */
  debounceMs?: number;
  /** Extra internal services (dashboard, metrics, cluster API). */
  internalServices?: Map<string, Service>;
}

/** A startup failure a user caused: printed as one line, exit code 1. */
export class StartupError extends Error {
  override name = "StartupError";
}

export interface RunningServer {
  readonly watcher: ConfigWatcher;
  readonly state: InstanceState;
  /** The bound port of each entrypoint (useful when configured as :0). */
  readonly ports: ReadonlyMap<string, number>;
  /** Drains and stops; resolves when every listener has closed. */
  shutdown(): Promise<void>;
  /** Resolves when the server has stopped. */
  readonly finished: Promise<void>;
}

export async function startServer(staticConfig: StaticConfig, options: ServerOptions = {}): Promise<RunningServer> {
  const log = options.logger ??
    new Logger({ level: staticConfig.log.level, format: staticConfig.log.format });
  const accessLog = staticConfig.accessLog
    ? new AccessLogWriter(staticConfig.accessLog.filePath, staticConfig.accessLog.format)
    : undefined;
  const pools = new UpstreamPools();
  const serverName = Deno.hostname();
  let draining = false;
  let requestCount = 0;

  let watcher: ConfigWatcher;
  const state: InstanceState = {
    version: VERSION,
    startDate: new Date(),
    staticConfig,
    generation: () => watcher.current,
    lastReload: () => watcher.lastReload,
    providerErrors: () => watcher.providerErrors,
    draining: () => draining,
  };

  const internalServices = new Map<string, Service>([
    ["api@internal", internalService("api@internal", apiApp(state))],
    ["ping@internal", pingService(state)],
    ["noop@internal", {
      name: "noop@internal",
      serve: () => Promise.resolve(new Response(null, { status: 418 })),
      available: () => true,
      serverStatus: () => ({}),
      start() {},
      stop() {},
    }],
    ...redirectServices(staticConfig),
    ...(options.internalServices ?? []),
  ]);

  const routerLog = log.child("router");
  const onRequest = accessLog
    ? (entryPoint: string, request: Request, response: Response, conn: ConnectionInfo, router: string | undefined, started: number) => {
      const url = request.url;
      const pathStart = url.indexOf("/", url.indexOf("//") + 2);
      const len = response.headers.get("content-length");
      accessLog.record({
        clientIp: conn.remoteAddr,
        time: new Date(),
        method: request.method,
        path: pathStart === -1 ? "/" : url.slice(pathStart),
        protocol: "HTTP/1.1",
        status: response.status,
        size: len === null ? undefined : Number(len),
        referer: request.headers.get("referer"),
        userAgent: request.headers.get("user-agent"),
        requestCount: ++requestCount,
        router,
        serverUrl: undefined,
        durationMs: performance.now() - started,
        entryPoint,
      });
    }
    : undefined;

  const build = (snapshots: ReadonlyMap<string, DynamicConfig>, generation: number) =>
    buildRouter({
      generation,
      staticConfig,
      merged: mergeProviders(snapshots),
      pools,
      internalServices,
      serverName,
      onHealth: (service, server, status) =>
        routerLog.warn("server health changed", { service, server, status }),
      onRequest,
    });

  watcher = new ConfigWatcher(
    { build, log: log.child("config"), debounceMs: options.debounceMs ?? 50 },
    new Map([["internal", internalConfig(staticConfig, new Set(internalServices.keys()))]]),
  );

  const providers: Provider[] = [...(options.providers ?? [])];
  const file = staticConfig.providers.file;
  if (file) providers.unshift(new FileProvider(file));
  for (const provider of providers) {
    let firstError: Error | undefined;
    await provider.start({
      onConfig: (name, config) => watcher.onConfig(name, config),
      onError: (name, error) => {
        firstError ??= error;
        watcher.onError(name, error);
      },
    });
    if (firstError && provider.name === "file") {
      await Promise.all(providers.map((p) => p.stop()));
      watcher.stop();
      throw new StartupError(firstError.message);
    }
  }
  watcher.flush();

  const servers = new Map<string, Deno.HttpServer>();
  const ports = new Map<string, number>();
  try {
    for (const [name, ep] of Object.entries(staticConfig.entryPoints)) {
      let boundPort = ep.port;
      const server = Deno.serve({
        hostname: ep.hostname || "0.0.0.0",
        port: ep.port,
        onListen: (addr) => {
          boundPort = (addr as Deno.NetAddr).port;
        },
        onError: (err) => {
          log.error("request handling failed", { entryPoint: name, error: (err as Error).message });
          return new Response("Internal Server Error", { status: 500 });
        },
      }, (request, info) => {
        const conn: ConnectionInfo = {
          remoteAddr: (info.remoteAddr as Deno.NetAddr).hostname,
          tls: false,
          port: boundPort,
        };
        return watcher.current.handle(name, request, conn);
      });
      servers.set(name, server);
      ports.set(name, (server.addr as Deno.NetAddr).port);
      log.info("entrypoint listening", { entryPoint: name, address: ep.address, port: ports.get(name) });
    }
  } catch (err) {
    for (const s of servers.values()) await s.shutdown();
    watcher.stop();
    await Promise.all(providers.map((p) => p.stop()));
    if (err instanceof Deno.errors.AddrInUse) {
      throw new StartupError(`cannot listen: ${(err as Error).message}`);
    }
    throw new StartupError(`cannot listen: ${(err as Error).message}`);
  }

  let resolveFinished!: () => void;
  const finished = new Promise<void>((r) => (resolveFinished = r));
  let shuttingDown: Promise<void> | undefined;

  const shutdown = () => {
    shuttingDown ??= (async () => {
      draining = true;
      log.info("shutting down: draining");
      const lc = staticConfig.lifeCycle;
      if (lc.requestAcceptGraceTimeout > 0) await sleep(lc.requestAcceptGraceTimeout);
      const graceful = Promise.all([...servers.values()].map((s) => s.shutdown()));
      const timedOut = await Promise.race([graceful.then(() => false), sleep(lc.graceTimeOut).then(() => true)]);
      if (timedOut) log.warn("grace period over; closing remaining connections");
      await Promise.all(providers.map((p) => p.stop()));
      watcher.stop();
      pools.close();
      await accessLog?.close();
      log.info("stopped");
      resolveFinished();
    })();
    return shuttingDown;
  };

  return { watcher, state, ports, shutdown, finished };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

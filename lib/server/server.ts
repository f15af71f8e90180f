/**
 * Wires one Portico instance: providers → config watcher → router
 * generations, entrypoint listeners, internal services, extensions (KV,
 * cluster, TLS, metrics), access log, and a graceful shutdown.
 *
 * @module
 */

import type { DynamicConfig, StaticConfig } from "../config/types.ts";
import { apiApp, internalService, pingService } from "../api/api.ts";
import type { InstanceState, ProviderConnection } from "../api/state.ts";
import { AccessLogWriter } from "../log/access_log.ts";
import { fileWriter, Logger } from "../log/logger.ts";
import { FileProvider } from "../providers/file.ts";
import { mergeProviders } from "../providers/merge.ts";
import type { Provider } from "../providers/types.ts";
import { UpstreamPools } from "../proxy/pools.ts";
import { buildRouter } from "../router/build.ts";
import { RuleCache } from "../router/rule_cache.ts";
import type { Service } from "../services/types.ts";
import { ConfigWatcher } from "./config_watcher.ts";
import type { ExtensionContext, Listener, RequestObserver, ServerExtension, TlsRelay } from "./extension.ts";
import { createExtensions } from "./extensions.ts";
import { internalConfig, redirectServices } from "./internal.ts";
import { startEntryPoints } from "./listeners.ts";
import { TcpConnections } from "../tcp/connections.ts";
import { configureRateLimitRuntime } from "../middlewares/rate_limit/runtime.ts";
import type { CertificatePicker } from "../tcp/tls_terminate.ts";
import type { CertificateStore } from "../tls/store.ts";
import { VERSION } from "../version.ts";
import { drainListeners } from "./drain.ts";
import { type AcceptedCounts, WorkerPool } from "./worker_pool.ts";
import type { ConfigMessage } from "./worker_protocol.ts";
import { TEST_HOOKS_ENV } from "../config/static.ts";

export { entryPointLifeCycle } from "./drain.ts";

export interface ServerOptions {
  /** Extra providers besides those from the static config (tests). */
  providers?: Provider[];
  /** Replaces the logger built from `[log]` (tests). */
  logger?: Logger;
  /** Debounce for config changes, ms. */
  debounceMs?: number;
}

/** A startup failure a user caused: printed as one line, exit code 1. */
export class StartupError extends Error {
  override name = "StartupError";
}

export interface RunningServer {
  readonly watcher: ConfigWatcher;
  readonly state: InstanceState;
  readonly extensions: ReadonlyMap<string, ServerExtension>;
  /** The bound port of each entrypoint. */
  readonly ports: ReadonlyMap<string, number>;
  /** Drains and stops; resolves when every listener has closed. */
  shutdown(): Promise<void>;
  /** Resolves when the server has stopped. */
  readonly finished: Promise<void>;
  /** The data-plane workers, when `[server] workers` is above 1. */
  readonly workers?: WorkerPool;
  /** Connections accepted per listener: index 0 is the main isolate, then each worker. */
  acceptedConnections(): Promise<AcceptedCounts[]>;
}

/** `[server] workers` as a count: "auto" is one listener per core. */
export function workerCount(staticConfig: StaticConfig): number {
  const setting = staticConfig.server?.workers ?? 1;
  return setting === "auto" ? Math.max(1, navigator.hardwareConcurrency || 1) : setting;
}

function testHooksOn(): boolean {
  try {
    return Deno.env.get(TEST_HOOKS_ENV) === "1";
  } catch {
    return false;
  }
}

export async function startServer(staticConfig: StaticConfig, options: ServerOptions = {}): Promise<RunningServer> {
  const log = options.logger ??
    new Logger({
      level: staticConfig.log.level,
      format: staticConfig.log.format,
      write: staticConfig.log.filePath ? fileWriter(staticConfig.log.filePath) : undefined,
    });
  const pools = new UpstreamPools();
  const serverName = Deno.hostname();
  let draining = false;
  // rateLimit.redis logs its outages once and divides its fallback budget by the cluster's size.
  const removeRateLimitRuntime = configureRateLimitRuntime({
    log: (level, message, fields) => log.child("ratelimit")[level](message, fields),
    clusterMembers: () => 1 + (staticConfig.cluster?.peers.length ?? 0),
  });

  const providers: Provider[] = [...(options.providers ?? [])];
  const file = staticConfig.providers.file;
  if (file) providers.unshift(new FileProvider(file));

  let watcher: ConfigWatcher | undefined;
  const state: InstanceState = {
    version: VERSION,
    startDate: new Date(),
    staticConfig,
    generation: () => watcher!.current,
    lastReload: () => watcher?.lastReload,
    reloadCounts: () => watcher?.reloads ?? { success: 0, failure: 0 },
    providerErrors: () => watcher?.providerErrors ?? new Map(),
    providerConnections: () =>
      providers.map((p): ProviderConnection => {
        const c = p.connectionState?.() ?? { state: "connected", since: state.startDate };
        return { provider: p.name, ...c };
      }),
    draining: () => draining,
    views: new Map(),
  };

  const context: ExtensionContext = { staticConfig, log, state, earlier: new Map() };
  let extensions: Map<string, ServerExtension>;
  try {
    extensions = await createExtensions(context);
  } catch (err) {
    throw new StartupError((err as Error).message);
  }
  for (const ext of extensions.values()) {
    const extProviders = (ext as { providers?: Provider[] }).providers;
    if (extProviders) providers.push(...extProviders);
  }

  const observers: RequestObserver[] = [];
  let accessLog: AccessLogWriter | undefined;
  if (staticConfig.accessLog) {
    try {
      accessLog = new AccessLogWriter(staticConfig.accessLog.filePath, staticConfig.accessLog.format);
    } catch (err) {
      for (const ext of [...extensions.values()].reverse()) await ext.stop?.().catch(() => {});
      throw new StartupError(`accessLog.filePath: cannot open ${staticConfig.accessLog.filePath}: ${(err as Error).message}`);
    }
    observers.push(accessLog.observer());
  }
  for (const ext of extensions.values()) if (ext.onRequest) observers.push(ext.onRequest);
  const onRequest: RequestObserver | undefined = observers.length === 0
    ? undefined
    : observers.length === 1
    ? observers[0]
    : (...args) => {
      for (const o of observers) o(...args);
    };

  const tracer = [...extensions.values()].find((e) => e.tracer)?.tracer;

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
  ]);
  for (const ext of extensions.values()) {
    for (const [k, v] of ext.internalServices ?? []) internalServices.set(k, v);
  }
  // Built once every internal service is known (dashboard, metrics come from extensions).
  const internal = internalConfig(staticConfig, new Set(internalServices.keys()));
  for (const ext of extensions.values()) Object.assign(internal.http.routers, ext.internalRouters ?? {});

  const routerLog = log.child("router");
  const ruleCache = new RuleCache();
  const tcpShared = { connections: new TcpConnections(), counters: new Map() };
  const tcpLog = log.child("tcp");
  const listenerCount = workerCount(staticConfig);
  let pool: WorkerPool | undefined;
  // The snapshots of the generation last built, for the workers to build the same one.
  let built: ConfigMessage | undefined;
  let published: ConfigMessage | undefined;
  // Set once the entrypoints listen; reloads before that need no listener changes.
  let listenersStarted: Map<string, Listener> | undefined;
  const build = (snapshots: ReadonlyMap<string, DynamicConfig>, generation: number) => {
    const next = buildRouter({
      generation,
      staticConfig,
      merged: mergeProviders(snapshots),
      pools,
      internalServices,
      serverName,
      ruleCache,
      onHealth: (service, server, status) => routerLog.warn("server health changed", { service, server, status }),
      onRequest,
      tracer,
      tcp: tcpShared,
      onTcpEvent: (event, fields) => tcpLog.debug(event, fields),
    });
    if (listenerCount > 1) built = { type: "config", generation, snapshots: new Map(snapshots) };
    return next;
  };

  watcher = new ConfigWatcher({
    build,
    log: log.child("config"),
    debounceMs: options.debounceMs ?? 50,
    onApplied: (generation) => {
      if (built?.generation === generation.generation) {
        published = built;
        if (pool) {
          pool.publish(built);
          void pool.applied(built.generation).then(() =>
            log.debug("configuration applied on every worker", { generation: generation.generation })
          );
        }
      }
      for (const ext of extensions.values()) ext.onApplied?.(generation);
      // TCP routes coming to or leaving an http.tls entrypoint change how its port listens.
      for (const l of listenersStarted?.values() ?? []) void l.reconsider?.();
    },
    onReload: (status) => {
      for (const ext of extensions.values()) ext.onReload?.(status);
    },
  }, new Map([["internal", internal]]));

  const stopAll = async () => {
    await Promise.all(providers.map((p) => p.stop()));
    watcher!.stop();
    for (const ext of [...extensions.values()].reverse()) await ext.stop?.();
    pools.close();
    tcpShared.connections.closeAll();
    removeRateLimitRuntime();
    await accessLog?.close();
  };

  for (const provider of providers) {
    let firstError: Error | undefined;
    await provider.start({
      onConfig: (name, config) => watcher!.onConfig(name, config),
      onError: (name, error) => {
        firstError ??= error;
        watcher!.onError(name, error);
      },
    });
    if (firstError && provider.name === "file") {
      await stopAll();
      throw new StartupError(firstError.message);
    }
  }
  watcher.flush();
  if (built?.generation === watcher.current.generation) published = built;

  let listeners: Map<string, Listener>;
  const relays = new Map<string, TlsRelay>();
  try {
    const tlsExtension = [...extensions.values()].find((e) => e.tlsListener);
    const tlsListener = tlsExtension?.tlsListener;
    listeners = await startEntryPoints(
      staticConfig.entryPoints,
      (name) => (exchange) => watcher!.current.serveExchange(name, exchange),
      (name) => (request, conn) => watcher!.current.handle(name, request, conn),
      tlsListener,
      log,
      tlsExtension?.tlsRelay && ((name, ep, serving) => {
        const relay = tlsExtension.tlsRelay!(name, ep, serving);
        if (relay) relays.set(name, relay);
        return relay;
      }),
      listenerCount > 1,
      {
        table: (name) => watcher!.current.tcp.entryPoint(name),
        terminating: (name, router) => watcher!.current.tcp.terminating(name, router),
        certificate: certificatePicker(tlsExtension?.certificates),
      },
    );
  } catch (err) {
    await stopAll();
    throw new StartupError((err as Error).message);
  }
  listenersStarted = listeners;
  for (const l of listeners.values()) await l.reconsider?.();
  const ports = new Map([...listeners].map(([name, l]) => [name, l.port]));

  if (listenerCount > 1) {
    // TLS-only entrypoints stay on the main isolate, where the certificates are.
    const shared = [...listeners].filter(([, l]) => l.shareable).map(([name, l]) => ({ name, port: l.port }));
    pool = new WorkerPool({
      count: listenerCount - 1,
      staticConfig,
      entryPoints: shared,
      relays,
      internalServices,
      serverName,
      log: log.child("workers"),
      observer: onRequest,
      current: () => published!,
      testHooks: testHooksOn(),
    });
    try {
      await pool.start();
    } catch (err) {
      await Promise.all([...listeners.values()].map((l) => l.shutdown()));
      await stopAll();
      throw new StartupError((err as Error).message);
    }
    log.info("data-plane workers listening", { workers: listenerCount - 1, entryPoints: shared.map((e) => e.name) });
  }
  const acceptedConnections = async (): Promise<AcceptedCounts[]> => {
    const own = Object.fromEntries([...listeners].map(([name, l]) => [name, l.accepted?.() ?? 0]));
    return [own, ...await pool?.stats() ?? []];
  };

  let resolveFinished!: () => void;
  const finished = new Promise<void>((r) => (resolveFinished = r));
  let shuttingDown: Promise<void> | undefined;

  const shutdown = () => {
    shuttingDown ??= (async () => {
      draining = true;
      log.info("shutting down: draining");
      for (const ext of extensions.values()) await ext.drain?.().catch(() => {});
      await Promise.all([drainListeners(listeners, staticConfig, log), pool?.shutdown()]);
      await stopAll();
      log.info("stopped");
      resolveFinished();
    })();
    return shuttingDown;
  };

  return { watcher, state, extensions, ports, shutdown, finished, workers: pool, acceptedConnections };
}

/** Certificates by SNI from the TLS extension's store, for terminating TCP routes. */
function certificatePicker(store: CertificateStore | undefined): CertificatePicker | undefined {
  if (!store) return undefined;
  return (serverName) => {
    const selected = store.select(serverName);
    return selected.kind === "certificate" ? selected.pair : undefined;
  };
}

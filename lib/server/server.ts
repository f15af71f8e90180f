/**
 * The composition root: builds one Portico instance from its static config,
 * each part constructed with what it needs, in dependency order — the KV
 * stores, cluster membership (which uses the first store), TLS and ACME
 * (which use both), the internal services (API, dashboard, metrics, ping),
 * then the configuration pipeline (lib/server/config_watcher.ts), the
 * entrypoint listeners and the data-plane workers. Shutdown runs it
 * backwards. Nothing here decides anything; it only assembles.
 *
 * @module
 */

import type { DynamicConfig, StaticConfig } from "../config/types.ts";
import type { RequestObserver } from "../contracts.ts";
import type { MergedConfig } from "../providers/merge.ts";
import { apiApp, internalService, pingService } from "../api/api.ts";
import { apiServices } from "../api/api_service.ts";
import { CLUSTER_SERVICE, clusterApiService } from "../api/cluster.ts";
import { fileCertificateViews, startAcme } from "../acme/runtime.ts";
import { type ClusterMember, startClusterMember } from "../cluster/member.ts";
import type { InstanceState, ProviderConnection } from "../instance/state.ts";
import { AccessLogWriter } from "../log/access_log.ts";
import { fileWriter, Logger, warnAtMostEvery } from "../log/logger.ts";
import { PROMETHEUS_SERVICE, PrometheusMetrics } from "../metrics/prometheus.ts";
import { configureRateLimitRuntime } from "../middlewares/rate_limit/runtime.ts";
import { FileProvider } from "../providers/file.ts";
import type { Provider } from "../providers/types.ts";
import { UpstreamPools } from "../proxy/pools.ts";
import { routerServices } from "../instance/router_services.ts";
import type { Tracer } from "../tracing/tracer.ts";
import { buildRouter } from "../router/build.ts";
import { RuleCache } from "../router/rule_cache.ts";
import type { Service } from "../services/types.ts";
import { TcpConnections } from "../tcp/connections.ts";
import type { CertificatePicker } from "../tls/terminate_after_peek.ts";
import { buildTls, TlsRuntime } from "../tls/runtime.ts";
import { RemoteTcpStats } from "../tcp/remote_stats.ts";
import type { CertificateStore } from "../tls/store.ts";
import type { TlsRelay } from "../tls/runtime.ts";
import { VERSION } from "../version.ts";
import { ConfigWatcher } from "./config_watcher.ts";
import { drainListeners } from "./drain.ts";
import { internalConfig } from "./internal.ts";
import { type KvStores, openKvStores } from "./kv_setup.ts";
import type { Listener } from "./listener.ts";
import { startEntryPoints } from "./listeners.ts";
import { fencedWriteProbe, peerRoutedFetch, testHooksOn } from "./test_hooks.ts";
import { type AcceptedCounts, WorkerPool } from "./worker_pool.ts";
import type { ConfigMessage } from "./worker_protocol.ts";
import { readEnv } from "../env.ts";

export { entryPointLifeCycle } from "./drain.ts";

export interface ServerOptions {
  /** Extra providers besides those from the static config (tests). */
  providers?: Provider[];
  /** Replaces the logger built from `[log]` (tests). */
  logger?: Logger;
  /** Replaces `providers.providersThrottleDuration`, in ms (tests). */
  throttleMs?: number;
}

/** A startup failure a user caused: printed as one line, exit code 1. */
export class StartupError extends Error {
  override name = "StartupError";
}

export interface RunningServer {
  readonly watcher: ConfigWatcher;
  readonly state: InstanceState;
  /** The KV stores and their providers, when any is configured. */
  readonly kv?: KvStores;
  readonly cluster: ClusterMember;
  readonly tls: TlsRuntime;
  /** Counts of the ACME manager, when `certificatesResolvers` is set. */
  readonly acme?: { readonly issued: number };
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

/** How often an exporter that keeps failing is logged, at most. */
const EXPORT_ERROR_LOG_MS = 30_000;

/** `[server] workers` as a count: "auto" is one listener per core. */
export function workerCount(staticConfig: StaticConfig): number {
  const setting = staticConfig.server?.workers ?? 1;
  return setting === "auto" ? Math.max(1, navigator.hardwareConcurrency || 1) : setting;
}

/** Runs `stops` newest first, each once, ignoring failures (start-up went wrong, or shutdown). */
async function unwind(stops: (() => Promise<void> | void)[]): Promise<void> {
  for (const stop of stops.splice(0).reverse()) await Promise.resolve().then(stop).catch(() => {});
}

export async function startServer(staticConfig: StaticConfig, options: ServerOptions = {}): Promise<RunningServer> {
  const log = options.logger ??
    new Logger({
      level: staticConfig.log.level,
      format: staticConfig.log.format,
      write: staticConfig.log.filePath ? fileWriter(staticConfig.log.filePath) : undefined,
    });
  const env = readEnv;
  const stops: (() => Promise<void> | void)[] = [];
  const fail = async (err: unknown): Promise<never> => {
    await unwind(stops);
    if (err instanceof StartupError) throw err;
    throw new StartupError(typeof err === "string" ? err : (err as Error).message);
  };

  const pools = new UpstreamPools();
  stops.push(() => pools.close());
  // rateLimit.redis logs its outages once and divides its fallback budget by the cluster's size.
  stops.push(configureRateLimitRuntime({
    log: (level, message, fields) => log.child("ratelimit")[level](message, fields),
    clusterMembers: () => 1 + (staticConfig.cluster?.peers.length ?? 0),
  }));

  let watcher: ConfigWatcher | undefined;
  let draining = false;
  const providers: Provider[] = [...(options.providers ?? [])];
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
    views: {},
  };

  // The parts, each from what it needs.
  let kv: KvStores | undefined;
  let cluster: ClusterMember;
  const tls = new TlsRuntime(log.child("tls"));
  let acme: Awaited<ReturnType<typeof startAcme>>;
  try {
    kv = await openKvStores(staticConfig, log.child("kv"));
    if (kv) stops.push(() => kv!.stop());
    const clusterLog = log.child("cluster");
    cluster = await startClusterMember({
      config: staticConfig.cluster,
      store: kv?.store,
      rootKey: kv?.rootKey,
      log: (level, message, fields) => clusterLog[level](message, fields),
      env,
      fetch: peerRoutedFetch(env),
    });
    stops.push(() => cluster.stop());
    acme = await startAcme({
      staticConfig,
      log: log.child("tls").child("acme"),
      certificates: tls.store,
      kv,
      cluster,
      tlsListening: tls.listening,
      env,
    });
    if (acme) stops.push(() => acme!.stop());
  } catch (err) {
    return await fail(err);
  }
  state.views.cluster = () => cluster.view();
  state.views.certificates = () => [...(acme?.certificates() ?? []), ...fileCertificateViews(tls.store)];
  if (acme) state.views.acme = () => acme!.view();

  const observers: RequestObserver[] = [];
  if (staticConfig.accessLog) {
    let accessLog: AccessLogWriter;
    try {
      accessLog = new AccessLogWriter(staticConfig.accessLog.filePath, staticConfig.accessLog.format);
    } catch (err) {
      return await fail(
        `accessLog.filePath: cannot open ${staticConfig.accessLog.filePath}: ${(err as Error).message}`,
      );
    }
    stops.push(() => accessLog.close());
    observers.push(accessLog.observer());
  }
  const prometheusConfig = staticConfig.metrics?.prometheus;
  const prometheus = prometheusConfig &&
    new PrometheusMetrics(state, prometheusConfig.buckets, {
      entryPoints: prometheusConfig.addEntryPointsLabels ?? true,
      routers: prometheusConfig.addRoutersLabels ?? true,
      services: prometheusConfig.addServicesLabels ?? true,
    });
  if (prometheus) observers.push(prometheus.observer());
  // OpenTelemetry is loaded only when configured; exports never hold a request up.
  let tracer: Tracer | undefined;
  try {
    if (staticConfig.tracing) {
      const { Tracer } = await import("../tracing/tracer.ts");
      const started = tracer = await Tracer.start(
        staticConfig.tracing,
        warnAtMostEvery(log, EXPORT_ERROR_LOG_MS, "tracing export failed; spans are dropped until the receiver answers"),
      );
      stops.push(() => started.stop());
      if (prometheus) prometheus.extraFamilies = () => started.renderMetrics();
    }
    if (staticConfig.metrics?.otlp) {
      const { OtlpMetricsPusher } = await import("../metrics/otlp_metrics.ts");
      const pusher = await OtlpMetricsPusher.start(
        staticConfig.metrics.otlp,
        state,
        warnAtMostEvery(log, EXPORT_ERROR_LOG_MS, "metrics.otlp export failed; data is dropped until the receiver answers"),
      );
      stops.push(() => pusher.stop());
      observers.push(pusher.observer(routerServices(state)));
    }
  } catch (err) {
    return await fail(err);
  }
  const onRequest: RequestObserver | undefined = observers.length === 0
    ? undefined
    : observers.length === 1
    ? observers[0]
    : (...args) => {
      for (const o of observers) o(...args);
    };

  const clusterService = clusterApiService({
    view: () => cluster.view(),
    isManager: () => cluster.isManager(),
    leaderRecord: () => cluster.shownLeaderRecord(),
    manager: () => cluster.status().manager,
    testHook: fencedWriteProbe(env, cluster, kv?.store, kv?.rootKey ?? "traefik"),
  });
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
    [CLUSTER_SERVICE, clusterService],
  ]);
  if (staticConfig.api) {
    const api = apiServices(state, { dashboard: staticConfig.api.dashboard ?? false, cluster: clusterService });
    for (const [name, service] of api) internalServices.set(name, service);
  }
  if (prometheus) internalServices.set(PROMETHEUS_SERVICE, prometheus.service());
  if (acme) internalServices.set(acme.challengeService.name, acme.challengeService);
  const internal = internalConfig(staticConfig, new Set(internalServices.keys()), acme?.internalRouters ?? {});

  const file = staticConfig.providers.file;
  if (file) providers.unshift(new FileProvider(file));
  if (kv) providers.push(...kv.providers);

  const routerLog = log.child("router");
  const ruleCache = new RuleCache();
  const tcpCounters = new Map();
  // The workers' TCP counters are summed into main's, which the metrics read.
  const tcpShared = { connections: new TcpConnections(), counters: tcpCounters, remote: new RemoteTcpStats(tcpCounters) };
  stops.push(() => tcpShared.connections.closeAll());
  const tcpLog = log.child("tcp");
  const serverName = Deno.hostname();
  const listenerCount = workerCount(staticConfig);
  let pool: WorkerPool | undefined;
  // What the workers build from: the provider snapshots of the generation last built.
  let built: ConfigMessage | undefined;
  let published: ConfigMessage | undefined;
  // Set once the entrypoints listen; reloads before that need no listener changes.
  let listenersStarted: Map<string, Listener> | undefined;
  const build = (merged: MergedConfig, generation: number, snapshots: ReadonlyMap<string, DynamicConfig>) => {
    // The TLS part first: a certificate that cannot be read rejects the reload whole.
    const tlsBuild = buildTls(merged);
    const router = buildRouter({
      generation,
      staticConfig,
      merged,
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
    return { router, commit: () => tls.apply(tlsBuild) };
  };

  watcher = new ConfigWatcher({
    build,
    log: log.child("config"),
    throttleMs: options.throttleMs ?? staticConfig.providers.providersThrottleDuration ?? 2000,
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
      acme?.onApplied(generation.merged);
      // TCP routes coming to or leaving an http.tls entrypoint change how its port listens.
      for (const l of listenersStarted?.values() ?? []) void l.reconsider?.();
    },
    onReload: (status) => prometheus?.onReload(status),
  }, new Map([["internal", internal]]));
  const runningWatcher = watcher;
  stops.push(() => runningWatcher.stop());
  stops.push(() => Promise.all(providers.map((p) => p.stop())).then(() => {}));

  for (const provider of providers) {
    let firstError: Error | undefined;
    await provider.start({
      onConfig: (name, config) => runningWatcher.listener.onConfig(name, config),
      onError: (name, error) => {
        firstError ??= error;
        runningWatcher.listener.onError(name, error);
      },
    });
    if (firstError && provider.name === "file") return await fail(firstError);
  }
  watcher.flush();
  if (built?.generation === watcher.current.generation) published = built;

  let listeners: Map<string, Listener>;
  const relays = new Map<string, TlsRelay>();
  try {
    listeners = await startEntryPoints({
      entryPoints: staticConfig.entryPoints,
      exchangeHandlerFor: (name) => (exchange) => runningWatcher.current.serveExchange(name, exchange),
      webHandlerFor: (name) => (request, conn) => runningWatcher.current.handle(name, request, conn),
      log,
      tls,
      onRelay: (name, relay) => relays.set(name, relay),
      reusePort: listenerCount > 1,
      tcp: {
        table: (name) => runningWatcher.current.tcp.entryPoint(name),
        terminating: (name, router) => runningWatcher.current.tcp.terminating(name, router),
        certificate: certificatePicker(tls.store),
        peekTls: () => tls.store.peek,
      },
    });
  } catch (err) {
    return await fail(err);
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
      tcpStats: tcpShared.remote,
      current: () => published!,
      testHooks: testHooksOn(env),
    });
    try {
      await pool.start();
    } catch (err) {
      await Promise.all([...listeners.values()].map((l) => l.shutdown()));
      return await fail(err);
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
      // A manager hands over first, so the cluster does not wait out an election timeout.
      await cluster.stop().catch(() => {});
      await Promise.all([drainListeners(listeners, staticConfig, log), pool?.shutdown()]);
      await unwind(stops);
      log.info("stopped");
      resolveFinished();
    })();
    return shuttingDown;
  };

  return {
    watcher,
    state,
    kv,
    cluster,
    tls,
    acme: acme?.manager,
    ports,
    shutdown,
    finished,
    workers: pool,
    acceptedConnections,
  };
}

/** Certificates by SNI from the TLS store, for terminating TCP routes. */
function certificatePicker(store: CertificateStore): CertificatePicker {
  return (serverName, strict) => {
    const selected = store.select(serverName);
    if (selected.kind !== "certificate" || (strict && selected.via === "default")) return undefined;
    return { ...selected.pair, options: selected.termination };
  };
}

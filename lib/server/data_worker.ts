/**
 * A data-plane worker: one more listener per core. It binds the plain
 * entrypoints main shares with it (SO_REUSEPORT, so the kernel spreads new
 * connections), routes with its own router generations built from the
 * config snapshots main sends, forwards over its own upstream pools, and
 * sends main what only main has: internal-service calls (API, dashboard,
 * ping, ACME HTTP-01), request observations (metrics, access log) and log
 * lines. It never reads a provider, the KV store or the disk.
 *
 * @module
 */

import type { StaticConfig } from "../config/types.ts";
import { Logger } from "../log/logger.ts";
import { mergeProviders } from "../providers/merge.ts";
import { UpstreamPools } from "../proxy/pools.ts";
import { buildRouter, type RouterGeneration } from "../router/build.ts";
import { RuleCache } from "../router/rule_cache.ts";
import type { ProxyRequest, Service } from "../services/types.ts";
import { drainListeners } from "./drain.ts";
import type { Listener } from "./listener.ts";
import type { TlsRelay } from "../tls/runtime.ts";
import { startEntryPoints } from "./listeners.ts";
import { TcpConnections } from "../tcp/connections.ts";
import { configureRateLimitRuntime } from "../middlewares/rate_limit/runtime.ts";
import type { Tracer } from "../tracing/tracer.ts";
import {
  type ConfigMessage,
  type FromWorker,
  fromWireResponse,
  type ToWorker,
  toWireObservation,
  toWireProxyRequest,
  type WireObservation,
} from "./worker_protocol.ts";

/** How often a worker's TCP router totals may go to main, ms. */
const TCP_STATS_MS = 500;

/** How often batched observations go to main, ms. */
const OBSERVATION_FLUSH_MS = 50;
const OBSERVATION_BATCH = 256;

interface WorkerScope {
  postMessage(message: FromWorker): void;
  onmessage: ((event: MessageEvent<ToWorker>) => void) | null;
  close(): void;
}

/** Whether this isolate is a Deno Worker (the bundle's entry decides its role with this). */
export function inWorker(): boolean {
  // deno-lint-ignore no-explicit-any
  const g = globalThis as any;
  return typeof g.WorkerGlobalScope === "function" && g instanceof g.WorkerGlobalScope;
}

/** Runs the worker side; call once, from a Worker's module. */
export function runDataWorker(scope: WorkerScope = globalThis as unknown as WorkerScope): void {
  const post = (message: FromWorker) => scope.postMessage(message);
  let generation: RouterGeneration | undefined;
  let listeners: Map<string, Listener> | undefined;
  let staticConfig: StaticConfig | undefined;
  let log: Logger | undefined;
  // Each worker exports its own spans (the main isolate's exporter is not reachable from here).
  let tracer: Tracer | undefined;
  const pools = new UpstreamPools();
  const ruleCache = new RuleCache();
  const tcpShared = { connections: new TcpConnections(), counters: new Map() };
  const internalServices = new Map<string, Service>();
  type Answer = Extract<ToWorker, { id: number }>;
  const pending = new Map<number, (message: Answer) => void>();
  let nextId = 1;
  /** Posts a question to main and resolves with main's answer of the same id. */
  const ask = <A extends Answer>(question: (id: number) => FromWorker): Promise<A> => {
    const id = nextId++;
    return new Promise<A>((resolve) => {
      pending.set(id, resolve as (message: Answer) => void);
      post(question(id));
    });
  };
  let serverName = "";
  let testHooks = false;

  let batch: WireObservation[] = [];
  let flushTimer: ReturnType<typeof setTimeout> | undefined;
  // TCP router totals go to main as snapshots, when they changed, at most every TCP_STATS_MS.
  let lastTcpStats = "";
  const pushTcpStats = () => {
    const stats = generation?.tcp.stats() ?? [];
    const key = JSON.stringify(stats);
    if (key === lastTcpStats) return;
    lastTcpStats = key;
    post({ type: "tcp-stats", stats });
  };
  const tcpStatsTimer = setInterval(pushTcpStats, TCP_STATS_MS);
  const flush = () => {
    clearTimeout(flushTimer);
    flushTimer = undefined;
    if (batch.length === 0) return;
    post({ type: "observations", batch });
    batch = [];
  };

  const remoteService = (name: string): Service => ({
    name,
    async serve(request: ProxyRequest): Promise<Response> {
      const wire = await toWireProxyRequest(request);
      const answer = await ask<Extract<ToWorker, { type: "internal-response" }>>((id) => ({
        type: "internal-request",
        id,
        service: name,
        request: wire,
      }));
      if (!answer.response) throw new Error(`internal service ${name}: ${answer.error ?? "no answer"}`);
      return fromWireResponse(answer.response);
    },
    available: () => true,
    serverStatus: () => ({}),
    start() {},
    stop() {},
  });

  // The TLS side of a shared entrypoint is main's; the worker only carries the bytes there.
  const relayToMain = (entryPoint: string): TlsRelay => ({
    async port() {
      const answer = await ask<Extract<ToWorker, { type: "relay-port" }>>((id) => ({ type: "relay-port", id, entryPoint }));
      if (answer.port === undefined) throw new Error(answer.error ?? "no TLS side");
      return answer.port;
    },
    register: (localPort, info) => post({ type: "relay-register", entryPoint, localPort, info }),
    unregister: (localPort) => post({ type: "relay-unregister", entryPoint, localPort }),
    shutdown: () => Promise.resolve(),
  });

  const apply = (message: ConfigMessage) => {
    try {
      const next = buildRouter({
        generation: message.generation,
        staticConfig: staticConfig!,
        merged: mergeProviders(message.snapshots),
        pools,
        internalServices,
        serverName,
        ruleCache,
        tracer,
        tcp: tcpShared,
        // Main logs health changes from its own checks; a worker's would repeat them.
        onRequest: (entryPoint, request, conn, router, started) => {
          batch.push(toWireObservation(entryPoint, request, conn, router, started, performance.now()));
          if (batch.length >= OBSERVATION_BATCH) flush();
          else flushTimer ??= setTimeout(flush, OBSERVATION_FLUSH_MS);
        },
      });
      next.start();
      const previous = generation;
      generation = next;
      previous?.stop();
      post({ type: "applied", generation: message.generation });
    } catch (err) {
      post({ type: "rejected", generation: message.generation, error: (err as Error).message });
    }
  };

  const start = async (message: Extract<ToWorker, { type: "init" }>) => {
    staticConfig = message.staticConfig;
    serverName = message.serverName;
    testHooks = message.testHooks;
    log = new Logger({
      level: staticConfig.log.level,
      format: staticConfig.log.format,
      write: (line) => post({ type: "log", line }),
    }, `worker-${message.index}`);
    const workerLog = log;
    configureRateLimitRuntime({
      log: (level, text, fields) => workerLog.child("ratelimit")[level](text, fields),
      clusterMembers: () => 1 + (staticConfig!.cluster?.peers.length ?? 0),
    });
    for (const name of message.internalServices) internalServices.set(name, remoteService(name));
    if (staticConfig.tracing) {
      const { Tracer } = await import("../tracing/tracer.ts");
      tracer = await Tracer.start(staticConfig.tracing, (error) => workerLog.warn("tracing export failed", { error }));
    }
    apply(message.config);
    if (!generation) return post({ type: "failed", error: "the first configuration was rejected" });
    const shared = Object.fromEntries(
      message.entryPoints.map(({ name, port }) => [name, { ...staticConfig!.entryPoints[name], port }]),
    );
    try {
      listeners = await startEntryPoints({
        entryPoints: shared,
        exchangeHandlerFor: (name) => (exchange) => generation!.serveExchange(name, exchange),
        webHandlerFor: (name) => (request, conn) => generation!.handle(name, request, conn),
        log,
        tls: {
          listen: () => Promise.reject(new Error("TLS entrypoints are served by the main isolate")),
          relay: (name) => (message.relayed.includes(name) ? relayToMain(name) : undefined),
        },
        reusePort: true,
        tcp: {
          table: (name) => generation?.tcp.entryPoint(name),
          // Terminating TCP routes run where TLS ends: on main, behind the relay.
          terminating: () => undefined,
        },
      });
      post({ type: "listening" });
    } catch (err) {
      post({ type: "failed", error: (err as Error).message });
    }
  };

  const shutdown = async () => {
    if (listeners) await drainListeners(listeners, staticConfig!, log!);
    flush();
    clearInterval(tcpStatsTimer);
    pushTcpStats();
    generation?.stop();
    pools.close();
    await tracer?.stop();
    post({ type: "stopped" });
    scope.close();
  };

  scope.onmessage = (event) => {
    const message = event.data;
    switch (message.type) {
      case "init":
        void start(message);
        break;
      case "config":
        apply(message);
        break;
      case "internal-response":
      case "relay-port":
        pending.get(message.id)?.(message);
        pending.delete(message.id);
        break;
      case "stats":
        post({
          type: "stats",
          accepted: Object.fromEntries([...listeners ?? []].map(([name, l]) => [name, l.accepted?.() ?? 0])),
        });
        break;
      case "shutdown":
        void shutdown();
        break;
      case "crash":
        // Fault injection for the restart test: a real uncaught error.
        if (testHooks) {
          setTimeout(() => {
            throw new Error("crash requested by a test hook");
          });
        }
        break;
    }
  };
}

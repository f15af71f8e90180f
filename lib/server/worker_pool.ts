/**
 * The main isolate's side of `[server] workers`: starts the data-plane
 * workers, sends each the config generation in force and every new one,
 * answers their internal-service calls, replays their request observations
 * into main's metrics and access log, and restarts a worker that crashes.
 * The others keep their connections: each worker is its own isolate with
 * its own listening socket.
 *
 * @module
 */

import { settleWithin } from "../deadline.ts";
import type { StaticConfig } from "../config/types.ts";
import type { Logger } from "../log/logger.ts";
import type { RequestObserver } from "../contracts.ts";
import type { Service } from "../services/types.ts";
import type { TlsRelay } from "../tls/runtime.ts";
import type { RemoteTcpStats } from "../tcp/remote_stats.ts";
import {
  type ConfigMessage,
  type FromWorker,
  fromWireProxyRequest,
  replayObservation,
  type ToWorker,
  toWireResponse,
} from "./worker_protocol.ts";

export interface WorkerPoolOptions {
  /** Workers besides the main isolate. */
  count: number;
  staticConfig: StaticConfig;
  /** The plain entrypoints to share, with the port main bound. */
  entryPoints: { name: string; port: number }[];
  /** Main's TLS side of each shared entrypoint that has one. */
  relays: ReadonlyMap<string, TlsRelay>;
  internalServices: ReadonlyMap<string, Service>;
  serverName: string;
  log: Logger;
  observer?: RequestObserver;
  /** Where the workers' TCP router totals are merged into main's. */
  tcpStats?: RemoteTcpStats;
  /** The generation in force, for a worker that starts or restarts. */
  current: () => ConfigMessage;
  testHooks: boolean;
  /** The worker's module (default: the unbundled entry, or the bundle itself). */
  moduleUrl?: string | URL;
}

/** Connections each listener accepted, by entrypoint; index 0 is the main isolate. */
export type AcceptedCounts = Record<string, number>;

interface Slot {
  index: number;
  worker?: Worker;
  applied: number;
  stats?: (accepted: AcceptedCounts) => void;
  stopped?: () => void;
}

const RESTART_DELAY_MS = 100;
const RESTART_DELAY_MAX_MS = 5_000;
const STOP_TIMEOUT_MS = 60_000;

/** Where the worker code is: the entry next to this file, or (bundled) the bundle itself. */
function defaultModuleUrl(): string {
  if (import.meta.url.endsWith("/lib/server/worker_pool.ts")) {
    return new URL("./data_worker_main.ts", import.meta.url).href;
  }
  return Deno.mainModule;
}

export class WorkerPool {
  private readonly slots: Slot[] = [];
  private readonly waiters = new Set<() => void>();
  private stopping = false;
  private crashes = 0;
  /** Workers restarted after a crash, since start. */
  restarts = 0;

  constructor(private readonly options: WorkerPoolOptions) {
    for (let i = 1; i <= options.count; i++) this.slots.push({ index: i, applied: 0 });
  }

  /** Starts every worker; rejects with the first worker's startup error. */
  async start(): Promise<void> {
    try {
      await Promise.all(this.slots.map((slot) => this.spawn(slot)));
    } catch (err) {
      await this.shutdown();
      throw err;
    }
  }

  /** Sends a new generation to every worker. */
  publish(config: ConfigMessage): void {
    for (const slot of this.slots) slot.worker?.postMessage(config satisfies ToWorker);
  }

  /** Resolves when every running worker serves `generation` or a later one. */
  applied(generation: number): Promise<void> {
    const done = () => this.slots.every((s) => !s.worker || s.applied >= generation);
    if (done()) return Promise.resolve();
    return new Promise((resolve) => {
      const check = () => {
        if (!done()) return;
        this.waiters.delete(check);
        resolve();
      };
      this.waiters.add(check);
    });
  }

  /** Accepted connections per worker (a stopped worker answers {}). */
  async stats(): Promise<AcceptedCounts[]> {
    return await Promise.all(this.slots.map((slot) =>
      new Promise<AcceptedCounts>((resolve) => {
        if (!slot.worker) return resolve({});
        slot.stats = resolve;
        slot.worker.postMessage({ type: "stats" } satisfies ToWorker);
      })
    ));
  }

  /** Fault injection for tests (honoured only with the test hooks on). */
  crash(index: number): void {
    this.slots[index - 1]?.worker?.postMessage({ type: "crash" } satisfies ToWorker);
  }

  /** Drains every worker on its entrypoints' lifeCycle timers, then ends them. */
  async shutdown(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.slots.map(async (slot) => {
      const worker = slot.worker;
      if (!worker) return;
      const stopped = new Promise<void>((resolve) => (slot.stopped = resolve));
      worker.postMessage({ type: "shutdown" } satisfies ToWorker);
      await settleWithin(stopped, STOP_TIMEOUT_MS);
      worker.terminate();
      slot.worker = undefined;
      this.options.tcpStats?.forget(String(slot.index));
    }));
    for (const waiter of this.waiters) waiter();
  }

  private spawn(slot: Slot): Promise<void> {
    const { options } = this;
    const worker = new Worker(options.moduleUrl ?? defaultModuleUrl(), {
      type: "module",
      name: `portico-worker-${slot.index}`,
    });
    slot.worker = worker;
    slot.applied = 0;
    const first = options.current();
    return new Promise((resolve, reject) => {
      let started = false;
      worker.onmessage = (event: MessageEvent<FromWorker>) => {
        const message = event.data;
        switch (message.type) {
          case "listening":
            started = true;
            resolve();
            break;
          case "failed":
            reject(new Error(`data-plane worker ${slot.index}: ${message.error}`));
            break;
          default:
            this.onMessage(slot, message);
        }
      };
      worker.onerror = (event) => {
        // Handled here, so one worker's uncaught error does not end the process.
        event.preventDefault();
        worker.terminate();
        if (slot.worker === worker) slot.worker = undefined;
        // Its open TCP connections died with it; its successor counts from zero.
        options.tcpStats?.forget(String(slot.index));
        for (const waiter of [...this.waiters]) waiter();
        slot.stats?.({});
        slot.stats = undefined;
        if (!started) return reject(new Error(`data-plane worker ${slot.index} failed to start: ${event.message}`));
        options.log.error("data-plane worker crashed; restarting it", { worker: slot.index, error: event.message });
        this.restartLater(slot);
      };
      worker.postMessage({
        type: "init",
        index: slot.index,
        staticConfig: options.staticConfig,
        entryPoints: options.entryPoints,
        relayed: [...options.relays.keys()],
        internalServices: [...options.internalServices.keys()],
        serverName: options.serverName,
        testHooks: options.testHooks,
        config: first,
      } satisfies ToWorker);
    });
  }

  private restartLater(slot: Slot): void {
    if (this.stopping) return;
    // Back off when a worker keeps crashing, so a poison config cannot spin a core.
    const delay = Math.min(RESTART_DELAY_MS * 2 ** this.crashes++, RESTART_DELAY_MAX_MS);
    setTimeout(() => {
      if (this.stopping) return;
      this.spawn(slot).then(() => {
        this.restarts++;
        this.crashes = 0;
        this.options.log.info("data-plane worker restarted", { worker: slot.index });
      }, (err) => {
        this.options.log.error("data-plane worker restart failed", { worker: slot.index, error: err.message });
        this.restartLater(slot);
      });
    }, delay);
  }

  private onMessage(slot: Slot, message: FromWorker): void {
    const { options } = this;
    switch (message.type) {
      case "applied":
        slot.applied = Math.max(slot.applied, message.generation);
        for (const waiter of [...this.waiters]) waiter();
        break;
      case "rejected":
        options.log.error("data-plane worker rejected a configuration", {
          worker: slot.index,
          generation: message.generation,
          error: message.error,
        });
        break;
      case "log":
        options.log.writeLine(message.line);
        break;
      case "observations": {
        const observer = options.observer;
        if (!observer) break;
        const now = performance.now();
        for (const o of message.batch) replayObservation(o, observer, now);
        break;
      }
      case "tcp-stats":
        options.tcpStats?.apply(String(slot.index), message.stats);
        break;
      case "internal-request":
        void this.answerInternal(slot, message);
        break;
      case "relay-port": {
        const relay = options.relays.get(message.entryPoint);
        const reply = (body: { port?: number; error?: string }) =>
          slot.worker?.postMessage({ type: "relay-port", id: message.id, ...body } satisfies ToWorker);
        if (!relay) reply({ error: `entrypoint ${message.entryPoint} has no TLS side` });
        else relay.port().then((port) => reply({ port }), (err) => reply({ error: (err as Error).message }));
        break;
      }
      case "relay-register":
        options.relays.get(message.entryPoint)?.register(message.localPort, message.info);
        break;
      case "relay-unregister":
        options.relays.get(message.entryPoint)?.unregister(message.localPort);
        break;
      case "stats":
        slot.stats?.(message.accepted);
        slot.stats = undefined;
        break;
      case "stopped":
        slot.stopped?.();
        break;
    }
  }

  private async answerInternal(slot: Slot, message: Extract<FromWorker, { type: "internal-request" }>) {
    const reply = (body: Omit<Extract<ToWorker, { type: "internal-response" }>, "type" | "id">) =>
      slot.worker?.postMessage({ type: "internal-response", id: message.id, ...body } satisfies ToWorker);
    const service = this.options.internalServices.get(message.service);
    if (!service) return reply({ error: `no internal service ${message.service}` });
    try {
      const request = fromWireProxyRequest(message.request);
      const response = await service.serve(request);
      reply({ response: await toWireResponse(response, request.responseHeaders) });
    } catch (err) {
      reply({ error: (err as Error).message });
    }
  }
}

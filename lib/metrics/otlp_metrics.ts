/**
 * `[metrics.otlp]`: the request families Prometheus serves, under the same
 * names, plus config reloads and open connections, pushed every
 * `pushInterval` with the official OTLP exporter (cumulative temporality,
 * as a scrape sees them). Collection is the Prometheus collectors' own
 * (RequestMetrics): pushing costs nothing on the request path.
 *
 * @module
 */

import { settleWithin } from "../deadline.ts";
import type { InstanceState } from "../instance/state.ts";
import type { OtlpMetricsConfig } from "../config/types.ts";
import type { RequestObserver } from "../contracts.ts";
import {
  createOtlpExporter,
  createResource,
  EXPORT_SUCCESS,
  type OtlpExporter,
  STOP_BUDGET_MS,
} from "../tracing/otlp_exporters.ts";
import { hrTime } from "../tracing/span_records.ts";
import { VERSION } from "../version.ts";
import type { CellSnapshot } from "./request_metrics.ts";
import { RequestMetrics } from "./request_metrics.ts";

/** `DataPointType` and `ValueType` of the OpenTelemetry SDK, as numbers. */
const HISTOGRAM = 0, GAUGE = 2, SUM = 3;
const DOUBLE = 1;
const CUMULATIVE = 1;

interface Point {
  attributes: Record<string, string>;
  startTime: [number, number];
  endTime: [number, number];
  value: unknown;
}

interface MetricData {
  descriptor: { name: string; description: string; unit: string; valueType: number };
  aggregationTemporality: number;
  dataPointType: number;
  isMonotonic?: boolean;
  dataPoints: Point[];
}

/** What `toResourceMetrics` needs besides the collectors. */
export interface MetricsSnapshotInput {
  resource: unknown;
  cells: CellSnapshot[];
  bounds: readonly number[];
  openConnections: { entryPoint: string; protocol: string; value: number }[];
  reloads: { success: number; failure: number };
  startMs: number;
  nowMs: number;
}

const DESCRIPTION: Record<string, string> = {
  entrypoint: "an entrypoint",
  router: "a router",
  service: "a service",
};

/** The SDK's `ResourceMetrics` for one push. Pure. */
export function toResourceMetrics(input: MetricsSnapshotInput): unknown {
  const startTime = hrTime(input.startMs);
  const endTime = hrTime(input.nowMs);
  const metrics: MetricData[] = [];
  for (const kind of ["entrypoint", "router", "service"]) {
    const cells = input.cells.filter((c) => c.kind === kind);
    if (cells.length === 0) continue;
    metrics.push({
      descriptor: {
        name: `traefik_${kind}_requests_total`,
        description: `How many HTTP requests processed on ${
          DESCRIPTION[kind]
        }, partitioned by status code, protocol, and method.`,
        unit: "1",
        valueType: DOUBLE,
      },
      aggregationTemporality: CUMULATIVE,
      dataPointType: SUM,
      isMonotonic: true,
      dataPoints: cells.map((c) => ({
        attributes: c.attributes,
        startTime,
        endTime,
        value: c.count,
      })),
    });
    metrics.push({
      descriptor: {
        name: `traefik_${kind}_request_duration_seconds`,
        description: `How long it took to process the request on ${
          DESCRIPTION[kind]
        }, partitioned by status code, protocol, and method.`,
        unit: "s",
        valueType: DOUBLE,
      },
      aggregationTemporality: CUMULATIVE,
      dataPointType: HISTOGRAM,
      dataPoints: cells.map((c) => ({
        attributes: c.attributes,
        startTime,
        endTime,
        value: {
          buckets: { boundaries: [...input.bounds], counts: [...c.buckets] },
          count: c.count,
          sum: c.sum,
        },
      })),
    });
  }
  metrics.push({
    descriptor: {
      name: "traefik_config_reloads_total",
      description: "Config reloads.",
      unit: "1",
      valueType: DOUBLE,
    },
    aggregationTemporality: CUMULATIVE,
    dataPointType: SUM,
    isMonotonic: true,
    dataPoints: [{ attributes: {}, startTime, endTime, value: input.reloads.success }],
  });
  if (input.openConnections.length > 0) {
    metrics.push({
      descriptor: {
        name: "traefik_open_connections",
        description: "How many open connections exist, by entryPoint and protocol",
        unit: "1",
        valueType: DOUBLE,
      },
      aggregationTemporality: CUMULATIVE,
      dataPointType: GAUGE,
      dataPoints: input.openConnections.map((o) => ({
        attributes: { entrypoint: o.entryPoint, protocol: o.protocol },
        startTime,
        endTime,
        value: o.value,
      })),
    });
  }
  return {
    resource: input.resource,
    scopeMetrics: [{ scope: { name: "github.com/traefik/traefik", version: VERSION }, metrics }],
  };
}

/**
 * @example
 * ```ts
 * const push = await OtlpMetricsPusher.start(staticConfig.metrics!.otlp!, state);
 * extension.onRequest = push.observer();
 * ```
 */
export class OtlpMetricsPusher {
  readonly requests: RequestMetrics;
  readonly #startMs = Date.now();
  readonly #timer: ReturnType<typeof setInterval>;
  #inFlight = false;
  /** Pushes accepted and failed, for tests and logs. */
  readonly counters = { pushed: 0, failed: 0 };

  private constructor(
    private readonly config: OtlpMetricsConfig,
    private readonly state: InstanceState,
    private readonly exporter: OtlpExporter<unknown>,
    private readonly resource: unknown,
    private readonly onError?: (message: string) => void,
  ) {
    this.requests = new RequestMetrics(config.explicitBoundaries, {
      entryPoints: config.addEntryPointsLabels,
      routers: config.addRoutersLabels,
      services: config.addServicesLabels,
    });
    this.#timer = setInterval(() => this.push(), config.pushInterval);
    Deno.unrefTimer(this.#timer);
  }

  static async start(
    config: OtlpMetricsConfig,
    state: InstanceState,
    onError?: (message: string) => void,
  ): Promise<OtlpMetricsPusher> {
    const exporter = await createOtlpExporter<unknown>("metrics", config, "metrics.otlp");
    const resource = await createResource(config.serviceName, config.resourceAttributes);
    return new OtlpMetricsPusher(config, state, exporter, resource, onError);
  }

  /** The request observer feeding the collectors (internal routers not counted). */
  observer(serviceOf: (router: string) => string | undefined): RequestObserver {
    const origin = performance.timeOrigin;
    return (entryPoint, request, _conn, router, started) => {
      if (router !== undefined && router.endsWith("@internal")) return;
      const now = performance.now();
      this.requests.recordArgs(
        entryPoint,
        request.method,
        request.status,
        request.status === 101 ? 1 : 0,
        router,
        router === undefined ? undefined : serviceOf(router),
        (now - started) / 1000,
        origin + now,
      );
    };
  }

  /** Sends the current values unless a push is still in flight (then this one is skipped). */
  push(nowMs = Date.now()): Promise<boolean> {
    if (this.#inFlight) return Promise.resolve(false);
    this.#inFlight = true;
    const data = toResourceMetrics({
      resource: this.resource,
      cells: this.requests.snapshot(),
      bounds: this.requests.bounds,
      openConnections: this.requests.openConnections(nowMs),
      reloads: this.state.reloadCounts(),
      startMs: this.#startMs,
      nowMs,
    });
    return new Promise((resolve) => {
      try {
        this.exporter.export(data, (result) => {
          this.#inFlight = false;
          const ok = result.code === EXPORT_SUCCESS;
          if (ok) this.counters.pushed++;
          else {
            this.counters.failed++;
            this.onError?.(result.error?.message ?? "export failed");
          }
          resolve(ok);
        });
      } catch (err) {
        this.#inFlight = false;
        this.counters.failed++;
        this.onError?.((err as Error).message);
        resolve(false);
      }
    });
  }

  /** Pushes the last values (for at most the shutdown budget) and stops. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    const last = async () => {
      await this.push();
      await this.exporter.shutdown().catch(() => {});
    };
    await settleWithin(last(), STOP_BUDGET_MS);
  }
}

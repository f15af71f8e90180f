/**
 * `[tracing]`: starts a trace per request (honouring an incoming W3C
 * `traceparent`, parent-based sampling with `sampleRate` for new traces),
 * and hands finished traces to a bounded queue drained by the OTLP
 * exporter in the background.
 *
 * The request path only fills a `RequestTrace`; spans are built and
 * serialised when a batch is exported.
 *
 * @module
 */

import { settleWithin } from "../deadline.ts";
import type { TracingConfig } from "../config/types.ts";
import { VERSION } from "../version.ts";
import {
  createOtlpExporter,
  createResource,
  EXPORT_SUCCESS,
  type OtlpExporter,
  STOP_BUDGET_MS,
} from "./otlp_exporters.ts";
import { type CapturedHeaders, RequestTrace, type RouteTraceInfo } from "./request_trace.ts";
import { type ExportSpan, spanCount, spansOf } from "./span_records.ts";
import { type ExportCounters, SpanQueue } from "./span_queue.ts";
import { IdSource, parseTraceparent, sampledByRatio } from "./trace_context.ts";

export type { RequestTrace, RouteTraceInfo } from "./request_trace.ts";

/** Spans buffered at most while the receiver is slow or down. */
const MAX_QUEUED_SPANS = 8192;
/** Spans per export request at most. */
const BATCH_SPANS = 1024;
/** How often the queue is drained. */
const FLUSH_MS = 1000;

/** A header lookup: the joined value of a request or response header, or null. */
export type HeaderLookup = (name: string) => string | null;

/**
 * @example
 * ```ts
 * const tracer = await Tracer.start(staticConfig.tracing!);
 * const trace = tracer.begin("web", "GET", "/x", "a.com", "127.0.0.1", false, (n) => headers.get(n), 0, performance.now());
 * tracer.finish(trace, 200);
 * ```
 */
export class Tracer {
  readonly #ids = new IdSource();
  readonly #queue = new SpanQueue<RequestTrace>(MAX_QUEUED_SPANS, BATCH_SPANS);
  readonly #rate: number;
  readonly #requestHeaders: string[];
  readonly #responseHeaders: string[];
  readonly #timer: ReturnType<typeof setInterval>;
  #flushScheduled = false;
  #stopped = false;

  private constructor(
    readonly config: TracingConfig,
    private readonly exporter: OtlpExporter<ExportSpan[]>,
    private readonly resource: unknown,
    private readonly onExportError?: (message: string) => void,
  ) {
    this.#rate = config.sampleRate;
    // User-Agent is already the user_agent.original attribute.
    this.#requestHeaders = config.capturedRequestHeaders.map((h) => h.toLowerCase()).filter((h) =>
      h !== "user-agent"
    );
    this.#responseHeaders = config.capturedResponseHeaders.map((h) => h.toLowerCase());
    this.#timer = setInterval(() => this.flush(), FLUSH_MS);
    Deno.unrefTimer(this.#timer);
  }

  /** Loads the exporter for `config.otlp` and starts the flush timer. */
  static async start(
    config: TracingConfig,
    onExportError?: (message: string) => void,
  ): Promise<Tracer> {
    const exporter = await createOtlpExporter<ExportSpan[]>("traces", config.otlp, "tracing.otlp");
    const resource = await createResource(config.serviceName, {
      ...config.globalAttributes,
      ...config.resourceAttributes,
    });
    return new Tracer(config, exporter, resource, onExportError);
  }

  /** Exported and dropped span counts. */
  get counters(): Readonly<ExportCounters> {
    return this.#queue.counters;
  }

  /** Response headers to capture; empty when none are configured. */
  get capturedResponseHeaders(): readonly string[] {
    return this.#responseHeaders;
  }

  /** Starts the trace of a request that just arrived; `start` 0 means now (the clock is read only when sampled). */
  begin(
    entryPoint: string,
    method: string,
    target: string,
    host: string,
    clientAddr: string,
    tls: boolean,
    header: HeaderLookup,
    bodySize: number,
    start: number,
  ): RequestTrace {
    const remote = parseTraceparent(header("traceparent"));
    const ids = this.#ids;
    const traceId = remote?.traceId ?? ids.traceId();
    const sampled = remote ? remote.sampled : sampledByRatio(traceId, this.#rate);
    const clientSpan = ids.spanId();
    if (!sampled) {
      // Only the context travels on: one span id, for the upstream's parent.
      return new RequestTrace(
        traceId,
        clientSpan,
        clientSpan,
        clientSpan,
        clientSpan,
        false,
        remote?.spanId,
        start,
        entryPoint,
        method,
        target,
        host,
        clientAddr,
        tls ? "https" : "http",
        null,
        0,
      );
    }
    const trace = new RequestTrace(
      traceId,
      ids.spanId(),
      ids.spanId(),
      ids.spanId(),
      clientSpan,
      true,
      remote?.spanId,
      start || performance.now(),
      entryPoint,
      method,
      target,
      host,
      clientAddr,
      tls ? "https" : "http",
      header("user-agent"),
      bodySize,
    );
    if (this.#requestHeaders.length > 0) {
      trace.requestHeaders = capture(this.#requestHeaders, header);
    }
    if (this.#responseHeaders.length > 0) trace.responseHeaderNames = this.#responseHeaders;
    return trace;
  }

  /** The request matched `router`. */
  routed(trace: RequestTrace, router: string, info: RouteTraceInfo | undefined): void {
    if (!this.config.addInternals && router.endsWith("@internal")) trace.discarded = true;
    if (!trace.sampled) return;
    trace.router = router;
    trace.route = info;
    trace.routerStart = performance.now();
  }

  /** The response went out with `status`; queues the trace for export. */
  finish(trace: RequestTrace, status: number, responseHeader?: HeaderLookup): void {
    if (!trace.sampled || trace.discarded) return;
    trace.end = performance.now();
    trace.status = status;
    if (responseHeader && trace.responseHeaders === undefined) {
      trace.captureResponse(responseHeader);
    }
    this.#queue.add(trace, spanCount(trace));
    if (this.#queue.full && !this.#flushScheduled) {
      this.#flushScheduled = true;
      setTimeout(() => {
        this.#flushScheduled = false;
        this.flush();
      }, 0);
    }
  }

  /** Sends the next batch unless an export is in flight. Never throws. */
  flush(): Promise<void> {
    const batch = this.#queue.take();
    if (!batch) return Promise.resolve();
    const options = {
      resource: this.resource,
      scope: { name: "github.com/traefik/traefik", version: VERSION },
      safeQueryParams: new Set(this.config.safeQueryParams),
      timeOrigin: performance.timeOrigin,
    };
    let spans: ExportSpan[];
    try {
      spans = batch.items.flatMap((t) => spansOf(t, options));
    } catch (err) {
      this.#queue.settle(batch.spans, false);
      this.onExportError?.(`building spans failed: ${(err as Error).message}`);
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      try {
        this.exporter.export(spans, (result) => {
          const ok = result.code === EXPORT_SUCCESS;
          this.#queue.settle(batch.spans, ok);
          if (!ok) this.onExportError?.(result.error?.message ?? "export failed");
          resolve();
          // More may have queued while this one was in flight.
          if (ok && this.#queue.full && !this.#stopped) this.flush();
        });
      } catch (err) {
        this.#queue.settle(batch.spans, false);
        this.onExportError?.((err as Error).message);
        resolve();
      }
    });
  }

  /** Flushes what is queued, for at most `budgetMs` (a hung receiver must not hold shutdown), and stops. */
  async stop(budgetMs = STOP_BUDGET_MS): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    const drain = async () => {
      for (let i = 0; i < 8 && this.#queue.pending > 0; i++) await this.flush();
      await this.exporter.shutdown().catch(() => {});
    };
    await settleWithin(drain(), budgetMs);
  }

  /** Prometheus families for the export counters. */
  renderMetrics(): string {
    const c = this.#queue.counters;
    return "# HELP portico_tracing_spans_exported_total Spans the OTLP receiver accepted.\n" +
      "# TYPE portico_tracing_spans_exported_total counter\n" +
      `portico_tracing_spans_exported_total ${c.exported}\n` +
      "# HELP portico_tracing_spans_dropped_total Spans dropped: export buffer full or export failed.\n" +
      "# TYPE portico_tracing_spans_dropped_total counter\n" +
      `portico_tracing_spans_dropped_total ${c.dropped}\n`;
  }
}

function capture(names: readonly string[], header: HeaderLookup): CapturedHeaders | undefined {
  let out: CapturedHeaders | undefined;
  for (const name of names) {
    const value = header(name);
    if (value !== null) (out ??= []).push([name, value]);
  }
  return out;
}

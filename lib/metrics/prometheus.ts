/**
 * `[metrics.prometheus]`: the request observer and the `prometheus@internal`
 * service that answers `/metrics` in the text exposition format.
 *
 * Requests served by internal routers (API, dashboard, ping, `/metrics`
 * itself) are not counted, as in Traefik without `addInternals`.
 *
 * @module
 */

import { routerServices } from "../instance/router_services.ts";
import type { InstanceState } from "../instance/state.ts";
import type { ReloadStatus, RequestObserver } from "../contracts.ts";
import type { Service } from "../services/types.ts";
import { EXPOSITION_CONTENT_TYPE } from "./exposition.ts";
import { RequestMetrics } from "./request_metrics.ts";
import { ReloadTimes, renderStateMetrics } from "./state_metrics.ts";

/** Name of the internal service behind `/metrics`. */
export const PROMETHEUS_SERVICE = "prometheus@internal";

/**
 * Collects request metrics and renders every family for a scrape.
 *
 * @example
 * ```ts
 * const prom = new PrometheusMetrics(state, [0.1, 0.3, 1.2, 5]);
 * const ext = { name: "observability", onRequest: prom.observer(), onReload: (s) => prom.onReload(s),
 *   internalServices: new Map([[PROMETHEUS_SERVICE, prom.service()]]) };
 * ```
 */
export class PrometheusMetrics {
  readonly requests: RequestMetrics;
  readonly reloads = new ReloadTimes();
  /** More families to append to every scrape (e.g. the tracing exporter's counters). */
  extraFamilies?: () => string;
  /** The qualified service of a router in the current generation. */
  readonly #service: (router: string) => string | undefined;

  constructor(
    private readonly state: InstanceState,
    buckets: readonly number[],
    families?: { entryPoints: boolean; routers: boolean; services: boolean },
  ) {
    this.requests = new RequestMetrics(buckets, families);
    this.#service = routerServices(state);
  }

  /**
   * The per-request observer: cheap, never throws, never awaits. The
   * protocol is `websocket` for a 101 answer, else `http`: telling SSE apart
   * would cost a header lookup on every request (about 0.2 µs), so SSE
   * streams count as `http`.
   */
  observer(): RequestObserver {
    const origin = performance.timeOrigin;
    return (entryPoint, request, _conn, router, started) => {
      if (router !== undefined && router.endsWith("@internal")) return;
      const status = request.status;
      const now = performance.now();
      this.requests.recordArgs(
        entryPoint,
        request.method,
        status,
        status === 101 ? 1 : 0,
        router,
        router === undefined ? undefined : this.#service(router),
        (now - started) / 1000,
        origin + now,
      );
    };
  }

  /** Feed every reload status here. */
  onReload(status: ReloadStatus): void {
    this.reloads.observe(status);
  }

  /** The whole exposition at wall-clock time `nowMs`. */
  render(nowMs = Date.now()): string {
    return this.requests.render() +
      renderStateMetrics(this.state, this.reloads, this.requests, nowMs) +
      (this.extraFamilies?.() ?? "");
  }

  /** `prometheus@internal`: GET or HEAD anywhere under its router answers the exposition. */
  service(): Service {
    return {
      name: PROMETHEUS_SERVICE,
      serve: (request) => {
        const method = request.request.method;
        if (method !== "GET" && method !== "HEAD") {
          return Promise.resolve(
            new Response("Method Not Allowed", { status: 405, headers: { allow: "GET, HEAD" } }),
          );
        }
        const body = this.render();
        return Promise.resolve(
          new Response(method === "HEAD" ? null : body, {
            headers: { "content-type": EXPOSITION_CONTENT_TYPE },
          }),
        );
      },
      available: () => true,
      serverStatus: () => ({}),
      start() {},
      stop() {},
    };
  }
}

/**
 * Per-request Prometheus collectors for entrypoints, routers and services:
 * `traefik_{entrypoint,router,service}_requests_total` and
 * `traefik_{entrypoint,router,service}_request_duration_seconds`, plus the
 * in-flight estimate behind `traefik_open_connections`.
 *
 * The hot path does no string work: the label set of a request (status,
 * method, protocol) packs into one integer, each target (an entrypoint, a
 * router, a service) owns a `Map<number, Cell>`, and a histogram's count is
 * also the request counter. Labels are escaped once, when a target or cell
 * is first seen.
 *
 * @module
 */

import { escapeLabelValue, familyHeader, formatValue } from "./exposition.ts";

/** Methods reported as themselves; any other becomes `EXTENSION_METHOD` (bounded cardinality). */
const METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"];
const EXTENSION_METHOD = METHODS.length;
const METHOD_INDEX = new Map(METHODS.map((m, i) => [m, i]));
const METHOD_NAMES = [...METHODS, "EXTENSION_METHOD"];

/** Traefik's `protocol` label values. */
export const PROTOCOLS = ["http", "websocket", "sse"] as const;
export type Protocol = 0 | 1 | 2;

/** Width of the in-flight estimate's sliding window, seconds. */
const WINDOW_SECONDS = 10;

/** One label set of one target: a histogram whose count is the request counter. */
interface Cell {
  /** `code="200",method="GET",protocol="http"` (escaped once). */
  readonly labels: string;
  readonly attributes: Readonly<Record<string, string>>;
  count: number;
  sum: number;
  /** Per-bucket (not cumulative) counts; the last slot is +Inf. */
  readonly buckets: Float64Array;
}

/** An entrypoint, a router or a service: its escaped label prefix and its cells. */
class Target {
  readonly cells = new Map<number, Cell>();
  /** For router targets: the service the cells were counted for. */
  service?: string;
  constructor(readonly labels: string, readonly attributes: Readonly<Record<string, string>>) {}
}

/** One label set of one request family, for push exporters (OTLP). */
export interface CellSnapshot {
  /** "entrypoint", "router" or "service". */
  kind: string;
  attributes: Record<string, string>;
  count: number;
  sum: number;
  /** Per-bucket counts, the last one +Inf. */
  buckets: readonly number[];
}

/** Packs status, method and protocol into one Map key. */
function cellKey(status: number, method: number, protocol: number): number {
  return (status * 16 + method) * 4 + protocol;
}

/** Busy time per (entrypoint, protocol), in one-second slots, for Little's law. */
class BusyWindow {
  readonly seconds = new Float64Array(WINDOW_SECONDS);
  readonly slotOf = new Float64Array(WINDOW_SECONDS).fill(-1);
  add(nowMs: number, busySeconds: number): void {
    const sec = Math.floor(nowMs / 1000);
    const i = sec % WINDOW_SECONDS;
    if (this.slotOf[i] !== sec) {
      this.slotOf[i] = sec;
      this.seconds[i] = 0;
    }
    this.seconds[i] += busySeconds;
  }
  /** Mean requests in flight over the last full window ending at `nowMs`. */
  mean(nowMs: number): number {
    const sec = Math.floor(nowMs / 1000);
    let busy = 0;
    for (let i = 0; i < WINDOW_SECONDS; i++) {
      if (this.slotOf[i] > sec - WINDOW_SECONDS && this.slotOf[i] <= sec) busy += this.seconds[i];
    }
    return busy / WINDOW_SECONDS;
  }
}

/** What one finished request contributes. Times are `performance.now()` milliseconds. */
export interface RequestSample {
  entryPoint: string;
  method: string;
  status: number;
  protocol: Protocol;
  /** Undefined when no router matched (404 from the entrypoint itself). */
  router?: string;
  /** Qualified service name (`app@file`); undefined when no router matched. */
  service?: string;
  durationSeconds: number;
  /** Wall-clock time, for the in-flight window. */
  nowMs: number;
}

/**
 * The request collectors. `record` is the hot path; `render` writes the text
 * format for a scrape.
 *
 * @example
 * ```ts
 * const m = new RequestMetrics([0.1, 0.3, 1.2, 5]);
 * m.record({ entryPoint: "web", method: "GET", status: 200, protocol: 0, router: "app@file",
 *   service: "app@file", durationSeconds: 0.004, nowMs: Date.now() });
 * const text = m.render(Date.now());
 * ```
 */
export class RequestMetrics {
  readonly #bounds: Float64Array;
  readonly #entryPoints = new Map<string, Target>();
  readonly #routers = new Map<string, Target>();
  readonly #services = new Map<string, Target>();
  /** Keyed by entrypoint, then protocol index. */
  readonly #busy = new Map<string, BusyWindow[]>();

  readonly #families: { entryPoints: boolean; routers: boolean; services: boolean };

  /**
   * `buckets`: increasing upper bounds in seconds (validated by the static
   * config); `families`: which request series are exported (all by default).
   */
  constructor(
    buckets: readonly number[],
    families: { entryPoints: boolean; routers: boolean; services: boolean } = {
      entryPoints: true,
      routers: true,
      services: true,
    },
  ) {
    this.#bounds = Float64Array.from(buckets);
    this.#families = families;
  }

  /** Counts one request. Allocates only the first time a label set is seen. */
  record(s: RequestSample): void {
    this.recordArgs(
      s.entryPoint,
      s.method,
      s.status,
      s.protocol,
      s.router,
      s.service,
      s.durationSeconds,
      s.nowMs,
    );
  }

  /** {@linkcode record} without the sample object, for the hot path. */
  recordArgs(
    entryPoint: string,
    methodName: string,
    status: number,
    protocol: Protocol,
    routerName: string | undefined,
    service: string | undefined,
    durationSeconds: number,
    nowMs: number,
  ): void {
    const method = METHOD_INDEX.get(methodName) ?? EXTENSION_METHOD;
    const key = cellKey(status, method, protocol);
    let bucket = 0;
    const bounds = this.#bounds;
    while (bucket < bounds.length && durationSeconds > bounds[bucket]) bucket++;

    let ep = this.#entryPoints.get(entryPoint);
    if (ep === undefined) {
      ep = this.#target(
        this.#entryPoints,
        entryPoint,
        `entrypoint="${escapeLabelValue(entryPoint)}"`,
        { entrypoint: entryPoint },
      );
    }
    this.#observe(ep, key, status, method, protocol, durationSeconds, bucket);
    if (routerName !== undefined && service !== undefined) {
      let router = this.#routers.get(routerName);
      if (router === undefined || router.service !== service) {
        // A router's service can change across reloads; the cell set follows the pair.
        router = this.#target(
          this.#routers,
          `${routerName}\u0000${service}`,
          `router="${escapeLabelValue(routerName)}",service="${escapeLabelValue(service)}"`,
          { router: routerName, service },
        );
        router.service = service;
        this.#routers.set(routerName, router);
      }
      this.#observe(router, key, status, method, protocol, durationSeconds, bucket);
      let svc = this.#services.get(service);
      if (svc === undefined) {
        svc = this.#target(this.#services, service, `service="${escapeLabelValue(service)}"`, { service });
      }
      this.#observe(svc, key, status, method, protocol, durationSeconds, bucket);
    }

    let windows = this.#busy.get(entryPoint);
    if (windows === undefined) {
      windows = [new BusyWindow(), new BusyWindow(), new BusyWindow()];
      this.#busy.set(entryPoint, windows);
    }
    windows[protocol].add(nowMs, durationSeconds);
  }

  #target(
    map: Map<string, Target>,
    name: string,
    labels: string,
    attributes: Record<string, string>,
  ): Target {
    let t = map.get(name);
    if (t === undefined) {
      t = new Target(labels, attributes);
      map.set(name, t);
    }
    return t;
  }

  #observe(
    target: Target,
    key: number,
    status: number,
    method: number,
    protocol: Protocol,
    seconds: number,
    bucket: number,
  ): void {
    let cell = target.cells.get(key);
    if (cell === undefined) {
      cell = {
        labels: `code="${status}",method="${METHOD_NAMES[method]}",protocol="${
          PROTOCOLS[protocol]
        }"`,
        attributes: { code: String(status), method: METHOD_NAMES[method], protocol: PROTOCOLS[protocol] },
        count: 0,
        sum: 0,
        buckets: new Float64Array(this.#bounds.length + 1),
      };
      target.cells.set(key, cell);
    }
    cell.count++;
    cell.sum += seconds;
    cell.buckets[bucket]++;
  }

  /** Mean in-flight requests per entrypoint and protocol over the last 10 s. */
  openConnections(nowMs: number): { entryPoint: string; protocol: string; value: number }[] {
    const out: { entryPoint: string; protocol: string; value: number }[] = [];
    for (const [entryPoint, windows] of this.#busy) {
      for (let p = 0; p < windows.length; p++) {
        out.push({ entryPoint, protocol: PROTOCOLS[p], value: windows[p].mean(nowMs) });
      }
    }
    return out;
  }

  /** The request families in the text format. */
  render(): string {
    let out = "";
    const families: [string, string, Map<string, Target>][] = [];
    if (this.#families.entryPoints) families.push(["entrypoint", "entrypoint", this.#entryPoints]);
    if (this.#families.routers) families.push(["router", "router", this.#uniqueRouters()]);
    if (this.#families.services) families.push(["service", "service", this.#services]);
    for (const [kind, what, targets] of families) {
      if (targets.size === 0) continue;
      const counter = `traefik_${kind}_requests_total`;
      out += familyHeader(
        counter,
        "counter",
        `How many HTTP requests processed on an ${what}, partitioned by status code, protocol, and method.`,
      );
      for (const t of targets.values()) {
        for (const c of t.cells.values()) out += `${counter}{${c.labels},${t.labels}} ${c.count}\n`;
      }
      const hist = `traefik_${kind}_request_duration_seconds`;
      out += familyHeader(
        hist,
        "histogram",
        `How long it took to process the request on an ${what}, partitioned by status code, protocol, and method.`,
      );
      for (const t of targets.values()) {
        for (const c of t.cells.values()) {
          const labels = `${c.labels},${t.labels}`;
          let cumulative = 0;
          for (let i = 0; i < this.#bounds.length; i++) {
            cumulative += c.buckets[i];
            out += `${hist}_bucket{${labels},le="${formatValue(this.#bounds[i])}"} ${cumulative}\n`;
          }
          out += `${hist}_bucket{${labels},le="+Inf"} ${c.count}\n`;
          out += `${hist}_sum{${labels}} ${formatValue(c.sum)}\n`;
          out += `${hist}_count{${labels}} ${c.count}\n`;
        }
      }
    }
    return out;
  }

  /** The bucket upper bounds, seconds. */
  get bounds(): readonly number[] {
    return [...this.#bounds];
  }

  /** Every cell of the exported families, with its labels as attributes. */
  snapshot(): CellSnapshot[] {
    const out: CellSnapshot[] = [];
    const families: [string, Map<string, Target>][] = [];
    if (this.#families.entryPoints) families.push(["entrypoint", this.#entryPoints]);
    if (this.#families.routers) families.push(["router", this.#uniqueRouters()]);
    if (this.#families.services) families.push(["service", this.#services]);
    for (const [kind, targets] of families) {
      for (const t of targets.values()) {
        for (const c of t.cells.values()) {
          out.push({
            kind,
            attributes: { ...c.attributes, ...t.attributes },
            count: c.count,
            sum: c.sum,
            buckets: [...c.buckets],
          });
        }
      }
    }
    return out;
  }

  /** Router targets are indexed twice (by name and by name+service); list each once. */
  #uniqueRouters(): Map<string, Target> {
    const out = new Map<string, Target>();
    for (const t of this.#routers.values()) out.set(t.labels, t);
    return out;
  }
}

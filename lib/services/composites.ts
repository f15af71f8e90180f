/**
 * Services made of other services: `weighted` (smooth WRR over services,
 * optionally sticky), `failover` (fallback when the main one has no healthy
 * server) and `mirroring` (copies of a share of requests sent to mirrors,
 * their answers discarded).
 *
 * @module
 */

import type { MirroringConfig, StickyCookieConfig } from "../config/types.ts";
import { SmoothWeightedRoundRobin } from "./smooth_wrr.ts";
import { defaultCookieName, hashServer, readCookie, stickyCookie } from "./sticky.ts";
import { errorResponse, type ProxyRequest, type Service, type ServerStatus } from "./types.ts";

export class WeightedService implements Service {
  private readonly wrr: SmoothWeightedRoundRobin<Service>;
  private readonly byHash = new Map<string, Service>();
  private readonly cookieName?: string;

  constructor(
    readonly name: string,
    private readonly children: { service: Service; weight: number }[],
    private readonly sticky?: StickyCookieConfig,
  ) {
    this.wrr = new SmoothWeightedRoundRobin(children.map((c) => ({ item: c.service, weight: c.weight })));
    for (const c of children) this.byHash.set(hashServer(c.service.name), c.service);
    if (sticky) this.cookieName = sticky.name || defaultCookieName(name);
  }

  available(): boolean {
    return this.children.some((c) => c.weight > 0 && c.service.available());
  }
  serverStatus(): Record<string, ServerStatus> {
    return {};
  }
  start(): void {}
  stop(): void {}

  async serve(request: ProxyRequest): Promise<Response> {
    let chosen: Service | undefined;
    let setCookie = false;
    if (this.cookieName) {
      const pinned = readCookie(request.headers.get("cookie"), this.cookieName);
      const svc = pinned ? this.byHash.get(pinned) : undefined;
      if (svc && svc.available()) chosen = svc;
      else setCookie = true;
    }
    chosen ??= this.wrr.next((s) => s.available());
    if (!chosen) return errorResponse(503);
    const response = await chosen.serve(request);
    if (setCookie && this.cookieName && this.sticky && response.status !== 101) {
      response.headers.append("set-cookie", stickyCookie(this.cookieName, hashServer(chosen.name), this.sticky));
    }
    return response;
  }
}

export class FailoverService implements Service {
  private readonly ranges: [number, number][];

  constructor(
    readonly name: string,
    private readonly main: Service,
    private readonly fallback: Service,
    private readonly errors?: { status: string[]; maxRequestBodyBytes: number },
  ) {
    // The schema checked the blocks' shape.
    this.ranges = (errors?.status ?? []).flatMap((block) =>
      block.split(",").map((item): [number, number] => {
        const [low, high = low] = item.split("-").map((n) => Number(n.trim()));
        return [low, high];
      })
    );
  }
  available(): boolean {
    return this.main.available() || this.fallback.available();
  }
  serverStatus(): Record<string, ServerStatus> {
    return {};
  }
  start(): void {}
  stop(): void {}
  async serve(request: ProxyRequest): Promise<Response> {
    if (!this.main.available()) return this.fallback.serve(request);
    if (this.ranges.length === 0) return this.main.serve(request);
    // Replaying on the fallback needs the body twice, so it is buffered within the limit.
    const req = request.request;
    let body: Uint8Array | null = null;
    const source = req.body ?? request.detachedBody;
    if (source) {
      body = new Uint8Array(await new Response(source).arrayBuffer());
      const limit = this.errors!.maxRequestBodyBytes;
      if (limit >= 0 && body.length > limit) return new Response("Request body too large", { status: 413 });
    }
    const copy = (): ProxyRequest => ({
      ...request,
      detachedBody: undefined,
      request: new Request(req.url, { method: req.method, headers: req.headers, body: body as BodyInit | null }),
    });
    const first = await this.main.serve(copy());
    if (!this.ranges.some(([low, high]) => first.status >= low && first.status <= high)) return first;
    await first.body?.cancel();
    return this.fallback.available() ? this.fallback.serve(copy()) : errorResponse(503);
  }
}

export class MirroringService implements Service {
  private counts: number[];
  private total = 0;

  constructor(
    readonly name: string,
    private readonly main: Service,
    private readonly mirrors: { service: Service; percent: number }[],
    private readonly config: MirroringConfig,
  ) {
    this.counts = mirrors.map(() => 0);
  }
  available(): boolean {
    return this.main.available();
  }
  serverStatus(): Record<string, ServerStatus> {
    return {};
  }
  start(): void {}
  stop(): void {}

  /** Deterministic share: mirror i gets the request while its count stays within percent% of the total. */
  private chooseMirrors(): Service[] {
    this.total++;
    const out: Service[] = [];
    this.mirrors.forEach((m, i) => {
      if ((this.counts[i] + 1) * 100 <= m.percent * this.total) {
        this.counts[i]++;
        out.push(m.service);
      }
    });
    return out;
  }

  async serve(request: ProxyRequest): Promise<Response> {
    const targets = this.chooseMirrors();
    if (targets.length === 0) return this.main.serve(request);
    const req = request.request;
    if (!this.config.mirrorBody) {
      // Without the body the main service streams it untouched, and no size limit applies (as in Traefik).
      const headers = new Headers(req.headers);
      headers.delete("content-length");
      headers.delete("transfer-encoding");
      for (const mirror of targets) {
        const bare = new Request(req.url, { method: req.method, headers });
        mirror.serve({ ...request, trace: undefined, detachedBody: undefined, request: bare, headers: new Headers(headers) })
          .then((r) => r.body?.cancel(), () => {});
      }
      return this.main.serve(request);
    }
    // A body can be read once; mirror only requests whose body fits the limit.
    let body: Uint8Array | null = null;
    if (req.body) {
      const declared = Number(req.headers.get("content-length") ?? "-1");
      if (this.config.maxBodySize >= 0 && (declared < 0 || declared > this.config.maxBodySize)) {
        return this.main.serve(request);
      }
      body = new Uint8Array(await req.arrayBuffer());
    }
    const copy = () =>
      new Request(req.url, { method: req.method, headers: req.headers, body: body as BodyInit | null });
    for (const mirror of targets) {
      // A mirror is not part of the trace: its forwarding must not overwrite the main upstream's.
      mirror.serve({ ...request, trace: undefined, request: copy(), headers: new Headers(request.headers) })
        .then((r) => r.body?.cancel(), () => {});
    }
    return this.main.serve({ ...request, request: copy() });
  }
}

/** Returned when a weighted/failover/mirroring child has no servers at all. */
export function unavailable(name: string): Service {
  return {
    name,
    serve: () => Promise.resolve(errorResponse(503)),
    available: () => false,
    serverStatus: () => ({}),
    start() {},
    stop() {},
  };
}

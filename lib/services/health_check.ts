/**
 * Active health checks: each server is probed every `interval`; a failed
 * probe takes it out of rotation and a passing one brings it back.
 *
 * @module
 */

import type { HealthCheckConfig } from "../config/types.ts";
import type { ServerStatus } from "./types.ts";

/** Builds the probe URL for one server, honouring scheme/port/path overrides. */
export function probeUrl(serverUrl: string, config: HealthCheckConfig): URL {
  const url = new URL(serverUrl);
  if (config.scheme) url.protocol = config.scheme + ":";
  if (config.port) url.port = String(config.port);
  const [path, query] = config.path.split("?", 2);
  url.pathname = path.startsWith("/") ? path : "/" + path;
  url.search = query ? "?" + query : "";
  return url;
}

/** Whether a probe's status passes: the configured one, or any 2xx/3xx. */
export function probePasses(status: number, expected: number): boolean {
  return expected ? status === expected : status >= 200 && status < 400;
}

let probeClient: Deno.HttpClient | undefined;
function client(): Deno.HttpClient {
  // allowHost lets the `hostname` option set the Host header, which fetch drops otherwise.
  probeClient ??= Deno.createHttpClient({ allowHost: true });
  return probeClient;
}

/**
 * Probes a set of servers on a timer and reports transitions.
 */
export class HealthChecker {
  private readonly status = new Map<string, ServerStatus>();
  private timer?: ReturnType<typeof setTimeout>;
  private running = false;

  constructor(
    private readonly servers: string[],
    private readonly config: HealthCheckConfig,
    private readonly onChange: (server: string, status: ServerStatus) => void,
  ) {
    for (const s of servers) this.status.set(s, "UP");
  }

  isUp(server: string): boolean {
    return this.status.get(server) !== "DOWN";
  }

  snapshot(): Record<string, ServerStatus> {
    return Object.fromEntries(this.status);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    const loop = async () => {
      if (!this.running) return;
      await Promise.all(this.servers.map((s) => this.probe(s)));
      if (this.running) this.timer = setTimeout(loop, this.config.interval);
    };
    // First probe at once, so a dead server is out before the first interval.
    this.timer = setTimeout(loop, 0);
  }

  stop(): void {
    this.running = false;
    if (this.timer !== undefined) clearTimeout(this.timer);
  }

  private async probe(server: string): Promise<void> {
    const url = probeUrl(server, this.config);
    const headers = new Headers(this.config.headers);
    if (this.config.hostname) headers.set("host", this.config.hostname);
    let ok = false;
    try {
      const res = await fetch(url, {
        headers,
        client: client(),
        redirect: "manual",
        signal: AbortSignal.timeout(this.config.timeout),
      });
      await res.body?.cancel();
      ok = probePasses(res.status, this.config.status);
    } catch {
      ok = false;
    }
    if (!this.running) return;
    const next: ServerStatus = ok ? "UP" : "DOWN";
    if (this.status.get(server) !== next) {
      this.status.set(server, next);
      this.onChange(server, next);
    }
  }
}

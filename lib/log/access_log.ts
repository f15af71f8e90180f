/**
 * Access log lines in Traefik's common format or as JSON, written without
 * blocking the request path: lines are queued and flushed in batches.
 *
 * @module
 */

import type { RequestObserver } from "../contracts.ts";

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** `23/Nov/2026:10:00:00 +0000`, the CLF timestamp. */
export function clfTime(d: Date): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${p(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${p(d.getUTCHours())}:${
    p(d.getUTCMinutes())
  }:${p(d.getUTCSeconds())} +0000`;
}

export interface AccessEntry {
  clientIp: string;
  user?: string;
  time: Date;
  method: string;
  path: string;
  protocol: string;
  status: number;
  size: number | undefined;
  referer: string | null;
  userAgent: string | null;
  requestCount: number;
  router: string | undefined;
  serverUrl: string | undefined;
  durationMs: number;
  entryPoint: string;
}

const q = (s: string | null | undefined) => (s ? `"${s.replace(/"/g, '\\"')}"` : `"-"`);

/** Traefik's common format: CLF plus request count, router, server URL and duration. */
export function formatCommon(e: AccessEntry): string {
  return `${e.clientIp} - ${e.user ?? "-"} [${clfTime(e.time)}] "${e.method} ${e.path} ${e.protocol}" ${e.status} ${
    e.size ?? "-"
  } ${q(e.referer)} ${q(e.userAgent)} ${e.requestCount} ${q(e.router)} ${q(e.serverUrl)} ${Math.round(e.durationMs)}ms`;
}

/** The JSON format, with Traefik's field names. */
export function formatJson(e: AccessEntry): string {
  return JSON.stringify({
    ClientHost: e.clientIp,
    ClientUsername: e.user ?? "-",
    StartUTC: e.time.toISOString(),
    RequestMethod: e.method,
    RequestPath: e.path,
    RequestProtocol: e.protocol,
    DownstreamStatus: e.status,
    DownstreamContentSize: e.size ?? 0,
    "request_Referer": e.referer ?? undefined,
    "request_User-Agent": e.userAgent ?? undefined,
    RequestCount: e.requestCount,
    RouterName: e.router,
    ServiceURL: e.serverUrl,
    Duration: Math.round(e.durationMs * 1e6),
    entryPointName: e.entryPoint,
  });
}

/** Buffers lines and appends them to a file (or stdout) off the request path. */
export class AccessLogWriter {
  private queue: string[] = [];
  private flushing = false;
  private file?: Deno.FsFile;
  private readonly encoder = new TextEncoder();

  constructor(private readonly filePath: string | undefined, private readonly format: "common" | "json") {
    if (filePath) {
      this.file = Deno.openSync(filePath, { append: true, create: true, mode: 0o640 });
    }
  }

  /** A request observer that records one line per finished request. */
  observer(): RequestObserver {
    let count = 0;
    return (entryPoint, request, conn, router, started) => {
      this.record({
        clientIp: conn.remoteAddr,
        user: request.user,
        time: new Date(),
        method: request.method,
        path: request.target,
        protocol: "HTTP/1.1",
        status: request.status,
        size: request.size,
        referer: request.header("referer"),
        userAgent: request.header("user-agent"),
        requestCount: ++count,
        router,
        serverUrl: undefined,
        durationMs: performance.now() - started,
        entryPoint,
      });
    };
  }

  record(entry: AccessEntry): void {
    this.queue.push(this.format === "json" ? formatJson(entry) : formatCommon(entry));
    if (!this.flushing) {
      this.flushing = true;
      queueMicrotask(() => this.flush());
    }
  }

  private async flush(): Promise<void> {
    while (this.queue.length) {
      const lines = this.queue.join("\n") + "\n";
      this.queue = [];
      const bytes = this.encoder.encode(lines);
      try {
        const out = this.file ?? Deno.stdout;
        for (let off = 0; off < bytes.length;) off += await out.write(bytes.subarray(off));
      } catch {
        // A full disk must not take the proxy down; the lines are dropped.
      }
    }
    this.flushing = false;
  }

  async close(): Promise<void> {
    await this.flush();
    this.file?.close();
  }
}

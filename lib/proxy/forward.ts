/**
 * The upstream pools of one servers transport, and the Web-path forwarder.
 * Plain HTTP and verified HTTPS upstreams go through Portico's own pooled
 * client (http1_client.ts); `node:https` remains for
 * `insecureSkipVerify = true`, which Deno's TLS client cannot do.
 *
 * `node:http`, not `fetch`, for that fallback: fetch normalises the path
 * (`/a/../b` becomes `/b`), adds its own headers (user-agent,
 * accept-encoding) and drops a caller-set Host; a proxy must send the
 * client's bytes.
 *
 * @module
 */

import http from "node:http";
import https from "node:https";
import { isIP } from "node:net";
import { Readable } from "node:stream";
import { downstreamResponseHeaders } from "./headers.ts";
import { Http1Pool } from "./http1_client.ts";
import { DEFAULT_TIMEOUTS, type ForwardingTimeouts, UpstreamError, type UpstreamRequest } from "./upstream.ts";
import { readEnv, UPSTREAM_CLIENT_ENV } from "../env.ts";

/** How a pool reaches its upstreams (from a servers transport). */
export interface UpstreamTransport {
  insecureSkipVerify: boolean;
  ca?: string[];
  serverName?: string;
  /** PEM certificate chain and key presented to upstreams that ask for one. */
  clientCertificate?: { cert: string; key: string };
  /** Idle connections kept per upstream host (0: none). */
  maxIdlePerHost?: number;
}

/** Keep-alive agents, one pair per timeout profile, shared by every service. */
export class UpstreamPool {
  readonly http: http.Agent;
  readonly https: https.Agent;
  /** HTTP and verified HTTPS upstreams go through Portico's own client (see http1_client.ts). */
  readonly http1: Http1Pool;
  constructor(
    readonly timeouts: ForwardingTimeouts = DEFAULT_TIMEOUTS,
    readonly tls: UpstreamTransport = { insecureSkipVerify: false },
  ) {
    const maxIdle = tls.maxIdlePerHost ?? 256;
    const common = {
      keepAlive: maxIdle > 0,
      maxSockets: 1024,
      maxFreeSockets: Math.max(1, maxIdle),
      timeout: timeouts.idleConnTimeout,
      scheduling: "lifo" as const,
    };
    this.http = new http.Agent(common);
    this.http1 = new Http1Pool(timeouts, maxIdle, {
      caCerts: tls.ca,
      insecureSkipVerify: tls.insecureSkipVerify,
      serverName: tls.serverName,
      clientCertificate: tls.clientCertificate,
    });
    this.https = new https.Agent({
      ...common,
      rejectUnauthorized: !tls.insecureSkipVerify,
      ca: tls.ca,
      cert: tls.clientCertificate?.cert,
      key: tls.clientCertificate?.key,
    });
  }
  close(): void {
    this.http1.close();
    this.http.destroy();
    this.https.destroy();
  }
}

function statusForError(err: NodeJS.ErrnoException): 502 | 504 {
  return err.code === "ETIMEDOUT" || err.code === "ESOCKETTIMEDOUT" ? 504 : 502;
}

/**
 * Sends `request` and resolves with the upstream's response once its headers
 * arrive. The body streams with backpressure in both directions.
 *
 * @example
 * ```ts
 * const res = await forward(pool, { target: new URL("http://127.0.0.1:9000"), method: "GET",
 *   pathAndQuery: "/x", headers: { host: "a.com" }, body: null });
 * ```
 */
export function forward(pool: UpstreamPool, request: UpstreamRequest): Promise<Response> {
  if (pool.http1.serves(request.target) && !FORCE_NODE_CLIENT) return pool.http1.request(request);
  return forwardWithNode(pool, request);
}

/** `PORTICO_UPSTREAM_CLIENT=node` routes plain HTTP through node:http too (for comparison runs). */
const FORCE_NODE_CLIENT = readEnv(UPSTREAM_CLIENT_ENV) === "node";

/** HTTPS upstreams with insecureSkipVerify (and any when forced): node:http(s) with keep-alive agents. */
function forwardWithNode(pool: UpstreamPool, request: UpstreamRequest): Promise<Response> {
  return new Promise<Response>((resolve, reject) => {
    const secure = request.target.protocol === "https:";
    const port = request.target.port ? Number(request.target.port) : secure ? 443 : 80;
    let sent = false;
    let settled = false;
    const fail = (err: UpstreamError) => {
      if (settled) return;
      settled = true;
      reject(err);
    };
    const options: http.RequestOptions = {
      agent: secure ? pool.https : pool.http,
      hostname: request.target.hostname.replace(/^\[|\]$/g, ""),
      port,
      method: request.method,
      path: request.pathAndQuery,
      headers: request.headers,
      setHost: false,
    };
    // SNI carries host names only; node:tls refuses an IP address there.
    const servername = pool.tls.serverName ?? request.target.hostname;
    if (secure && !isIP(servername)) (options as https.RequestOptions).servername = servername;
    const upstream = (secure ? https : http).request(options);

    let headerTimer: ReturnType<typeof setTimeout> | undefined;
    const clearHeaderTimer = () => {
      if (headerTimer !== undefined) clearTimeout(headerTimer);
      headerTimer = undefined;
    };

    upstream.on("socket", (socket) => {
      const startHeaderTimer = () => {
        if (pool.timeouts.responseHeaderTimeout > 0) {
          headerTimer = setTimeout(() => {
            fail(new UpstreamError("upstream did not answer in time", 504, !sent));
            upstream.destroy();
          }, pool.timeouts.responseHeaderTimeout);
        }
      };
      // A pooled socket is already connected; only a new one gets a dial timeout.
      if ((socket as { connecting?: boolean }).connecting) {
        const dialTimer = setTimeout(() => {
          fail(new UpstreamError("upstream connect timed out", 504, !sent));
          upstream.destroy();
        }, pool.timeouts.dialTimeout);
        socket.once("connect", () => {
          clearTimeout(dialTimer);
          startHeaderTimer();
        });
        socket.once("close", () => clearTimeout(dialTimer));
      } else {
        startHeaderTimer();
      }
    });
    upstream.on("error", (err: NodeJS.ErrnoException) => {
      clearHeaderTimer();
      fail(new UpstreamError(`upstream error: ${err.code ?? err.message}`, statusForError(err), !sent, { cause: err }));
    });
    upstream.on("response", (res) => {
      clearHeaderTimer();
      if (settled) {
        res.destroy();
        return;
      }
      settled = true;
      const status = res.statusCode ?? 502;
      const headers = downstreamResponseHeaders(res.rawHeaders);
      const noBody = request.method === "HEAD" || status === 204 || status === 304 ||
        (status >= 100 && status < 200);
      if (noBody) {
        res.resume();
        resolve(new Response(null, { status, statusText: res.statusMessage, headers }));
        return;
      }
      const body = Readable.toWeb(res) as unknown as ReadableStream<Uint8Array>;
      resolve(new Response(body, { status, statusText: res.statusMessage, headers }));
    });

    if (!request.body) {
      upstream.end();
      return;
    }
    sent = true;
    pumpBody(request.body, upstream).catch((err) => {
      upstream.destroy(err instanceof Error ? err : new Error(String(err)));
    });
  });
}

/** Writes a web stream into a node writable, waiting for 'drain' so memory stays flat. */
async function pumpBody(body: ReadableStream<Uint8Array>, out: http.ClientRequest): Promise<void> {
  const reader = body.getReader();
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      if (!out.write(value)) {
        await new Promise<void>((resolve, reject) => {
          const onDrain = () => {
            out.off("error", onError);
            resolve();
          };
          const onError = (e: Error) => {
            out.off("drain", onDrain);
            reject(e);
          };
          out.once("drain", onDrain);
          out.once("error", onError);
        });
      }
    }
    out.end();
  } finally {
    reader.releaseLock();
  }
}

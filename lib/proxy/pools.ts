/**
 * One upstream connection pool per distinct servers transport, kept across
 * config generations so a reload does not drop warm keep-alive connections.
 *
 * @module
 */

import type { ServersTransportConfig } from "../config/types.ts";
import { UpstreamPool } from "./forward.ts";
import { DEFAULT_TIMEOUTS } from "./upstream.ts";

/** Traefik's default `maxIdleConnsPerHost`. */
const DEFAULT_MAX_IDLE = 200;

/** Go's reading of `MaxIdleConnsPerHost`: 0 is its default of 2; below 0 nothing is kept idle. */
export function idleLimit(setting: number): number {
  if (setting === 0) return 2;
  return setting < 0 ? 0 : setting;
}

export class UpstreamPools {
  private readonly pools = new Map<string, UpstreamPool>();

  /** The pool for a transport config (undefined = Traefik's defaults). */
  get(transport?: ServersTransportConfig): UpstreamPool {
    const key = transport ? JSON.stringify(transport) : "";
    let pool = this.pools.get(key);
    if (!pool) {
      const ca = transport?.rootCAs.length
        ? transport.rootCAs.map((file) => Deno.readTextFileSync(file))
        : undefined;
      pool = new UpstreamPool(
        transport ? { ...DEFAULT_TIMEOUTS, ...transport.forwardingTimeouts } : DEFAULT_TIMEOUTS,
        {
          insecureSkipVerify: transport?.insecureSkipVerify ?? false,
          ca,
          serverName: transport?.serverName,
          clientCertificate: transport?.certificates.length
            ? {
              cert: Deno.readTextFileSync(transport.certificates[0].certFile),
              key: Deno.readTextFileSync(transport.certificates[0].keyFile),
            }
            : undefined,
          maxIdlePerHost: idleLimit(transport?.maxIdleConnsPerHost ?? DEFAULT_MAX_IDLE),
        },
      );
      this.pools.set(key, pool);
    }
    return pool;
  }

  close(): void {
    for (const p of this.pools.values()) p.close();
    this.pools.clear();
  }
}

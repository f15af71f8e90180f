/**
 * One upstream connection pool per distinct servers transport, kept across
 * config generations so a reload does not drop warm keep-alive connections.
 *
 * @module
 */

import type { ServersTransportConfig } from "../config/types.ts";
import { DEFAULT_TIMEOUTS, UpstreamPool } from "./forward.ts";

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
        { insecureSkipVerify: transport?.insecureSkipVerify ?? false, ca },
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

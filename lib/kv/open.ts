/**
 * Opens a KV store by kind. Each backend is imported only when asked for:
 * the etcd (gRPC) and Redis clients cost about 36 MB and 22 MB of memory at
 * import, which an instance without that store should not pay.
 *
 * @module
 */

import { KVError, type KVStore } from "./types.ts";
import type { KVTLSOptions } from "./tls.ts";

/** The backends {@link openKVStore} knows. */
export type KVKind = "etcd" | "redis" | "consul" | "memory";

/** Connection settings common to the backends; each uses the fields it understands. */
export interface OpenKVOptions {
  /** etcd: `http://host:2379`; Redis: `host:6379`; Consul: `http://host:8500`. Ignored by memory. */
  endpoints: string[];
  /** etcd and Redis (ACL user). */
  username?: string;
  /** etcd and Redis. */
  password?: string;
  /** Consul ACL token. */
  token?: string;
  /** Redis database number. */
  db?: number;
  /** PEM text or paths to PEM files. */
  tls?: KVTLSOptions;
  /** Per-request timeout in milliseconds (default 5000). */
  timeoutMs?: number;
}

/**
 * Opens a store of the given kind. Connections are made lazily or in the
 * background, so this resolves without waiting for the server; the first
 * call reports a connection failure as a {@link KVError}.
 *
 * @example
 * ```ts
 * const store = await openKVStore("etcd", { endpoints: ["http://127.0.0.1:2379"] });
 * ```
 */
export async function openKVStore(kind: KVKind, options: OpenKVOptions): Promise<KVStore> {
  switch (kind) {
    case "etcd": {
      const { EtcdKVStore } = await import("./etcd.ts");
      return new EtcdKVStore(options);
    }
    case "redis": {
      const { RedisKVStore } = await import("./redis.ts");
      return new RedisKVStore(options);
    }
    case "consul": {
      const { ConsulKVStore } = await import("./consul.ts");
      return new ConsulKVStore(options);
    }
    case "memory": {
      const { MemoryKVStore } = await import("./memory.ts");
      return new MemoryKVStore();
    }
    default:
      throw new KVError(
        `unknown KV store kind ${JSON.stringify(kind)}; valid kinds are etcd, redis, consul and memory`,
      );
  }
}

/**
 * The KV store folder's public surface: the {@link KVStore} contract, the four
 * backends, and {@link openKVStore} to pick one from configuration.
 *
 * @example
 * ```ts
 * import { openKVStore } from "./lib/kv/mod.ts";
 * const store = await openKVStore("etcd", { endpoints: ["http://127.0.0.1:2379"] });
 * const { entries } = await store.list("traefik/");
 * await store.close();
 * ```
 *
 * @module
 */

import { KVError, type KVStore } from "./types.ts";
import { EtcdKVStore } from "./etcd.ts";
import { RedisKVStore } from "./redis.ts";
import { ConsulKVStore } from "./consul.ts";
import { MemoryKVStore } from "./memory.ts";
import type { KVTLSOptions } from "./tls.ts";

export * from "./types.ts";
export { type EtcdKVOptions, EtcdKVStore } from "./etcd.ts";
export { escapeGlob, type RedisKVOptions, RedisKVStore } from "./redis.ts";
export { type ConsulKVOptions, ConsulKVStore } from "./consul.ts";
export {
  type KVClock,
  MemoryKVBackend,
  type MemoryKVBackendOptions,
  MemoryKVStore,
  type MemoryKVStoreOptions,
  systemClock,
} from "./memory.ts";
export type { KVTLSOptions } from "./tls.ts";

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
 */
export function openKVStore(kind: KVKind, options: OpenKVOptions): Promise<KVStore> {
  try {
    switch (kind) {
      case "etcd":
        return Promise.resolve(new EtcdKVStore(options));
      case "redis":
        return Promise.resolve(new RedisKVStore(options));
      case "consul":
        return Promise.resolve(new ConsulKVStore(options));
      case "memory":
        return Promise.resolve(new MemoryKVStore());
      default:
        throw new KVError(
          `unknown KV store kind ${
            JSON.stringify(kind)
          }; valid kinds are etcd, redis, consul and memory`,
        );
    }
  } catch (error) {
    return Promise.reject(error);
  }
}

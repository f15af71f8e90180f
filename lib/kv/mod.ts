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

export { type KVKind, openKVStore, type OpenKVOptions } from "./open.ts";

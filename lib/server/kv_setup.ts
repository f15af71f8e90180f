/**
 * The KV stores of an instance: opens each configured store
 * (`[providers.etcd]`, `[providers.redis]`, `[providers.consul]`) and gives
 * it a {@linkcode KVProvider} with a cache file for the last good snapshot.
 * The cluster and ACME share the first store.
 *
 * The server stops providers (closing their watches) first and the stores
 * last, after the cluster and ACME are done with them.
 *
 * @module
 */

import type { KVProviderConfig, StaticConfig } from "../config/types.ts";
import type { Logger } from "../log/logger.ts";
import type { KVStore } from "../kv/types.ts";
import { type OpenKVOptions, openKVStore } from "../kv/open.ts";
import { KVProvider } from "../providers/kv.ts";
import { settleWithin } from "../deadline.ts";
import { cacheFilePath, KVSnapshotCache } from "../providers/kv_cache.ts";

export interface KvStores {
  /** Config providers to start with the file provider (each has `connectionState()`). */
  readonly providers: KVProvider[];
  /** The store the cluster and ACME code share. */
  readonly store: KVStore;
  /** Root key, e.g. "traefik". */
  readonly rootKey: string;
  /** Closes the stores (the providers are stopped first). */
  stop(): Promise<void>;
}

/** Tuning for tests and benchmarks; the defaults suit production. */
export interface KVSetupOptions {
  /** Directory for `kv-<provider>.json`; see {@linkcode kvCacheDir} for the default. */
  cacheDir?: string;
  /** Passed to each {@linkcode KVProvider}. */
  coalesceMs?: number;
  startTimeoutMs?: number;
}

/** The KV kinds a static config can name, in the order their stores are preferred for sharing. */
export const KV_PROVIDER_KINDS = ["etcd", "redis", "consul"] as const;

/** One KV provider kind. */
export type KVProviderKind = typeof KV_PROVIDER_KINDS[number];

/** A provider section with every backend's extra options. */
export type AnyKVProviderConfig = KVProviderConfig & { db?: number; token?: string };

/** The configured KV provider sections, in {@linkcode KV_PROVIDER_KINDS} order. */
export function configuredKVProviders(
  staticConfig: StaticConfig,
): { kind: KVProviderKind; config: AnyKVProviderConfig }[] {
  const out: { kind: KVProviderKind; config: AnyKVProviderConfig }[] = [];
  for (const kind of KV_PROVIDER_KINDS) {
    const config = staticConfig.providers[kind];
    if (config) out.push({ kind, config });
  }
  return out;
}

/** Store connection options from a provider section (Traefik's option names). */
export function kvStoreOptions(config: AnyKVProviderConfig): OpenKVOptions {
  const options: OpenKVOptions = { endpoints: config.endpoints };
  if (config.username !== undefined) options.username = config.username;
  if (config.password !== undefined) options.password = config.password;
  if (config.token !== undefined) options.token = config.token;
  if (config.db !== undefined) options.db = config.db;
  if (config.tls && (config.tls.ca || config.tls.cert || config.tls.key)) {
    options.tls = { ca: config.tls.ca, cert: config.tls.cert, key: config.tls.key };
  }
  return options;
}

/**
 * Where the cache files go: `cluster.dataDir` when a cluster is configured,
 * else `.portico-cache` beside the static config file (or in the working
 * directory when the config was built in code).
 */
export function kvCacheDir(staticConfig: StaticConfig): string {
  if (staticConfig.cluster?.dataDir) return staticConfig.cluster.dataDir;
  const source = staticConfig.sourceFile;
  const slash = source?.lastIndexOf("/") ?? -1;
  return slash >= 0 ? `${source!.slice(0, slash) || "/"}/.portico-cache` : ".portico-cache";
}

/**
 * Opens the configured stores and their providers. Undefined when no KV
 * provider is configured.
 */
export async function openKvStores(
  staticConfig: StaticConfig,
  log: Logger,
  options: KVSetupOptions = {},
): Promise<KvStores | undefined> {
  const configured = configuredKVProviders(staticConfig);
  if (configured.length === 0) return undefined;
  const cacheDir = options.cacheDir ?? kvCacheDir(staticConfig);
  const stores: KVStore[] = [];
  const providers: KVProvider[] = [];
  try {
    for (const { kind, config } of configured) {
      if (config.tls?.insecureSkipVerify) {
        log.warn(
          "tls.insecureSkipVerify is not supported for KV stores; the server certificate is verified",
          {
            provider: kind,
          },
        );
      }
      const store = await openKVStore(kind, kvStoreOptions(config));
      stores.push(store);
      providers.push(
        new KVProvider({
          name: kind,
          store,
          rootKey: config.rootKey,
          cache: new KVSnapshotCache(cacheFilePath(cacheDir, kind)),
          log,
          coalesceMs: options.coalesceMs,
          startTimeoutMs: options.startTimeoutMs,
        }),
      );
    }
  } catch (error) {
    await Promise.all(stores.map((s) => s.close().catch(() => {})));
    throw error;
  }
  return {
    providers,
    store: stores[0],
    rootKey: configured[0].config.rootKey,
    async stop() {
      // Providers were stopped first by the server; stopping twice is harmless.
      await Promise.all(providers.map((p) => p.stop()));
      // A store that never answered may not close cleanly; shutdown goes on after 2 s.
      await Promise.all(stores.map((s) => settleWithin(s.close(), 2000)));
    },
  };
}

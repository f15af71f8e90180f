/**
 * The KV config provider (`[providers.etcd]`, `[providers.redis]`,
 * `[providers.consul]`): watches every key under `rootKey/`, keeps them in
 * memory, and emits a whole decoded snapshot after each burst of changes.
 *
 * - Bursts are coalesced: a snapshot is built once the store has been quiet
 *   for `coalesceMs` (or `maxCoalesceMs` after the first change at the
 *   latest), so a 500-key upload is one snapshot, not 500.
 * - A snapshot that does not decode is reported with the KV key named; the
 *   last good one keeps serving (the config watcher holds it).
 * - The watch resynchronises on its own after a reconnect (the backends emit
 *   a `reset` or resume from a revision); a reset that changes nothing emits
 *   nothing.
 * - Store unavailable at start: the last good snapshot is read from the
 *   local cache file, and the watch keeps retrying in the background.
 * - {@linkcode KVProvider.connectionState} tells the API and metrics whether
 *   the store is reachable.
 *
 * @example
 * ```ts
 * const store = await openKVStore("etcd", { endpoints: ["http://127.0.0.1:2379"] });
 * const provider = new KVProvider({ name: "etcd", store, rootKey: "traefik", ownsStore: true });
 * await provider.start(watcher); // emits the first snapshot before resolving
 * provider.connectionState(); // { state: "connected", since: Date }
 * ```
 *
 * @module
 */

import { orAfter, settleWithin } from "../deadline.ts";
import { ConfigError } from "../config/errors.ts";
import type { DynamicConfig } from "../config/types.ts";
import type { KVConnectionState, KVStore, KVWatch, KVWatchEvent } from "../kv/types.ts";
import type { Logger } from "../log/logger.ts";
import type { KVSnapshotCache } from "./kv_cache.ts";
import { decodeKVEntries } from "./kv_codec.ts";
import type { Provider, ProviderListener } from "./types.ts";

/** Whether the provider's store is reachable, since when, and why not. */
export interface KVConnectionStatus {
  state: KVConnectionState;
  since: Date;
  /** The last connection error, kept after reconnecting for the API to show. */
  lastError?: string;
}

/** Options for {@linkcode KVProvider}. */
export interface KVProviderOptions {
  /** The provider name and `@` suffix: "etcd", "redis" or "consul". */
  name: string;
  store: KVStore;
  /** Default "traefik". */
  rootKey?: string;
  /** Quiet period that closes a burst of changes, ms (default 50: a chunked upload's transactions land further apart than 20 ms on a busy node). */
  coalesceMs?: number;
  /** Longest a burst may delay its snapshot, ms (default 1000). */
  maxCoalesceMs?: number;
  /** How long `start` waits for the store before falling back to the cache, ms (default 3000). */
  startTimeoutMs?: number;
  /** Where the last good snapshot is kept; none means no cache. */
  cache?: KVSnapshotCache;
  log?: Logger;
  /** Close the store when the provider stops (the store was opened for it). */
  ownsStore?: boolean;
}

/** A config provider backed by a {@linkcode KVStore}. */
export class KVProvider implements Provider {
  readonly name: string;
  readonly rootKey: string;
  readonly #options: KVProviderOptions;
  readonly #entries = new Map<string, string>();
  #synced = false;
  #started = false;
  #stopped = false;
  #listener?: ProviderListener;
  #watch?: KVWatch;
  #timer?: ReturnType<typeof setTimeout>;
  #burstStart = 0;
  #everConnected = false;
  #cacheWarned = false;
  #status: KVConnectionStatus = { state: "disconnected", since: new Date() };
  #onFirst?: (outcome: "synced" | "down") => void;

  constructor(options: KVProviderOptions) {
    this.#options = options;
    this.name = options.name;
    this.rootKey = options.rootKey ?? "traefik";
  }

  /** Whether the store is reachable now, since when, and the last error seen. */
  connectionState(): KVConnectionStatus {
    return { ...this.#status, since: new Date(this.#status.since) };
  }

  /** Number of keys under the root as last seen (0 before the first sync). */
  get keyCount(): number {
    return this.#entries.size;
  }

  async start(listener: ProviderListener): Promise<void> {
    this.#listener = listener;
    const first = new Promise<"synced" | "down">((resolve) => (this.#onFirst = resolve));
    try {
      this.#watch = this.#options.store.watch(`${this.rootKey}/`, {
        onEvents: (events) => this.#onEvents(events),
        onState: (state, error) => this.#onState(state, error),
      });
    } catch (error) {
      this.#onState("disconnected", error as Error);
    }
    const outcome = await orAfter(first, this.#options.startTimeoutMs ?? 3000, "timeout" as const);
    this.#onFirst = undefined;
    this.#started = true;
    if (this.#synced) {
      this.#emit();
      return;
    }
    await this.#serveCache(outcome === "down" ? "unreachable" : "did not answer in time");
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    // A backend's close can wait on a server that never answered; shutdown must not.
    await settleWithin(this.#watch?.close(), STOP_TIMEOUT_MS);
    await this.#options.cache?.settled();
    if (this.#options.ownsStore) await settleWithin(this.#options.store.close(), STOP_TIMEOUT_MS);
  }

  #onEvents(events: KVWatchEvent[]): void {
    if (this.#stopped) return;
    const prefix = `${this.rootKey}/`;
    for (const event of events) {
      if (event.kind === "reset") {
        this.#entries.clear();
        for (const e of event.entries) {
          if (e.key.startsWith(prefix)) this.#entries.set(e.key, e.value);
        }
        this.#synced = true;
      } else if (!event.key.startsWith(prefix)) {
        continue;
      } else if (event.kind === "put") {
        this.#entries.set(event.key, event.value);
      } else {
        this.#entries.delete(event.key);
      }
    }
    if (!this.#synced) return;
    if (this.#started) this.#schedule();
    else this.#onFirst?.("synced");
  }

  #onState(state: KVConnectionState, error?: Error): void {
    if (this.#stopped) return;
    const previous = this.#status;
    const lastError = error?.message ?? previous.lastError;
    if (state !== previous.state) {
      this.#status = { state, since: new Date(), lastError };
      const log = this.#options.log;
      if (state === "connected") {
        if (this.#everConnected) {
          log?.info("KV store connection restored; watch resynchronised", { provider: this.name });
        }
        this.#everConnected = true;
      } else if (this.#everConnected) {
        log?.warn(
          "KV store connection lost; serving the last good configuration and reconnecting",
          {
            provider: this.name,
            error: lastError,
          },
        );
      } else {
        log?.warn("KV store unreachable; retrying", { provider: this.name, error: lastError });
      }
    } else if (error) {
      this.#status = { ...previous, lastError };
    }
    if (state === "disconnected") this.#onFirst?.("down");
  }

  /** Builds the snapshot once the burst is over: after a quiet period, or at the latest after the cap. */
  #schedule(): void {
    const now = performance.now();
    if (this.#timer === undefined) this.#burstStart = now;
    clearTimeout(this.#timer);
    const quiet = this.#options.coalesceMs ?? 50;
    const cap = this.#options.maxCoalesceMs ?? 1000;
    const delay = Math.max(0, Math.min(quiet, this.#burstStart + cap - now));
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#emit();
    }, delay);
  }

  /** Decodes the current keys and tells the listener (unchanged snapshots are dropped downstream). */
  #emit(): void {
    if (this.#stopped || this.#listener === undefined) return;
    const entries = new Map(this.#entries);
    let config: DynamicConfig;
    try {
      config = decodeKVEntries(entries, this.rootKey, this.name);
    } catch (error) {
      this.#listener.onError(this.name, asConfigError(error));
      return;
    }
    this.#listener.onConfig(this.name, config);
    this.#saveCache(entries);
  }

  #saveCache(entries: Map<string, string>): void {
    const cache = this.#options.cache;
    if (!cache) return;
    cache.save({ provider: this.name, rootKey: this.rootKey, entries }).catch((error) => {
      if (this.#cacheWarned) return;
      this.#cacheWarned = true;
      this.#options.log?.warn(
        "cannot write the KV cache file; a restart without the store will serve nothing",
        {
          provider: this.name,
          file: cache.path,
          error: (error as Error).message,
        },
      );
    });
  }

  /** The store could not be read at start: serve the cached snapshot if there is one. */
  async #serveCache(why: string): Promise<void> {
    const listener = this.#listener!;
    const cache = this.#options.cache;
    const reason = this.#status.lastError ? `${why}: ${this.#status.lastError}` : why;
    let cached;
    try {
      cached = await cache?.load(this.rootKey);
    } catch (error) {
      this.#options.log?.warn("ignoring the KV cache file", {
        provider: this.name,
        error: (error as Error).message,
      });
    }
    // The store may have answered while the file was read; its snapshot is on its way.
    if (this.#synced || this.#stopped) return;
    if (!cached) {
      listener.onError(
        this.name,
        new Error(
          `${this.name}: the store is ${reason}, and there is no cached configuration${
            cache ? ` at ${cache.path}` : ""
          }; retrying in the background`,
        ),
      );
      return;
    }
    let config: DynamicConfig;
    try {
      config = decodeKVEntries(cached.entries, this.rootKey, this.name);
    } catch (error) {
      listener.onError(this.name, asConfigError(error));
      return;
    }
    this.#options.log?.warn("KV store unavailable at start; serving the cached configuration", {
      provider: this.name,
      file: cache!.path,
      savedAt: cached.savedAt?.toISOString(),
      reason,
    });
    listener.onConfig(this.name, config);
  }
}

/** How long `stop` waits for the watch and the store to close. */
const STOP_TIMEOUT_MS = 2000;

function asConfigError(error: unknown): Error {
  return error instanceof ConfigError
    ? error
    : new Error(String((error as Error)?.message ?? error));
}

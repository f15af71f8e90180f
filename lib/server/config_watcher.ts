/**
 * The one configuration pipeline:
 *
 *   providers → throttle + dedupe (per provider) → merge → build → commit → swap
 *
 * Providers tell {@linkcode ConfigWatcher.listener} about whole snapshots or
 * errors. {@linkcode ProviderThrottle} drops unchanged snapshots and holds
 * bursts back to one per `providers.providersThrottleDuration`. Snapshots
 * that arrive in the same turn are merged and built once. The build makes
 * everything a generation serves with (routers, services, middlewares and
 * the TLS certificates) and may throw, which rejects the whole reload; the
 * last good generation keeps serving. A build that succeeds is committed
 * (TLS first, so a new TLS router never serves before its certificate is
 * known) and swapped in atomically. Requests already running finish on the
 * generation they started on, because they hold its closures; the old one
 * only stops its health checks.
 *
 * @module
 */

import type { DynamicConfig } from "../config/types.ts";
import type { ReloadStatus } from "../contracts.ts";
import { type MergedConfig, mergeProviders } from "../providers/merge.ts";
import { ProviderThrottle } from "../providers/throttle.ts";
import type { ProviderListener } from "../providers/types.ts";
import type { RouterGeneration } from "../router/build.ts";
import type { Logger } from "../log/logger.ts";

export type { ReloadStatus };

/** What one build produced: the router generation, and what to apply just before it serves. */
export interface BuiltGeneration {
  router: RouterGeneration;
  /** Applies the parts served outside the router (TLS); runs right before the swap, must not throw. */
  commit?(): void;
}

export interface ConfigWatcherOptions {
  /** Builds a generation from the merged snapshots; throws to reject the reload whole. */
  build: (
    merged: MergedConfig,
    generation: number,
    snapshots: ReadonlyMap<string, DynamicConfig>,
  ) => BuiltGeneration;
  log: Logger;
  /** `providers.providersThrottleDuration`, in ms. */
  throttleMs: number;
  /** Told after every swap, e.g. to update ACME domains. */
  onApplied?: (generation: RouterGeneration) => void;
  /** Told after every accepted or rejected reload. */
  onReload?: (status: ReloadStatus) => void;
}

export class ConfigWatcher {
  private readonly snapshots = new Map<string, DynamicConfig>();
  private readonly throttle: ProviderThrottle;
  private generationCounter = 0;
  private timer?: ReturnType<typeof setTimeout>;
  private current_: RouterGeneration;
  /** Provider → its current error, while its latest read is rejected. */
  readonly providerErrors: Map<string, string> = new Map();
  lastReload?: ReloadStatus;
  reloads = { success: 0, failure: 0 };
  /** Where providers send their snapshots and errors. */
  readonly listener: ProviderListener;

  constructor(private readonly options: ConfigWatcherOptions, initial: ReadonlyMap<string, DynamicConfig>) {
    for (const [k, v] of initial) this.snapshots.set(k, v);
    const built = options.build(mergeProviders(this.snapshots), ++this.generationCounter, this.snapshots);
    built.commit?.();
    this.current_ = built.router;
    this.current_.start();
    this.throttle = new ProviderThrottle(options.throttleMs, {
      onConfig: (provider, config) => this.accept(provider, config),
      onError: (provider, error) => this.reject(provider, error),
    });
    this.listener = this.throttle;
  }

  get current(): RouterGeneration {
    return this.current_;
  }

  /** Applies what is held back or pending now (start-up, tests). */
  flush(): void {
    this.throttle.flush();
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.apply();
    }
  }

  private accept(provider: string, config: DynamicConfig): void {
    this.snapshots.set(provider, config);
    this.providerErrors.delete(provider);
    // Snapshots passed on in the same turn (several providers) are built once.
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.apply();
    }, 0);
  }

  private reject(provider: string, error: Error): void {
    this.providerErrors.set(provider, error.message);
    this.reloads.failure++;
    this.lastReload = { time: new Date(), success: false, provider, error: error.message };
    this.options.onReload?.(this.lastReload);
    this.options.log.error("configuration rejected; the last good one keeps serving", {
      provider,
      error: error.message,
    });
  }

  private apply(): void {
    let next: BuiltGeneration;
    try {
      next = this.options.build(mergeProviders(this.snapshots), ++this.generationCounter, this.snapshots);
    } catch (err) {
      this.reloads.failure++;
      this.lastReload = { time: new Date(), success: false, error: (err as Error).message };
      this.options.onReload?.(this.lastReload);
      this.options.log.error("building the new configuration failed; the last good one keeps serving", {
        error: (err as Error).message,
      });
      return;
    }
    const previous = this.current_;
    next.commit?.();
    next.router.start();
    this.current_ = next.router;
    previous.stop();
    this.reloads.success++;
    this.lastReload = { time: new Date(), success: true };
    this.options.onReload?.(this.lastReload);
    const disabled = [...next.router.routers.values()].filter((r) => r.status === "disabled");
    for (const r of disabled) {
      this.options.log.error("router disabled", { router: r.name, error: r.errors.join("; ") });
    }
    this.options.log.info("configuration applied", {
      generation: next.router.generation,
      routers: next.router.routers.size,
      disabled: disabled.length,
    });
    this.options.onApplied?.(next.router);
  }

  stop(): void {
    this.throttle.stop();
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.current_.stop();
  }
}

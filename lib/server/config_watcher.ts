/**
 * The configuration watcher: collects each provider's latest snapshot,
 * debounces bursts, builds a new router generation from the merge and swaps
 * it in atomically. Requests already running finish on the generation they
 * started on, because they hold its closures; the old one only stops its
 * health checks.
 *
 * @module
 */

import type { DynamicConfig } from "../config/types.ts";
import type { ProviderListener } from "../providers/types.ts";
import type { RouterGeneration } from "../router/build.ts";
import type { Logger } from "../log/logger.ts";

/** The outcome of the last attempt to apply configuration. */
export interface ReloadStatus {
  time: Date;
  success: boolean;
  provider?: string;
  error?: string;
}

export interface ConfigWatcherOptions {
  /** Builds a generation from merged snapshots; may throw. */
  build: (snapshots: ReadonlyMap<string, DynamicConfig>, generation: number) => RouterGeneration;
  log: Logger;
  /** Quiet period that gathers a burst of changes into one rebuild. */
  debounceMs: number;
  /** Told after every swap, e.g. to update TLS or ACME domains. */
  onApplied?: (generation: RouterGeneration) => void;
  /** Told after every accepted or rejected reload. */
  onReload?: (status: ReloadStatus) => void;
}

export class ConfigWatcher implements ProviderListener {
  private readonly snapshots = new Map<string, DynamicConfig>();
  private generationCounter = 0;
  private timer?: ReturnType<typeof setTimeout>;
  private current_: RouterGeneration;
  /** Provider → its current error, while its latest read is rejected. */
  readonly providerErrors = new Map<string, string>();
  lastReload?: ReloadStatus;
  reloads = { success: 0, failure: 0 };

  constructor(private readonly options: ConfigWatcherOptions, initial: ReadonlyMap<string, DynamicConfig>) {
    for (const [k, v] of initial) this.snapshots.set(k, v);
    this.current_ = options.build(this.snapshots, ++this.generationCounter);
    this.current_.start();
  }

  get current(): RouterGeneration {
    return this.current_;
  }

  onConfig(provider: string, config: DynamicConfig): void {
    this.snapshots.set(provider, config);
    this.providerErrors.delete(provider);
    this.schedule();
  }

  onError(provider: string, error: Error): void {
    this.providerErrors.set(provider, error.message);
    this.reloads.failure++;
    this.lastReload = { time: new Date(), success: false, provider, error: error.message };
    this.options.onReload?.(this.lastReload);
    this.options.log.error("configuration rejected; the last good one keeps serving", {
      provider,
      error: error.message,
    });
  }

  /** Applies pending changes now instead of after the debounce (tests, shutdown). */
  flush(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.apply();
    }
  }

  private schedule(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.apply();
    }, this.options.debounceMs);
  }

  private apply(): void {
    let next: RouterGeneration;
    try {
      next = this.options.build(this.snapshots, ++this.generationCounter);
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
    next.start();
    this.current_ = next;
    previous.stop();
    this.reloads.success++;
    this.lastReload = { time: new Date(), success: true };
    this.options.onReload?.(this.lastReload);
    const disabled = [...next.routers.values()].filter((r) => r.status === "disabled");
    for (const r of disabled) {
      this.options.log.error("router disabled", { router: r.name, error: r.errors.join("; ") });
    }
    this.options.log.info("configuration applied", {
      generation: next.generation,
      routers: next.routers.size,
      disabled: disabled.length,
    });
    this.options.onApplied?.(next);
  }

  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.current_.stop();
  }
}

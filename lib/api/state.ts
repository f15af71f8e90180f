/**
 * The read-only view of a running instance that the API, the dashboard and
 * metrics are built from. Everything here is in memory; nothing awaits.
 *
 * @module
 */

import type { StaticConfig } from "../config/types.ts";
import type { RouterGeneration } from "../router/build.ts";
import type { ReloadStatus } from "../server/config_watcher.ts";

/** A provider's link to its source (KV providers; the file provider is always "connected"). */
export interface ProviderConnection {
  provider: string;
  state: "connected" | "disconnected";
  since: Date;
  lastError?: string;
}

export interface InstanceState {
  readonly version: string;
  readonly startDate: Date;
  readonly staticConfig: StaticConfig;
  generation(): RouterGeneration;
  lastReload(): ReloadStatus | undefined;
  reloadCounts(): { success: number; failure: number };
  providerErrors(): ReadonlyMap<string, string>;
  providerConnections(): ProviderConnection[];
  draining(): boolean;
  /**
   * Views registered by extensions (`cluster`, `certificates`, …), read by the
   * API and dashboard. Each extension documents the shape it registers.
   */
  readonly views: Map<string, () => unknown>;
}

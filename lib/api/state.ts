/**
 * The read-only view of a running instance that the API, the dashboard and
 * metrics are built from. Everything here is in memory; nothing awaits.
 *
 * @module
 */

import type { StaticConfig } from "../config/types.ts";
import type { RouterGeneration } from "../router/build.ts";
import type { ReloadStatus } from "../server/config_watcher.ts";

export interface InstanceState {
  readonly version: string;
  readonly startDate: Date;
  readonly staticConfig: StaticConfig;
  generation(): RouterGeneration;
  lastReload(): ReloadStatus | undefined;
  providerErrors(): ReadonlyMap<string, string>;
  draining(): boolean;
}

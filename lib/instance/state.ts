/**
 * The read-only view of a running instance that the API, the dashboard and
 * metrics are built from. Everything here is in memory; nothing awaits.
 *
 * @module
 */

import type { AcmeView, CertificateView } from "../acme/manager.ts";
import type { ClusterView } from "../cluster/view.ts";
import type { StaticConfig } from "../config/types.ts";
import type { ReloadStatus } from "../contracts.ts";
import type { RouterGeneration } from "../router/build.ts";

/** A provider's link to its source (KV providers; the file provider is always "connected"). */
export interface ProviderConnection {
  provider: string;
  state: "connected" | "disconnected";
  since: Date;
  lastError?: string;
}

/** What the subsystems an instance runs show of themselves; absent when not running. */
export interface InstanceViews {
  cluster?: () => ClusterView;
  /** ACME certificates and those of `tls.certificates`. */
  certificates?: () => CertificateView[];
  acme?: () => AcmeView;
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
  readonly views: InstanceViews;
}

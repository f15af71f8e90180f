/**
 * What a provider is: something that emits whole, validated dynamic
 * configurations, or an error when what it read was bad. It never builds or
 * applies anything itself.
 *
 * @module
 */

import type { DynamicConfig } from "../config/types.ts";

export interface ProviderListener {
  /** A new valid snapshot; replaces everything this provider said before. */
  onConfig(provider: string, config: DynamicConfig): void;
  /** The provider read something bad; its last good snapshot stays in force. */
  onError(provider: string, error: Error): void;
}

export interface Provider {
  /** The suffix in `name@provider`: "file", "etcd", … */
  readonly name: string;
  /** Emits the first snapshot (or error) before resolving, then keeps watching. */
  start(listener: ProviderListener): Promise<void>;
  stop(): Promise<void>;
  /** The link to the provider's source, for providers that have one (KV). */
  connectionState?(): { state: "connected" | "disconnected"; since: Date; lastError?: string };
}

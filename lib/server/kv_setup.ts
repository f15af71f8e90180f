/**
 * The KV extension: opens the configured store (`[providers.etcd]`,
 * `[providers.redis]` or `[providers.consul]`) and its config provider. The
 * cluster and ACME extensions reach the store through it.
 *
 * NOTE to the engineer implementing the KV provider: this replaces the
 * `kvSetupFromStatic(staticConfig, log)` hook named in your brief. Implement
 * `kvExtension(context)` instead (context.staticConfig, context.log); the
 * server starts `providers` with the file provider and stops the extension
 * (close the store) on shutdown via `stop()`. Delete this note when done.
 *
 * @module
 */

import type { KVStore } from "../kv/types.ts";
import type { Provider } from "../providers/types.ts";
import type { ExtensionContext, ServerExtension } from "./extension.ts";

export interface KVExtension extends ServerExtension {
  readonly name: "kv";
  /** Config providers to start with the file provider. */
  readonly providers: Provider[];
  /** The store the cluster and ACME code share. */
  readonly store: KVStore;
  /** Root key, e.g. "traefik". */
  readonly rootKey: string;
}

/** Undefined when no KV provider is configured. */
export function kvExtension(_context: ExtensionContext): Promise<KVExtension | undefined> {
  return Promise.resolve(undefined);
}

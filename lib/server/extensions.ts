/**
 * The extensions an instance runs, in dependency order: the KV store first
 * (the cluster and ACME use it), then the cluster, TLS/ACME, and metrics and
 * dashboard last (they read the others' views).
 *
 * @module
 */

import type { ExtensionContext, ServerExtension } from "./extension.ts";
import { clusterExtension } from "./cluster_setup.ts";
import { kvExtension } from "./kv_setup.ts";
import { observabilityExtension } from "./observability_setup.ts";
import { tlsExtension } from "./tls_setup.ts";

type Factory = (context: ExtensionContext) => Promise<ServerExtension | undefined>;

const FACTORIES: Factory[] = [kvExtension, clusterExtension, tlsExtension, observabilityExtension];

export async function createExtensions(context: ExtensionContext): Promise<Map<string, ServerExtension>> {
  const created = new Map<string, ServerExtension>();
  try {
    for (const factory of FACTORIES) {
      const ext = await factory({ ...context, earlier: created });
      if (ext) created.set(ext.name, ext);
    }
  } catch (err) {
    for (const ext of [...created.values()].reverse()) await ext.stop?.().catch(() => {});
    throw err;
  }
  return created;
}

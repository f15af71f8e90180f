/**
 * The metrics and dashboard extension (see lib/server/extension.ts).
 *
 * @module
 */

import type { ExtensionContext, ServerExtension } from "./extension.ts";

/** Undefined while not configured. */
export function observabilityExtension(_context: ExtensionContext): Promise<ServerExtension | undefined> {
  return Promise.resolve(undefined);
}

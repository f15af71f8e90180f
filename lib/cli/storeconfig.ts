/**
 * `portico storeconfig`.
 *
 * @module
 */

import type { ParsedArgs } from "./args.ts";

export function runStoreConfig(_args: ParsedArgs): Promise<number> {
  console.error("portico: storeconfig is not available in this build yet");
  return Promise.resolve(1);
}

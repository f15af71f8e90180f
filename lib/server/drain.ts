/**
 * Graceful drain of a set of listeners, each on its entrypoint's
 * `lifeCycle` timers, as Traefik's are. Shared by the main isolate and the
 * data-plane workers.
 *
 * @module
 */

import { settleWithin } from "../deadline.ts";
import type { StaticConfig } from "../config/types.ts";
import type { Logger } from "../log/logger.ts";
import type { Listener } from "./listener.ts";

/** Stops accepting, waits for in-flight requests, then closes what is left. */
export async function drainListeners(
  listeners: ReadonlyMap<string, Listener>,
  staticConfig: StaticConfig,
  log: Logger,
): Promise<void> {
  await Promise.all([...listeners].map(async ([name, listener]) => {
    const lc = entryPointLifeCycle(staticConfig, name);
    if (lc.requestAcceptGraceTimeout > 0) await sleep(lc.requestAcceptGraceTimeout);
    const drained = listener.shutdown();
    if (!await settleWithin(drained, lc.graceTimeOut)) {
      log.warn("grace period over; closing remaining connections", { entryPoint: name });
      listener.closeAll?.();
      await settleWithin(drained, 1000);
    }
  }));
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}


const LIFECYCLE_DEFAULTS = { requestAcceptGraceTimeout: 0, graceTimeOut: 10_000 };

/**
 * The timers an entrypoint drains with: Traefik's
 * `entryPoints.NAME.transport.lifeCycle` where set to other than its
 * default, else the top-level `lifeCycle`.
 */
export function entryPointLifeCycle(staticConfig: StaticConfig, entryPoint: string): StaticConfig["lifeCycle"] {
  const own = staticConfig.entryPoints[entryPoint]?.transport?.lifeCycle;
  const top = staticConfig.lifeCycle;
  const pick = (key: keyof typeof LIFECYCLE_DEFAULTS) =>
    own && own[key] !== LIFECYCLE_DEFAULTS[key] ? own[key] : top[key];
  return { requestAcceptGraceTimeout: pick("requestAcceptGraceTimeout"), graceTimeOut: pick("graceTimeOut") };
}

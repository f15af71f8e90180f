/**
 * What `rateLimit.redis` needs from the running instance and cannot get
 * from its options: where to log a Redis outage, and how many cluster
 * members share the budget when `failureMode = "local"` splits it.
 *
 * Middleware factories get no logger and no cluster state, so the server
 * registers both here when it starts (`configureRateLimitRuntime`) and
 * removes them when it stops. Several servers in one process (tests) each
 * add a layer: every layer's log receives the lines, and the cluster size
 * is the latest layer's, an `override` layer (tests) winning over the rest.
 * With no layer, lines go to stderr and the instance counts as a cluster of one.
 *
 * @example
 * ```ts
 * const remove = configureRateLimitRuntime({
 *   log: (level, msg, fields) => log.child("ratelimit")[level](msg, fields),
 *   clusterMembers: () => 1 + (staticConfig.cluster?.peers.length ?? 0),
 * });
 * // at shutdown:
 * remove();
 * ```
 *
 * @module
 */

import { Logger } from "../../log/logger.ts";

/** A log sink; `fields` never hold secrets (the limiter leaves passwords out). */
export type RateLimitLog = (
  level: "info" | "warn" | "error",
  message: string,
  fields: Record<string, unknown>,
) => void;

/** The hooks a server provides. */
export interface RateLimitRuntime {
  log: RateLimitLog;
  /** Members of this instance's cluster, itself included; 1 when standalone. */
  clusterMembers: () => number;
}

interface Layer {
  hooks: Partial<RateLimitRuntime>;
  override: boolean;
}

const layers: Layer[] = [];

const stderrLogger = new Logger({ level: "INFO", format: "common" }, "ratelimit");
const stderrLog: RateLimitLog = (level, message, fields) =>
  stderrLogger.log(
    level === "info" ? "INFO" : level === "warn" ? "WARN" : "ERROR",
    message,
    fields,
  );

/**
 * Adds a layer of hooks; returns the function that removes it. With
 * `override`, its cluster size wins over layers added before or after it.
 */
export function configureRateLimitRuntime(
  hooks: Partial<RateLimitRuntime>,
  options: { override?: boolean } = {},
): () => void {
  const layer: Layer = { hooks, override: options.override ?? false };
  layers.push(layer);
  return () => {
    const at = layers.indexOf(layer);
    if (at >= 0) layers.splice(at, 1);
  };
}

/** Logs through every configured sink, or stderr when there is none. */
export function rateLimitLog(
  level: "info" | "warn" | "error",
  message: string,
  fields: Record<string, unknown>,
): void {
  const sinks = layers.flatMap((l) => (l.hooks.log ? [l.hooks.log] : []));
  for (const sink of sinks.length > 0 ? sinks : [stderrLog]) {
    try {
      sink(level, message, fields);
    } catch {
      // A broken sink must not break a request.
    }
  }
}

/** The cluster size to split a local fallback budget by: a whole number, at least 1. */
export function clusterMembers(): number {
  const withSize = layers.filter((l) => l.hooks.clusterMembers);
  const chosen = withSize.findLast((l) => l.override) ?? withSize.at(-1);
  let n = 1;
  try {
    n = chosen?.hooks.clusterMembers?.() ?? 1;
  } catch {
    n = 1;
  }
  return Number.isFinite(n) && n >= 1 ? Math.floor(n) : 1;
}

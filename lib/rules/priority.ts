/**
 * @module
 * Router priority: Traefik's default is the rule's length in bytes; higher wins; an explicit
 * priority of 0 means "use the default"; ties go to the provider listed first in the
 * providers precedence, then to the order the routers were added.
 */

/**
 * Length of `rule` in UTF-8 bytes, as Go's `len(rule)`.
 *
 * @example
 * ```ts
 * defaultPriority("Host(`example.org`)"); // 19
 * ```
 */
export function defaultPriority(rule: string): number {
  // ASCII is the common case; only count bytes when needed.
  for (let i = 0; i < rule.length; i++) {
    if (rule.charCodeAt(i) > 0x7f) return new TextEncoder().encode(rule).length;
  }
  return rule.length;
}

/** The priority a router uses: `priority` unless it is missing or 0, else the default. */
export function effectivePriority(rule: string, priority?: number): number {
  return priority ? priority : defaultPriority(rule);
}

/** What {@link compareRoutes} orders. */
export interface Prioritised {
  priority: number;
  /** Provider name, e.g. "file"; compared against `providersPrecedence`. */
  provider?: string;
}

/**
 * A sort comparator putting the route to try first first: higher priority, then the provider
 * earlier in `providersPrecedence` (a provider not listed ranks below every listed one).
 * `Array.prototype.sort` is stable, so remaining ties keep insertion order.
 *
 * @example
 * ```ts
 * routes.sort(compareRoutes(["file", "etcd"]));
 * ```
 */
export function compareRoutes(
  providersPrecedence: readonly string[] = [],
): (a: Prioritised, b: Prioritised) => number {
  const rank = (p?: string) => {
    const i = p === undefined ? -1 : providersPrecedence.indexOf(p);
    return i < 0 ? providersPrecedence.length : i;
  };
  return (a, b) => b.priority - a.priority || rank(a.provider) - rank(b.provider);
}

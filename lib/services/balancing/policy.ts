/**
 * The load-balancing policy contract: a policy picks one server among the
 * eligible ones and may keep per-server accounting (in-flight requests,
 * response times). Policies are chosen once, by Traefik's strategy name,
 * from {@link POLICIES}; the load balancer only talks to this interface.
 *
 * @module
 */

/** What a policy knows about a server: a stable key and its weight. */
export interface PolicyServer {
  readonly url: string;
  readonly weight: number;
}

/** The request facts a policy may use (hrw hashes the client address). */
export interface PolicyRequest {
  readonly clientIp: string;
}

export interface BalancingPolicy<S extends PolicyServer> {
  /** The server for this request among those `isUp` accepts, or undefined when none is eligible. */
  select(isUp: (s: S) => boolean, request: PolicyRequest): S | undefined;
  /** Whether any server could ever be selected (weights permitting). */
  readonly size: number;
  /** A request was sent to `server`. */
  begin?(server: S): void;
  /** The response head from `server` arrived after `elapsedMs`. */
  firstByte?(server: S, elapsedMs: number): void;
  /** The request to `server` is over. */
  end?(server: S): void;
}

/** Injected sources, so the cores stay deterministic under test. */
export interface PolicyDeps {
  random: () => number;
}

export type PolicyFactory = <S extends PolicyServer>(
  servers: readonly S[],
  deps: PolicyDeps,
) => BalancingPolicy<S>;

const registry = new Map<string, PolicyFactory>();

/** Adds a policy under Traefik's strategy name; each policy module registers itself. */
export function registerPolicy(name: string, factory: PolicyFactory): void {
  registry.set(name, factory);
}

/** The policy for `strategy`, or undefined when no module registered that name. */
export function policyFor<S extends PolicyServer>(
  strategy: string,
  servers: readonly S[],
  deps: PolicyDeps = { random: Math.random },
): BalancingPolicy<S> | undefined {
  return registry.get(strategy)?.(servers, deps);
}

export function policyNames(): string[] {
  return [...registry.keys()];
}

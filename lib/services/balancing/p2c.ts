/** Power of two choices over in-flight counts (Traefik's `p2c` strategy). @module */

import { powerOfTwoChoices } from "../power_of_two.ts";
import {
  type BalancingPolicy,
  type PolicyDeps,
  type PolicyServer,
  registerPolicy,
} from "./policy.ts";

export function p2cPolicy<S extends PolicyServer>(
  servers: readonly S[],
  deps: PolicyDeps,
): BalancingPolicy<S> {
  const inFlight = new Map<S, number>();
  return {
    size: servers.filter((s) => s.weight > 0).length,
    select: (isUp) =>
      powerOfTwoChoices(
        servers,
        (s) => isUp(s) && s.weight > 0,
        (s) => inFlight.get(s) ?? 0,
        deps.random,
      ),
    begin: (s) => void inFlight.set(s, (inFlight.get(s) ?? 0) + 1),
    end: (s) => void inFlight.set(s, (inFlight.get(s) ?? 1) - 1),
  };
}

registerPolicy("p2c", p2cPolicy);

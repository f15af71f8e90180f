/** Smooth weighted round robin (Traefik's default `wrr` strategy). @module */

import { SmoothWeightedRoundRobin } from "../smooth_wrr.ts";
import { type BalancingPolicy, type PolicyServer, registerPolicy } from "./policy.ts";

export function wrrPolicy<S extends PolicyServer>(servers: readonly S[]): BalancingPolicy<S> {
  const wrr = new SmoothWeightedRoundRobin(servers.map((item) => ({ item, weight: item.weight })));
  return { select: (isUp) => wrr.next(isUp), size: wrr.size };
}

registerPolicy("wrr", wrrPolicy);

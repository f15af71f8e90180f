/** Highest random weight over the client address (Traefik's `hrw` strategy). @module */

import { rendezvous } from "../rendezvous.ts";
import { type BalancingPolicy, type PolicyServer, registerPolicy } from "./policy.ts";

export function hrwPolicy<S extends PolicyServer>(servers: readonly S[]): BalancingPolicy<S> {
  return {
    size: servers.filter((s) => s.weight > 0).length,
    select: (isUp, request) =>
      rendezvous(servers, isUp, (s) => s.url, (s) => s.weight, request.clientIp),
  };
}

registerPolicy("hrw", hrwPolicy);

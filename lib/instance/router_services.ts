/**
 * Which qualified service each router of the current generation uses, for
 * observers that label requests by service (Prometheus, OTLP metrics).
 * Rebuilt once per generation, so a request costs one map lookup.
 *
 * @module
 */

import { qualify } from "../providers/merge.ts";
import type { RouterGeneration } from "../router/build.ts";
import type { InstanceState } from "./state.ts";

export function routerServices(state: Pick<InstanceState, "generation">): (router: string) => string | undefined {
  let generation: RouterGeneration | undefined;
  let serviceOf = new Map<string, string>();
  return (router) => {
    const current = state.generation();
    if (current !== generation) {
      generation = current;
      serviceOf = new Map();
      for (const [name, r] of current.routers) serviceOf.set(name, qualify(r.config.service, r.provider));
    }
    return serviceOf.get(router);
  };
}

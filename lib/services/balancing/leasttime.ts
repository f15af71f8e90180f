/**
 * Least time (Traefik's `leasttime` strategy): each server scores
 * `average time to first byte × (1 + requests in flight) / weight`, and the
 * lowest score wins. The average is over the last {@link SAMPLE_SIZE}
 * responses; a server with no sample yet scores 0, so it gets tried.
 * Equal scores fall back to weighted round robin by earliest deadline, so
 * ties still honour weights. Servers with a weight of 0 are never chosen.
 *
 * @module
 */

import { type BalancingPolicy, type PolicyServer, registerPolicy } from "./policy.ts";

export const SAMPLE_SIZE = 100;

class Stats {
  inFlight = 0;
  deadline = 0;
  private readonly samples = new Array<number>(SAMPLE_SIZE).fill(0);
  private index = 0;
  private count = 0;
  private sum = 0;

  record(ms: number): void {
    if (this.count < SAMPLE_SIZE) this.count++;
    else this.sum -= this.samples[this.index];
    this.samples[this.index] = ms;
    this.sum += ms;
    this.index = (this.index + 1) % SAMPLE_SIZE;
  }

  average(): number {
    return this.count === 0 ? 0 : this.sum / this.count;
  }
}

export function leastTimePolicy<S extends PolicyServer>(servers: readonly S[]): BalancingPolicy<S> {
  const weighted = servers.filter((s) => s.weight > 0);
  const stats = new Map<S, Stats>();
  // Staggered first deadlines, so servers with equal weights do not all start level.
  let current = 0;
  for (const s of weighted) {
    const st = new Stats();
    current += 1 / s.weight;
    st.deadline = current;
    stats.set(s, st);
  }
  const byDeadline = (tied: S[]): S => {
    let best = tied[0];
    for (const s of tied) if (stats.get(s)!.deadline < stats.get(best)!.deadline) best = s;
    const st = stats.get(best)!;
    st.deadline += 1 / best.weight;
    if (st.deadline > current) current = st.deadline;
    return best;
  };
  return {
    size: weighted.length,
    select(isUp) {
      let min = Infinity;
      let tied: S[] = [];
      for (const s of weighted) {
        if (!isUp(s)) continue;
        const st = stats.get(s)!;
        const score = (st.average() * (1 + st.inFlight)) / s.weight;
        if (score < min) {
          min = score;
          tied = [s];
        } else if (score === min) tied.push(s);
      }
      if (tied.length === 0) return undefined;
      return tied.length === 1 ? tied[0] : byDeadline(tied);
    },
    begin: (s) => void (stats.get(s) && stats.get(s)!.inFlight++),
    firstByte: (s, ms) => stats.get(s)?.record(ms),
    end: (s) => void (stats.get(s) && stats.get(s)!.inFlight--),
  };
}

registerPolicy("leasttime", leastTimePolicy);

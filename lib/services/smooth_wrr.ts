/**
 * Smooth weighted round robin (nginx's algorithm): over any window of
 * sum(weights) picks, each server is chosen exactly `weight` times, and picks
 * of heavy servers are spread out instead of bunched.
 *
 * Pure: it keeps only counters, so it is tested deterministically.
 *
 * @module
 */

/** A candidate with a weight; weight 0 is never picked. */
export interface WeightedItem<T> {
  item: T;
  weight: number;
}

/**
 * @example
 * ```ts
 * const wrr = new SmoothWeightedRoundRobin([{ item: "a", weight: 5 }, { item: "b", weight: 1 }]);
 * wrr.next(() => true); // "a"
 * ```
 */
export class SmoothWeightedRoundRobin<T> {
  private readonly items: WeightedItem<T>[];
  private readonly current: number[];

  constructor(items: WeightedItem<T>[]) {
    this.items = items.filter((i) => i.weight > 0);
    this.current = this.items.map(() => 0);
  }

  get size(): number {
    return this.items.length;
  }

  /** The next item among those for which `eligible` is true, or undefined if none is. */
  next(eligible: (item: T) => boolean): T | undefined {
    let total = 0;
    let best = -1;
    for (let i = 0; i < this.items.length; i++) {
      const { item, weight } = this.items[i];
      if (!eligible(item)) continue;
      this.current[i] += weight;
      total += weight;
      if (best === -1 || this.current[i] > this.current[best]) best = i;
    }
    if (best === -1) return undefined;
    this.current[best] -= total;
    return this.items[best].item;
  }
}

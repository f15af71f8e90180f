/**
 * Power of two choices (Traefik's `p2c` strategy): two distinct eligible
 * servers drawn at random, the one with fewer requests in flight wins.
 * Constant work per pick, and no herd on one "least loaded" server.
 *
 * Pure: the random source and the in-flight counts are passed in.
 *
 * @module
 */

/**
 * Picks among `items` for which `eligible` is true; undefined when none is.
 * Ties go to the first draw.
 *
 * @example
 * ```ts
 * powerOfTwoChoices(["a", "b"], () => true, (s) => (s === "a" ? 3 : 0), Math.random); // "b"
 * ```
 */
export function powerOfTwoChoices<T>(
  items: readonly T[],
  eligible: (item: T) => boolean,
  inFlight: (item: T) => number,
  random: () => number,
): T | undefined {
  const candidates = items.filter(eligible);
  if (candidates.length <= 1) return candidates[0];
  const i = Math.floor(random() * candidates.length);
  // A second draw over the others, so the two are distinct.
  let j = Math.floor(random() * (candidates.length - 1));
  if (j >= i) j++;
  const a = candidates[i], b = candidates[j];
  return inFlight(b) < inFlight(a) ? b : a;
}

/**
 * Highest random weight, or rendezvous hashing (Traefik's `hrw` strategy):
 * each client address scores every server by a hash of the pair, scaled by
 * the server's weight, and the best score wins. A client keeps its server
 * while that server is up, and when one goes away only its own clients move.
 *
 * Pure: the same inputs always give the same choice.
 *
 * @module
 */

/**
 * FNV-1a, 32 bits, then murmur3's finaliser: FNV alone leaves the high bits
 * nearly equal for keys that differ only at the end (measured: one server of
 * three took 99 % of clients), and the score reads the whole value.
 */
function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * The server `client` lands on among the eligible `items` with a weight
 * above 0, or undefined when there is none.
 *
 * @example
 * ```ts
 * rendezvous(["a", "b"], () => true, (s) => s, () => 1, "203.0.113.7"); // always the same one
 * ```
 */
export function rendezvous<T>(
  items: readonly T[],
  eligible: (item: T) => boolean,
  key: (item: T) => string,
  weight: (item: T) => number,
  client: string,
): T | undefined {
  let best: T | undefined;
  let bestScore = -Infinity;
  for (const item of items) {
    const w = weight(item);
    if (w <= 0 || !eligible(item)) continue;
    // A uniform draw in (0, 1) from the pair's hash; -w / ln(u) is the weighted score.
    const u = (hash(`${client}\u0000${key(item)}`) + 1) / 4294967297;
    const score = -w / Math.log(u);
    if (score > bestScore) {
      bestScore = score;
      best = item;
    }
  }
  return best;
}

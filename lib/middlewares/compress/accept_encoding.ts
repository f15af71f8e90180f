/**
 * Choosing a response encoding from `Accept-Encoding`, as Traefik v3's
 * compress middleware does it, quirks included: names match exactly (no
 * case folding), spaces are dropped but not tabs, a `q` that does not parse
 * counts as 0 (refused), and at equal weight `*` comes first, then the
 * configured `encodings` order, then `identity`. Also gzhttp's own check
 * for the gzip case. Pure functions.
 *
 * @module
 */

/** The encodings Portico can produce. */
export type Encoding = "zstd" | "br" | "gzip";

/** What to do with a response: compress with one encoding, or send it as it is. */
export type Choice = Encoding | "identity" | "not_acceptable";

/** Go's `strconv.ParseFloat` for the values a q parameter holds; 0 when it does not parse. */
function goFloat(text: string): number {
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) return 0;
  return Number(text);
}

/**
 * The encoding Traefik's `getCompressionEncoding` picks for a request that
 * has an Accept-Encoding header (`value` is its joined value).
 *
 * @example
 * ```ts
 * chooseEncoding("br;q=0.8, gzip;q=1.0, *;q=0.1", ["gzip", "br", "zstd"], ""); // "gzip"
 * chooseEncoding("*", ["gzip", "br", "zstd"], "br"); // "br"
 * ```
 */
export function chooseEncoding(
  value: string,
  encodings: readonly Encoding[],
  defaultEncoding: Encoding | "",
): Choice {
  // An empty header means "no content coding, please" (RFC 9110 §12.5.3).
  if (value === "") return "identity";
  const priority = new Map<string, number>([["*", -1], ["identity", encodings.length]]);
  encodings.forEach((e, i) => priority.set(e, i));
  let best: { type: string; weight: number; rank: number } | undefined;
  for (const item of value.replaceAll(" ", "").split(",")) {
    const semicolon = item.indexOf(";");
    const type = semicolon === -1 ? item : item.slice(0, semicolon);
    const rank = priority.get(type);
    if (rank === undefined) continue;
    let weight = 1;
    const params = semicolon === -1 ? "" : item.slice(semicolon + 1);
    if (params.startsWith("q=")) {
      weight = goFloat(params.slice(2));
      if (weight === 0) continue;
    }
    if (!best || weight > best.weight || (weight === best.weight && rank < best.rank)) {
      best = { type, weight, rank };
    }
  }
  if (!best) return "not_acceptable";
  if (best.type === "*") return defaultEncoding || encodings[0];
  return best.type as Choice;
}

/**
 * gzhttp's q-value for gzip in `value` (case-insensitive, clamped to 0..1),
 * 0 when absent: Traefik's gzip handler compresses only when it is above 0,
 * so a `*` or a `defaultEncoding` of gzip alone does not compress.
 *
 * @example
 * ```ts
 * gzipQuality("br, GZIP;q=0.5"); // 0.5
 * gzipQuality("*"); // 0
 * ```
 */
export function gzipQuality(value: string | null): number {
  for (const coding of (value ?? "").trim().split(",")) {
    const parts = coding.split(";");
    if (parts[0].trim().toLowerCase() !== "gzip") continue;
    let q = 1;
    for (const part of parts.slice(1)) {
      const p = part.trim();
      if (p.startsWith("q=")) q = Math.min(1, Math.max(0, goFloat(p.slice(2))));
    }
    return q;
  }
  return 0;
}

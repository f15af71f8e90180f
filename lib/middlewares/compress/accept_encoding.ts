/**
 * Choosing a response encoding from `Accept-Encoding`, as Traefik v3's
 * compress middleware does: q-values first, then the configured
 * `encodings` order; `*` means the default encoding (or the first one).
 * A pure function.
 *
 * @module
 */

/** The encodings Portico can produce. */
export type Encoding = "zstd" | "br" | "gzip";

/**
 * The encoding to use, or undefined to send the body as is.
 *
 * @example
 * ```ts
 * chooseEncoding("gzip;q=0.5, br", ["zstd", "br", "gzip"], ""); // "br"
 * ```
 */
export function chooseEncoding(
  acceptEncoding: string | null,
  supported: readonly Encoding[],
  defaultEncoding: Encoding | "",
): Encoding | undefined {
  if (acceptEncoding === null) return defaultEncoding || undefined;
  // An empty header means "no content coding, please" (RFC 9110 §12.5.3).
  if (acceptEncoding.trim() === "") return undefined;
  let best: { type: string; weight: number; rank: number } | undefined;
  for (const item of acceptEncoding.replaceAll(" ", "").replaceAll("\t", "").split(",")) {
    const [type, ...params] = item.split(";");
    const name = type.toLowerCase();
    let rank: number;
    if (name === "*") rank = supported.length;
    else if (name === "identity") rank = supported.length + 1;
    else {
      rank = supported.indexOf(name as Encoding);
      if (rank === -1) continue;
    }
    let weight = 1;
    const q = params.find((p) => p.toLowerCase().startsWith("q="));
    if (q) {
      weight = Number(q.slice(2));
      if (!Number.isFinite(weight) || weight <= 0) continue;
    }
    if (!best || weight > best.weight || (weight === best.weight && rank < best.rank)) {
      best = { type: name, weight, rank };
    }
  }
  if (!best || best.type === "identity") return undefined;
  if (best.type === "*") return defaultEncoding || supported[0];
  return best.type as Encoding;
}

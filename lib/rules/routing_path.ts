/**
 * @module
 * The routing path Traefik v3 matches Path rules against: the escaped request path with
 * every percent-encoded character decoded except the reserved ones (RFC 3986 gen-delims
 * and sub-delims, plus `%`), which stay encoded. So ``PathPrefix(`/foo bar`)`` matches
 * `/foo%20bar`, while `/a%2Fb` is not `/a/b`.
 *
 * Two deliberate refinements over Traefik: reserved escapes are recognised in either hex
 * case and written in upper case (Traefik decodes a lower-case `%2f` into `/`), and bytes
 * that do not form valid UTF-8 stay percent-encoded instead of becoming invalid text.
 */

/** The request path has a `%` not followed by two hex digits; answer 400 Bad Request. */
export class RoutingPathError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RoutingPathError";
  }
}

// : / ? # [ ] @ ! $ & ' ( ) * + , ; = %
const RESERVED = new Set([
  0x3a,
  0x2f,
  0x3f,
  0x23,
  0x5b,
  0x5d,
  0x40,
  0x21,
  0x24,
  0x26,
  0x27,
  0x28,
  0x29,
  0x2a,
  0x2b,
  0x2c,
  0x3b,
  0x3d,
  0x25,
]);

const hexVal = (c: number): number =>
  c >= 48 && c <= 57 ? c - 48 : c >= 65 && c <= 70 ? c - 55 : c >= 97 && c <= 102 ? c - 87 : -1;

const pct = (b: number) => "%" + (b < 16 ? "0" : "") + b.toString(16).toUpperCase();

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Computes the routing path of a raw (still percent-encoded) request path.
 *
 * @throws {RoutingPathError} on an invalid percent-encoding (Traefik answers 400).
 * @example
 * ```ts
 * routingPath("/foo%20bar%2Fbaz"); // "/foo bar%2Fbaz"
 * ```
 */
export function routingPath(rawPath: string): string {
  if (rawPath.indexOf("%") < 0) return rawPath;
  let out = "";
  let pending: number[] = [];
  const flush = () => {
    if (pending.length === 0) return;
    try {
      out += utf8.decode(new Uint8Array(pending));
    } catch {
      out += pending.map(pct).join("");
    }
    pending = [];
  };
  for (let i = 0; i < rawPath.length; i++) {
    const c = rawPath.charCodeAt(i);
    if (c !== 37) {
      flush();
      out += rawPath[i];
      continue;
    }
    if (i + 2 >= rawPath.length) {
      throw new RoutingPathError("invalid percent-encoding at the end of the URL path");
    }
    const hi = hexVal(rawPath.charCodeAt(i + 1));
    const lo = hexVal(rawPath.charCodeAt(i + 2));
    if (hi < 0 || lo < 0) {
      throw new RoutingPathError(
        `invalid percent-encoding ${JSON.stringify(rawPath.slice(i, i + 3))} in URL path`,
      );
    }
    const b = hi * 16 + lo;
    if (RESERVED.has(b)) {
      flush();
      out += pct(b);
    } else if (b < 0x80) {
      flush();
      out += String.fromCharCode(b);
    } else {
      pending.push(b);
    }
    i += 2;
  }
  flush();
  return out;
}

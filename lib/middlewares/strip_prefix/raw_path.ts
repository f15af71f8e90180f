/**
 * Byte-exact path helpers shared by the path middlewares. The proxy forwards
 * the client's path bytes, so rewrites work on the percent-encoded path and
 * leave the query exactly as received.
 *
 * @module
 */

/** Splits `pathAndQuery` into the path and the query including its `?` (or ""). */
export function splitPathQuery(pathAndQuery: string): { path: string; query: string } {
  const q = pathAndQuery.indexOf("?");
  return q === -1
    ? { path: pathAndQuery, query: "" }
    : { path: pathAndQuery.slice(0, q), query: pathAndQuery.slice(q) };
}

/** Go's `ensureLeadingSlash`, except that an empty path becomes "/" (what Go's RequestURI sends). */
export function ensureLeadingSlash(path: string): string {
  if (path === "") return "/";
  return path.startsWith("/") ? path : "/" + path;
}

/**
 * The percent-decoded path, as Go's `URL.Path` holds it; the raw path when
 * it is not valid percent-encoding (Go would have answered 400 earlier).
 */
export function decodePath(raw: string): string {
  if (!raw.includes("%")) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

const encoder = new TextEncoder();

/**
 * How many characters of the raw (percent-encoded) `rawPath` spell the
 * decoded `prefix`, or -1 when the decoded path does not start with it.
 * Lets a prefix configured as "/a b" strip "/a%20b" without re-encoding
 * the rest of the path.
 */
export function rawPrefixLength(rawPath: string, prefix: string): number {
  if (rawPath.startsWith(prefix)) return prefix.length;
  if (!rawPath.includes("%")) return -1;
  const want = encoder.encode(prefix);
  let matched = 0;
  let i = 0;
  while (matched < want.length) {
    if (i >= rawPath.length) return -1;
    if (rawPath[i] === "%" && /^[0-9a-fA-F]{2}$/.test(rawPath.slice(i + 1, i + 3))) {
      if (parseInt(rawPath.slice(i + 1, i + 3), 16) !== want[matched]) return -1;
      matched++;
      i += 3;
      continue;
    }
    const cp = rawPath.codePointAt(i)!;
    const ch = String.fromCodePoint(cp);
    const bytes = encoder.encode(ch);
    for (const b of bytes) {
      if (matched >= want.length || want[matched] !== b) return -1;
      matched++;
    }
    i += ch.length;
  }
  return i;
}

const PATH_SAFE = /[A-Za-z0-9\-._~!$&'()*+,;=:@/%]/;

/** Percent-encodes what cannot appear raw in a path (spaces, non-ASCII), keeping existing escapes. */
export function escapePath(path: string): string {
  let out = "";
  for (const ch of path) {
    if (PATH_SAFE.test(ch)) out += ch;
    else {for (const b of encoder.encode(ch)) {
        out += "%" + b.toString(16).toUpperCase().padStart(2, "0");
      }}
  }
  return out;
}

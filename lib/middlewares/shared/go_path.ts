/**
 * Go's model of a request path, for the path middlewares that must give the
 * same bytes upstream as Traefik. Go keeps two fields: `Path` (decoded) and
 * `RawPath` (the client's encoding, kept only when it differs from Go's
 * default encoding), and sends `EscapedPath()` upstream. Traefik's path
 * middlewares edit both fields and, after stripping or replacing, refuse a
 * result that `URL.JoinPath()` would clean (`/./x`, `/../x`, `//x`) with 400.
 *
 * Every string here is a byte string: one UTF-16 unit per byte (0–255), the
 * way the engine hands over request targets, so invalid UTF-8 in a decoded
 * path survives as it does in Go.
 *
 * @example
 * ```ts
 * const u = goPathFromRaw("/stat/a%2Fb");  // { path: "/stat/a/b", rawPath: "/stat/a%2Fb" }
 * escapedPath(u);                          // "/stat/a%2Fb"
 * joinPathChanges("/../foo");              // true: Traefik answers 400
 * ```
 *
 * @module
 */

/** Go's `url.URL` path fields, as byte strings. */
export interface GoPath {
  /** The decoded path (Go's `URL.Path`). */
  path: string;
  /** The client's encoding when it is not Go's default one, else "" (Go's `URL.RawPath`). */
  rawPath: string;
}

const HEX = "0123456789ABCDEF";

function isHex(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
}

function hexValue(c: number): number {
  if (c <= 57) return c - 48;
  if (c <= 70) return c - 55;
  return c - 87;
}

function isAlnum(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}

/** Go's `shouldEscape(c, encodePath)`. */
function shouldEscapeInPath(c: number): boolean {
  if (isAlnum(c)) return false;
  switch (c) {
    case 45: // -
    case 95: // _
    case 46: // .
    case 126: // ~
    case 36: // $
    case 38: // &
    case 43: // +
    case 44: // ,
    case 47: // /
    case 58: // :
    case 59: // ;
    case 61: // =
    case 64: // @
      return false;
  }
  return true; // including "?"
}

/** Go's `url.PathUnescape` on a byte string; undefined for a malformed `%` escape. */
export function unescapePath(s: string): string | undefined {
  if (!s.includes("%")) return s;
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c !== 37) {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.length || !isHex(s.charCodeAt(i + 1)) || !isHex(s.charCodeAt(i + 2))) {
      return undefined;
    }
    out += String.fromCharCode(
      (hexValue(s.charCodeAt(i + 1)) << 4) | hexValue(s.charCodeAt(i + 2)),
    );
    i += 2;
  }
  return out;
}

/** Go's `escape(s, encodePath)`: the default encoding of a decoded path. */
export function escapePathDefault(path: string): string {
  let out = "";
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (shouldEscapeInPath(c)) out += "%" + HEX[c >> 4] + HEX[c & 15];
    else out += path[i];
  }
  return out;
}

/** Go's `validEncoded(s, encodePath)`: whether `s` may be sent as an encoded path as it is. */
export function validEncodedPath(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    switch (c) {
      case 33: // !
      case 36: // $
      case 38: // &
      case 39: // '
      case 40: // (
      case 41: // )
      case 42: // *
      case 43: // +
      case 44: // ,
      case 59: // ;
      case 61: // =
      case 58: // :
      case 64: // @
      case 91: // [
      case 93: // ]
      case 37: // %
        continue;
    }
    if (shouldEscapeInPath(c)) return false;
  }
  return true;
}

/** Go's `URL.setPath(raw)`; undefined when `raw` has a malformed escape. */
export function goPathFromRaw(raw: string): GoPath | undefined {
  const path = unescapePath(raw);
  if (path === undefined) return undefined;
  return { path, rawPath: escapePathDefault(path) === raw ? "" : raw };
}

/** Go's `URL.EscapedPath()`: the path as it goes on the wire. */
export function escapedPath(u: GoPath): string {
  if (u.rawPath !== "" && validEncodedPath(u.rawPath) && unescapePath(u.rawPath) === u.path) {
    return u.rawPath;
  }
  if (u.path === "*") return "*";
  return escapePathDefault(u.path);
}

/**
 * The path part of Go's `URL.RequestURI()`: the escaped path, "/" when
 * empty. Unlike Go, a path without its leading "/" gets one: Go would put
 * `GET x HTTP/1.1` on the wire, which servers refuse.
 */
export function requestPath(u: GoPath): string {
  const p = escapedPath(u);
  return p === "" ? "/" : p[0] === "/" || p === "*" ? p : "/" + p;
}

/** Go's `path.Clean`. */
export function cleanPath(p: string): string {
  if (p === "") return ".";
  const rooted = p[0] === "/";
  const parts: string[] = [];
  for (const segment of p.split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..") {
      if (parts.length > 0 && parts[parts.length - 1] !== "..") parts.pop();
      else if (!rooted) parts.push("..");
      continue;
    }
    parts.push(segment);
  }
  const joined = parts.join("/");
  if (rooted) return "/" + joined;
  return joined === "" ? "." : joined;
}

/**
 * Go's `URL.JoinPath()` with no elements, on an escaped path: cleaned, a
 * trailing slash kept, and never climbing above the start of a relative path.
 */
export function joinPath(escaped: string): string {
  let p: string;
  if (!escaped.startsWith("/")) {
    p = cleanPath("/" + escaped).slice(1);
  } else {
    p = cleanPath(escaped);
  }
  if (escaped.endsWith("/") && !p.endsWith("/")) p += "/";
  return p;
}

/**
 * True when Traefik refuses a rewritten path with 400: `URL.JoinPath()`
 * would turn it into a different decoded path (a dot segment or an empty
 * segment). An empty path is never checked, as in Traefik.
 */
export function joinPathChanges(u: GoPath): boolean {
  if (u.path === "") return false;
  const escaped = escapedPath(u);
  // Cleaning only touches "//" and dot segments: most paths skip the work.
  if (escaped[0] === "/" && !escaped.includes("//") && !escaped.includes("/.")) return false;
  const joined = unescapePath(joinPath(escaped));
  return joined !== u.path;
}

/**
 * Traefik's `encodedPrefixLen`: how many bytes of `rawPath` stand for the
 * first `decodedLength` bytes of its decoding (3 per `%XX`, else 1).
 */
export function encodedPrefixLength(rawPath: string, decodedLength: number): number {
  let decoded = 0;
  let i = 0;
  while (i < rawPath.length && decoded < decodedLength) {
    i += rawPath[i] === "%" && i + 2 < rawPath.length ? 3 : 1;
    decoded++;
  }
  return i;
}

const encoder = new TextEncoder();

/** The UTF-8 bytes of a JS string, as a byte string (how Go holds a config string). */
export function utf8Bytes(s: string): string {
  // deno-lint-ignore no-control-regex
  if (/^[\x00-\x7f]*$/.test(s)) return s;
  let out = "";
  for (const b of encoder.encode(s)) out += String.fromCharCode(b);
  return out;
}

const decoder = new TextDecoder();

/** A byte string read as UTF-8 (invalid bytes become U+FFFD, as Go's regexp sees them). */
export function fromUtf8Bytes(bytes: string): string {
  // deno-lint-ignore no-control-regex
  if (/^[\x00-\x7f]*$/.test(bytes)) return bytes;
  const buf = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) buf[i] = bytes.charCodeAt(i) & 0xff;
  return decoder.decode(buf);
}

/** Go's `ensureLeadingSlash` in the path middlewares: "" stays "". */
export function goEnsureLeadingSlash(s: string): string {
  if (s === "" || s[0] === "/") return s;
  return "/" + s;
}

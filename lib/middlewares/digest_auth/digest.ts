/**
 * The pure parts of HTTP Digest authentication (RFC 7616, MD5, qop=auth):
 * parsing the Authorization header, computing the expected response, and a
 * bounded nonce table that refuses replayed nonce counts. Time is passed in.
 *
 * @module
 */

import { createHash } from "node:crypto";

/** The fields of a `Digest ...` Authorization header (names lower-cased). */
export type DigestFields = Record<string, string>;

/**
 * Parses `Digest k=v, k="v", ...`; undefined when it is not a Digest header.
 *
 * @example
 * ```ts
 * parseDigestHeader('Digest username="a", nc=00000001'); // { username: "a", nc: "00000001" }
 * ```
 */
export function parseDigestHeader(header: string | null): DigestFields | undefined {
  if (!header || !/^digest\s/i.test(header)) return undefined;
  const fields: DigestFields = {};
  const re = /\s*([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*(?:,|$)/gy;
  re.lastIndex = header.indexOf(" ") + 1;
  while (re.lastIndex < header.length) {
    const start = re.lastIndex;
    const m = re.exec(header);
    if (!m || re.lastIndex === start) return undefined;
    fields[m[1].toLowerCase()] = m[2] !== undefined ? m[2].replace(/\\(.)/g, "$1") : m[3];
  }
  return fields;
}

export function md5Hex(text: string): string {
  return createHash("md5").update(text).digest("hex");
}

/** The response a client with `ha1` should send for these fields (qop=auth). */
export function expectedResponse(ha1: string, method: string, f: DigestFields): string {
  const ha2 = md5Hex(`${method}:${f.uri}`);
  return md5Hex(`${ha1}:${f.nonce}:${f.nc}:${f.cnonce}:${f.qop}:${ha2}`);
}

/**
 * Nonces this server issued, with the highest nonce count seen for each, so
 * a captured Authorization header cannot be replayed. Bounded: the oldest
 * nonce is forgotten first (its client is then asked again, with stale=true).
 */
export class NonceTable {
  private readonly nonces = new Map<string, { nc: number; expires: number }>();

  constructor(readonly maxEntries = 4096, readonly ttlMs = 10 * 60_000) {}

  /** Remembers a newly issued nonce. */
  issue(nonce: string, now: number): void {
    if (this.nonces.size >= this.maxEntries) this.nonces.delete(this.nonces.keys().next().value!);
    this.nonces.set(nonce, { nc: 0, expires: now + this.ttlMs });
  }

  /**
   * "ok" when the nonce is known and `nc` is higher than any seen; "replay"
   * for the same count again; "stale" for a lower count (requests that
   * overtook each other) or a nonce that is unknown or expired.
   */
  use(nonce: string, nc: number, now: number): "ok" | "stale" | "replay" {
    const entry = this.nonces.get(nonce);
    if (!entry || entry.expires <= now) {
      if (entry) this.nonces.delete(nonce);
      return "stale";
    }
    if (nc === entry.nc || nc === 0) return "replay";
    if (nc < entry.nc) return "stale";
    entry.nc = nc;
    return "ok";
  }

  get size(): number {
    return this.nonces.size;
  }
}

/**
 * Whether the digest's `uri` stands for the request-target, as go-http-auth
 * decides: the same bytes, or a URI (absolute or not) whose decoded path is
 * a prefix of the request's decoded path.
 *
 * @example
 * ```ts
 * uriMatches("http://example.com/a", "/a/b?x=1"); // true
 * ```
 */
export function uriMatches(digestUri: string | undefined, requestUri: string): boolean {
  if (digestUri === undefined) return false;
  if (digestUri === requestUri) return true;
  const given = decodedPath(digestUri.replace(/^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/, ""));
  const actual = decodedPath(requestUri);
  return given !== undefined && actual !== undefined && given.length <= actual.length &&
    actual.startsWith(given);
}

function decodedPath(uri: string): string | undefined {
  const end = uri.search(/[?#]/);
  try {
    return decodeURIComponent(end === -1 ? uri : uri.slice(0, end));
  } catch {
    return undefined;
  }
}

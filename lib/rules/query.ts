/**
 * @module
 * Query-string parsing with Go `url.ParseQuery` semantics, which Traefik's Query matchers
 * use: pairs split on `&`; a pair containing `;` is dropped; `+` is a space; a pair with
 * an invalid percent-encoding is dropped; a key without `=` has the value `""`.
 */

function unescapeQuery(s: string): string | undefined {
  if (s.indexOf("%") < 0) return s.indexOf("+") < 0 ? s : s.replaceAll("+", " ");
  const bytes: number[] = [];
  const enc = new TextEncoder();
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 37 /* % */) {
      const hex = s.slice(i + 1, i + 3);
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) return undefined;
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else if (c === 43 /* + */) bytes.push(32);
    else if (c < 0x80) bytes.push(c);
    else {
      const cp = s.codePointAt(i)!;
      const ch = String.fromCodePoint(cp);
      bytes.push(...enc.encode(ch));
      i += ch.length - 1;
    }
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

/** Parses a raw query string (without `?`) into key → values. */
export function parseQuery(raw: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  if (raw === "") return out;
  for (const pair of raw.split("&")) {
    if (pair === "" || pair.includes(";")) continue;
    const eq = pair.indexOf("=");
    const key = unescapeQuery(eq < 0 ? pair : pair.slice(0, eq));
    const value = eq < 0 ? "" : unescapeQuery(pair.slice(eq + 1));
    if (key === undefined || value === undefined) continue;
    const list = out.get(key);
    if (list) list.push(value);
    else out.set(key, [value]);
  }
  return out;
}

let cachedRaw: string | undefined;
let cachedParsed = new Map<string, string[]>();

/**
 * {@link parseQuery} with a one-entry cache: the rules tried for one request share one
 * parse, and a request without a Query matcher never parses at all.
 */
export function queryValues(raw: string, key: string): string[] | undefined {
  if (raw !== cachedRaw) {
    cachedParsed = parseQuery(raw);
    cachedRaw = raw;
  }
  return cachedParsed.get(key);
}

/**
 * Go's `mime.ParseMediaType`, which Traefik's compress middleware uses on
 * the configured content types and on every Content-Type it meets: the
 * type is lower-cased and checked as `token[/token]`, parameter names are
 * lower-cased, values are tokens or quoted strings, a trailing `;` is
 * allowed and a parameter repeated with another value is an error. Pure.
 *
 * @module
 */

/** A parsed media type; `error` is set when Go's parser would fail. */
export interface MediaType {
  /** The lower-cased type, "" when even that is malformed (as Go returns it). */
  type: string;
  params: Map<string, string>;
  error?: string;
}

const TSPECIALS = new Set([...'()<>@,;:\\"/[]?=']);

function isTokenChar(c: string): boolean {
  const code = c.charCodeAt(0);
  return code > 0x20 && code < 0x7f && !TSPECIALS.has(c);
}

function consumeToken(v: string): [string, string] {
  let i = 0;
  while (i < v.length && isTokenChar(v[i])) i++;
  return [v.slice(0, i), v.slice(i)];
}

function consumeValue(v: string): [string, string] {
  if (!v.startsWith('"')) return consumeToken(v);
  let out = "";
  for (let i = 1; i < v.length; i++) {
    const c = v[i];
    if (c === '"') return [out, v.slice(i + 1)];
    if (c === "\\" && i + 1 < v.length && TSPECIALS.has(v[i + 1])) {
      out += v[++i];
      continue;
    }
    if (c === "\r" || c === "\n") return ["", v];
    out += c;
  }
  return ["", v];
}

/** One `; name=value`, or undefined when `v` does not start with one. */
function consumeParam(v: string): { key: string; value: string; rest: string } | undefined {
  let rest = v.trimStart();
  if (!rest.startsWith(";")) return undefined;
  rest = rest.slice(1).trimStart();
  const [name, afterName] = consumeToken(rest);
  if (name === "") return undefined;
  rest = afterName.trimStart();
  if (!rest.startsWith("=")) return undefined;
  rest = rest.slice(1).trimStart();
  const [value, afterValue] = consumeValue(rest);
  if (value === "" && afterValue === rest) return undefined;
  return { key: name.toLowerCase(), value, rest: afterValue };
}

/**
 * Parses a Content-Type value.
 *
 * @example
 * ```ts
 * parseMediaType("Text/HTML; Charset=utf-8"); // { type: "text/html", params: Map { "charset" => "utf-8" } }
 * parseMediaType("a/b;charset=UTF-8;charset=utf-8").error; // "duplicate parameter name"
 * ```
 */
export function parseMediaType(value: string): MediaType {
  const semicolon = value.indexOf(";");
  const base = semicolon === -1 ? value : value.slice(0, semicolon);
  const type = base.toLowerCase().trim();
  const params = new Map<string, string>();
  const [main, afterMain] = consumeToken(type);
  if (main === "") return { type: "", params, error: "no media type" };
  if (afterMain !== "") {
    if (!afterMain.startsWith("/")) {
      return { type: "", params, error: "expected slash after first token" };
    }
    const [sub, afterSub] = consumeToken(afterMain.slice(1));
    if (sub === "") return { type: "", params, error: "expected token after slash" };
    if (afterSub !== "") {
      return { type: "", params, error: "unexpected content after media subtype" };
    }
  }
  let v = value.slice(base.length);
  while (v.length > 0) {
    v = v.trimStart();
    if (v.length === 0) break;
    const param = consumeParam(v);
    if (!param) {
      if (v.trim() === ";") break; // a trailing semicolon is not an error
      return { type, params: new Map(), error: "invalid media parameter" };
    }
    const seen = params.get(param.key);
    if (seen !== undefined && seen !== param.value) {
      return { type: "", params: new Map(), error: "duplicate parameter name" };
    }
    params.set(param.key, param.value);
    v = param.rest;
  }
  return { type, params };
}

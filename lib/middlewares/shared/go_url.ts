/**
 * Go's `url.Parse` and `URL.String()`, for the redirect middlewares. Traefik
 * parses the URL a redirect builds and answers 502 when Go cannot parse it;
 * otherwise `Location` is the parsed URL written back, which normalises it
 * (scheme lower-cased, a space in the path sent as `%20`). Doing the same
 * keeps Portico's `Location` byte-identical and keeps a broken URL (a bad
 * `%` escape, a control character, a non-numeric port) from reaching the
 * client.
 *
 * Strings are byte strings (one UTF-16 unit per byte), as in the rest of
 * the path code.
 *
 * @example
 * ```ts
 * const u = parseGoUrl("HTTPS://example.com/a b?x=1");
 * u && formatGoUrl(u);  // "https://example.com/a%20b?x=1"
 * parseGoUrl("http://192.168.0.%31/");  // undefined: Go refuses %-escapes of ASCII in a host
 * ```
 *
 * @module
 */

import { escapedPath, type GoPath, goPathFromRaw } from "./go_path.ts";
import { parseIp } from "../../rules/ip.ts";

/** The parts of a parsed URL that its text form needs. */
export interface GoUrl {
  scheme: string;
  opaque: string;
  user?: { username: string; password?: string };
  /** Decoded host (with port). */
  host: string;
  path: GoPath;
  omitHost: boolean;
  forceQuery: boolean;
  rawQuery: string;
  /** Decoded fragment and its client encoding ("" when the default one). */
  fragment: string;
  rawFragment: string;
}

type Mode = "host" | "zone" | "user" | "fragment";

const HEX = "0123456789ABCDEF";

function isHex(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
}

function hexValue(c: number): number {
  return c <= 57 ? c - 48 : c <= 70 ? c - 55 : c - 87;
}

function isAlnum(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}

/** Go's `shouldEscape` for the modes the redirect code needs (path is in go_path.ts). */
function shouldEscape(c: number, mode: Mode): boolean {
  if (isAlnum(c)) return false;
  const ch = String.fromCharCode(c);
  if ((mode === "host" || mode === "zone") && "!$&'()*+,;=:[]<>\"".includes(ch)) return false;
  if ("-_.~".includes(ch)) return false;
  if ("$&+,/:;=?@".includes(ch)) {
    if (mode === "user") return ch === "@" || ch === "/" || ch === "?" || ch === ":";
    if (mode === "fragment") return false;
    return true; // host and zone: only the ones allowed above
  }
  if (mode === "fragment" && "!()*".includes(ch)) return false;
  return true;
}

function escape(s: string, mode: Mode): string {
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    out += shouldEscape(c, mode) ? "%" + HEX[c >> 4] + HEX[c & 15] : s[i];
  }
  return out;
}

/** Go's `unescape` for host, zone, userinfo and fragment; undefined where Go errors. */
function unescape(s: string, mode: Mode): string | undefined {
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 37) {
      if (i + 2 >= s.length || !isHex(s.charCodeAt(i + 1)) || !isHex(s.charCodeAt(i + 2))) {
        return undefined;
      }
      const v = (hexValue(s.charCodeAt(i + 1)) << 4) | hexValue(s.charCodeAt(i + 2));
      const escaped = s.slice(i, i + 3);
      // In a host, %-encoding is only for non-ASCII bytes (and %25 before a zone).
      if (mode === "host" && v < 0x80 && escaped !== "%25") return undefined;
      if (mode === "zone" && escaped !== "%25" && v !== 32 && shouldEscape(v, "host")) {
        return undefined;
      }
      out += String.fromCharCode(v);
      i += 2;
      continue;
    }
    if ((mode === "host" || mode === "zone") && c < 0x80 && shouldEscape(c, mode)) return undefined;
    out += s[i];
  }
  return out;
}

function validOptionalPort(port: string): boolean {
  return port === "" || /^:[0-9]*$/.test(port);
}

function parseHost(host: string): string | undefined {
  if (host.startsWith("[")) {
    const close = host.lastIndexOf("]");
    if (close < 0) return undefined;
    if (!validOptionalPort(host.slice(close + 1))) return undefined;
    const zoneAt = host.slice(0, close).indexOf("%25");
    const address = zoneAt >= 0 ? host.slice(1, zoneAt) : host.slice(1, close);
    // Only an IPv6 address may stand in brackets (Go 1.25.2 and later).
    const bytes = parseIp(unescape(address, "host") ?? "");
    if (!address.includes(":") || !bytes) return undefined;
    if (zoneAt >= 0) {
      const a = unescape(host.slice(0, zoneAt), "host");
      const b = unescape(host.slice(zoneAt, close), "zone");
      const c = unescape(host.slice(close), "host");
      return a === undefined || b === undefined || c === undefined ? undefined : a + b + c;
    }
  } else {
    const colon = host.lastIndexOf(":");
    if (colon >= 0 && !validOptionalPort(host.slice(colon))) return undefined;
  }
  return unescape(host, "host");
}

function validUserinfo(s: string): boolean {
  return /^[A-Za-z0-9\-._:~!$&'()*+,;=%@]*$/.test(s);
}

/** Go's `getScheme`: [scheme, rest], or undefined for "missing protocol scheme". */
function splitScheme(raw: string): [string, string] | undefined {
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if ((c >= 65 && c <= 90) || (c >= 97 && c <= 122)) continue;
    if ((c >= 48 && c <= 57) || c === 43 || c === 45 || c === 46) {
      if (i === 0) return ["", raw];
      continue;
    }
    if (c === 58) return i === 0 ? undefined : [raw.slice(0, i), raw.slice(i + 1)];
    return ["", raw];
  }
  return ["", raw];
}

/** Go's `url.Parse`; undefined wherever Go returns an error. */
export function parseGoUrl(rawUrl: string): GoUrl | undefined {
  const hash = rawUrl.indexOf("#");
  const main = hash < 0 ? rawUrl : rawUrl.slice(0, hash);
  const frag = hash < 0 ? "" : rawUrl.slice(hash + 1);
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x1f\x7f]/.test(main)) return undefined;
  const url: GoUrl = {
    scheme: "",
    opaque: "",
    host: "",
    path: { path: "", rawPath: "" },
    omitHost: false,
    forceQuery: false,
    rawQuery: "",
    fragment: "",
    rawFragment: "",
  };
  if (main === "*") {
    url.path = { path: "*", rawPath: "" };
  } else {
    const split = splitScheme(main);
    if (!split) return undefined;
    url.scheme = split[0].toLowerCase();
    let rest = split[1];
    if (rest.endsWith("?") && rest.indexOf("?") === rest.length - 1) {
      url.forceQuery = true;
      rest = rest.slice(0, -1);
    } else {
      const q = rest.indexOf("?");
      if (q >= 0) [rest, url.rawQuery] = [rest.slice(0, q), rest.slice(q + 1)];
    }
    if (!rest.startsWith("/")) {
      if (url.scheme !== "") {
        url.opaque = rest;
        return withFragment(url, frag);
      }
      const slash = rest.indexOf("/");
      if ((slash < 0 ? rest : rest.slice(0, slash)).includes(":")) return undefined;
    }
    if ((url.scheme !== "" || !rest.startsWith("///")) && rest.startsWith("//")) {
      let authority = rest.slice(2);
      rest = "";
      const slash = authority.indexOf("/");
      if (slash >= 0) [authority, rest] = [authority.slice(0, slash), authority.slice(slash)];
      const at = authority.lastIndexOf("@");
      const host = parseHost(at < 0 ? authority : authority.slice(at + 1));
      if (host === undefined) return undefined;
      url.host = host;
      if (at >= 0) {
        const info = authority.slice(0, at);
        if (!validUserinfo(info)) return undefined;
        const colon = info.indexOf(":");
        const username = unescape(colon < 0 ? info : info.slice(0, colon), "user");
        const password = colon < 0 ? undefined : unescape(info.slice(colon + 1), "user");
        if (username === undefined || (colon >= 0 && password === undefined)) return undefined;
        url.user = { username, password };
      }
    } else if (url.scheme !== "" && rest.startsWith("/")) {
      url.omitHost = true;
    }
    const path = goPathFromRaw(rest);
    if (!path) return undefined;
    url.path = path;
  }
  return withFragment(url, frag);
}

function withFragment(url: GoUrl, frag: string): GoUrl | undefined {
  if (frag === "") return url;
  const decoded = unescape(frag, "fragment");
  if (decoded === undefined) return undefined;
  url.fragment = decoded;
  url.rawFragment = escape(decoded, "fragment") === frag ? "" : frag;
  return url;
}

function validEncodedFragment(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ("!$&'()*+,;=:@[]%".includes(s[i])) continue;
    if (shouldEscape(c, "fragment")) return false;
  }
  return true;
}

function escapedFragment(url: GoUrl): string {
  if (url.rawFragment !== "" && validEncodedFragment(url.rawFragment)) {
    if (unescape(url.rawFragment, "fragment") === url.fragment) return url.rawFragment;
  }
  return escape(url.fragment, "fragment");
}

/** Go's `URL.String()`. */
export function formatGoUrl(url: GoUrl): string {
  let out = "";
  if (url.scheme !== "") out += url.scheme + ":";
  if (url.opaque !== "") {
    out += url.opaque;
  } else {
    if (url.scheme !== "" || url.host !== "" || url.user) {
      if (!(url.omitHost && url.host === "" && !url.user)) {
        if (url.host !== "" || url.path.path !== "" || url.user) out += "//";
        if (url.user) {
          out += escape(url.user.username, "user");
          if (url.user.password !== undefined) out += ":" + escape(url.user.password, "user");
          out += "@";
        }
        if (url.host !== "") out += escape(url.host, "host");
      }
    }
    const path = escapedPath(url.path);
    if (path !== "" && path[0] !== "/" && url.host !== "") out += "/";
    if (out === "") {
      // A relative path whose first segment has a colon would read as a scheme.
      const slash = path.indexOf("/");
      if ((slash < 0 ? path : path.slice(0, slash)).includes(":")) out += "./";
    }
    out += path;
  }
  if (url.forceQuery || url.rawQuery !== "") out += "?" + url.rawQuery;
  if (url.fragment !== "") out += "#" + escapedFragment(url);
  return out;
}

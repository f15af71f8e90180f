/**
 * Views of an engine request for the parts that want something else than
 * bytes: a `Headers.get` lookup over the flat header list (rules read it),
 * and a Web `Request` for routes whose middlewares work on Web objects.
 *
 * @module
 */

import type { Exchange } from "./exchange.ts";

/** `Headers.get` semantics over a flat name/value list, without building a `Headers`. */
export class HeadHeaders {
  constructor(public list: string[]) {}

  get(name: string): string | null {
    const key = name.toLowerCase();
    let found: string | null = null;
    const list = this.list;
    for (let i = 0; i < list.length; i += 2) {
      if (list[i] !== key) continue;
      found = found === null ? list[i + 1] : `${found}, ${list[i + 1]}`;
    }
    return found;
  }
}

/** Path and query of a request-target as sent: the target itself, less an absolute form's scheme and authority. */
export function pathAndQueryOf(target: string): string {
  if (target.charCodeAt(0) === 47 /* / */ || target === "*") return target;
  const schemeEnd = target.indexOf("://");
  if (schemeEnd < 0) return target;
  let i = schemeEnd + 3;
  while (i < target.length && target[i] !== "/" && target[i] !== "?") i++;
  const rest = target.slice(i);
  return rest === "" ? "/" : rest[0] === "?" ? `/${rest}` : rest;
}

/** Methods `new Request` refuses outright (the fast path still forwards them). */
const FORBIDDEN = new Set(["CONNECT", "TRACE", "TRACK"]);

/**
 * A Web `Request` for `exchange`. The URL is for middlewares that read it;
 * the raw target travels separately (`ProxyRequest.pathAndQuery`). A GET
 * or HEAD cannot carry a body in a Web Request: its body stays on the
 * exchange (see `ProxyRequest.detachedBody`).
 *
 * @throws TypeError when the head cannot be a Web Request (the caller answers 400).
 */
export function toWebRequest(exchange: Exchange): Request {
  const { head, info } = exchange;
  if (FORBIDDEN.has(head.method.toUpperCase())) throw new TypeError(`method ${head.method} cannot be served here`);
  const headers = new Headers();
  const list = head.headers;
  for (let i = 0; i < list.length; i += 2) headers.append(list[i], list[i + 1]);
  const path = pathAndQueryOf(head.target);
  const base = `${info.tls ? "https" : "http"}://${head.host || "localhost"}`;
  const url = path[0] === "/" ? base + path : `${base}/`;
  const canHaveBody = head.method !== "GET" && head.method !== "HEAD";
  const body = canHaveBody ? exchange.bodyStream() : null;
  return new Request(url, {
    method: head.method,
    headers,
    body,
    // deno-lint-ignore no-explicit-any
    ...(body ? { duplex: "half" } as any : {}),
  });
}

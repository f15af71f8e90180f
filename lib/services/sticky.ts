/**
 * Sticky sessions by cookie, as Traefik does them: the cookie holds a hash of
 * the chosen server's URL, never the URL itself.
 *
 * @module
 */

import type { StickyCookieConfig } from "../config/types.ts";

/** FNV-1a 64-bit as hex: short, stable, and does not reveal the backend address. */
export function hashServer(url: string): string {
  let h = 0xcbf29ce484222325n;
  for (let i = 0; i < url.length; i++) {
    h ^= BigInt(url.charCodeAt(i) & 0xff);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h.toString(16).padStart(16, "0");
}

/** Traefik's default name: an underscore and the first 6 hex digits of the service name's hash. */
export function defaultCookieName(serviceName: string): string {
  return "_" + hashServer(serviceName).slice(0, 6);
}

/** Reads one cookie's value from a Cookie header. */
export function readCookie(header: string | null, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq === -1) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** The Set-Cookie value that pins a client to `serverHash`. */
export function stickyCookie(name: string, serverHash: string, config: StickyCookieConfig): string {
  let cookie = `${name}=${serverHash}; Path=${config.path ?? "/"}`;
  if (config.domain) cookie += `; Domain=${config.domain.replace(/^\./, "")}`;
  if (config.maxAge) cookie += `; Max-Age=${config.maxAge}`;
  if (config.httpOnly) cookie += "; HttpOnly";
  if (config.secure) cookie += "; Secure";
  if (config.sameSite) cookie += `; SameSite=${config.sameSite[0].toUpperCase()}${config.sameSite.slice(1).toLowerCase()}`;
  return cookie;
}

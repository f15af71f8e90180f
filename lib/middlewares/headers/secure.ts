/**
 * The security part of the `headers` middleware, as Traefik builds it on
 * unrolled/secure: an `allowedHosts` check before forwarding, then response
 * headers decided per request (`Strict-Transport-Security` and
 * `Public-Key-Pins` only on HTTPS, a fresh CSP nonce for `$NONCE`).
 *
 * @module
 */

import type { ProxyRequest } from "../../services/types.ts";
import type { OptionReader } from "../options.ts";
import { requestUri } from "../shared/redirect_core.ts";

/** The security options, read and checked once. */
export interface SecureOptions {
  allowedHosts: string[];
  hostsProxyHeaders: string[];
  sslProxyHeaders: [string, string][];
  isDevelopment: boolean;
  /** The full `Strict-Transport-Security` value, or undefined when `stsSeconds` is 0 or unset. */
  sts: string | undefined;
  forceSTS: boolean;
  publicKey: string;
  /** Headers set on every response, in unrolled/secure's order. */
  fixed: [string, string][];
  /** CSP values holding `$NONCE`, filled in per request. */
  withNonce: [string, string][];
}

/** Reads the security options; `configured` is Traefik's `HasSecureHeadersDefined`. */
export function readSecure(o: OptionReader): { secure: SecureOptions; configured: boolean } {
  const stsSeconds = o.int("stsSeconds");
  if (stsSeconds !== undefined && stsSeconds < 0) {
    o.fail("stsSeconds", `must not be negative, found ${stsSeconds}`);
  }
  const includeSubdomains = o.bool("stsIncludeSubdomains", { default: false });
  const preload = o.bool("stsPreload", { default: false });
  const forceSTS = o.bool("forceSTSHeader", { default: false });
  const frameDeny = o.bool("frameDeny", { default: false });
  const frameValue = o.string("customFrameOptionsValue", { default: "" });
  const nosniff = o.bool("contentTypeNosniff", { default: false });
  const xssFilter = o.bool("browserXssFilter", { default: false });
  const xssValue = o.string("customBrowserXSSValue", { default: "" });
  const csp = o.string("contentSecurityPolicy", { default: "" });
  const cspReportOnly = o.string("contentSecurityPolicyReportOnly", { default: "" });
  const publicKey = o.string("publicKey", { default: "" });
  const referrer = o.string("referrerPolicy", { default: "" });
  const permissions = o.string("permissionsPolicy", { default: "" });
  const secure: SecureOptions = {
    allowedHosts: o.stringList("allowedHosts", { default: [] }),
    hostsProxyHeaders: o.stringList("hostsProxyHeaders", { default: [] }),
    sslProxyHeaders: Object.entries(o.record("sslProxyHeaders", { default: {} })),
    isDevelopment: o.bool("isDevelopment", { default: false }),
    sts: stsSeconds
      ? `max-age=${stsSeconds}${includeSubdomains ? "; includeSubDomains" : ""}${
        preload ? "; preload" : ""
      }`
      : undefined,
    forceSTS,
    publicKey,
    fixed: [],
    withNonce: [],
  };
  const add = (name: string, value: string) => {
    if (!value) return;
    (value.includes("$NONCE") && name.startsWith("content-security-policy")
      ? secure.withNonce
      : secure.fixed)
      .push([name, value]);
  };
  add("x-frame-options", frameValue || (frameDeny ? "DENY" : ""));
  add("x-content-type-options", nosniff ? "nosniff" : "");
  add("x-xss-protection", xssValue || (xssFilter ? "1; mode=block" : ""));
  add("content-security-policy", csp);
  add("content-security-policy-report-only", cspReportOnly);
  add("referrer-policy", referrer);
  add("permissions-policy", permissions);
  const configured = secure.allowedHosts.length > 0 || secure.hostsProxyHeaders.length > 0 ||
    secure.sslProxyHeaders.length > 0 || stsSeconds !== undefined || includeSubdomains || preload ||
    forceSTS || frameDeny || frameValue !== "" || nosniff || xssFilter || xssValue !== "" ||
    csp !== "" || cspReportOnly !== "" || publicKey !== "" || referrer !== "" ||
    permissions !== "" ||
    secure.isDevelopment;
  return { secure, configured };
}

/** True when the response headers depend on the request (so no byte-level twin). */
export function secureIsPerRequest(s: SecureOptions): boolean {
  return (s.allowedHosts.length > 0 && !s.isDevelopment) ||
    (s.sts !== undefined && !s.forceSTS && !s.isDevelopment) ||
    (s.publicKey !== "" && !s.isDevelopment) || s.withNonce.length > 0;
}

/** The response headers every request gets, when they do not depend on it. */
export function fixedSecureHeaders(s: SecureOptions): [string, string][] {
  const out: [string, string][] = [];
  if (s.sts !== undefined && s.forceSTS && !s.isDevelopment) {
    out.push(["strict-transport-security", s.sts]);
  }
  return [...out, ...s.fixed];
}

/**
 * The value Traefik's request holds for a header when secure reads it:
 * Traefik's entrypoint sets X-Forwarded-Proto/Host/Port and X-Real-Ip
 * before any middleware unless a trusted client sent them, and Portico
 * only adds them when forwarding, so they are computed here the same way.
 */
function headerAsTraefikSees(proxy: ProxyRequest, name: string): string {
  const sent = proxy.headers.get(name);
  if (sent) return sent;
  switch (name.toLowerCase()) {
    case "x-forwarded-proto": {
      const ws = proxy.headers.get("upgrade")?.toLowerCase() === "websocket";
      return proxy.proto === "https" ? (ws ? "wss" : "https") : (ws ? "ws" : "http");
    }
    case "x-forwarded-host":
      return proxy.host;
    case "x-forwarded-port": {
      const port = /:(\d+)$/.exec(proxy.host.replace(/^\[[^\]]*\]/, ""))?.[1];
      return port ?? (proxy.proto === "https" ? "443" : "80");
    }
    case "x-real-ip":
      return proxy.clientIp;
  }
  return "";
}

/** What the security part decided for one request. */
export type SecureDecision = { badHost: true } | { badHost: false; headers: [string, string][] };

/**
 * Checks the host and computes the response headers for a request. `host`
 * is the request's Host after `customRequestHeaders` (Traefik lets those
 * change it first).
 */
export function secureRequest(s: SecureOptions, proxy: ProxyRequest, host: string): SecureDecision {
  for (const name of s.hostsProxyHeaders) {
    const value = headerAsTraefikSees(proxy, name);
    if (value !== "") {
      host = value;
      break;
    }
  }
  if (s.allowedHosts.length > 0 && !s.isDevelopment) {
    const wanted = host.toLowerCase();
    if (!s.allowedHosts.some((h) => h.toLowerCase() === wanted)) return { badHost: true };
  }
  const ssl = proxy.proto === "https" || /^https:\/\//i.test(requestUri(proxy)) ||
    s.sslProxyHeaders.some(([name, value]) => headerAsTraefikSees(proxy, name) === value);
  const headers: [string, string][] = [];
  if (s.sts !== undefined && (ssl || s.forceSTS) && !s.isDevelopment) {
    headers.push(["strict-transport-security", s.sts]);
  }
  headers.push(...s.fixed);
  if (s.publicKey !== "" && ssl && !s.isDevelopment) headers.push(["public-key-pins", s.publicKey]);
  if (s.withNonce.length > 0) {
    const nonce = `'nonce-${cspNonce()}'`;
    for (const [name, value] of s.withNonce) {
      headers.push([name, value.replaceAll("$NONCE", nonce)]);
    }
  }
  return { badHost: false, headers };
}

/** 16 random bytes in unpadded standard base64, as unrolled/secure makes its nonces. */
function cspNonce(): string {
  return btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16)))).replace(
    /=+$/,
    "",
  );
}

/** unrolled/secure's answer for a host that is not allowed (`http.Error`). */
export function badHostResponse(): Response {
  return new Response("Bad Host\n", {
    status: 500,
    headers: { "content-type": "text/plain; charset=utf-8", "x-content-type-options": "nosniff" },
  });
}

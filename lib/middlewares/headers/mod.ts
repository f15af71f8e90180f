/**
 * The `headers` middleware: custom request/response headers, CORS with
 * preflight answered by the proxy, and security headers, in Traefik's order
 * (custom and CORS outside, security inside, so custom response headers can
 * override security ones).
 *
 * @module
 */

import { compileRe2 } from "../../rules/re2.ts";
import { readOptions } from "../options.ts";
import { type MiddlewareFactory, type PorticoMiddleware, writableRequestHeaders, writableResponse } from "../types.ts";
import { ResponseEdits, withFastStep } from "../fast.ts";
import { replaceResponse } from "./replace_response.ts";

const OPTION_NAMES = [
  "customRequestHeaders",
  "customResponseHeaders",
  "accessControlAllowCredentials",
  "accessControlAllowHeaders",
  "accessControlAllowMethods",
  "accessControlAllowOriginList",
  "accessControlAllowOriginListRegex",
  "accessControlExposeHeaders",
  "accessControlMaxAge",
  "addVaryHeader",
  "allowedHosts",
  "hostsProxyHeaders",
  "sslProxyHeaders",
  "stsSeconds",
  "stsIncludeSubdomains",
  "stsPreload",
  "forceSTSHeader",
  "frameDeny",
  "customFrameOptionsValue",
  "contentTypeNosniff",
  "browserXssFilter",
  "customBrowserXSSValue",
  "contentSecurityPolicy",
  "contentSecurityPolicyReportOnly",
  "publicKey",
  "referrerPolicy",
  "permissionsPolicy",
  "isDevelopment",
];

const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * Builds `headers`. An empty value in `customRequestHeaders` or
 * `customResponseHeaders` removes that header. CORS: a preflight (OPTIONS
 * with `Origin` and `Access-Control-Request-Method`) is answered 200 by the
 * proxy and never forwarded; an origin that matches neither
 * `accessControlAllowOriginList` nor `accessControlAllowOriginListRegex`
 * (RE2) gets no `Access-Control-*` headers at all. Security headers follow
 * Traefik (unrolled/secure): `Strict-Transport-Security` only on HTTPS
 * requests (or a `sslProxyHeaders` match) unless `forceSTSHeader`.
 *
 * @example
 * ```toml
 * [http.middlewares.cors.headers]
 * accessControlAllowMethods = ["GET", "POST"]
 * accessControlAllowOriginList = ["https://app.example.com"]
 * accessControlMaxAge = 100
 * addVaryHeader = true
 * [http.middlewares.cors.headers.customResponseHeaders]
 * X-Powered-By = ""   # removed
 * ```
 */
export const headers: MiddlewareFactory = (options, context) => {
  const o = readOptions(context.name, options);
  o.unknownKeysCheck(OPTION_NAMES);

  const checkNames = (key: string, table: Record<string, string>) => {
    for (const name of Object.keys(table)) {
      if (!HEADER_NAME.test(name)) o.fail(`${key}.${name}`, "is not a valid header name");
    }
    return Object.entries(table);
  };
  const requestHeaders = checkNames(
    "customRequestHeaders",
    o.record("customRequestHeaders", { default: {} }),
  );
  const responseHeaders = checkNames(
    "customResponseHeaders",
    o.record("customResponseHeaders", { default: {} }),
  );

  // CORS
  const allowCredentials = o.bool("accessControlAllowCredentials", { default: false });
  const allowHeaders = o.stringList("accessControlAllowHeaders", { default: [] }).join(",");
  const allowMethods = o.stringList("accessControlAllowMethods", { default: [] }).join(",");
  const originList = o.stringList("accessControlAllowOriginList", { default: [] });
  const originRegexes = o.stringList("accessControlAllowOriginListRegex", { default: [] }).map(
    (src, i) => {
      try {
        return compileRe2(src);
      } catch (err) {
        return o.fail(
          `accessControlAllowOriginListRegex[${i}]`,
          `${JSON.stringify(src)}: ${(err as Error).message}`,
        );
      }
    },
  );
  const exposeHeaders = o.stringList("accessControlExposeHeaders", { default: [] }).join(",");
  const maxAge = o.int("accessControlMaxAge", { default: 0 });
  const addVary = o.bool("addVaryHeader", { default: false });
  const hasCors = allowCredentials || allowHeaders !== "" || allowMethods !== "" ||
    originList.length > 0 ||
    originRegexes.length > 0 || exposeHeaders !== "" || maxAge !== 0 || addVary;

  // Security
  const isDevelopment = o.bool("isDevelopment", { default: false });
  const allowedHosts = o.stringList("allowedHosts", { default: [] });
  const hostsProxyHeaders = o.stringList("hostsProxyHeaders", { default: [] });
  const sslProxyHeaders = Object.entries(o.record("sslProxyHeaders", { default: {} }));
  const stsSeconds = o.int("stsSeconds", { default: 0 });
  if (stsSeconds < 0) o.fail("stsSeconds", `must not be negative, found ${stsSeconds}`);
  let sts = `max-age=${stsSeconds}`;
  if (o.bool("stsIncludeSubdomains", { default: false })) sts += "; includeSubDomains";
  if (o.bool("stsPreload", { default: false })) sts += "; preload";
  const forceSTS = o.bool("forceSTSHeader", { default: false });
  const secure: [string, string][] = [];
  const frameOptions = o.string("customFrameOptionsValue", { default: "" }) ||
    (o.bool("frameDeny", { default: false }) ? "DENY" : "");
  if (frameOptions) secure.push(["x-frame-options", frameOptions]);
  if (o.bool("contentTypeNosniff", { default: false })) {
    secure.push(["x-content-type-options", "nosniff"]);
  }
  const xss = o.string("customBrowserXSSValue", { default: "" }) ||
    (o.bool("browserXssFilter", { default: false }) ? "1; mode=block" : "");
  if (xss) secure.push(["x-xss-protection", xss]);
  const csp = o.string("contentSecurityPolicy", { default: "" });
  if (csp) secure.push(["content-security-policy", csp]);
  const cspReport = o.string("contentSecurityPolicyReportOnly", { default: "" });
  if (cspReport) secure.push(["content-security-policy-report-only", cspReport]);
  const publicKey = o.string("publicKey", { default: "" });
  if (publicKey) secure.push(["public-key-pins", publicKey]);
  const referrer = o.string("referrerPolicy", { default: "" });
  if (referrer) secure.push(["referrer-policy", referrer]);
  const permissions = o.string("permissionsPolicy", { default: "" });
  if (permissions) secure.push(["permissions-policy", permissions]);
  const checkHosts = allowedHosts.length > 0 && !isDevelopment;
  const useSTS = stsSeconds > 0 && !isDevelopment;

  const originAllowed = (origin: string | null): string | undefined => {
    if (origin === null) return undefined;
    for (const item of originList) if (item === "*" || item === origin) return item;
    for (const re of originRegexes) if (re.test(origin)) return origin;
    return undefined;
  };

  const handler: PorticoMiddleware = async (c, next) => {
    const proxy = c.get("proxy");
    const req = proxy.request;
    const origin = proxy.headers.get("origin");
    const allowedOrigin = hasCors ? originAllowed(origin) : undefined;

    if (
      hasCors && req.method === "OPTIONS" && origin !== null &&
      proxy.headers.get("access-control-request-method")
    ) {
      const h = new Headers();
      if (allowedOrigin !== undefined) {
        h.set("access-control-allow-origin", allowedOrigin);
        if (allowCredentials) h.set("access-control-allow-credentials", "true");
        if (allowHeaders) h.set("access-control-allow-headers", allowHeaders);
        if (allowMethods) h.set("access-control-allow-methods", allowMethods);
        h.set("access-control-max-age", String(maxAge));
      }
      if (addVary) h.set("vary", "Origin");
      return new Response(null, { status: 200, headers: h });
    }

    if (checkHosts) {
      let host = proxy.host;
      for (const name of hostsProxyHeaders) {
        const v = proxy.headers.get(name);
        if (v) {
          host = v;
          break;
        }
      }
      if (!allowedHosts.includes(host)) {
        return new Response("Bad Host\n", {
          status: 500,
          headers: { "content-type": "text/plain; charset=utf-8" },
        });
      }
    }

    if (requestHeaders.length) {
      const h = writableRequestHeaders(proxy);
      for (const [name, value] of requestHeaders) {
        if (value === "") h.delete(name);
        else h.set(name, value);
      }
    }

    await next();
    if (c.res.status === 101) return;
    const res = writableResponse(c.res);
    const out = res.headers;

    for (const [name, value] of secure) out.set(name, value);
    if (useSTS) {
      let ssl = proxy.proto === "https";
      // Traefik rewrites X-Forwarded-* of untrusted clients before any middleware runs.
      if (!ssl) {
        ssl = sslProxyHeaders.some(([k, v]) =>
          (proxy.trustForwarded || !/^x-forwarded-/i.test(k)) && proxy.headers.get(k) === v
        );
      }
      if (ssl || forceSTS) out.set("strict-transport-security", sts);
    }

    for (const [name, value] of responseHeaders) {
      if (value === "") out.delete(name);
      else out.set(name, value);
    }

    if (hasCors) {
      if (allowedOrigin !== undefined) {
        out.set("access-control-allow-origin", allowedOrigin);
        if (allowCredentials) out.set("access-control-allow-credentials", "true");
        if (exposeHeaders) out.set("access-control-expose-headers", exposeHeaders);
      }
      if (addVary) {
        const vary = out.get("vary");
        if (!vary) out.set("vary", "Origin");
        else if (!vary.split(",").some((v) => v.trim().toLowerCase() === "origin")) {
          out.set("vary", `${vary},Origin`);
        }
      }
    }
    if (res !== c.res) replaceResponse(c, res);
  };
  // Without CORS, host checks or STS, the middleware only edits headers: it
  // has a byte-level twin. Its final say per response header is fixed.
  if (hasCors || checkHosts || useSTS) return handler;
  const responseFinal = new Map<string, string | null>();
  for (const [name, value] of secure) responseFinal.set(name, value);
  for (const [name, value] of responseHeaders) responseFinal.set(name.toLowerCase(), value === "" ? null : value);
  const requestLower = requestHeaders.map(([name, value]) => [name.toLowerCase(), value] as const);
  return withFastStep(handler, (request) => {
    for (const [name, value] of requestLower) {
      if (value === "") request.headers.delete(name);
      else request.headers.set(name, value);
    }
    if (responseFinal.size) {
      const edits = request.responseEdits ??= new ResponseEdits();
      for (const [name, value] of responseFinal) edits.offer(name, value);
    }
    return undefined;
  });
};

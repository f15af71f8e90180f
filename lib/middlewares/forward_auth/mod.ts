/**
 * `forwardAuth` (Traefik v3.7): asks an auth server about every request.
 * A 2xx answer lets the request through (copying `authResponseHeaders`
 * into it and `addAuthCookiesToResponse` into the answer); any other
 * answer, redirects included, goes back to the client as it came, with a
 * relative Location made absolute unless `preserveLocationHeader`; a 401
 * becomes a redirect to `authSigninURL` when one is set. The auth request
 * is a GET (the client's method with `preserveRequestMethod`) and carries
 * the body with `forwardBody` (at most `maxBodySize` bytes, else 401). The
 * auth server's body is read whole (at most `maxResponseBodySize`, else
 * 401). An auth server that cannot be reached gives 500.
 *
 * The auth request uses `node:http(s)` rather than `fetch`: it must send
 * the Host of `address`, never follow redirects, and honour
 * `tls.insecureSkipVerify`, which Deno's fetch client cannot.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import http from "node:http";
import https from "node:https";
import { compileRe2 } from "../../rules/re2.ts";
import type { ProxyRequest } from "../../services/types.ts";
import { readLimited } from "../shared/read_limited.ts";
import { type OptionReader, readOptions } from "../options.ts";
import { type MiddlewareFactory, writableRequestHeaders, writableResponse } from "../types.ts";
import { authRequestHeaders, canonicalHeaderKey } from "./auth_request.ts";
import { mergeAuthCookies } from "./cookies.ts";

/** Not copied from a refusing auth answer to the client (oxy's list, as Traefik uses it). */
const HOP_HEADERS = new Set([
  "connection",
  "keep-alive",
  "te",
  "trailers",
  "transfer-encoding",
  "upgrade",
  "content-length",
]);

/** How long the auth server may take, as Traefik's auth client allows. */
const AUTH_TIMEOUT_MS = 30_000;

/** Methods whose body cannot ride on a Web Request. */
const DETACHED = new Set(["GET", "HEAD"]);

/** What the auth server said, body read. */
interface AuthAnswer {
  status: number;
  /** Flat name, value list as received. */
  rawHeaders: string[];
  headers: http.IncomingHttpHeaders;
  body: Uint8Array;
}

class BodyTooLarge extends Error {}

/**
 * Builds a `forwardAuth` middleware.
 *
 * @example
 * ```toml
 * [http.middlewares.sso.forwardAuth]
 * address = "https://auth.internal/verify"
 * trustForwardHeader = true
 * authResponseHeaders = ["X-Auth-User"]
 * addAuthCookiesToResponse = ["session"]
 * maxResponseBodySize = 65536
 * [http.middlewares.sso.forwardAuth.tls]
 * ca = "/etc/ssl/auth-ca.pem"
 * ```
 */
export const forwardAuth: MiddlewareFactory = (options, context) => {
  const o = readOptions(context.name, options);
  o.unknownKeysCheck([
    "address",
    "trustForwardHeader",
    "authResponseHeaders",
    "authResponseHeadersRegex",
    "authRequestHeaders",
    "addAuthCookiesToResponse",
    "tls",
    "maxResponseBodySize",
    "forwardBody",
    "maxBodySize",
    "preserveLocationHeader",
    "preserveRequestMethod",
    "authSigninURL",
    "headerField",
  ]);
  // Traefik takes the access log's user from this auth-response header, on any answer.
  const userHeader = o.string("headerField", { default: "" }).toLowerCase();
  const addressText = o.string("address", { required: true });
  let address: URL;
  try {
    address = new URL(addressText);
  } catch {
    return o.fail(
      "address",
      `expected an http:// or https:// URL, found ${JSON.stringify(addressText)}`,
    );
  }
  if (address.protocol !== "http:" && address.protocol !== "https:") {
    o.fail("address", `expected an http:// or https:// URL, found ${JSON.stringify(addressText)}`);
  }
  const trustForwardHeader = o.bool("trustForwardHeader");
  const responseHeaders = o.stringList("authResponseHeaders", { default: [] }).map((h) =>
    h.toLowerCase()
  );
  const regexText = o.string("authResponseHeadersRegex", { default: "" });
  let responseRegex: RegExp | undefined;
  if (regexText !== "") {
    try {
      responseRegex = compileRe2(regexText);
    } catch (err) {
      o.fail("authResponseHeadersRegex", `invalid regexp: ${(err as Error).message}`);
    }
  }
  const requestHeaders = new Set(
    o.stringList("authRequestHeaders", { default: [] }).map((h) => h.toLowerCase()),
  );
  const cookieNames = new Set(o.stringList("addAuthCookiesToResponse", { default: [] }));
  // Negative means no limit, Traefik's default for both.
  const maxResponseBody = o.int("maxResponseBodySize", { default: -1 });
  const forwardBody = o.bool("forwardBody", { default: false });
  const maxBody = o.int("maxBodySize", { default: -1 });
  const preserveLocation = o.bool("preserveLocationHeader", { default: false });
  const preserveMethod = o.bool("preserveRequestMethod", { default: false });
  const signinUrl = o.string("authSigninURL", { default: "" });
  const secure = address.protocol === "https:";
  if (!secure && o.has("tls")) o.fail("tls", "only applies to an https:// address");
  const agent = secure
    ? new https.Agent({ keepAlive: true, ...readTls(o.object("tls")) })
    : new http.Agent({ keepAlive: true });
  context.onStop(() => agent.destroy());
  const port = address.port ? Number(address.port) : secure ? 443 : 80;
  const path = address.pathname + address.search;

  const ask = (
    method: string,
    headers: Record<string, string>,
    body: Uint8Array | undefined,
  ): Promise<AuthAnswer> =>
    new Promise((resolve, reject) => {
      headers.host = address.host;
      if (body && body.length > 0) headers["content-length"] = String(body.length);
      const req = (secure ? https : http).request({
        agent,
        hostname: address.hostname.replace(/^\[|\]$/g, ""),
        port,
        path,
        method,
        headers,
        setHost: false,
      });
      req.setTimeout(AUTH_TIMEOUT_MS, () => req.destroy(new Error("auth server timed out")));
      req.on("response", (res) => {
        const chunks: Uint8Array[] = [];
        let size = 0;
        res.on("data", (chunk: Uint8Array) => {
          size += chunk.length;
          if (maxResponseBody >= 0 && size > maxResponseBody) {
            res.destroy();
            reject(new BodyTooLarge());
            return;
          }
          chunks.push(chunk);
        });
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 500,
            rawHeaders: res.rawHeaders,
            headers: res.headers,
            body: Buffer.concat(chunks),
          }));
        res.on("error", reject);
      });
      req.on("error", reject);
      req.end(body && body.length > 0 ? body : undefined);
    });

  return async (c, next) => {
    const proxy = c.get("proxy");
    let body: Uint8Array | undefined;
    if (forwardBody) {
      const read = await takeBody(proxy, maxBody);
      // Traefik answers these with a bare status and no body.
      if (read === "too large") return new Response(null, { status: 401 });
      if (read === "error") return new Response(null, { status: 500 });
      body = read;
    }
    let answer: AuthAnswer;
    try {
      answer = await ask(
        preserveMethod ? proxy.request.method : "GET",
        authRequestHeaders(proxy, { trustForwardHeader, authRequestHeaders: requestHeaders }),
        body,
      );
    } catch (err) {
      return new Response(null, { status: err instanceof BodyTooLarge ? 401 : 500 });
    }
    if (userHeader !== "") {
      const named = valuesOf(answer.rawHeaders, userHeader);
      if (named.length > 0) proxy.user = named[0];
    }
    const status = answer.status;
    if (signinUrl !== "" && status === 401) return redirect(signinUrl, proxy);
    if (status < 200 || status >= 300) return denied(answer);

    if (responseHeaders.length > 0 || responseRegex) {
      const forwarded = writableRequestHeaders(proxy);
      for (const name of responseHeaders) {
        forwarded.delete(name);
        for (const value of valuesOf(answer.rawHeaders, name)) forwarded.append(name, value);
      }
      if (responseRegex) {
        for (const name of [...forwarded.keys()]) {
          if (responseRegex.test(canonicalHeaderKey(name))) forwarded.delete(name);
        }
        for (let i = 0; i < answer.rawHeaders.length; i += 2) {
          const name = answer.rawHeaders[i].toLowerCase();
          if (responseRegex.test(canonicalHeaderKey(name))) {
            forwarded.append(name, answer.rawHeaders[i + 1]);
          }
        }
      }
    }
    const authCookies = answer.headers["set-cookie"] ?? [];
    await next();
    // Traefik rewrites the answer's cookies only when the auth server set some.
    if (authCookies.length > 0 && c.res.status !== 101) {
      const out = writableResponse(c.res);
      const merged = mergeAuthCookies(out.headers.getSetCookie(), authCookies, cookieNames);
      out.headers.delete("set-cookie");
      for (const cookie of merged) out.headers.append("set-cookie", cookie);
      c.res = out;
    }
  };

  function denied(answer: AuthAnswer): Response {
    const headers = new Headers();
    for (let i = 0; i < answer.rawHeaders.length; i += 2) {
      const name = answer.rawHeaders[i].toLowerCase();
      if (HOP_HEADERS.has(name)) continue;
      headers.append(name, answer.rawHeaders[i + 1]);
    }
    const location = headers.get("location");
    if (location) {
      try {
        // Like Go's Response.Location(): relative to the auth request's URL.
        const resolved = preserveLocation ? location : new URL(location, address).href;
        if (preserveLocation) new URL(location, address);
        headers.set("location", resolved);
      } catch {
        // Traefik answers 500 when the auth server's Location does not parse.
        return new Response(null, { status: 500 });
      }
    }
    const status = answer.status;
    const noBody = status === 204 || status === 304 || status < 200;
    return new Response(noBody ? null : answer.body as Uint8Array<ArrayBuffer>, {
      status,
      headers,
    });
  }
};

/** Every value of `name` in a node `rawHeaders` list, in order. */
function valuesOf(rawHeaders: string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i].toLowerCase() === name) out.push(rawHeaders[i + 1]);
  }
  return out;
}

/**
 * Reads the request body for the auth server, at most `max` bytes
 * (negative: no limit), and puts it back so the service gets it too.
 */
async function takeBody(
  proxy: ProxyRequest,
  max: number,
): Promise<Uint8Array<ArrayBuffer> | undefined | "too large" | "error"> {
  const request = proxy.request;
  const source = request.body ?? proxy.detachedBody ?? null;
  if (!source) return undefined;
  let bytes: Uint8Array<ArrayBuffer> | undefined;
  try {
    // readLimited's 0 means "no limit"; a limit of 0 here means "no body at all".
    bytes = await readLimited(source, max < 0 ? 0 : max + 1);
  } catch {
    return "error";
  }
  if (!bytes || (max >= 0 && bytes.length > max)) return "too large";
  writableRequestHeaders(proxy);
  if (DETACHED.has(request.method)) {
    proxy.detachedBody = new Response(bytes.slice()).body;
  } else {
    proxy.request = new Request(request.url, {
      method: request.method,
      headers: request.headers,
      body: bytes.length > 0 ? bytes : null,
      signal: request.signal,
    });
  }
  return bytes;
}

/** Go's `http.Redirect(rw, req, url, 302)` for `authSigninURL`. */
function redirect(target: string, proxy: ProxyRequest): Response {
  let location = target;
  if (!/^[A-Za-z][A-Za-z0-9+.-]*:/.test(target) && !target.startsWith("//")) {
    // A relative target is resolved against the request's path, as Go does.
    const path = proxy.pathAndQuery.split("?")[0] || "/";
    const resolved = new URL(target, `http://x${path}`);
    location = resolved.pathname + resolved.search + resolved.hash;
  }
  const method = proxy.request.method;
  const html = method === "GET" || method === "HEAD";
  const escaped = location.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
  return new Response(method === "GET" ? `<a href="${escaped}">Found</a>.\n\n` : null, {
    status: 302,
    headers: html ? { location, "content-type": "text/html; charset=utf-8" } : { location },
  });
}

/** Reads `tls` (ca, cert, key, insecureSkipVerify, caOptional) into node:https agent options. */
function readTls(o: OptionReader | undefined): https.AgentOptions {
  if (!o) return {};
  o.unknownKeysCheck(["ca", "cert", "key", "insecureSkipVerify", "caOptional"]);
  // Deprecated in Traefik, which warns and ignores it: client certificates are a server-side choice.
  o.bool("caOptional");
  const file = (key: string): Buffer | undefined => {
    const value = o.string(key, { default: "" });
    if (value === "") return undefined;
    // Traefik accepts either a path or the PEM itself.
    if (value.includes("-----BEGIN")) return Buffer.from(value);
    try {
      return Buffer.from(Deno.readFileSync(value));
    } catch (err) {
      return o.fail(key, `cannot read ${JSON.stringify(value)}: ${(err as Error).message}`);
    }
  };
  const cert = file("cert");
  const key = file("key");
  if ((cert === undefined) !== (key === undefined)) {
    o.fail(cert ? "key" : "cert", "cert and key must be given together");
  }
  return {
    ca: file("ca"),
    cert,
    key,
    rejectUnauthorized: !o.bool("insecureSkipVerify", { default: false }),
  };
}

/**
 * `forwardAuth`: asks an auth server about every request. A 2xx answer lets
 * the request through (copying `authResponseHeaders` into it); any other
 * answer, redirects included, goes back to the client as it came.
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
import { Readable } from "node:stream";
import { compileRe2 } from "../../rules/re2.ts";
import { type OptionReader, readOptions } from "../options.ts";
import { type MiddlewareFactory, writableRequestHeaders, writableResponse } from "../types.ts";
import { plainResponse } from "../access_common.ts";
import { authRequestHeaders, canonicalHeaderKey } from "./auth_request.ts";

const HOP_BY_HOP_RESPONSE = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

/** How long the auth server may take, as Traefik's auth client allows. */
const AUTH_TIMEOUT_MS = 30_000;

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
  ]);
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
  const trustForwardHeader = o.bool("trustForwardHeader", { default: false });
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
  const secure = address.protocol === "https:";
  const agent = secure
    ? new https.Agent({ keepAlive: true, ...readTls(o.object("tls")) })
    : new http.Agent({ keepAlive: true });
  if (!secure && o.has("tls")) o.fail("tls", "only applies to an https:// address");
  context.onStop(() => agent.destroy());
  const port = address.port ? Number(address.port) : secure ? 443 : 80;
  const path = address.pathname + address.search;

  const ask = (headers: Record<string, string>): Promise<http.IncomingMessage> =>
    new Promise((resolve, reject) => {
      headers.host = address.host;
      const req = (secure ? https : http).request({
        agent,
        hostname: address.hostname.replace(/^\[|\]$/g, ""),
        port,
        path,
        method: "GET",
        headers,
        setHost: false,
      });
      req.setTimeout(AUTH_TIMEOUT_MS, () => req.destroy(new Error("auth server timed out")));
      req.on("response", resolve);
      req.on("error", reject);
      req.end();
    });

  return async (c, next) => {
    const proxy = c.get("proxy");
    let res: http.IncomingMessage;
    try {
      res = await ask(
        authRequestHeaders(proxy, { trustForwardHeader, authRequestHeaders: requestHeaders }),
      );
    } catch {
      // Traefik answers 500 when the auth server cannot be asked.
      return plainResponse(500);
    }
    const status = res.statusCode ?? 500;
    if (status < 200 || status >= 300) return denied(res, status);
    res.resume(); // the body of an accepting answer is not used

    if (responseHeaders.length > 0 || responseRegex) {
      const forwarded = writableRequestHeaders(proxy);
      for (const name of responseHeaders) {
        forwarded.delete(name);
        const value = res.headers[name];
        if (value !== undefined) appendAll(forwarded, name, value);
      }
      if (responseRegex) {
        for (const name of [...forwarded.keys()]) {
          if (responseRegex.test(canonicalHeaderKey(name))) forwarded.delete(name);
        }
        for (const [name, value] of Object.entries(res.headers)) {
          if (value !== undefined && responseRegex.test(canonicalHeaderKey(name))) {
            appendAll(forwarded, name, value);
          }
        }
      }
    }
    const cookies = cookieNames.size > 0
      ? (res.headers["set-cookie"] ?? []).filter((cookie) =>
        cookieNames.has(cookie.slice(0, cookie.indexOf("=")).trim())
      )
      : [];
    await next();
    if (cookies.length > 0 && c.res.status !== 101) {
      const out = writableResponse(c.res);
      for (const cookie of cookies) out.headers.append("set-cookie", cookie);
      c.res = out;
    }
  };

  function denied(res: http.IncomingMessage, status: number): Response {
    const headers = new Headers();
    for (let i = 0; i < res.rawHeaders.length; i += 2) {
      const name = res.rawHeaders[i].toLowerCase();
      if (HOP_BY_HOP_RESPONSE.has(name)) continue;
      headers.append(name, res.rawHeaders[i + 1]);
    }
    // Like Go's Response.Location(): a relative Location is made absolute
    // against the auth server's address.
    const location = headers.get("location");
    if (location) {
      try {
        headers.set("location", new URL(location, address).href);
      } catch { /* leave an unparsable Location as it came */ }
    }
    const noBody = status === 204 || status === 304 || status < 200;
    if (noBody) res.resume();
    const body = noBody ? null : (Readable.toWeb(res) as unknown as ReadableStream<Uint8Array>);
    return new Response(body, { status, headers });
  }
};

function appendAll(headers: Headers, name: string, value: string | string[]): void {
  for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
}

/** Reads `tls` (ca, cert, key, insecureSkipVerify) into node:https agent options. */
function readTls(o: OptionReader | undefined): https.AgentOptions {
  if (!o) return {};
  o.unknownKeysCheck(["ca", "cert", "key", "insecureSkipVerify", "caOptional"]);
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


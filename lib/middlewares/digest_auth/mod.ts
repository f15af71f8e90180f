/**
 * `digestAuth`: HTTP Digest authentication (MD5, qop=auth) against
 * `user:realm:HA1` lines, as Traefik does it (go-http-auth), with
 * server-issued nonces whose counts must increase: a repeated count is a
 * replay (401), a lower one an out-of-order request (401 with stale=true).
 * The digest `uri` may also be an absolute URL or a path prefix of the
 * request's path, which go-http-auth accepts and some clients send.
 *
 * @module
 */

import { randomBytes } from "node:crypto";
import { constantTimeEqual } from "../../constant_time.ts";
import { Buffer } from "node:buffer";
import { readOptions } from "../options.ts";
import { type MiddlewareFactory, writableRequestHeaders } from "../types.ts";
import { readUserLines } from "../shared/users.ts";
import { expectedResponse, NonceTable, parseDigestHeader, uriMatches } from "./digest.ts";

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * Builds a `digestAuth` middleware.
 *
 * @example
 * ```toml
 * [http.middlewares.digest.digestAuth]
 * # htdigest: user:realm:MD5(user:realm:password)
 * users = ["test:traefik:a2688e031edb4be6a3797f3882655c05"]
 * headerField = "X-WebAuth-User"
 * ```
 */
export const digestAuth: MiddlewareFactory = (options, context) => {
  const o = readOptions(context.name, options);
  o.unknownKeysCheck(["users", "usersFile", "realm", "removeHeader", "headerField"]);
  const realm = o.string("realm", { default: "" }) || "traefik";
  if (realm.includes('"') || realm.includes("\\")) {
    o.fail("realm", `must not contain '"' or '\\', found ${JSON.stringify(realm)}`);
  }
  // Keyed by "user:realm": a line for another realm never matches this one.
  const secrets = new Map<string, string>();
  for (const line of readUserLines(o)) {
    const parts = line.text.split(":");
    if (parts.length !== 3 || parts[0] === "") {
      o.fail(
        line.where,
        `expected "user:realm:HA1" (as htdigest writes), found ${parts.length} field(s)`,
      );
    }
    if (!/^[0-9a-fA-F]{32}$/.test(parts[2])) {
      o.fail(
        line.where,
        `user ${JSON.stringify(parts[0])}: HA1 must be 32 hex digits (MD5 of user:realm:password)`,
      );
    }
    secrets.set(`${parts[0]}:${parts[1]}`, parts[2].toLowerCase());
  }
  const removeHeader = o.bool("removeHeader", { default: false });
  const headerField = o.string("headerField", { default: "" });
  if (headerField && !HEADER_NAME.test(headerField)) {
    o.fail("headerField", `expected an HTTP header name, found ${JSON.stringify(headerField)}`);
  }
  const opaque = randomBytes(16).toString("hex");
  const nonces = new NonceTable();

  const challenge = (stale: boolean) => {
    const nonce = randomBytes(16).toString("hex");
    nonces.issue(nonce, Date.now());
    // go-http-auth's challenge, quoting included (clients parse it by the quotes).
    const value = `Digest realm="${realm}", nonce="${nonce}", opaque="${opaque}", ${
      stale ? 'stale="true", ' : ""
    }algorithm="MD5", qop="auth"`;
    return new Response("401 Unauthorized\n", {
      status: 401,
      headers: { "www-authenticate": value, "content-type": "text/plain" },
    });
  };

  return async (c, next) => {
    const proxy = c.get("proxy");
    const f = parseDigestHeader(proxy.headers.get("authorization"));
    if (
      !f || f.realm !== realm || f.opaque !== opaque || f.qop !== "auth" || !f.nonce || !f.cnonce ||
      !f.response ||
      !/^[0-9a-fA-F]{8}$/.test(f.nc ?? "") ||
      (f.algorithm !== undefined && f.algorithm !== "MD5")
    ) return challenge(false);
    const ha1 = secrets.get(`${f.username}:${f.realm}`);
    if (ha1 === undefined) return challenge(false);
    // The digest covers the URI the client sent; it must be this request's.
    const url = proxy.request.url;
    const requestUri = url.slice(url.indexOf("/", url.indexOf("//") + 2));
    if (!uriMatches(f.uri, requestUri)) return challenge(false);
    const expected = Buffer.from(expectedResponse(ha1, proxy.request.method, f));
    const given = Buffer.from(f.response.toLowerCase());
    if (!constantTimeEqual(expected, given)) {
      return challenge(false);
    }
    // Only a correct answer consumes the nonce count, so guessing cannot burn it.
    const state = nonces.use(f.nonce, parseInt(f.nc, 16), Date.now());
    if (state !== "ok") return challenge(state === "stale");
    proxy.user = f.username;
    if (removeHeader || headerField) {
      const headers = writableRequestHeaders(proxy);
      if (removeHeader) headers.delete("authorization");
      if (headerField) headers.set(headerField, f.username);
    }
    await next();
  };
};

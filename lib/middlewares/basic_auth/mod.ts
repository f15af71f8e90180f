/**
 * `basicAuth`: HTTP Basic authentication against htpasswd lines, as
 * Traefik does it. Successful bcrypt checks are cached briefly (see
 * verify_cache.ts) so a logged-in client does not cost a bcrypt per request.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { readOptions } from "../options.ts";
import { type MiddlewareFactory, writableRequestHeaders } from "../types.ts";
import { isSlowHash, type PasswordCheck, passwordChecker } from "./htpasswd.ts";
import { readUserLines } from "./users.ts";
import { VerifyCache } from "./verify_cache.ts";

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

interface Account {
  hash: string;
  check: PasswordCheck;
}

/**
 * Builds a `basicAuth` middleware.
 *
 * @example
 * ```toml
 * [http.middlewares.auth.basicAuth]
 * users = ["alice:$2y$05$…", "bob:{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M="]
 * realm = "staff"
 * headerField = "X-WebAuth-User"
 * removeHeader = true
 * ```
 */
export const basicAuth: MiddlewareFactory = (options, context) => {
  const o = readOptions(context.name, options);
  o.unknownKeysCheck(["users", "usersFile", "realm", "removeHeader", "headerField"]);
  const accounts = new Map<string, Account>();
  for (const line of readUserLines(o)) {
    const colon = line.text.indexOf(":");
    if (colon <= 0 || line.text.indexOf(":", colon + 1) !== -1) {
      o.fail(
        line.where,
        `expected "user:hash", found a line with ${
          colon <= 0 ? "no user name" : "more than one ':'"
        }`,
      );
    }
    const user = line.text.slice(0, colon);
    const hash = line.text.slice(colon + 1);
    const check = passwordChecker(hash);
    if (typeof check === "string") o.fail(line.where, `user ${JSON.stringify(user)}: ${check}`);
    accounts.set(user, { hash, check: check as PasswordCheck });
  }
  const realm = o.string("realm", { default: "traefik" });
  if (realm.includes('"')) o.fail("realm", `must not contain '"', found ${JSON.stringify(realm)}`);
  const removeHeader = o.bool("removeHeader", { default: false });
  const headerField = o.string("headerField", { default: "" });
  if (headerField && !HEADER_NAME.test(headerField)) {
    o.fail("headerField", `expected an HTTP header name, found ${JSON.stringify(headerField)}`);
  }
  const cache = new VerifyCache();
  const challenge = `Basic realm="${realm}"`;

  const authenticate = async (authorization: string | null): Promise<string | undefined> => {
    if (
      !authorization || authorization.length < 6 ||
      authorization.slice(0, 6).toLowerCase() !== "basic "
    ) return;
    const decoded = Buffer.from(authorization.slice(6).trim(), "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon < 0) return;
    const user = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    const account = accounts.get(user);
    if (!account) return;
    if (!isSlowHash(account.hash)) return (await account.check(password)) ? user : undefined;
    const key = VerifyCache.key(user, password, account.hash);
    if (cache.has(key, Date.now())) return user;
    if (!(await account.check(password))) return;
    cache.add(key, Date.now());
    return user;
  };

  return async (c, next) => {
    const proxy = c.get("proxy");
    const user = await authenticate(proxy.headers.get("authorization"));
    if (user === undefined) {
      return new Response("401 Unauthorized\n", {
        status: 401,
        headers: { "www-authenticate": challenge, "content-type": "text/plain; charset=utf-8" },
      });
    }
    if (removeHeader || headerField) {
      const headers = writableRequestHeaders(proxy);
      if (removeHeader) headers.delete("authorization");
      if (headerField) headers.set(headerField, user);
    }
    await next();
  };
};

/**
 * `basicAuth`: HTTP Basic authentication against htpasswd lines, as
 * Traefik does it: `usersFile` then `users` (an inline user replaces the
 * file's), an entry that is no known hash loads but never matches, and
 * concurrent checks of the same credentials run once. Successful bcrypt
 * checks are cached briefly (see verify_cache.ts) so a logged-in client
 * does not cost a bcrypt per request.
 *
 * @module
 */

import { readOptions } from "../options.ts";
import { type MiddlewareFactory, writableRequestHeaders } from "../types.ts";
import { type Account, basicAuthenticator } from "./authenticate.ts";
import { isSlowHash, passwordChecker } from "./htpasswd.ts";
import { readUserLines } from "../shared/users.ts";

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

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
    // A later line for the same user wins: inline users come after the file's.
    accounts.set(user, { hash, check: passwordChecker(hash), slow: isSlowHash(hash) });
  }
  const realm = o.string("realm", { default: "" }) || "traefik";
  if (realm.includes('"')) o.fail("realm", `must not contain '"', found ${JSON.stringify(realm)}`);
  const removeHeader = o.bool("removeHeader", { default: false });
  const headerField = o.string("headerField", { default: "" });
  if (headerField && !HEADER_NAME.test(headerField)) {
    o.fail("headerField", `expected an HTTP header name, found ${JSON.stringify(headerField)}`);
  }
  const authenticate = basicAuthenticator(accounts);
  const challenge = `Basic realm="${realm}"`;

  return async (c, next) => {
    const proxy = c.get("proxy");
    const user = await authenticate(proxy.headers.get("authorization"));
    if (user === undefined) {
      // go-http-auth's answer: "401 Unauthorized\n" as text/plain.
      return new Response("401 Unauthorized\n", {
        status: 401,
        headers: { "www-authenticate": challenge, "content-type": "text/plain" },
      });
    }
    proxy.user = user;
    if (removeHeader || headerField) {
      const headers = writableRequestHeaders(proxy);
      // A client-sent header of that name is replaced, whatever its case.
      if (headerField) headers.set(headerField, user);
      if (removeHeader) headers.delete("authorization");
    }
    await next();
  };
};

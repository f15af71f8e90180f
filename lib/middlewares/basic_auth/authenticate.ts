/**
 * The per-request decision of `basicAuth`: who the `Authorization: Basic`
 * header names, and whether their password is right. A check of the same
 * credentials that is already running is joined, not repeated (Traefik's
 * singleflight); successful slow checks are remembered briefly (see
 * verify_cache.ts); an unknown user still costs one check against a real
 * hash, so a response time does not tell which user names exist.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type { PasswordCheck } from "./htpasswd.ts";
import { Singleflight } from "./singleflight.ts";
import { VerifyCache } from "./verify_cache.ts";

/** One configured user. */
export interface Account {
  hash: string;
  check: PasswordCheck;
  /** Worth caching successes for (bcrypt). */
  slow: boolean;
}

/** The user name of valid Basic credentials, or undefined. */
export type Authenticate = (authorization: string | null) => Promise<string | undefined>;

/**
 * Builds the authenticator over `accounts` (at least one).
 *
 * @example
 * ```ts
 * const authenticate = basicAuthenticator(accounts);
 * const user = await authenticate(request.headers.get("authorization"));
 * ```
 */
export function basicAuthenticator(
  accounts: ReadonlyMap<string, Account>,
  now: () => number = Date.now,
): Authenticate {
  const cache = new VerifyCache();
  const flight = new Singleflight<boolean>();
  const decoy = accounts.values().next().value!;

  return async (authorization) => {
    const credentials = parseBasic(authorization);
    if (!credentials) return undefined;
    const { user, password } = credentials;
    const account = accounts.get(user);
    const checked = account ?? decoy;
    const key = VerifyCache.key(user, password, checked.hash);
    if (account?.slow && cache.has(key, now())) return user;
    const ok = await flight.run(key, () => checked.check(password));
    if (!account || !ok) return undefined;
    if (account.slow) cache.add(key, now());
    return user;
  };
}

/** User and password of a `Basic` header, as Go's `Request.BasicAuth` reads it. */
export function parseBasic(
  authorization: string | null,
): { user: string; password: string } | undefined {
  if (
    !authorization || authorization.length < 6 ||
    authorization.slice(0, 6).toLowerCase() !== "basic "
  ) return undefined;
  const encoded = authorization.slice(6);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(encoded) || encoded.length % 4 !== 0) return undefined;
  const decoded = Buffer.from(encoded, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/**
 * htpasswd hash checking for `basicAuth`: bcrypt (`$2a$`, `$2b$`, `$2x$`,
 * `$2y$`), Apache MD5 (`$apr1$`) and MD5-crypt (`$1$`), and `{SHA}`
 * (base64 SHA-1), the formats Traefik's htpasswd support accepts. Formats
 * are recognised when the file is loaded. Like Traefik, any other entry (a
 * plain-text password, a truncated hash) loads but never matches, so a
 * request using it gets 401; {@link describeHash} says which kind it is.
 *
 * @module
 */

import type BcryptJs from "bcryptjs";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { constantTimeEqual } from "../../constant_time.ts";

/** bcryptjs costs about 11 MB at import; loaded when a bcrypt hash is first checked. */
let bcryptModule: Promise<typeof BcryptJs> | undefined;
const loadBcrypt = () => (bcryptModule ??= import("bcryptjs").then((m) => m.default));

type ApacheMd5 = (password: string, salt: string) => string;

/**
 * apache-md5 is the only CommonJS package an instance would otherwise load
 * at start, which sets up Deno's CommonJS loader (about 2 MB of RSS, issue
 * 9); loaded when an MD5 hash is first checked.
 */
let apacheMd5Module: Promise<ApacheMd5> | undefined;
// Its .d.ts claims an ES default export, which Deno's interop resolves to
// the module object, so the call type is lost.
const loadApacheMd5 =
  () => (apacheMd5Module ??= import("apache-md5").then((m) => m.default as unknown as ApacheMd5));

/** Checks a password against one stored hash. */
export type PasswordCheck = (password: string) => Promise<boolean>;

const BCRYPT = /^\$2[abxy]\$\d{2}\$[./A-Za-z0-9]{53}$/;
const MD5_CRYPT = /^\$(apr1|1)\$[^$]{0,8}\$[./A-Za-z0-9]{22}$/;
const SHA = /^\{SHA\}[A-Za-z0-9+/]{27}=$/;

/** Whether the hash is of a kind that is slow to check (and so worth caching). */
export function isSlowHash(hash: string): boolean {
  return hash.startsWith("$2");
}

/** The kind of an htpasswd entry: a hash Portico can check, or "unusable" (never matches). */
export function describeHash(hash: string): "bcrypt" | "md5" | "sha" | "unusable" {
  if (BCRYPT.test(hash)) return "bcrypt";
  if (MD5_CRYPT.test(hash)) return "md5";
  if (SHA.test(hash)) return "sha";
  return "unusable";
}

const neverMatches: PasswordCheck = () => Promise.resolve(false);

/**
 * A checker for `hash`. An entry in no known format (a plain-text password,
 * as Traefik's go-http-auth reads it, is an MD5-crypt string that cannot
 * match) gives a checker that always says no.
 *
 * @example
 * ```ts
 * const check = passwordChecker("{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=");
 * await check("test"); // true
 * ```
 */
export function passwordChecker(hash: string): PasswordCheck {
  if (BCRYPT.test(hash)) {
    // Go treats $2x$ as $2a$; bcryptjs knows only a, b and y.
    const stored = hash.startsWith("$2x$") ? "$2a$" + hash.slice(4) : hash;
    return async (password) => (await loadBcrypt()).compare(password, stored);
  }
  if (MD5_CRYPT.test(hash)) {
    const expected = Buffer.from(hash);
    return async (password) =>
      constantTimeEqual(Buffer.from((await loadApacheMd5())(password, hash)), expected);
  }
  if (SHA.test(hash)) {
    const expected = Buffer.from(hash.slice(5), "base64");
    return (password) =>
      Promise.resolve(constantTimeEqual(createHash("sha1").update(password).digest(), expected));
  }
  return neverMatches;
}


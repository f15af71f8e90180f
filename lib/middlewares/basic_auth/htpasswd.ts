/**
 * htpasswd hash checking for `basicAuth`: bcrypt (`$2a$`, `$2b$`, `$2y$`),
 * Apache MD5 (`$apr1$`) and MD5-crypt (`$1$`), and `{SHA}` (base64 SHA-1),
 * the formats Traefik's htpasswd support accepts. Formats are recognised
 * when the file is loaded, so an unsupported hash fails the build instead
 * of silently rejecting every request.
 *
 * @module
 */

import type BcryptJs from "bcryptjs";
import { Buffer } from "node:buffer";
import { createHash, timingSafeEqual } from "node:crypto";

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

const BCRYPT = /^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$/;
const MD5_CRYPT = /^\$(apr1|1)\$[^$]{0,8}\$[./A-Za-z0-9]{22}$/;
const SHA = /^\{SHA\}[A-Za-z0-9+/]{27}=$/;

/** Whether the hash is of a kind that is slow to check (and so worth caching). */
export function isSlowHash(hash: string): boolean {
  return hash.startsWith("$2");
}

/**
 * A checker for `hash`, or an error message saying which formats are valid.
 *
 * @example
 * ```ts
 * const check = passwordChecker("{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=");
 * if (typeof check !== "string") await check("test"); // true
 * ```
 */
export function passwordChecker(hash: string): PasswordCheck | string {
  if (BCRYPT.test(hash)) return async (password) => (await loadBcrypt()).compare(password, hash);
  if (MD5_CRYPT.test(hash)) {
    const expected = Buffer.from(hash);
    return async (password) =>
      sameBytes(Buffer.from((await loadApacheMd5())(password, hash)), expected);
  }
  if (SHA.test(hash)) {
    const expected = Buffer.from(hash.slice(5), "base64");
    return (password) =>
      Promise.resolve(sameBytes(createHash("sha1").update(password).digest(), expected));
  }
  return "unsupported password hash; use bcrypt ($2y$…), apr1 MD5 ($apr1$…) or {SHA}, e.g. from `htpasswd -nB user`";
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

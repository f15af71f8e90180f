/**
 * `addAuthCookiesToResponse`, as Traefik applies it to the service's answer:
 * the service's own cookies with a listed name are dropped, the others
 * kept in order, then the auth server's cookies with a listed name are
 * added. Pure.
 *
 * @module
 */

/** The name of a Set-Cookie value: what comes before the first `=`, trimmed. */
export function cookieName(setCookie: string): string {
  const eq = setCookie.indexOf("=");
  return (eq === -1 ? "" : setCookie.slice(0, eq)).trim();
}

/**
 * The Set-Cookie values the client gets.
 *
 * @example
 * ```ts
 * mergeAuthCookies(["a=backend", "b=backend"], ["a=auth", "c=auth"], new Set(["a"]));
 * // ["b=backend", "a=auth"]
 * ```
 */
export function mergeAuthCookies(
  fromService: readonly string[],
  fromAuth: readonly string[],
  names: ReadonlySet<string>,
): string[] {
  const out = fromService.filter((c) => cookieName(c) !== "" && !names.has(cookieName(c)));
  for (const cookie of fromAuth) if (names.has(cookieName(cookie))) out.push(cookie);
  return out;
}

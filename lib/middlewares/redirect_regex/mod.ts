/**
 * The `redirectRegex` middleware: redirects when an RE2 expression matches
 * the request URL, to the URL its Go-style replacement builds.
 *
 * @module
 */

import { readOptions } from "../options.ts";
import { compileGoReplacement, goReplaceAll } from "../shared/go_replace.ts";
import { utf8Bytes } from "../shared/go_path.ts";
import type { MiddlewareFactory } from "../types.ts";
import { ABSOLUTE_TARGET, redirectTo, requestUri } from "../shared/redirect_core.ts";
import { parseGoUrl } from "../shared/go_url.ts";

/**
 * Builds `redirectRegex` from `{ regex, replacement, permanent? }`. The
 * expression sees `scheme://host[:port]/path?query` as Traefik builds it:
 * the scheme is `https` on TLS connections, else the one of an
 * absolute-form target, else `http` (`X-Forwarded-Proto` does not count);
 * `$1`, `${1}`, `${name}` are groups. A replacement equal to the URL lets
 * the request through. A result Go's URL parser refuses (a bad `%` escape,
 * a control character, a bad port) gets 502, as in Traefik; otherwise
 * `Location` is that URL as Go writes it back. Unlike Traefik, an empty
 * `regex` or `replacement` is refused: it would redirect every request to
 * an empty `Location`.
 *
 * @example
 * ```toml
 * [http.middlewares.www.redirectRegex]
 * regex = "^https?://www\\.(.+)"
 * replacement = "https://${1}"
 * permanent = true
 * ```
 */
export const redirectRegex: MiddlewareFactory = (options, context) => {
  const o = readOptions(context.name, options);
  o.unknownKeysCheck(["regex", "replacement", "permanent"]);
  const source = o.string("regex", { required: true });
  const replacement = utf8Bytes(o.string("replacement", { required: true }));
  const permanent = o.bool("permanent", { default: false });
  const { re, scan, template } = compileGoReplacement(
    source,
    replacement,
    (message) => o.fail("regex", message),
  );

  return async (c, next) => {
    const proxy = c.get("proxy");
    const oldUrl = requestUrl(proxy.proto === "https", proxy.host, requestUri(proxy));
    if (!re.test(oldUrl)) return await next();
    const newUrl = goReplaceAll(scan, oldUrl, template);
    // Go parses before comparing: an unparseable result is 502 even when unchanged.
    if (newUrl === oldUrl && parseGoUrl(newUrl)) return await next();
    return redirectTo(newUrl, permanent, proxy.request.method);
  };
};

/** Traefik's `rawURL`: the URL redirectRegex matches. */
function requestUrl(tls: boolean, requestHost: string, uri: string): string {
  let scheme = "http", host = requestHost, port = "";
  const m = ABSOLUTE_TARGET.exec(uri);
  if (m) {
    scheme = m[1];
    if (m[2]) host = m[2];
    if (m[3]) port = m[3];
    uri = m[4];
  }
  if (tls) scheme = "https";
  return `${scheme}://${host}${port}${uri}`;
}

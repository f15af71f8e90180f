/**
 * The `redirectRegex` middleware: redirects when an RE2 expression matches
 * the request URL, to the URL its Go-style replacement builds.
 *
 * @module
 */

import { redirectStatus } from "../../server/internal.ts";
import { readOptions } from "../options.ts";
import { compileGoReplacement, goReplaceAll } from "../replace_path_regex/go_replace.ts";
import { STATUS_TEXT } from "../redirect_scheme/mod.ts";
import { errorResponse } from "../../services/types.ts";
import type { MiddlewareFactory } from "../types.ts";

/**
 * Builds `redirectRegex` from `{ regex, replacement, permanent? }`. The
 * expression sees `scheme://host[:port]/path?query` (scheme from the
 * connection, as Traefik's redirectRegex does); `$1`, `${1}`, `${name}` are
 * groups. A replacement equal to the URL lets the request through.
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
  const replacement = o.string("replacement", { required: true });
  const permanent = o.bool("permanent", { default: false });
  const { re, scan, template } = compileGoReplacement(
    source,
    replacement,
    (message) => o.fail("regex", message),
  );

  return async (c, next) => {
    const proxy = c.get("proxy");
    const oldUrl = `${proxy.proto}://${proxy.host}${proxy.pathAndQuery}`;
    if (!re.test(oldUrl)) return await next();
    const newUrl = goReplaceAll(scan, oldUrl, template);
    if (newUrl === oldUrl) return await next();
    const status = redirectStatus(permanent, proxy.request.method);
    try {
      return new Response(STATUS_TEXT[status], {
        status,
        headers: { location: newUrl, "content-type": "text/plain; charset=utf-8" },
      });
    } catch {
      // The replacement produced bytes a header cannot carry (e.g. a newline).
      return errorResponse(500);
    }
  };
};

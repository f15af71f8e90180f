/**
 * The `errors` middleware: when the response status is in the configured
 * ranges, the body comes from an error-page service instead, while the
 * client still gets the original status (Traefik's custom error pages).
 *
 * @module
 */

import { UpstreamError } from "../../proxy/upstream.ts";
import { errorResponse, type ProxyRequest } from "../../services/types.ts";
import { replaceResponse } from "../shared/replace_response.ts";
import { readOptions } from "../options.ts";
import type { MiddlewareFactory } from "../types.ts";
import { inRanges, parseStatusRanges, type StatusRange } from "../shared/status_ranges.ts";

/** Go's `url.QueryEscape`: everything but letters, digits and `-_.~` is escaped; space is `+`. */
export function goQueryEscape(s: string): string {
  return encodeURIComponent(s).replace(
    /[!'()*]/g,
    (ch) => "%" + ch.charCodeAt(0).toString(16).toUpperCase(),
  )
    .replace(/%20/g, "+");
}

/**
 * Builds `errors` from `{ status, service, query?, statusRewrites?,
 * errorRequestHeaders? }`. `query` (default "/") may hold `{status}` (the
 * status sent to the client), `{originalStatus}` and `{url}` (the request's
 * URL, `scheme://host/path?query`, query-escaped). The page is fetched with
 * GET and the request's headers (only those in `errorRequestHeaders` when
 * it is set, none for an empty list); its body and headers go to the client
 * with the original status (or its rewrite). An upstream that could not be
 * reached counts as its 502/504.
 *
 * @example
 * ```toml
 * [http.middlewares.pages.errors]
 * status = ["500-599", "404"]
 * service = "error-pages"
 * query = "/{status}.html"
 * ```
 */
export const errors: MiddlewareFactory = (options, context) => {
  const o = readOptions(context.name, options);
  o.unknownKeysCheck(["status", "service", "query", "statusRewrites", "errorRequestHeaders"]);
  const statusBlocks = o.stringList("status", { required: true });
  if (statusBlocks.length === 0) {
    o.fail("status", "expected at least one status or range, found an empty list");
  }
  const ranges = parseStatusRanges(statusBlocks, (i, msg) => o.fail(`status[${i}]`, msg));
  const serviceName = o.string("service", { required: true });
  const query = o.string("query", { default: "/" }) || "/";
  const rewrites: { range: StatusRange; to: number }[] = [];
  for (const [from, to] of Object.entries(o.record("statusRewrites", { default: {} }))) {
    const [range] = parseStatusRanges([from], (_i, msg) => o.fail(`statusRewrites.${from}`, msg));
    const code = Number(to);
    if (!/^\d{3}$/.test(to) || code < 100 || code > 599) {
      o.fail(
        `statusRewrites.${from}`,
        `expected a status from 100 to 599, found ${JSON.stringify(to)}`,
      );
    }
    rewrites.push({ range, to: code });
  }
  // Absent: every header goes to the page service; an empty list: none.
  const pageHeaderNames = o.has("errorRequestHeaders")
    ? o.stringList("errorRequestHeaders", { default: [] }).map((h) => h.trim().toLowerCase())
    : undefined;
  let service: ReturnType<typeof context.service> | undefined;
  try {
    service = context.service(serviceName);
  } catch (err) {
    o.fail("service", (err as Error).message.replace(/^middleware "[^"]*": /, ""));
  }
  const errorService = service!;

  return async (c, next) => {
    const proxy = c.get("proxy");
    const requestUrl = `${proxy.proto}://${proxy.host}${proxy.pathAndQuery}`;
    let status: number;
    try {
      await next();
      status = c.res.status;
      if (status === 101 || !inRanges(ranges, status)) return;
      await c.res.body?.cancel().catch(() => {});
    } catch (err) {
      if (!(err instanceof UpstreamError) || !inRanges(ranges, err.status)) throw err;
      status = err.status;
    }
    const sent = rewrites.find((r) => status >= r.range[0] && status <= r.range[1])?.to ?? status;
    const path = query
      .replaceAll("{status}", String(sent))
      .replaceAll("{originalStatus}", String(status))
      .replaceAll("{url}", goQueryEscape(requestUrl));
    const pathAndQuery = path.startsWith("/") ? path : "/" + path;
    const original = proxy.request;
    const base = original.url.slice(0, original.url.indexOf("/", original.url.indexOf("//") + 2));
    const headers = pageRequestHeaders(proxy.headers, pageHeaderNames);
    const pageRequest: ProxyRequest = {
      ...proxy,
      request: new Request(base + pathAndQuery, {
        method: "GET",
        headers,
        signal: original.signal,
      }),
      pathAndQuery,
      headers,
      responseHeaders: undefined,
    };
    let page: Response;
    try {
      page = await errorService.serve(pageRequest);
    } catch {
      page = errorResponse(sent);
    }
    const out = new Headers(page.headers);
    replaceResponse(c, new Response(page.body, { status: sent, headers: out }));
  };
};

/** The headers the error page request carries: all the request's, or only the listed ones. */
function pageRequestHeaders(from: Headers, names: string[] | undefined): Headers {
  let headers: Headers;
  if (names === undefined) {
    headers = new Headers(from);
  } else {
    headers = new Headers();
    for (const name of names) {
      const value = from.get(name);
      if (value !== null) headers.set(name, value);
    }
    // The page request goes to the same host as the request, as Traefik's does.
    const host = from.get("host");
    if (host !== null) headers.set("host", host);
  }
  headers.delete("content-length");
  headers.delete("transfer-encoding");
  return headers;
}

/**
 * The `buffering` middleware: reads the whole request body before
 * forwarding (so it can be limited and replayed), optionally limits the
 * response body, and retries by `retryExpression`.
 *
 * @module
 */

import { UpstreamError } from "../../proxy/forward.ts";
import { errorResponse } from "../../services/types.ts";
import { clearResponse, replaceResponse } from "../headers/replace_response.ts";
import { readOptions } from "../options.ts";
import { type MiddlewareFactory, writableRequestHeaders } from "../types.ts";
import { compileRetryExpression } from "./retry_expression.ts";

/** oxy's cap on attempts, whatever the expression says. */
const MAX_ATTEMPTS = 10;

/** Reads `body` whole; undefined when it exceeds `max` bytes (0 = no limit). */
async function readLimited(
  body: ReadableStream<Uint8Array>,
  max: number,
): Promise<Uint8Array<ArrayBuffer> | undefined> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = body.getReader();
  while (true) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (max > 0 && total > max) {
      await reader.cancel().catch(() => {});
      return undefined;
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * Builds `buffering` from `{ maxRequestBodyBytes?, memRequestBodyBytes?,
 * maxResponseBodyBytes?, memResponseBodyBytes?, retryExpression? }`.
 * A request body over `maxRequestBodyBytes` gets 413; a response body over
 * `maxResponseBodyBytes` gets 500 (0 = no limit, the default). Bodies are
 * kept in memory: the `mem*` thresholds are validated but nothing spills
 * to disk. The response is buffered only when it has a limit.
 *
 * @example
 * ```toml
 * [http.middlewares.limit.buffering]
 * maxRequestBodyBytes = 2000000
 * retryExpression = "IsNetworkError() && Attempts() < 2"
 * ```
 */
export const buffering: MiddlewareFactory = (options, context) => {
  const o = readOptions(context.name, options);
  o.unknownKeysCheck([
    "maxRequestBodyBytes",
    "memRequestBodyBytes",
    "maxResponseBodyBytes",
    "memResponseBodyBytes",
    "retryExpression",
  ]);
  const nonNegative = (key: string, fallback: number) => {
    const v = o.int(key, { default: fallback });
    if (v < 0) o.fail(key, `must be 0 or more bytes, found ${v}`);
    return v;
  };
  const maxRequest = nonNegative("maxRequestBodyBytes", 0);
  nonNegative("memRequestBodyBytes", 1048576);
  const maxResponse = nonNegative("maxResponseBodyBytes", 0);
  nonNegative("memResponseBodyBytes", 1048576);
  const expression = o.string("retryExpression", { default: "" });
  let shouldRetry: ReturnType<typeof compileRetryExpression> | undefined;
  if (expression.trim() !== "") {
    try {
      shouldRetry = compileRetryExpression(expression);
    } catch (err) {
      o.fail("retryExpression", `${JSON.stringify(expression)}: ${(err as Error).message}`);
    }
  }

  return async (c, next) => {
    const proxy = c.get("proxy");
    const original = proxy.request;
    const declared = Number(proxy.headers.get("content-length") ?? "0");
    if (maxRequest > 0 && declared > maxRequest) return errorResponse(413);
    let body: Uint8Array<ArrayBuffer> | undefined;
    if (original.body) {
      body = await readLimited(original.body, maxRequest);
      if (!body) return errorResponse(413);
    }
    const headers = writableRequestHeaders(proxy);
    const withBody = body !== undefined && original.method !== "GET" && original.method !== "HEAD";
    if (body !== undefined) {
      headers.delete("transfer-encoding");
      headers.set("content-length", String(withBody ? body.length : 0));
    }

    for (let attempt = 1;; attempt++) {
      proxy.request = new Request(original.url, {
        method: original.method,
        headers: original.headers,
        body: withBody ? body : null,
        signal: original.signal,
      });
      let status: number;
      let networkError = false;
      let failure: unknown;
      if (attempt > 1) clearResponse(c);
      try {
        await next();
        status = c.res.status;
      } catch (err) {
        if (!(err instanceof UpstreamError)) throw err;
        failure = err;
        status = err.status;
        networkError = true;
      }
      const retry = shouldRetry !== undefined && attempt < MAX_ATTEMPTS &&
        shouldRetry({ attempts: attempt, responseCode: status, networkError });
      if (retry) {
        if (!failure) await c.res.body?.cancel().catch(() => {});
        continue;
      }
      if (failure) throw failure;
      break;
    }

    const res = c.res;
    if (maxResponse > 0 && res.status !== 101 && res.body) {
      const length = Number(res.headers.get("content-length") ?? "-1");
      const bytes = length > maxResponse ? undefined : await readLimited(res.body, maxResponse);
      if (!bytes) {
        await res.body.cancel().catch(() => {});
        replaceResponse(c, errorResponse(500));
        return;
      }
      const out = new Headers(res.headers);
      out.delete("transfer-encoding");
      out.set("content-length", String(bytes.length));
      replaceResponse(
        c,
        new Response(bytes, { status: res.status, statusText: res.statusText, headers: out }),
      );
    }
  };
};

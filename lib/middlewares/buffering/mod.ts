/**
 * The `buffering` middleware (Traefik's, on oxy's buffer): reads the whole
 * request body before forwarding (so it can be limited and replayed, and
 * goes upstream with a Content-Length), holds the response to apply
 * `maxResponseBodyBytes`, and retries by `retryExpression`.
 *
 * Bodies stay in memory; oxy spills what exceeds `mem*BodyBytes` to disk.
 * Portico instead holds up to `memResponseBodyBytes` of a response (all of
 * it when `maxResponseBodyBytes` is set) and streams the rest, so a large
 * download without a limit does not sit in RAM.
 *
 * @module
 */

import { UpstreamError } from "../../proxy/upstream.ts";
import { errorResponse, type ProxyRequest } from "../../services/types.ts";
import { clearResponse, replaceResponse } from "../shared/replace_response.ts";
import { readOptions } from "../options.ts";
import { peekBody } from "../peek_body.ts";
import { type MiddlewareFactory, writableRequestHeaders } from "../types.ts";
import { compileRetryExpression, type RetryFacts } from "./retry_expression.ts";
import { readLimited } from "../shared/read_limited.ts";
import { ExpressionError } from "../shared/predicate.ts";

/** oxy stops retrying once the attempt number exceeds this, whatever the expression says. */
const MAX_RETRY_ATTEMPTS = 10;

/** Methods for which Go's client sends no `Content-Length: 0` on an empty body. */
const NO_EMPTY_LENGTH = new Set(["GET", "HEAD"]);

/** oxy's expectBody: responses that carry no body to copy. */
function carriesBody(method: string, res: Response): boolean {
  if (method === "HEAD") return false;
  if (res.status < 200 || res.status === 204 || res.status === 304) return false;
  if (res.headers.get("content-length") === "0") return false;
  const grpc = res.headers.get("grpc-status");
  return !(grpc !== null && grpc !== "" && grpc !== "0");
}

/**
 * Builds `buffering` from `{ maxRequestBodyBytes?, memRequestBodyBytes?,
 * maxResponseBodyBytes?, memResponseBodyBytes?, retryExpression? }`.
 * A request body over `maxRequestBodyBytes` gets 413; a response body over
 * `maxResponseBodyBytes` gets 500 (0 = no limit, the default).
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
  const memResponse = nonNegative("memResponseBodyBytes", 1048576);
  const expression = o.string("retryExpression", { default: "" });
  let shouldRetry: ((facts: RetryFacts) => boolean) | undefined;
  if (expression !== "") {
    try {
      shouldRetry = compileRetryExpression(expression);
    } catch (err) {
      if (!(err instanceof ExpressionError)) throw err;
      o.fail("retryExpression", `${JSON.stringify(expression)}: ${err.message}`);
    }
  }

  return async (c, next) => {
    const proxy = c.get("proxy");
    const original = proxy.request;
    const declared = Number(proxy.headers.get("content-length") ?? "0");
    if (maxRequest > 0 && declared > maxRequest) return errorResponse(413);
    const source = original.body ?? proxy.detachedBody ?? null;
    let body: Uint8Array<ArrayBuffer> | undefined;
    if (source) {
      body = await readLimited(source, maxRequest);
      if (!body) return errorResponse(413);
      if (body.length === 0) body = undefined;
    }
    const headers = writableRequestHeaders(proxy);
    headers.delete("transfer-encoding");
    if (body) headers.set("content-length", String(body.length));
    else if (NO_EMPTY_LENGTH.has(original.method)) headers.delete("content-length");
    else headers.set("content-length", "0");

    for (let attempt = 1;; attempt++) {
      replayRequest(proxy, original, body);
      if (attempt > 1) clearResponse(c);
      let status: number;
      let failure: UpstreamError | undefined;
      try {
        await next();
        status = c.res.status;
      } catch (err) {
        if (!(err instanceof UpstreamError)) throw err;
        failure = err;
        status = err.status;
      }
      const retry = shouldRetry !== undefined && attempt <= MAX_RETRY_ATTEMPTS &&
        shouldRetry({ attempts: attempt, responseCode: status, method: original.method });
      if (retry) {
        if (!failure) await c.res.body?.cancel().catch(() => {});
        continue;
      }
      if (failure) throw failure;
      break;
    }

    const res = c.res;
    if (res.status === 101 || !res.body) return;
    if (!carriesBody(original.method, res)) {
      await res.body.cancel().catch(() => {});
      const headers = new Headers(res.headers);
      // A gRPC error's body is dropped: its announced length would be a lie.
      if (res.headers.has("grpc-status")) headers.delete("content-length");
      replaceResponse(
        c,
        new Response(null, {
          status: res.status,
          statusText: res.statusText,
          headers,
        }),
      );
      return;
    }
    const length = Number(res.headers.get("content-length") ?? "-1");
    if (maxResponse > 0 && length > maxResponse) {
      await res.body.cancel().catch(() => {});
      replaceResponse(c, errorResponse(500));
      return;
    }
    const hold = maxResponse > 0 ? maxResponse + 1 : memResponse + 1;
    const { head, ended, stream } = await peekBody(res.body, hold);
    if (maxResponse > 0 && head.length > maxResponse) {
      await stream.cancel().catch(() => {});
      replaceResponse(c, errorResponse(500));
      return;
    }
    const out = new Headers(res.headers);
    if (ended) {
      // The whole body is here: it goes out in one piece with its length, as oxy's copy does.
      out.delete("transfer-encoding");
      out.set("content-length", String(head.length));
      replaceResponse(
        c,
        new Response(head.length > 0 ? head : null, {
          status: res.status,
          statusText: res.statusText,
          headers: out,
        }),
      );
      return;
    }
    replaceResponse(
      c,
      new Response(stream, { status: res.status, statusText: res.statusText, headers: out }),
    );
  };
};

/** A fresh request carrying the buffered body, for one attempt. */
function replayRequest(
  proxy: ProxyRequest,
  original: Request,
  body: Uint8Array<ArrayBuffer> | undefined,
): void {
  // A Web Request cannot carry a GET or HEAD body: it travels beside it.
  const canCarry = !NO_EMPTY_LENGTH.has(original.method);
  proxy.request = new Request(original.url, {
    method: original.method,
    headers: original.headers,
    body: canCarry ? body ?? null : null,
    signal: original.signal,
  });
  proxy.detachedBody = !canCarry && body
    ? new ReadableStream({
      start(ctl) {
        ctl.enqueue(body.slice());
        ctl.close();
      },
    })
    : undefined;
}

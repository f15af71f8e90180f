/**
 * The `compress` middleware: zstd, Brotli or gzip response compression by
 * `Accept-Encoding`, with the decisions Traefik's handlers make (gzhttp
 * for gzip, Traefik's own handler for br and zstd), streamed through
 * `node:zlib` with a flush per upstream chunk so streaming responses stay
 * live. What decides, in order:
 *
 * - HEAD requests, requests whose Content-Type is excluded (always
 *   `application/grpc`) and requests without Accept-Encoding (unless
 *   `defaultEncoding`) pass untouched, without `Vary`.
 * - The encoding is chosen as in accept_encoding.ts. Once one is chosen the
 *   response gets `Vary: Accept-Encoding`, compressed or not.
 * - Not compressed: no body, a Content-Encoding already, an excluded (or
 *   not included) type. Types are compared without their parameters:
 *   Traefik drops the configured types' parameters before comparing. A
 *   Content-Type that does not parse stops br and zstd, not gzip.
 * - Size: with a Content-Length, at least `minResponseBodyBytes` (default
 *   1024); without one (a streamed answer, which Traefik's proxy flushes
 *   as it goes), any non-empty body.
 * - gzip only: a gzip q-value above 0 in the request (so `*` alone does not
 *   gzip), no Content-Range, no `No-Gzip-Compression` response header (which
 *   is removed), a sniffed Content-Type added when there is none, and
 *   Accept-Ranges dropped when compressing.
 *
 * @module
 */

import zlib from "node:zlib";
import { sniffContentType } from "../shared/sniff.ts";
import { replaceResponse } from "../shared/replace_response.ts";
import { readOptions } from "../options.ts";
import { peekBody } from "../peek_body.ts";
import type { MiddlewareFactory } from "../types.ts";
import { type Choice, chooseEncoding, type Encoding, gzipQuality } from "./accept_encoding.ts";
import { parseMediaType } from "./media_type.ts";

/** Traefik's `defaultSupportedEncodings`, in its priority order. */
const DEFAULT_ENCODINGS: Encoding[] = ["gzip", "br", "zstd"];

/** Traefik's (and gzhttp's) minimum size when `minResponseBodyBytes` is unset or 0. */
const DEFAULT_MIN_SIZE = 1024;

/** Whether this runtime's `node:zlib` can produce `encoding` (zstd is recent). */
export function runtimeSupports(encoding: Encoding): boolean {
  if (encoding === "zstd") {
    return typeof (zlib as { createZstdCompress?: unknown }).createZstdCompress === "function";
  }
  return true;
}

/** A TransformStream over a node:zlib compressor that flushes after every chunk. */
function compressor(encoding: Encoding): TransformStream<Uint8Array, Uint8Array> {
  const z = encoding === "gzip" ? zlib.createGzip() : encoding === "br"
    // Quality 11 (node's default) is far too slow for live traffic; 5 is near Go's default.
    ? zlib.createBrotliCompress({ params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 5 } })
    : (zlib as unknown as { createZstdCompress(): ReturnType<typeof zlib.createGzip> })
      .createZstdCompress();
  let controller: TransformStreamDefaultController<Uint8Array>;
  z.on(
    "data",
    (d: Uint8Array) => controller.enqueue(new Uint8Array(d.buffer, d.byteOffset, d.byteLength)),
  );
  z.on("error", (e: Error) => controller.error(e));
  return new TransformStream<Uint8Array, Uint8Array>({
    start(c) {
      controller = c;
    },
    transform(chunk) {
      return new Promise<void>((resolve) => {
        z.write(chunk);
        z.flush(() => resolve());
      });
    },
    flush() {
      return new Promise<void>((resolve) => {
        z.once("end", () => resolve());
        z.end();
      });
    },
    cancel() {
      z.destroy();
    },
  } as Transformer<Uint8Array, Uint8Array>);
}

/**
 * Builds `compress` from `{ encodings?, defaultEncoding?,
 * excludedContentTypes?, includedContentTypes?, minResponseBodyBytes? }`.
 *
 * @example
 * ```toml
 * [http.middlewares.gz.compress]
 * encodings = ["br", "gzip"]
 * excludedContentTypes = ["text/event-stream"]
 * minResponseBodyBytes = 512
 * ```
 */
export const compress: MiddlewareFactory = (options, context) => {
  const o = readOptions(context.name, options);
  o.unknownKeysCheck([
    "encodings",
    "defaultEncoding",
    "excludedContentTypes",
    "includedContentTypes",
    "minResponseBodyBytes",
  ]);
  const encodings = o.stringList("encodings", { default: DEFAULT_ENCODINGS }).map((e, i) => {
    if (!DEFAULT_ENCODINGS.includes(e as Encoding)) {
      o.fail(`encodings[${i}]`, `expected one of gzip, br, zstd, found ${JSON.stringify(e)}`);
    }
    return e as Encoding;
  });
  if (encodings.length === 0) {
    o.fail("encodings", "expected at least one of gzip, br, zstd, found an empty list");
  }
  for (const e of encodings) {
    if (!runtimeSupports(e)) o.fail("encodings", `this runtime cannot produce ${e}`);
  }
  const defaultEncoding = o.string("defaultEncoding", { default: "" }) as Encoding | "";
  if (defaultEncoding !== "" && !encodings.includes(defaultEncoding)) {
    o.fail(
      "defaultEncoding",
      `expected one of the encodings (${encodings.join(", ")}), found ${
        JSON.stringify(defaultEncoding)
      }`,
    );
  }
  const mediaTypes = (key: string) =>
    o.stringList(key, { default: [] }).map((t, i) => {
      const parsed = parseMediaType(t);
      if (parsed.error) o.fail(`${key}[${i}]`, `${parsed.error} in ${JSON.stringify(t)}`);
      return parsed.type;
    });
  const included = mediaTypes("includedContentTypes");
  const excluded = mediaTypes("excludedContentTypes");
  if (excluded.length && included.length) {
    o.fail(
      "includedContentTypes",
      "cannot be used together with excludedContentTypes; keep one of them",
    );
  }
  // Traefik always excludes gRPC, whatever else is listed.
  excluded.unshift("application/grpc");
  const minBytes = o.int("minResponseBodyBytes", { default: 0 });
  if (minBytes < 0) o.fail("minResponseBodyBytes", `must be 0 or more, found ${minBytes}`);
  const minSize = minBytes > 0 ? minBytes : DEFAULT_MIN_SIZE;

  /** Whether a response type may be compressed; `lenient` is gzhttp's view of an unparsable one. */
  const typeAllowed = (contentType: string, lenient: boolean): boolean => {
    const parsed = parseMediaType(contentType);
    if (parsed.error) return lenient && included.length === 0;
    return included.length ? included.includes(parsed.type) : !excluded.includes(parsed.type);
  };

  return async (c, next) => {
    const proxy = c.get("proxy");
    if (proxy.request.method === "HEAD") return await next();
    const requestType = parseMediaType(proxy.headers.get("content-type") ?? "").type;
    // Traefik checks the request's type too, so an SSE upload stays uncompressed.
    if (excluded.includes(requestType)) return await next();
    const accept = proxy.headers.get("accept-encoding");
    let choice: Choice;
    if (accept === null) {
      if (defaultEncoding === "") return await next();
      choice = defaultEncoding;
    } else {
      choice = chooseEncoding(accept, encodings, defaultEncoding);
    }
    if (choice === "identity" || choice === "not_acceptable") return await next();
    const encoding: Encoding = choice;

    await next();
    const res = c.res;
    if (res.status === 101) return;
    const headers = new Headers(res.headers);
    const vary = headers.get("vary");
    headers.set("vary", vary ? `Accept-Encoding, ${vary}` : "Accept-Encoding");
    const send = (body: ReadableStream<Uint8Array> | null) =>
      replaceResponse(
        c,
        new Response(body, { status: res.status, statusText: res.statusText, headers }),
      );
    const gzip = encoding === "gzip";
    const noCompression = gzip && headers.has("no-gzip-compression");
    if (gzip) headers.delete("no-gzip-compression");
    const bodyless = res.status < 200 || res.status === 204 || res.status === 304 || !res.body;
    if (
      bodyless || (gzip && gzipQuality(accept) <= 0) || noCompression ||
      headers.get("content-encoding") || (gzip && headers.get("content-range"))
    ) return send(res.body);
    const contentType = headers.get("content-type") ?? "";
    if (contentType !== "" && !typeAllowed(contentType, gzip)) return send(res.body);

    const declared = Number(headers.get("content-length") ?? "0") || 0;
    if (declared > 0 && declared < minSize) return send(res.body);
    // With a length the decision is made; without one the first chunk says
    // whether there is a body at all (and gives gzip something to sniff).
    const { head, ended, stream } = await peekBody(res.body!, 1);
    if (ended && head.length === 0) return send(stream);
    if (gzip && contentType === "") {
      const sniffed = sniffContentType(head);
      headers.set("content-type", sniffed);
      if (!typeAllowed(sniffed, true)) return send(stream);
    }
    headers.set("content-encoding", encoding);
    headers.delete("content-length");
    if (gzip) headers.delete("accept-ranges");
    send(stream.pipeThrough(compressor(encoding)));
  };
};

/**
 * The `compress` middleware: zstd, Brotli or gzip response compression by
 * `Accept-Encoding`, streamed through `node:zlib` with a flush per upstream
 * chunk so streaming responses stay live.
 *
 * @module
 */

import { peekBody } from "../peek_body.ts";
import zlib from "node:zlib";
import { readOptions } from "../options.ts";
import { replaceResponse } from "../headers/replace_response.ts";
import type { MiddlewareFactory } from "../types.ts";
import { chooseEncoding, type Encoding } from "./accept_encoding.ts";

const ALL: Encoding[] = ["zstd", "br", "gzip"];

/** Whether this runtime's `node:zlib` can produce `encoding` (zstd is recent). */
export function runtimeSupports(encoding: Encoding): boolean {
  if (encoding === "zstd") {
    return typeof (zlib as { createZstdCompress?: unknown }).createZstdCompress === "function";
  }
  return true;
}

function mediaType(contentType: string | null): string {
  if (!contentType) return "";
  return contentType.split(";")[0].replace(/\s+/g, "").toLowerCase();
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
 * A response is compressed when the client accepts one of `encodings`
 * (default zstd, br, gzip: the order breaks q-value ties), it has no
 * `Content-Encoding` yet, its type is allowed (`application/grpc` is always
 * excluded unless types are listed) and its body reaches
 * `minResponseBodyBytes` (default 1024; only that much is held to decide).
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
  const encodings = o.stringList("encodings", { default: ALL }).map((e, i) => {
    const name = e.trim().toLowerCase();
    if (!ALL.includes(name as Encoding)) {
      o.fail(`encodings[${i}]`, `expected one of zstd, br, gzip, found ${JSON.stringify(e)}`);
    }
    return name as Encoding;
  });
  if (encodings.length === 0) {
    o.fail("encodings", "expected at least one of zstd, br, gzip, found an empty list");
  }
  const usable = encodings.filter(runtimeSupports);
  if (usable.length === 0) {
    o.fail("encodings", `this runtime cannot produce ${encodings.join(", ")}`);
  }
  const defaultValue = o.string("defaultEncoding", { default: "" }).trim().toLowerCase();
  if (defaultValue !== "" && !encodings.includes(defaultValue as Encoding)) {
    o.fail(
      "defaultEncoding",
      `expected one of the encodings (${encodings.join(", ")}), found ${
        JSON.stringify(defaultValue)
      }`,
    );
  }
  const defaultEncoding = (usable.includes(defaultValue as Encoding) ? defaultValue : "") as
    | Encoding
    | "";
  const excluded = o.stringList("excludedContentTypes", { default: [] }).map((t) => mediaType(t));
  const included = o.stringList("includedContentTypes", { default: [] }).map((t) => mediaType(t));
  if (excluded.length && included.length) {
    o.fail(
      "includedContentTypes",
      "cannot be used together with excludedContentTypes; keep one of them",
    );
  }
  if (!excluded.length && !included.length) excluded.push("application/grpc");
  const minBytes = o.int("minResponseBodyBytes", { default: 1024 });
  if (minBytes < 0) o.fail("minResponseBodyBytes", `must be 0 or more, found ${minBytes}`);

  const typeAllowed = (t: string) => included.length ? included.includes(t) : !excluded.includes(t);

  return async (c, next) => {
    const proxy = c.get("proxy");
    if (proxy.request.method === "HEAD") return await next();
    // Traefik checks the request's type too, so an SSE upload stays uncompressed.
    if (excluded.includes(mediaType(proxy.headers.get("content-type")))) return await next();
    const encoding = chooseEncoding(proxy.headers.get("accept-encoding"), usable, defaultEncoding);
    if (!encoding) return await next();

    await next();
    const res = c.res;
    if (res.status === 101 || res.status === 204 || res.status === 304 || !res.body) return;
    if (res.headers.has("content-encoding")) return;
    if (!typeAllowed(mediaType(res.headers.get("content-type")))) return;
    const length = res.headers.get("content-length");
    if (length !== null && Number(length) < minBytes) return;

    // Hold up to minBytes to decide; the rest streams.
    const { head, ended, stream: replay } = await peekBody(res.body, minBytes);
    const held = head.length;

    const headers = new Headers(res.headers);
    headers.append("vary", "Accept-Encoding");
    if (ended && held < minBytes) {
      replaceResponse(
        c,
        new Response(replay, { status: res.status, statusText: res.statusText, headers }),
      );
      return;
    }
    headers.set("content-encoding", encoding);
    headers.delete("content-length");
    headers.delete("accept-ranges");
    replaceResponse(
      c,
      new Response(replay.pipeThrough(compressor(encoding)), {
        status: res.status,
        statusText: res.statusText,
        headers,
      }),
    );
  };
};

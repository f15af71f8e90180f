/**
 * Holds the first bytes of a response body so a middleware can decide on
 * them (compress: is it big enough; contentType: what is it), then hands the
 * whole body on as one stream without buffering the rest.
 *
 * @module
 */

export interface PeekedBody {
  /** The first bytes, at least `min` unless the body was shorter. */
  head: Uint8Array<ArrayBuffer>;
  /** True when the whole body fit in `head`. */
  ended: boolean;
  /** The complete body: `head` followed by whatever was not read yet. */
  stream: ReadableStream<Uint8Array>;
}

/**
 * @example
 * ```ts
 * const { head, ended, stream } = await peekBody(res.body!, 1024);
 * ```
 */
export async function peekBody(body: ReadableStream<Uint8Array>, min: number): Promise<PeekedBody> {
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let held = 0;
  let ended = false;
  while (held < min) {
    const { done, value } = await reader.read();
    if (done) {
      ended = true;
      break;
    }
    chunks.push(value);
    held += value.length;
  }
  const head = new Uint8Array(held);
  let at = 0;
  for (const chunk of chunks) {
    head.set(chunk, at);
    at += chunk.length;
  }
  const stream = new ReadableStream<Uint8Array>({
    start(ctl) {
      if (held > 0) ctl.enqueue(head);
      if (ended) ctl.close();
    },
    async pull(ctl) {
      if (ended) return;
      const { done, value } = await reader.read();
      if (done) ctl.close();
      else ctl.enqueue(value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
  return { head, ended, stream };
}

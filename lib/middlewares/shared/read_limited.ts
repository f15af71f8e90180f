/**
 * Reading a Web body whole under a byte cap, for the middlewares that must
 * hold a body before deciding (buffering, forwardAuth's forwardBody).
 *
 * @module
 */

/** Reads `body` whole; undefined when it exceeds `max` bytes (0 = no limit). */
export async function readLimited(
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

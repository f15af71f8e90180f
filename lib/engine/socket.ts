/**
 * The few socket helpers every layer on raw connections needs: a write
 * that finishes, a close that never throws, and a read buffer that grows
 * or compacts as bytes arrive (the engine's client connections and the
 * upstream client's connections both read through one).
 *
 * @module
 */

/** Writes all of `bytes`: `Deno.Conn.write` may take only part of them. */
export async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
}

/** Closes `conn`, ignoring that it may be closed already. */
export function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch { /* gone */ }
}

/** A reused read buffer over one socket: bytes `[start, end)` are unread. */
export class ReadBuffer {
  buf: Uint8Array<ArrayBuffer>;
  start = 0;
  end = 0;

  constructor(readonly conn: Deno.Conn, size = 16 * 1024) {
    this.buf = new Uint8Array(size);
  }

  get buffered(): number {
    return this.end - this.start;
  }

  /**
   * Reads more bytes, first making room (back to the front when all was
   * consumed, compacting, or doubling). False at EOF; a failed read throws.
   */
  async readMore(): Promise<boolean> {
    if (this.start === this.end) {
      this.start = this.end = 0;
    } else if (this.end === this.buf.length) {
      if (this.start > 0) {
        this.buf.copyWithin(0, this.start, this.end);
        this.end -= this.start;
        this.start = 0;
      } else {
        const bigger = new Uint8Array(this.buf.length * 2);
        bigger.set(this.buf);
        this.buf = bigger;
      }
    }
    const n = await this.conn.read(this.buf.subarray(this.end));
    if (n === null) return false;
    this.end += n;
    return true;
  }

  /**
   * Grows an empty buffer to `size` bytes, so a large body moves in fewer,
   * bigger reads and writes; a connection that never carries one keeps its
   * small buffer.
   */
  reserve(size: number): void {
    if (this.start !== this.end || this.buf.length >= size) return;
    this.buf = new Uint8Array(size);
    this.start = this.end = 0;
  }

  /** Takes up to `max` buffered bytes as a copy (the buffer is reused). */
  take(max: number): Uint8Array {
    const n = Math.min(max, this.buffered);
    const out = this.buf.slice(this.start, this.start + n);
    this.start += n;
    return out;
  }
}

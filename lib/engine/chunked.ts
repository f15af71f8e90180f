/**
 * A strict, incremental decoder for the chunked transfer coding
 * (RFC 9112 §7.1), shared by request bodies and upstream responses. Pure:
 * it is fed bytes and reports data ranges; it never reads a socket.
 *
 * Refused (a {@linkcode ChunkedError}): a bare LF, a chunk size that is not
 * 1–16 hex digits, anything but BWS and `;ext` after the size, a chunk not
 * followed by CRLF, and extension or trailer sections above 16 KiB.
 * Trailers are read and dropped.
 *
 * @module
 */

/** Malformed chunked framing. */
export class ChunkedError extends Error {
  override name = "ChunkedError";
}

const CR = 13, LF = 10, SP = 32, HTAB = 9, SEMI = 59;
const MAX_META = 16 * 1024;

const enum State {
  Size,
  SizeBws,
  Ext,
  SizeLf,
  Data,
  DataCr,
  DataLf,
  TrailerLineStart,
  Trailer,
  TrailerLf,
  FinalLf,
  Done,
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/**
 * @example
 * ```ts
 * const d = new ChunkedDecoder();
 * const bytes = new TextEncoder().encode("3\r\nabc\r\n0\r\n\r\n");
 * d.decode(bytes, 0, bytes.length, (from, to) => console.log(bytes.subarray(from, to)));
 * console.log(d.done); // true
 * ```
 */
export class ChunkedDecoder {
  #state = State.Size;
  #digits = 0;
  #size = 0;
  #remaining = 0;
  #meta = 0;

  /** True once the last chunk and the trailer section were read. */
  get done(): boolean {
    return this.#state === State.Done;
  }

  /**
   * Decodes `buf[start, end)`, calling `onData` for each range of body
   * bytes. Returns the index up to which bytes were consumed: `end`, or
   * less when the body ended before it (the rest belongs to what follows).
   */
  decode(buf: Uint8Array, start: number, end: number, onData: (from: number, to: number) => void): number {
    let i = start;
    while (i < end) {
      const c = buf[i];
      switch (this.#state) {
        case State.Size: {
          const h = hexValue(c);
          if (h >= 0) {
            if (++this.#digits > 16) throw new ChunkedError("chunk size too long");
            this.#size = this.#size * 16 + h;
            i++;
            break;
          }
          if (this.#digits === 0) throw new ChunkedError("invalid chunk size");
          if (c === CR) this.#state = State.SizeLf;
          else if (c === SEMI) this.#state = State.Ext;
          else if (c === SP || c === HTAB) this.#state = State.SizeBws;
          else throw new ChunkedError("invalid chunk size");
          i++;
          break;
        }
        case State.SizeBws:
          if (c === SEMI) this.#state = State.Ext;
          else if (c !== SP && c !== HTAB) throw new ChunkedError("invalid chunk size line");
          i++;
          break;
        case State.Ext:
          if (++this.#meta > MAX_META) throw new ChunkedError("chunk extensions too long");
          if (c === CR) this.#state = State.SizeLf;
          else if (c === LF) throw new ChunkedError("bare LF in chunk size line");
          else if (c < 32 && c !== HTAB || c === 127) throw new ChunkedError("invalid byte in chunk extension");
          i++;
          break;
        case State.SizeLf:
          if (c !== LF) throw new ChunkedError("chunk size line without LF");
          i++;
          if (this.#size === 0) {
            this.#state = State.TrailerLineStart;
          } else {
            this.#remaining = this.#size;
            this.#state = State.Data;
          }
          this.#size = 0;
          this.#digits = 0;
          break;
        case State.Data: {
          const n = Math.min(this.#remaining, end - i);
          onData(i, i + n);
          i += n;
          this.#remaining -= n;
          if (this.#remaining === 0) this.#state = State.DataCr;
          break;
        }
        case State.DataCr:
          if (c !== CR) throw new ChunkedError("chunk data not followed by CRLF");
          this.#state = State.DataLf;
          i++;
          break;
        case State.DataLf:
          if (c !== LF) throw new ChunkedError("chunk data not followed by CRLF");
          this.#state = State.Size;
          i++;
          break;
        case State.TrailerLineStart:
          if (c === CR) this.#state = State.FinalLf;
          else if (c === LF) throw new ChunkedError("bare LF in trailer section");
          else this.#state = State.Trailer;
          i++;
          break;
        case State.Trailer:
          if (++this.#meta > MAX_META) throw new ChunkedError("trailer section too long");
          if (c === CR) this.#state = State.TrailerLf;
          else if (c === LF) throw new ChunkedError("bare LF in trailer section");
          i++;
          break;
        case State.TrailerLf:
          if (c !== LF) throw new ChunkedError("trailer line without LF");
          this.#state = State.TrailerLineStart;
          i++;
          break;
        case State.FinalLf:
          if (c !== LF) throw new ChunkedError("chunked body not ended by CRLF");
          this.#state = State.Done;
          return i + 1;
        case State.Done:
          return i;
      }
    }
    return i;
  }
}

/** Frames `data` as one chunk (no allocation for the data itself beyond the copy). */
export function encodeChunk(data: Uint8Array): Uint8Array {
  const size = data.length.toString(16);
  const out = new Uint8Array(size.length + 2 + data.length + 2);
  for (let i = 0; i < size.length; i++) out[i] = size.charCodeAt(i);
  out[size.length] = CR;
  out[size.length + 1] = LF;
  out.set(data, size.length + 2);
  out[out.length - 2] = CR;
  out[out.length - 1] = LF;
  return out;
}

/** The last chunk with no trailers. */
export const LAST_CHUNK: Uint8Array = new Uint8Array([48, CR, LF, CR, LF]);

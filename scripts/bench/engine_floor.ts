/**
 * The "JS engine floor": a minimal HTTP/1.1 reverse proxy on raw
 * `Deno.listen` + `Deno.connect`, the shape issue 15 asks Portico's data
 * plane to take. One reused read buffer per connection, heads parsed as
 * bytes (only Content-Length, Transfer-Encoding and Connection are read),
 * the upstream head rebuilt by copying the kept header lines and written
 * with a small body in one `write`, one pooled keep-alive upstream socket
 * per client connection, and no Request/Response/Headers objects. Bodies
 * (Content-Length, chunked, or close-delimited responses) are relayed as
 * bytes. A yardstick for the bench, not product code: no timeouts, no
 * validation beyond what framing needs, a head larger than 64 KB closes.
 *
 * ```sh
 * deno run -A scripts/bench/engine_floor.ts LISTEN_PORT BACKEND_PORT
 * ```
 *
 * @module
 */

const [listenPort, backendPort] = Deno.args.map(Number);
if (!(listenPort > 0 && backendPort > 0)) {
  console.error("usage: engine_floor.ts LISTEN_PORT BACKEND_PORT");
  Deno.exit(2);
}

const BUF = 64 * 1024;
const enc = new TextEncoder();
const XFF = enc.encode("X-Forwarded-For: 127.0.0.1\r\n");
const CLOSE = enc.encode("Connection: close\r\n");
const CRLF = enc.encode("\r\n");
const BAD_GATEWAY = enc.encode(
  "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
);

/** A socket with its one reused read buffer; bytes [start, end) are unread. */
class Reader {
  buf = new Uint8Array(BUF);
  start = 0;
  end = 0;
  constructor(readonly conn: Deno.Conn) {}
  /** Reads more bytes; false at EOF or when the buffer is full of one head. */
  async fill(): Promise<boolean> {
    if (this.start === this.end) this.start = this.end = 0;
    else if (this.end === this.buf.length) {
      if (this.start === 0) return false;
      this.buf.copyWithin(0, this.start, this.end);
      this.end -= this.start;
      this.start = 0;
    }
    const n = await this.conn.read(this.buf.subarray(this.end));
    if (n === null) return false;
    this.end += n;
    return true;
  }
}

/** A growable write buffer: a head (and small body) is assembled here, then written once. */
class Out {
  buf = new Uint8Array(16 * 1024);
  pos = 0;
  put(src: Uint8Array): void {
    if (this.pos + src.length > this.buf.length) {
      const bigger = new Uint8Array(Math.max(this.buf.length * 2, this.pos + src.length));
      bigger.set(this.buf.subarray(0, this.pos));
      this.buf = bigger;
    }
    this.buf.set(src, this.pos);
    this.pos += src.length;
  }
  async flush(conn: Deno.Conn): Promise<void> {
    await writeAll(conn, this.buf.subarray(0, this.pos));
    this.pos = 0;
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
}

/** Index just past CRLFCRLF in [from, end), or -1 (a plain loop: `indexOf` would scan to the buffer's end). */
function headEnd(buf: Uint8Array, from: number, end: number): number {
  for (let i = from; i + 3 < end; i++) {
    if (buf[i] === 13 && buf[i + 1] === 10 && buf[i + 2] === 13 && buf[i + 3] === 10) return i + 4;
  }
  return -1;
}

/** What framing and connection handling need from a head. */
interface Head {
  contentLength: number; // -1 when absent
  chunked: boolean;
  close: boolean;
}

/** True when buf[a, a + name.length) equals `name` (lower case), ignoring ASCII case. */
function nameIs(buf: Uint8Array, a: number, len: number, name: string): boolean {
  if (len !== name.length) return false;
  for (let i = 0; i < len; i++) if ((buf[a + i] | 0x20) !== name.charCodeAt(i)) return false;
  return true;
}

/** True when the value bytes contain `word` (lower case), ignoring ASCII case. */
function valueHas(buf: Uint8Array, a: number, b: number, word: string): boolean {
  outer: for (let i = a; i + word.length <= b; i++) {
    for (let j = 0; j < word.length; j++) {
      if ((buf[i + j] | 0x20) !== word.charCodeAt(j)) continue outer;
    }
    return true;
  }
  return false;
}

/**
 * Parses the head in buf[start, end) (end is just past CRLFCRLF) and copies
 * its first line and every header line except hop-by-hop ones into `out`.
 */
function parseHead(
  buf: Uint8Array,
  start: number,
  end: number,
  out: Out,
  head: Head,
  request: boolean,
): void {
  head.contentLength = -1;
  head.chunked = false;
  head.close = false;
  let eol = buf.indexOf(10, start);
  out.put(buf.subarray(start, eol + 1));
  // HTTP/1.0 ("…HTTP/1.0\r\n" on a request line, "HTTP/1.0 …" on a status line) means close.
  head.close = request ? buf[eol - 2] === 48 && buf[eol - 3] === 46 : buf[start + 7] === 48;
  for (let line = eol + 1; line < end - 2; line = eol + 1) {
    eol = buf.indexOf(10, line);
    const colon = buf.indexOf(58, line);
    const nameLen = colon < eol ? colon - line : 0;
    let v = colon + 1;
    while (buf[v] === 32 || buf[v] === 9) v++;
    const c = buf[line] | 0x20;
    if (c === 99 && nameIs(buf, line, nameLen, "content-length")) {
      let n = 0;
      for (let i = v; buf[i] >= 48 && buf[i] <= 57; i++) n = n * 10 + buf[i] - 48;
      head.contentLength = n;
    } else if (c === 116 && nameIs(buf, line, nameLen, "transfer-encoding")) {
      head.chunked = valueHas(buf, v, eol, "chunked");
    } else if (c === 99 && nameIs(buf, line, nameLen, "connection")) {
      if (valueHas(buf, v, eol, "close")) head.close = true;
      else if (valueHas(buf, v, eol, "keep-alive")) head.close = false;
      continue;
    } else if (c === 107 && nameIs(buf, line, nameLen, "keep-alive")) continue;
    out.put(buf.subarray(line, eol + 1));
  }
}

/** Incremental chunked-body scanner: `scan` returns the index just past the body, or -1. */
class Chunked {
  state = 0; // 0 size digits, 1 rest of the size line, 2 data, 3 trailer lines
  n = 0;
  digits = false; // a size was read on this line (else the LF ends the CRLF after data)
  line = 0; // bytes on the current trailer line
  scan(buf: Uint8Array, i: number, end: number): number {
    while (i < end) {
      if (this.state === 2) {
        const take = Math.min(this.n, end - i);
        i += take;
        if ((this.n -= take) === 0) this.state = 0;
        continue;
      }
      const b = buf[i++];
      if (this.state === 3) {
        if (b === 10 && this.line === 0) return (this.state = 0), i;
        this.line = b === 10 ? 0 : b === 13 ? this.line : this.line + 1;
      } else if (b === 10) {
        this.state = !this.digits ? 0 : this.n === 0 ? 3 : 2;
        this.digits = false;
      } else if (this.state === 0) {
        const d = b <= 57 ? b - 48 : (b | 0x20) - 87;
        if (d >= 0 && d < 16) this.n = this.n * 16 + d, this.digits = true;
        else this.state = 1;
      }
    }
    return -1;
  }
}

/**
 * Sends `out` (a head) and the body framed by `head` from `src` to `dst`:
 * bytes already buffered join the head in one write when they fit.
 * `length` -2 means "until EOF". Returns false when `src` ended early.
 */
async function relay(
  src: Reader,
  dst: Deno.Conn,
  out: Out,
  length: number,
  chunked: Chunked | null,
): Promise<boolean> {
  let remaining = length;
  for (;;) {
    const avail = src.end - src.start;
    let take = avail;
    let done = false;
    if (chunked) {
      const e = chunked.scan(src.buf, src.start, src.end);
      if (e >= 0) take = e - src.start, done = true;
    } else if (remaining >= 0) {
      take = Math.min(avail, remaining);
      remaining -= take;
      done = remaining === 0;
    }
    const bytes = src.buf.subarray(src.start, src.start + take);
    src.start += take;
    if (out.pos > 0 && out.pos + take <= out.buf.length) out.put(bytes), await out.flush(dst);
    else {
      if (out.pos > 0) await out.flush(dst);
      if (take > 0) await writeAll(dst, bytes);
    }
    if (done) return true;
    if (!(await src.fill())) return length === -2 && !chunked;
  }
}

const chunkedOf = (h: Head) => (h.chunked ? new Chunked() : null);
/** The body length to relay: Content-Length, 0 for chunked (the scanner frames it), or `none`. */
function lengthOf(h: Head, none: number): number {
  return h.chunked ? 0 : h.contentLength >= 0 ? h.contentLength : none;
}

/** Reads until `r` holds a whole head; returns the index just past it, or -1 at EOF. */
async function readHead(r: Reader): Promise<number> {
  for (let end = headEnd(r.buf, r.start, r.end);; end = headEnd(r.buf, r.start, r.end)) {
    if (end >= 0) return end;
    if (!(await r.fill())) return -1; // EOF, or a head larger than the buffer
  }
}

function close(conn: Deno.Conn | undefined): void {
  try {
    conn?.close();
  } catch { /* closed already */ }
}

async function serve(client: Deno.TcpConn): Promise<void> {
  client.setNoDelay(true);
  const req = new Reader(client);
  const reqHead: Head = { contentLength: -1, chunked: false, close: false };
  const resHead: Head = { contentLength: -1, chunked: false, close: false };
  const out = new Out();
  let up: Reader | null = null;
  try {
    for (;;) {
      const end = await readHead(req);
      if (end < 0) return;
      const isHead = req.buf[req.start] === 72 && req.buf[req.start + 1] === 69; // "HE"
      parseHead(req.buf, req.start, end, out, reqHead, true);
      out.put(XFF);
      out.put(CRLF);
      req.start = end;
      if (!up) {
        try {
          const conn = await Deno.connect({ hostname: "127.0.0.1", port: backendPort });
          conn.setNoDelay(true);
          up = new Reader(conn);
        } catch {
          return await writeAll(client, BAD_GATEWAY);
        }
      }
      if (!(await relay(req, up.conn, out, lengthOf(reqHead, 0), chunkedOf(reqHead)))) return;
      const rEnd = await readHead(up);
      if (rEnd < 0) return await writeAll(client, BAD_GATEWAY);
      const status = (up.buf[up.start + 9] - 48) * 100 + (up.buf[up.start + 10] - 48) * 10 +
        up.buf[up.start + 11] - 48;
      parseHead(up.buf, up.start, rEnd, out, resHead, false);
      up.start = rEnd;
      const noBody = isHead || status < 200 || status === 204 || status === 304;
      const length = noBody ? 0 : lengthOf(resHead, -2);
      const closeAfter = reqHead.close || length === -2;
      if (closeAfter) out.put(CLOSE);
      out.put(CRLF);
      const ok = await relay(up, client, out, length, noBody ? null : chunkedOf(resHead));
      if (resHead.close || length === -2 || !ok) close(up.conn), up = null;
      if (closeAfter || !ok) return;
    }
  } catch {
    // A peer went away mid-exchange: drop both sides.
  } finally {
    close(up?.conn);
    close(client);
  }
}

const listener = Deno.listen({ hostname: "127.0.0.1", port: listenPort });
for await (const conn of listener) serve(conn);

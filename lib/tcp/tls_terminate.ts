/**
 * Ends TLS on a connection whose first bytes (the ClientHello) were already
 * read, for terminating TCP routers. Deno's own TLS server only takes
 * sockets it reads from the first byte; `node:tls` as a server over a
 * stream that first replays the peeked bytes does work on Deno, and costs
 * less than carrying the connection to a loopback TLS listener (measured by
 * `scripts/bench/tls_after_peek.ts`: 23–31k against 16–22k round trips/s).
 * The result is wrapped as the small part of `Deno.Conn` the TCP relay uses.
 *
 * @module
 */

import type { Duplex } from "node:stream";
import type tls from "node:tls";
import { closeQuietly, writeAll } from "../engine/socket.ts";

/** node:stream and node:tls, loaded on the first terminating route only (they cost memory at start). */
let node: Promise<{ Duplex: typeof Duplex; tls: typeof tls }> | undefined;
function loadNode(): Promise<{ Duplex: typeof Duplex; tls: typeof tls }> {
  return node ??= Promise.all([import("node:stream"), import("node:tls")]).then(([stream, t]) => ({
    Duplex: stream.Duplex,
    tls: t.default,
  }));
}

/** The certificate to present for an SNI name ("" when the client sent none), or undefined to refuse. */
export type CertificatePicker = (serverName: string) => { cert: string; key: string } | undefined;

/** Decrypted bytes held before the relay reads them; above this the TLS socket pauses. */
const HIGH_WATER = 256 * 1024;

/** A duplex over `conn` whose first read returns `peeked`. */
function replaying(Duplex: typeof import("node:stream").Duplex, conn: Deno.Conn, peeked: Uint8Array): Duplex {
  let pending: Uint8Array | null = peeked.length ? peeked : null;
  const buf = new Uint8Array(16 * 1024);
  return new Duplex({
    read() {
      if (pending) {
        const first = pending;
        pending = null;
        this.push(first);
        return;
      }
      conn.read(buf).then(
        (n) => this.push(n === null ? null : buf.slice(0, n)),
        (err) => this.destroy(err),
      );
    },
    write(chunk: Uint8Array, _encoding, done) {
      writeAll(conn, chunk).then(() => done(), done);
    },
    final(done) {
      (conn as Deno.TcpConn).closeWrite().then(() => done(), () => done());
    },
    destroy(err, done) {
      closeQuietly(conn);
      done(err);
    },
  });
}

/** The TLS socket seen as the reads, writes and closes the relay needs. */
class TerminatedConn {
  readonly #socket: tls.TLSSocket;
  readonly #chunks: Uint8Array[] = [];
  #queued = 0;
  #ended = false;
  #error?: Error;
  #wake?: () => void;

  constructor(socket: tls.TLSSocket, readonly raw: Deno.Conn) {
    this.#socket = socket;
    socket.on("data", (chunk: Uint8Array) => {
      this.#chunks.push(chunk);
      this.#queued += chunk.length;
      if (this.#queued > HIGH_WATER) socket.pause();
      this.#notify();
    });
    socket.on("end", () => {
      this.#ended = true;
      this.#notify();
    });
    socket.on("error", (err: Error) => {
      this.#error = err;
      this.#notify();
    });
    socket.on("close", () => {
      this.#ended = true;
      this.#notify();
    });
  }

  get remoteAddr(): Deno.Addr {
    return this.raw.remoteAddr;
  }

  get localAddr(): Deno.Addr {
    return this.raw.localAddr;
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  async read(into: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.#error) throw this.#error;
      if (this.#ended) return null;
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
    const head = this.#chunks[0];
    const n = Math.min(head.length, into.length);
    into.set(head.subarray(0, n));
    if (n === head.length) this.#chunks.shift();
    else this.#chunks[0] = head.subarray(n);
    this.#queued -= n;
    if (this.#queued <= HIGH_WATER / 2 && this.#socket.isPaused()) this.#socket.resume();
    return n;
  }

  write(bytes: Uint8Array): Promise<number> {
    return new Promise((resolve, reject) => {
      // Copied: the relay reuses its buffer once the write resolves, node may still hold it.
      this.#socket.write(bytes.slice(), (err?: Error | null) => (err ? reject(err) : resolve(bytes.length)));
    });
  }

  closeWrite(): Promise<void> {
    return new Promise((resolve) => this.#socket.end(() => resolve()));
  }

  close(): void {
    this.#socket.destroy();
    closeQuietly(this.raw);
  }
}

/** One secure context per certificate PEM, made once (bounded: certificates change on renewals). */
const contexts = new Map<string, tls.SecureContext>();

function contextFor(t: typeof tls, pair: { cert: string; key: string }): tls.SecureContext {
  let context = contexts.get(pair.cert);
  if (!context) {
    if (contexts.size >= 1000) contexts.clear();
    context = t.createSecureContext({ cert: pair.cert, key: pair.key });
    contexts.set(pair.cert, context);
  }
  return context;
}

/**
 * Finishes the TLS handshake of `conn` (whose first bytes, `peeked`, were
 * read already) with the certificate `pick` gives for its SNI, within
 * `timeoutMs` (0: no limit). Resolves with the decrypted connection; rejects
 * (and closes `conn`) when the handshake fails.
 */
export async function terminateTls(
  conn: Deno.Conn,
  peeked: Uint8Array,
  serverName: string,
  pick: CertificatePicker,
  timeoutMs: number,
): Promise<Deno.Conn> {
  const pair = pick(serverName);
  if (!pair) {
    closeQuietly(conn);
    throw new Error(`no certificate for ${JSON.stringify(serverName)}`);
  }
  const { Duplex, tls } = await loadNode();
  const socket = new tls.TLSSocket(replaying(Duplex, conn, peeked), {
    isServer: true,
    secureContext: contextFor(tls, pair),
    ALPNProtocols: undefined,
  });
  return new Promise<Deno.Conn>((resolve, reject) => {
    const timer = timeoutMs > 0
      ? setTimeout(() => {
        socket.destroy();
        reject(new Error("TLS handshake timed out"));
      }, timeoutMs)
      : undefined;
    socket.once("secure", () => {
      clearTimeout(timer);
      resolve(new TerminatedConn(socket, conn) as unknown as Deno.Conn);
    });
    socket.once("error", (err: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    });
  });
}

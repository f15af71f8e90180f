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
import { loadX509, peerEvidence } from "./peer_certificate.ts";
import { asksClientCertificate, clientAuthRefusal, type TerminationOptions } from "./options.ts";

/** node:stream and node:tls, loaded on the first terminating route only (they cost memory at start). */
let node: Promise<{ Duplex: typeof Duplex; tls: typeof tls }> | undefined;
function loadNode(): Promise<{ Duplex: typeof Duplex; tls: typeof tls }> {
  return node ??= Promise.all([import("node:stream"), import("node:tls")]).then(([stream, t]) => ({
    Duplex: stream.Duplex,
    tls: t.default,
  }));
}

/** What a handshake presents for an SNI name, and the `tls.options` that name selects. */
export interface PickedCertificate {
  cert: string;
  key: string;
  /** The options of the name's HTTPS routers (absent: nothing beyond the defaults). */
  options?: TerminationOptions;
}

/**
 * The certificate to present for an SNI name ("" when the client sent
 * none), or undefined to refuse. With `strict`, only a certificate for the
 * name itself (no default fallback), for `sniStrict`.
 */
export type CertificatePicker = (serverName: string, strict?: boolean) => PickedCertificate | undefined;

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
        // Never within the read call: node:tls starts its handle and then touches it, and a
        // handshake failing on bytes given synchronously destroys the handle in between
        // (an uncaught TypeError that ends the process).
        queueMicrotask(() => this.push(first));
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

  constructor(
    socket: tls.TLSSocket,
    readonly raw: Deno.Conn,
    /** The client's certificate chain as DER, leaf first (empty when it sent none). */
    readonly peerCertificates: readonly Uint8Array[],
    /** The ALPN protocol agreed on, or "" when none. */
    readonly alpnProtocol: string,
  ) {
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

/** One secure context per certificate and options, made once (bounded: certificates change on renewals). */
const contexts = new Map<string, tls.SecureContext>();

function contextFor(t: typeof tls, pair: { cert: string; key: string }, options?: TerminationOptions): tls.SecureContext {
  const key = options
    ? `${pair.cert}\0${options.minVersion}\0${options.maxVersion}\0${options.caPems.join("")}`
    : pair.cert;
  let context = contexts.get(key);
  if (!context) {
    if (contexts.size >= 1000) contexts.clear();
    context = t.createSecureContext({
      cert: pair.cert,
      key: pair.key,
      ...(options && {
        minVersion: options.minVersion,
        maxVersion: options.maxVersion,
        ca: options.caPems.length ? [...options.caPems] : undefined,
      }),
    });
    contexts.set(key, context);
  }
  return context;
}

/** The TLS socket's own verdict on the client's chain (node leaves it to the caller outside tls.Server). */
function verifyErrorOf(socket: tls.TLSSocket): string | undefined {
  // deno-lint-ignore no-explicit-any
  const error = (socket as any).ssl?.verifyError?.() as Error | string | null | undefined;
  if (!error) return undefined;
  return typeof error === "string" ? error : (error as { code?: string }).code ?? error.message;
}

/** A connection whose TLS Portico ended: the decrypted stream and what the handshake showed. */
export type TerminatedTls = Deno.Conn & {
  readonly peerCertificates: readonly Uint8Array[];
  readonly alpnProtocol: string;
};

/**
 * Finishes the TLS handshake of `conn` (whose first bytes, `peeked`, were
 * read already) with the certificate `pick` gives for its SNI, within
 * `timeoutMs` (0: no limit), under `options` (a TCP router's own) or else
 * those the picked name selects. Resolves with the decrypted connection;
 * rejects (and closes `conn`) when the handshake fails or the client's
 * certificate does not satisfy `clientAuth`.
 */
export async function terminateTls(
  conn: Deno.Conn,
  peeked: Uint8Array,
  serverName: string,
  pick: CertificatePicker,
  timeoutMs: number,
  options?: TerminationOptions,
): Promise<TerminatedTls> {
  const picked = pick(serverName, options?.sniStrict);
  if (!picked) {
    closeQuietly(conn);
    throw new Error(`no certificate for ${JSON.stringify(serverName)}`);
  }
  const policy = options ?? picked.options;
  const { Duplex, tls } = await loadNode();
  const asks = policy ? asksClientCertificate(policy) : false;
  // The key-usage check reads the leaf; the reader loads once, with the first verifying options.
  if (policy?.caPems.length) await loadX509();
  const socket = new tls.TLSSocket(replaying(Duplex, conn, peeked), {
    isServer: true,
    secureContext: contextFor(tls, picked, policy),
    // Makes the stack refuse a handshake without a certificate; the chain itself is judged after.
    requestCert: asks,
    rejectUnauthorized: policy?.clientAuth === "RequireAnyClientCert" || policy?.clientAuth === "RequireAndVerifyClientCert",
    ALPNProtocols: policy?.alpn.length ? [...policy.alpn] : undefined,
  });
  return new Promise<TerminatedTls>((resolve, reject) => {
    let settled = false;
    // Destroyed on a later turn: node:tls on Deno dereferences its handle in a tick queued
    // with the handshake, and a socket destroyed before it runs throws an uncaught TypeError.
    const fail = (err: Error) => {
      clearTimeout(timer);
      if (settled) return;
      settled = true;
      setTimeout(() => {
        socket.destroy();
        closeQuietly(conn);
      }, 0);
      reject(err);
    };
    const timer = timeoutMs > 0 ? setTimeout(() => fail(new Error("TLS handshake timed out")), timeoutMs) : undefined;
    socket.once("secure", () => {
      clearTimeout(timer);
      if (settled) return;
      const peer = asks ? peerEvidence(socket.getPeerCertificate(true), verifyErrorOf(socket)) : undefined;
      const refused = peer && clientAuthRefusal(policy!.clientAuth, peer);
      if (refused) return fail(new Error(refused));
      settled = true;
      const alpn = typeof socket.alpnProtocol === "string" ? socket.alpnProtocol : "";
      resolve(new TerminatedConn(socket, conn, peer?.chain ?? [], alpn) as unknown as TerminatedTls);
    });
    // Kept for the socket's life: a later error without a listener would be thrown.
    socket.on("error", (err: Error) => fail(err));
  });
}

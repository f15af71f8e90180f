/**
 * What the HTTP/1.1 engine hands a handler: one request on a connection,
 * and the means to answer it.
 *
 * @module
 */

import type { ConnectionInfo } from "../contracts.ts";
import type { RequestHead } from "./request_head.ts";

/** A socket taken over after an upgrade, with the bytes already read past the head. */
export interface TakenSocket {
  conn: Deno.Conn;
  buffered: Uint8Array;
}

/** One request on a connection, and the means to answer it. */
export interface Exchange {
  readonly head: RequestHead;
  readonly info: ConnectionInfo;
  /** True when the request carries a body (a length above 0, or chunked). */
  readonly hasBody: boolean;
  /** The next piece of the request body (the caller owns it), or null at its end. */
  readBody(): Promise<Uint8Array | null>;
  /** The request body as a stream, or null when there is none. Made once. */
  bodyStream(): ReadableStream<Uint8Array> | null;
  /** Writes response bytes as they are; the first write marks the response started. */
  write(bytes: Uint8Array): Promise<void>;
  /** True once any response byte was written. */
  readonly started: boolean;
  /** Set by the handler when its response is delimited by closing the connection. */
  closeAfter: boolean;
  /** Takes the socket for an upgraded protocol; the engine lets go of it. */
  takeSocket(): TakenSocket;
  /**
   * A buffer of the connection's for encoding this exchange's heads (see
   * `encodeHeadInto`). It is reused by the next exchange on the
   * connection, so bytes in it must be written (and awaited) before the
   * handler returns, and one head must be written before the next is encoded.
   */
  readonly scratch: Uint8Array;
}

/** Serves one exchange; must write a complete response (or take the socket). */
export type ExchangeHandler = (exchange: Exchange) => Promise<void>;

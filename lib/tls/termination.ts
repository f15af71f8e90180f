/**
 * Where a TLS handshake must be ended by Portico (node:tls) rather than by
 * Deno's TLS listener: Deno's stack cannot ask for client certificates nor
 * bound the protocol version, so options that need either are served on
 * the path that peeks the ClientHello first.
 *
 * @module
 */

import type { CertificatePicker } from "./terminate_after_peek.ts";
import { asksClientCertificate, type TerminationOptions } from "./options.ts";

/** True when `options` ask for what only a handshake ended by Portico can do. */
export function endsTlsHere(options: TerminationOptions | undefined): boolean {
  if (!options) return false;
  return asksClientCertificate(options) || options.minVersion !== "TLSv1.2" ||
    options.maxVersion !== "TLSv1.3";
}

/**
 * The options to end an HTTPS handshake with, when the SNI name selects
 * options that ask for client certificates; undefined leaves it to Deno's
 * TLS. Only HTTP/1.1 is offered: the decrypted stream goes to the HTTP/1.1
 * engine (HTTP/2 needs a socket Deno's native server owns).
 */
export function httpsTermination(
  pick: CertificatePicker,
  serverName: string,
): TerminationOptions | undefined {
  const options = pick(serverName)?.options;
  if (!options || !asksClientCertificate(options)) return undefined;
  return {
    ...options,
    alpn: options.alpn.includes("http/1.1") || options.alpn.length === 0 ? ["http/1.1"] : [],
  };
}

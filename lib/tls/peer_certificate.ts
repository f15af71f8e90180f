/**
 * What a finished handshake showed of the client's certificate, in the
 * shape the client-auth decision ({@linkcode clientAuthRefusal}) and the
 * request (`passTLSClientCert`) need: the DER chain the client sent, leaf
 * first, and the leaf's extended key usages.
 *
 * `@peculiar/x509` reads the key usages; it is loaded only once options
 * that verify client certificates are in use (it costs memory).
 *
 * @module
 */

import type * as X509 from "@peculiar/x509";
import type { PeerEvidence } from "./options.ts";

let x509Module: Promise<typeof X509> | undefined;
let x509Loaded: typeof X509 | undefined;

/** Loads `@peculiar/x509` once; later calls resolve at once. */
export function loadX509(): Promise<typeof X509> {
  return x509Module ??= import("@peculiar/x509").then((m) => {
    x509Loaded = m;
    return m;
  });
}

/** The part of node's detailed peer certificate read here. */
export interface DetailedPeerCertificate {
  raw?: Uint8Array;
  issuerCertificate?: DetailedPeerCertificate;
}

/** The DER chain of a detailed peer certificate, leaf first, each certificate once. */
export function chainOf(detailed: DetailedPeerCertificate | undefined | null): Uint8Array[] {
  const chain: Uint8Array[] = [];
  const seen = new Set<DetailedPeerCertificate>();
  for (let c = detailed; c && c.raw && !seen.has(c); c = c.issuerCertificate) {
    seen.add(c);
    chain.push(new Uint8Array(c.raw));
  }
  return chain;
}

/** The extended key usages of a DER certificate, or undefined when it has none (or x509 is not loaded). */
export function extendedKeyUsages(der: Uint8Array): string[] | undefined {
  if (!x509Loaded) return undefined;
  const cert = new x509Loaded.X509Certificate(der as Uint8Array<ArrayBuffer>);
  const ext = cert.getExtension(x509Loaded.ExtendedKeyUsageExtension);
  return ext ? ext.usages.map(String) : undefined;
}

/** The evidence for the client-auth decision, and the chain for the request. */
export function peerEvidence(
  detailed: DetailedPeerCertificate | undefined | null,
  verifyError: string | undefined,
): PeerEvidence & { chain: Uint8Array[] } {
  const chain = chainOf(detailed);
  return {
    present: chain.length > 0,
    verifyError,
    extendedKeyUsages: chain.length ? extendedKeyUsages(chain[0]) : undefined,
    chain,
  };
}

/**
 * One `tls.options` entry made ready for a handshake that Portico ends with
 * `node:tls` (terminating TCP routers, and HTTPS names that ask for client
 * certificates): version bounds, ALPN, the client-certificate policy with
 * its CA certificates read once here, never on the handshake path.
 *
 * Traefik's rules are kept: `caFiles` without a `clientAuthType` means
 * RequireAndVerifyClientCert; the verifying types need `caFiles`.
 *
 * @module
 */

import type { TLSOptionsConfig } from "../config/types.ts";
import { readPemFieldSync } from "./certificate.ts";

export type ClientAuthType =
  | "NoClientCert"
  | "RequestClientCert"
  | "RequireAnyClientCert"
  | "VerifyClientCertIfGiven"
  | "RequireAndVerifyClientCert";

const CLIENT_AUTH_TYPES: readonly ClientAuthType[] = [
  "NoClientCert",
  "RequestClientCert",
  "RequireAnyClientCert",
  "VerifyClientCertIfGiven",
  "RequireAndVerifyClientCert",
];

/** The protocol versions node:tls takes (its stack speaks TLS 1.2 and 1.3 only). */
export type NodeTlsVersion = "TLSv1.2" | "TLSv1.3";

export interface TerminationOptions {
  /** The options' name, for errors and logs. */
  readonly name: string;
  readonly minVersion: NodeTlsVersion;
  readonly maxVersion: NodeTlsVersion;
  /** ALPN protocols offered, in preference order; empty offers none. */
  readonly alpn: readonly string[];
  readonly clientAuth: ClientAuthType;
  /** The CA certificates client certificates are verified against, as PEM. */
  readonly caPems: readonly string[];
  readonly sniStrict: boolean;
}

/** Options that ask for nothing beyond what any handshake does. */
export const DEFAULT_TERMINATION: TerminationOptions = {
  name: "default",
  minVersion: "TLSv1.2",
  maxVersion: "TLSv1.3",
  alpn: [],
  clientAuth: "NoClientCert",
  caPems: [],
  sniStrict: false,
};

/** Traefik's version names on node:tls; below 1.2 the stack refuses anyway, so a lower floor is 1.2. */
function versionOf(
  where: string,
  value: string | undefined,
  fallback: NodeTlsVersion,
  isMax: boolean,
): NodeTlsVersion {
  if (value === undefined) return fallback;
  if (value === "VersionTLS13") return "TLSv1.3";
  if (value === "VersionTLS12") return "TLSv1.2";
  if (!isMax && (value === "VersionTLS10" || value === "VersionTLS11")) return "TLSv1.2";
  throw new Error(
    `${where}=${value}: this TLS stack speaks TLS 1.2 and 1.3 only, so it cannot cap the version below 1.2`,
  );
}

/**
 * Compiles `tls.options.<name>`; throws an error naming the key when the
 * options cannot be honoured (unknown client-auth type, missing or
 * unreadable CA files).
 */
export function compileTerminationOptions(
  name: string,
  o: TLSOptionsConfig,
  readPem: (where: string, value: string) => string = readPemFieldSync,
): TerminationOptions {
  const where = `tls.options.${name}`;
  const caFiles = o.clientAuth?.caFiles ?? [];
  const declared = o.clientAuth?.clientAuthType;
  const clientAuth = (declared ||
    (caFiles.length ? "RequireAndVerifyClientCert" : "NoClientCert")) as ClientAuthType;
  if (!CLIENT_AUTH_TYPES.includes(clientAuth)) {
    throw new Error(
      `${where}.clientAuth.clientAuthType: unknown client auth type ${JSON.stringify(clientAuth)}`,
    );
  }
  const verifies = clientAuth === "VerifyClientCertIfGiven" ||
    clientAuth === "RequireAndVerifyClientCert";
  if (verifies && caFiles.length === 0) {
    throw new Error(`${where}.clientAuth.caFiles: ${clientAuth} needs at least one CA file`);
  }
  const caPems = caFiles.map((f, i) => {
    const pem = readPem(`${where}.clientAuth.caFiles[${i}]`, f);
    if (!pem.includes("-----BEGIN CERTIFICATE-----")) {
      throw new Error(
        `${where}.clientAuth.caFiles[${i}]: no PEM certificate in ${
          JSON.stringify(f.slice(0, 80))
        }`,
      );
    }
    return pem;
  });
  const minVersion = versionOf(`${where}.minVersion`, o.minVersion, "TLSv1.2", false);
  const maxVersion = versionOf(`${where}.maxVersion`, o.maxVersion, "TLSv1.3", true);
  if (minVersion === "TLSv1.3" && maxVersion === "TLSv1.2") {
    throw new Error(`${where}.maxVersion: below minVersion`);
  }
  return {
    name,
    minVersion,
    maxVersion,
    alpn: o.alpnProtocols.filter((p) => p !== "acme-tls/1"),
    clientAuth,
    caPems,
    sniStrict: o.sniStrict,
  };
}

/** True when the options ask for client certificates, which only the node:tls path can do. */
export function asksClientCertificate(t: TerminationOptions): boolean {
  return t.clientAuth !== "NoClientCert";
}

/** What the handshake showed of the client's certificate. */
export interface PeerEvidence {
  /** The client sent a certificate. */
  present: boolean;
  /** Why the chain did not verify against the CAs, or undefined when it did. */
  verifyError?: string;
  /** The leaf's extended key usages (OIDs), undefined when the extension is absent. */
  extendedKeyUsages?: readonly string[];
}

const EKU_CLIENT_AUTH = "1.3.6.1.5.5.7.3.2";
const EKU_ANY = "2.5.29.37.0";

/**
 * Why a finished handshake must be refused under `clientAuth`, or
 * undefined to accept it. Pure: it decides on what the handshake showed,
 * as Go's crypto/tls does for each client-auth type (a verified leaf must
 * allow client authentication when it restricts its key usage).
 */
export function clientAuthRefusal(type: ClientAuthType, peer: PeerEvidence): string | undefined {
  const requires = type === "RequireAnyClientCert" || type === "RequireAndVerifyClientCert";
  const verifies = type === "VerifyClientCertIfGiven" || type === "RequireAndVerifyClientCert";
  if (!peer.present) return requires ? "client certificate required" : undefined;
  if (!verifies) return undefined;
  if (peer.verifyError) return `client certificate not trusted: ${peer.verifyError}`;
  const eku = peer.extendedKeyUsages;
  if (eku && !eku.includes(EKU_CLIENT_AUTH) && !eku.includes(EKU_ANY)) {
    return "client certificate not valid for client authentication (extended key usage)";
  }
  return undefined;
}

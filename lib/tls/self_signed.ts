/**
 * Self-signed certificates made in process with WebCrypto: the default
 * certificate served when no other matches (Traefik's "TRAEFIK DEFAULT
 * CERT"), and short-lived test certificates.
 *
 * `@peculiar/x509` is imported on the first call, not with this module: it
 * costs about 12 MB of RSS, and an instance that serves no TLS, or
 * has its own default certificate, never needs it.
 *
 * @module
 */

import type * as X509 from "@peculiar/x509";

let x509Module: Promise<typeof X509> | undefined;

function loadX509(): Promise<typeof X509> {
  x509Module ??= import("@peculiar/x509").then((m) => {
    m.cryptoProvider.set(crypto);
    return m;
  });
  return x509Module;
}

const EC = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

/** Options for {@linkcode generateSelfSigned}. */
export interface SelfSignedOptions {
  /** Subject CN; default "TRAEFIK DEFAULT CERT". */
  commonName?: string;
  /** DNS names for the SAN extension; default none. */
  dnsNames?: string[];
  /** Start of validity; default now. */
  notBefore?: Date;
  /** Validity in days; default 365. */
  days?: number;
  /** Signs with this CA (PEM cert + key) instead of self-signing. */
  issuer?: { certPem: string; keyPem: string };
  /** Marks it as a CA (for test roots). */
  ca?: boolean;
}

function toPem(label: string, der: ArrayBuffer): string {
  const b64 = btoa(String.fromCharCode(...new Uint8Array(der)));
  return `-----BEGIN ${label}-----\n${b64.replace(/.{1,64}/g, "$&\n")}-----END ${label}-----\n`;
}

function fromPem(pem: string): ArrayBuffer {
  const b64 = pem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, "");
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)).buffer;
}

/**
 * Makes an EC P-256 certificate and key, both PEM.
 *
 * @example
 * ```ts
 * const { certPem, keyPem } = await generateSelfSigned({ dnsNames: ["a.test"] });
 * ```
 */
export async function generateSelfSigned(
  options: SelfSignedOptions = {},
): Promise<{ certPem: string; keyPem: string }> {
  const x509 = await loadX509();
  const keys = await crypto.subtle.generateKey(EC, true, ["sign", "verify"]) as CryptoKeyPair;
  const notBefore = options.notBefore ?? new Date();
  const notAfter = new Date(notBefore.getTime() + (options.days ?? 365) * 86_400_000);
  const name = `CN=${options.commonName ?? "TRAEFIK DEFAULT CERT"}`;
  const extensions: X509.Extension[] = [
    new x509.BasicConstraintsExtension(Boolean(options.ca), undefined, true),
    new x509.KeyUsagesExtension(
      options.ca
        ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.digitalSignature
        : x509.KeyUsageFlags.digitalSignature,
      true,
    ),
  ];
  if (options.dnsNames?.length) {
    extensions.push(
      new x509.SubjectAlternativeNameExtension(
        options.dnsNames.map((value) => ({ type: "dns" as const, value })),
      ),
    );
  }
  const serialNumber = [...crypto.getRandomValues(new Uint8Array(12))]
    .map((b) => b.toString(16).padStart(2, "0")).join("").replace(/^[89a-f]/, "1");
  let cert: X509.X509Certificate;
  if (options.issuer) {
    const issuerCert = new x509.X509Certificate(options.issuer.certPem);
    const issuerKey = await crypto.subtle.importKey(
      "pkcs8",
      fromPem(options.issuer.keyPem),
      EC,
      false,
      ["sign"],
    );
    cert = await x509.X509CertificateGenerator.create({
      serialNumber,
      subject: name,
      issuer: issuerCert.subject,
      notBefore,
      notAfter,
      signingAlgorithm: EC,
      publicKey: keys.publicKey,
      signingKey: issuerKey,
      extensions,
    });
  } else {
    cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber,
      name,
      notBefore,
      notAfter,
      signingAlgorithm: EC,
      keys,
      extensions,
    });
  }
  const pkcs8 = await crypto.subtle.exportKey("pkcs8", keys.privateKey);
  return { certPem: cert.toString("pem") + "\n", keyPem: toPem("PRIVATE KEY", pkcs8) };
}

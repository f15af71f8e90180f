/**
 * One certificate as the TLS store holds it: the PEM chain and key, plus the
 * facts read from the leaf (names, issuer, validity) that SNI selection, the
 * API and renewal need.
 *
 * The leaf is read with `node:crypto`'s `X509Certificate`, which Deno
 * implements natively: `@peculiar/x509` would add about 12 MB to the RSS of
 * every instance that serves a certificate, for three fields.
 *
 * @module
 */

import { X509Certificate } from "node:crypto";

/** A certificate ready to serve. */
export interface StoredCertificate {
  /** PEM chain, leaf first. */
  certPem: string;
  /** PEM private key (PKCS#8, SEC1 or PKCS#1). */
  keyPem: string;
  /** DNS names from the SAN extension, or the CN when there is none; lower case. */
  names: string[];
  issuer: string;
  notBefore: Date;
  notAfter: Date;
  /** Where it came from, e.g. "file", "acme:le", "default". */
  source: string;
}

/** A certificate or key that cannot be used; `where` names the config field or key. */
export class CertificateError extends Error {
  constructor(readonly where: string, message: string) {
    super(`${where}: ${message}`);
    this.name = "CertificateError";
  }
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]+?-----END \1-----/g;

/** Splits a PEM bundle into its blocks, keeping their armour. */
export function pemBlocks(text: string): { label: string; pem: string }[] {
  return [...text.matchAll(PEM_BLOCK)].map((m) => ({ label: m[1], pem: m[0] }));
}

/**
 * Reads a cert/key field the way Traefik does: inline PEM when it contains a
 * PEM header, otherwise a file path.
 */
export async function readPemField(where: string, value: string): Promise<string> {
  if (value.includes("-----BEGIN ")) return value;
  try {
    return await Deno.readTextFile(value);
  } catch (err) {
    throw new CertificateError(where, `cannot read "${value}": ${(err as Error).message}`);
  }
}

/**
 * Parses a PEM chain and key into a {@linkcode StoredCertificate}.
 * Throws {@linkcode CertificateError} naming `where` when either is unusable.
 */
export function parseCertificate(
  where: string,
  certPem: string,
  keyPem: string,
  source: string,
): StoredCertificate {
  const certs = pemBlocks(certPem).filter((b) => b.label === "CERTIFICATE");
  if (certs.length === 0) {
    throw new CertificateError(where, "expected a PEM CERTIFICATE block, found none");
  }
  const keys = pemBlocks(keyPem).filter((b) => /PRIVATE KEY$/.test(b.label));
  if (keys.length === 0) {
    throw new CertificateError(
      where,
      "expected a PEM PRIVATE KEY (PKCS#8, EC or RSA) block, found none",
    );
  }
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(certs[0].pem);
  } catch (err) {
    throw new CertificateError(where, `certificate is not valid X.509: ${(err as Error).message}`);
  }
  const names = certificateNames(leaf);
  if (names.length === 0) {
    throw new CertificateError(where, "certificate has no DNS name (SAN) and no CN");
  }
  return {
    certPem: certs.map((c) => c.pem).join("\n") + "\n",
    keyPem: keys[0].pem + "\n",
    names,
    issuer: formatName(leaf.issuer),
    notBefore: leaf.validFromDate,
    notAfter: leaf.validToDate,
    source,
  };
}

/**
 * Deno lists SAN entries as `DNS:a.test, IP Address:127.0.0.1, email:x@y`.
 * A value may itself hold ", ", so entries are split only where the next
 * entry's type begins.
 */
const SAN_ENTRY = /, (?=(?:DNS|IP Address|email|URI|DirName|othername|Registered ID):)/;

function certificateNames(cert: X509Certificate): string[] {
  const names = new Set<string>();
  for (const entry of (cert.subjectAltName ?? "").split(SAN_ENTRY)) {
    if (entry.startsWith("DNS:")) names.add(entry.slice(4).toLowerCase());
  }
  if (names.size === 0) {
    const cn = relativeNames(cert.subject).flat().find(([type]) => type === "CN")?.[1];
    if (cn?.trim()) names.add(cn.trim().toLowerCase());
  }
  return [...names];
}

/**
 * A distinguished name as Deno prints it: one RDN a line, the attributes of
 * a multi-valued RDN joined by " + ".
 */
function relativeNames(name: string): [type: string, value: string][][] {
  return name.split("\n").filter(Boolean).map((rdn) =>
    rdn.split(" + ").map((attr) => {
      const eq = attr.indexOf("=");
      return [attr.slice(0, eq), attr.slice(eq + 1)];
    })
  );
}

/** RFC 4514 escaping of an attribute value. */
function escapeValue(value: string): string {
  return value.replace(/[,+"\\<>;]/g, "\\$&").replace(/^[ #]/, "\\$&").replace(/ $/, "\\ ");
}

/**
 * The issuer in the form the API has always shown: `C=US, O=Let's Encrypt,
 * CN=R3`, specials escaped as RFC 4514 says.
 */
function formatName(name: string): string {
  return relativeNames(name).map((rdn) =>
    rdn.map(([type, value]) => `${type === "emailAddress" ? "E" : type}=${escapeValue(value)}`)
      .join("+")
  ).join(", ");
}

/** {@linkcode readPemField} for the config apply path, which is synchronous. */
export function readPemFieldSync(where: string, value: string): string {
  if (value.includes("-----BEGIN ")) return value;
  try {
    return Deno.readTextFileSync(value);
  } catch (err) {
    throw new CertificateError(where, `cannot read "${value}": ${(err as Error).message}`);
  }
}

/**
 * The two headers of `passTLSClientCert`, from the client's certificates
 * as DER: the certificates themselves (base64 DER, one per certificate,
 * `,` between), and the selected fields of each in Traefik's layout
 * (`Subject="C=FR,O=Cheese";Issuer="…";SerialNumber="…";NB="…";NA="…";SAN="…"`,
 * `,` between certificates, then URL query-escaped as Go's
 * `url.QueryEscape`). Distinguished names are read as Go's `pkix.Name`
 * reads them: repeated attributes kept in order, but one CN and one
 * serialNumber (the last in the sequence).
 *
 * @module
 */

import type * as X509 from "@peculiar/x509";

export interface SubjectFields {
  commonName: boolean;
  country: boolean;
  domainComponent: boolean;
  locality: boolean;
  organization: boolean;
  organizationalUnit: boolean;
  province: boolean;
  serialNumber: boolean;
}

export type IssuerFields = Omit<SubjectFields, "organizationalUnit">;

export interface InfoFields {
  notAfter: boolean;
  notBefore: boolean;
  sans: boolean;
  serialNumber: boolean;
  subject?: SubjectFields;
  issuer?: IssuerFields;
}

const OID = {
  commonName: "2.5.4.3",
  serialNumber: "2.5.4.5",
  country: "2.5.4.6",
  locality: "2.5.4.7",
  province: "2.5.4.8",
  organization: "2.5.4.10",
  organizationalUnit: "2.5.4.11",
  domainComponent: "0.9.2342.19200300.100.1.25",
};

/** The certificates as Traefik's `pem` header carries them: base64 DER without armour or line breaks. */
export function pemHeader(ders: readonly Uint8Array[]): string {
  return ders.map(base64).join(",");
}

function base64(der: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < der.length; i += 0x8000) {
    binary += String.fromCharCode(...der.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/** One distinguished name's selected parts, in Go's order: DC, C, ST, L, O, OU, SN, CN. */
function distinguishedName(name: X509.Name, fields: Partial<SubjectFields>): string {
  const parts: string[] = [];
  const all = (oid: string, prefix: string) => {
    for (const v of name.getField(oid)) if (v.length > 0) parts.push(`${prefix}=${v}`);
  };
  const last = (oid: string, prefix: string) => {
    const values = name.getField(oid);
    const v = values[values.length - 1];
    if (v) parts.push(`${prefix}=${v}`);
  };
  if (fields.domainComponent) all(OID.domainComponent, "DC");
  if (fields.country) all(OID.country, "C");
  if (fields.province) all(OID.province, "ST");
  if (fields.locality) all(OID.locality, "L");
  if (fields.organization) all(OID.organization, "O");
  if (fields.organizationalUnit) all(OID.organizationalUnit, "OU");
  if (fields.serialNumber) last(OID.serialNumber, "SN");
  if (fields.commonName) last(OID.commonName, "CN");
  return parts.join(",");
}

/** Subject alternative names in Go's order: DNS names, e-mail addresses, IP addresses, URIs. */
function alternativeNames(x509: typeof X509, cert: X509.X509Certificate): string[] {
  const ext = cert.getExtension(x509.SubjectAlternativeNameExtension);
  if (!ext) return [];
  const items = ext.names.items;
  const of = (type: string) => items.filter((n) => n.type === type).map((n) => n.value);
  return [...of("dns"), ...of("email"), ...of("ip"), ...of("url")];
}

/** The serial number in decimal, as Go's `big.Int.String`. */
function decimalSerial(hex: string): string {
  return hex ? BigInt(`0x${hex}`).toString() : "";
}

/** One certificate's selected fields, joined with `;`. */
function oneCertificate(x509: typeof X509, der: Uint8Array, info: InfoFields): string {
  const cert = new x509.X509Certificate(der as Uint8Array<ArrayBuffer>);
  const values: string[] = [];
  if (info.subject) {
    const subject = distinguishedName(cert.subjectName, info.subject);
    if (subject) values.push(`Subject="${subject}"`);
  }
  if (info.issuer) {
    const issuer = distinguishedName(cert.issuerName, info.issuer);
    if (issuer) values.push(`Issuer="${issuer}"`);
  }
  if (info.serialNumber) {
    const serial = decimalSerial(cert.serialNumber);
    if (serial) values.push(`SerialNumber="${serial}"`);
  }
  if (info.notBefore) values.push(`NB="${Math.floor(cert.notBefore.getTime() / 1000)}"`);
  if (info.notAfter) values.push(`NA="${Math.floor(cert.notAfter.getTime() / 1000)}"`);
  if (info.sans) {
    const sans = alternativeNames(x509, cert);
    if (sans.length) values.push(`SAN="${sans.join(",")}"`);
  }
  return values.join(";");
}

/** The info header's content before escaping. */
export function certificateInfo(
  x509: typeof X509,
  ders: readonly Uint8Array[],
  info: InfoFields,
): string {
  return ders.map((der) => oneCertificate(x509, der, info)).join(",");
}

/** Go's `url.QueryEscape`: every byte but letters, digits and `-_.~` escaped, space as `+`. */
export function goQueryEscape(text: string): string {
  return encodeURIComponent(text)
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%20/g, "+");
}

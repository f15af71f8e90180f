/**
 * AWS Signature Version 4 for a request's headers (the `Authorization:
 * AWS4-HMAC-SHA256 …` form), as the Route 53 API requires: canonical
 * request, string to sign, the derived key chain, the signature. Checked
 * against AWS's published test-suite vectors in tests/acme_dns01_providers_test.ts.
 *
 * @module
 */

import { createHash, createHmac } from "node:crypto";

/** What to sign. */
export interface SigV4Request {
  method: string;
  url: URL;
  /** Headers to sign (names any case); must include `host` and `x-amz-date`. */
  headers: Record<string, string>;
  /** Hex SHA-256 of the body (see {@linkcode sha256Hex}). */
  payloadHash: string;
}

/** Who signs, where. */
export interface SigV4Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  service: string;
}

/** The pieces of a signature (the intermediate ones for tests and diagnostics). */
export interface SigV4Result {
  authorization: string;
  signedHeaders: string;
  canonicalRequest: string;
  stringToSign: string;
  signature: string;
}

/** Hex SHA-256. */
export function sha256Hex(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** RFC 3986 percent-encoding with only unreserved characters left as they are. */
function uriEncode(text: string): string {
  return encodeURIComponent(text).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

function canonicalPath(url: URL): string {
  const segments = url.pathname.split("/").map((s) => uriEncode(decodeURIComponent(s)));
  const path = segments.join("/");
  return path === "" ? "/" : path;
}

function canonicalQuery(url: URL): string {
  const pairs = [...url.searchParams].map(([k, v]) => [uriEncode(k), uriEncode(v)]);
  pairs.sort((
    a,
    b,
  ) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join("&");
}

/** Signs `req`; the date comes from its `x-amz-date` header (`YYYYMMDDTHHMMSSZ`). */
export function signV4(req: SigV4Request, creds: SigV4Credentials): SigV4Result {
  const headers = new Map<string, string>();
  for (const [k, v] of Object.entries(req.headers)) {
    headers.set(k.toLowerCase(), v.trim().replace(/\s+/g, " "));
  }
  const amzDate = headers.get("x-amz-date");
  if (!amzDate || !/^\d{8}T\d{6}Z$/.test(amzDate)) {
    throw new Error("SigV4: the x-amz-date header (YYYYMMDDTHHMMSSZ) is required");
  }
  const names = [...headers.keys()].sort();
  const signedHeaders = names.join(";");
  const canonicalRequest = [
    req.method.toUpperCase(),
    canonicalPath(req.url),
    canonicalQuery(req.url),
    names.map((n) => `${n}:${headers.get(n)}\n`).join(""),
    signedHeaders,
    req.payloadHash,
  ].join("\n");
  const day = amzDate.slice(0, 8);
  const scope = `${day}/${creds.region}/${creds.service}/aws4_request`;
  const stringToSign = ["AWS4-HMAC-SHA256", amzDate, scope, sha256Hex(canonicalRequest)].join("\n");
  const hmac = (key: string | Uint8Array, data: string) =>
    new Uint8Array(createHmac("sha256", key).update(data).digest());
  const kDate = hmac(`AWS4${creds.secretAccessKey}`, day);
  const kRegion = hmac(kDate, creds.region);
  const kService = hmac(kRegion, creds.service);
  const kSigning = hmac(kService, "aws4_request");
  const signature = createHmac("sha256", kSigning).update(stringToSign).digest("hex");
  return {
    authorization:
      `AWS4-HMAC-SHA256 Credential=${creds.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`,
    signedHeaders,
    canonicalRequest,
    stringToSign,
    signature,
  };
}

/** `YYYYMMDDTHHMMSSZ` for `date`. */
export function amzDate(date: Date): string {
  return date.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}

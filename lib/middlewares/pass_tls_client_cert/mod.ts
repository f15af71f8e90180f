/**
 * The `passTLSClientCert` middleware: passes the client's TLS certificate
 * (`pem`) and selected fields of it (`info`) to the backend in
 * `X-Forwarded-Tls-Client-Cert` and `X-Forwarded-Tls-Client-Cert-Info`,
 * as Traefik's does. The certificates come from a handshake Portico ended
 * with client-certificate options (`tls.options.NAME.clientAuth`).
 *
 * @module
 */

import type * as X509 from "@peculiar/x509";
import type { ConnectionInfo } from "../../contracts.ts";
import { loadX509 } from "../../tls/peer_certificate.ts";
import { type OptionReader, readOptions } from "../options.ts";
import { type MiddlewareFactory, writableRequestHeaders } from "../types.ts";
import {
  certificateInfo,
  goQueryEscape,
  type InfoFields,
  type IssuerFields,
  pemHeader,
  type SubjectFields,
} from "./cert_info.ts";

const CERT_HEADER = "x-forwarded-tls-client-cert";
const INFO_HEADER = "x-forwarded-tls-client-cert-info";

const SUBJECT_KEYS: (keyof SubjectFields)[] = [
  "commonName",
  "country",
  "domainComponent",
  "locality",
  "organization",
  "organizationalUnit",
  "province",
  "serialNumber",
];
const ISSUER_KEYS = SUBJECT_KEYS.filter((k) =>
  k !== "organizationalUnit"
) as (keyof IssuerFields)[];

function readFields<K extends string>(o: OptionReader, keys: K[]): Record<K, boolean> {
  o.unknownKeysCheck(keys);
  return Object.fromEntries(keys.map((k) => [k, o.bool(k, { default: false })])) as Record<
    K,
    boolean
  >;
}

function readInfo(o: OptionReader): InfoFields {
  o.unknownKeysCheck(["notAfter", "notBefore", "sans", "serialNumber", "subject", "issuer"]);
  const subject = o.object("subject");
  const issuer = o.object("issuer");
  return {
    notAfter: o.bool("notAfter", { default: false }),
    notBefore: o.bool("notBefore", { default: false }),
    sans: o.bool("sans", { default: false }),
    serialNumber: o.bool("serialNumber", { default: false }),
    subject: subject && readFields(subject, SUBJECT_KEYS),
    issuer: issuer && readFields(issuer, ISSUER_KEYS),
  };
}

/**
 * Builds `passTLSClientCert` from `{ pem, info }`.
 *
 * Differs from Traefik on purpose: a request without a client certificate
 * has these two headers removed when the middleware would set them
 * (Traefik leaves what the client sent, which a client could forge).
 *
 * @example
 * ```toml
 * [http.middlewares.cert.passTLSClientCert]
 * pem = true
 * [http.middlewares.cert.passTLSClientCert.info]
 * notAfter = true
 * [http.middlewares.cert.passTLSClientCert.info.subject]
 * commonName = true
 * ```
 */
export const passTLSClientCert: MiddlewareFactory = (options, context) => {
  const o = readOptions(context.name, options);
  o.unknownKeysCheck(["pem", "info"]);
  const pem = o.bool("pem", { default: false });
  const infoReader = o.object("info");
  const info = infoReader && readInfo(infoReader);
  // The certificate reader costs memory: loaded when a middleware that needs it is built.
  let x509: typeof X509 | undefined;
  const ready = info ? loadX509().then((m) => (x509 = m)) : Promise.resolve();
  // Per connection the chain is one array: its headers are computed once.
  const computed = new WeakMap<readonly Uint8Array[], { pem?: string; info?: string }>();
  return async (c, next) => {
    const proxy = c.get("proxy");
    const chain = (c.env as ConnectionInfo | undefined)?.peerCertificates;
    if (pem || info) {
      const headers = writableRequestHeaders(proxy);
      if (!chain?.length) {
        if (pem) headers.delete(CERT_HEADER);
        if (info) headers.delete(INFO_HEADER);
      } else {
        let values = computed.get(chain);
        if (!values) {
          if (info && !x509) await ready;
          values = {
            pem: pem ? pemHeader(chain) : undefined,
            info: info ? goQueryEscape(certificateInfo(x509!, chain, info)) : undefined,
          };
          computed.set(chain, values);
        }
        if (values.pem !== undefined) headers.set(CERT_HEADER, values.pem);
        if (values.info !== undefined) headers.set(INFO_HEADER, values.info);
      }
    }
    await next();
  };
};

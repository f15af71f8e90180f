/**
 * Turns the dynamic `tls` section into what the store needs: the static
 * certificates (`[[tls.certificates]]`, `tls.stores.default.defaultCertificate`)
 * and the per-name handshake policy from `tls.options`.
 *
 * What Deno's TLS stack (rustls) cannot do is reported, not silently
 * dropped: `minVersion`/`maxVersion` other than TLS 1.2/1.3 bounds and
 * `cipherSuites` are warned about (rustls offers TLS 1.2 and 1.3 with its
 * own safe suites); `clientAuth` that requires or verifies client
 * certificates cannot be honoured, so names using such options are
 * refused at the handshake (fail closed) rather than served without it.
 *
 * @module
 */

import type { TLSOptionsConfig } from "../config/types.ts";
import type { MergedConfig } from "../providers/merge.ts";
import { parseDomains } from "../rules/mod.ts";
import { parseCertificate, readPemFieldSync, type StoredCertificate } from "./certificate.ts";
import { type HandshakePolicy, normalizeServerName } from "./store.ts";

/** Client-auth types that need the server to ask for a certificate. */
const CLIENT_AUTH_ENFORCING = new Set([
  "RequestClientCert",
  "RequireAnyClientCert",
  "VerifyClientCertIfGiven",
  "RequireAndVerifyClientCert",
]);

/** The static certificates of a merged config, and one error per unusable entry. */
export function configuredCertificates(merged: MergedConfig): {
  certificates: StoredCertificate[];
  defaultCertificate?: StoredCertificate;
  errors: string[];
} {
  const certificates: StoredCertificate[] = [];
  const errors: string[] = [];
  merged.tls.certificates.forEach((c, i) => {
    const where = `tls.certificates[${i}]@${c.provider}`;
    try {
      certificates.push(
        parseCertificate(
          where,
          readPemFieldSync(`${where}.certFile`, c.certFile),
          readPemFieldSync(`${where}.keyFile`, c.keyFile),
          "file",
        ),
      );
    } catch (err) {
      errors.push((err as Error).message);
    }
  });
  let defaultCertificate: StoredCertificate | undefined;
  const d = merged.tls.stores["default"]?.defaultCertificate;
  if (d) {
    const where = "tls.stores.default.defaultCertificate";
    try {
      defaultCertificate = parseCertificate(
        where,
        readPemFieldSync(`${where}.certFile`, d.certFile),
        readPemFieldSync(`${where}.keyFile`, d.keyFile),
        "default",
      );
    } catch (err) {
      errors.push((err as Error).message);
    }
  }
  return { certificates, defaultCertificate, errors };
}

/** Why an options set cannot be honoured by rustls, if it cannot. */
function refusal(name: string, o: TLSOptionsConfig): string | undefined {
  const type = o.clientAuth?.clientAuthType ?? "NoClientCert";
  if (CLIENT_AUTH_ENFORCING.has(type)) {
    return `tls.options.${name}.clientAuth.clientAuthType=${type} is not supported by this TLS stack; refusing rather than serving without client certificates`;
  }
  return undefined;
}

/** Options that are accepted but not enforced, as warnings naming the field. */
export function unsupportedOptionWarnings(merged: MergedConfig): string[] {
  const out: string[] = [];
  for (const [name, o] of merged.tls.options) {
    if (o.minVersion && !["VersionTLS12", "VersionTLS10", "VersionTLS11"].includes(o.minVersion)) {
      out.push(
        `tls.options.${name}.minVersion=${o.minVersion}: not enforced; TLS 1.2 and 1.3 are offered`,
      );
    }
    if (o.maxVersion && o.maxVersion !== "VersionTLS13") {
      out.push(
        `tls.options.${name}.maxVersion=${o.maxVersion}: not enforced; TLS 1.2 and 1.3 are offered`,
      );
    }
    if (o.cipherSuites.length) {
      out.push(`tls.options.${name}.cipherSuites: ignored; rustls uses its own safe suites`);
    }
  }
  return out;
}

/**
 * The per-name handshake policy: a router's `tls.options` applies to the
 * literal hosts of its rule and its `tls.domains`; every other name gets
 * `tls.options.default`.
 */
export function handshakePolicy(merged: MergedConfig): (name: string) => HandshakePolicy {
  const fallback = merged.tls.options.get("default");
  const defaultPolicy: HandshakePolicy = {
    sniStrict: fallback?.sniStrict ?? false,
    refuse: fallback ? refusal("default", fallback) : undefined,
  };
  const byName = new Map<string, HandshakePolicy>();
  for (const [, router] of merged.routers) {
    const optionsName = router.config.tls?.options?.replace(/@.*$/, "");
    if (!optionsName || optionsName === "default") continue;
    const o = merged.tls.options.get(optionsName);
    if (!o) continue;
    const policy: HandshakePolicy = { sniStrict: o.sniStrict, refuse: refusal(optionsName, o) };
    const names = [
      ...parseDomains(router.config.rule),
      ...(router.config.tls?.domains ?? []).flatMap((d) => [d.main, ...d.sans]),
    ];
    for (const n of names) byName.set(normalizeServerName(n), policy);
  }
  return (name) => byName.get(name) ?? defaultPolicy;
}

/** The ALPN protocols of `tls.options.default` that the listener can offer. */
export function listenerAlpn(merged: MergedConfig | undefined): string[] {
  const wanted = merged?.tls.options.get("default")?.alpnProtocols ??
    ["h2", "http/1.1", "acme-tls/1"];
  const offered = wanted.filter((p) => p === "h2" || p === "http/1.1" || p === "acme-tls/1");
  return offered.length ? offered : ["h2", "http/1.1"];
}

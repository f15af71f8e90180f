/**
 * Turns the dynamic `tls` section into what the store needs: the static
 * certificates (`[[tls.certificates]]`, `tls.stores.default.defaultCertificate`)
 * and the per-name handshake policy from `tls.options`.
 *
 * What Deno's TLS listener cannot do is reported, not silently dropped:
 * `minVersion`/`maxVersion` bounds on HTTPS names and `cipherSuites` are
 * warned about (the stack offers TLS 1.2 and 1.3 with its own safe
 * suites). Names whose options ask for client certificates are ended by
 * Portico with node:tls instead (see lib/tls/termination.ts); options that
 * cannot be compiled (a CA file missing) refuse their names at the
 * handshake rather than serve them without.
 *
 * @module
 */

import type { TLSOptionsConfig } from "../config/types.ts";
import type { MergedConfig } from "../providers/merge.ts";
import { parseDomains } from "../rules/mod.ts";
import { parseCertificate, readPemFieldSync, type StoredCertificate } from "./certificate.ts";
import { type HandshakePolicy, normalizeServerName } from "./store.ts";
import { asksClientCertificate, compileTerminationOptions } from "./options.ts";

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

/** The handshake policy of one options set: its client-certificate terms, or why its names are refused. */
function policyOf(name: string, o: TLSOptionsConfig): HandshakePolicy {
  try {
    const t = compileTerminationOptions(name, o);
    return { sniStrict: o.sniStrict, termination: asksClientCertificate(t) ? t : undefined };
  } catch (err) {
    return { sniStrict: o.sniStrict, refuse: (err as Error).message };
  }
}

/** Options that are accepted but not enforced, as warnings naming the field. */
export function unsupportedOptionWarnings(merged: MergedConfig): string[] {
  const out: string[] = [];
  for (const [name, o] of merged.tls.options) {
    // Handshakes Portico ends itself (TCP routers, client-certificate names) honour the bounds.
    const auth = o.clientAuth?.clientAuthType || (o.clientAuth?.caFiles.length ? "RequireAndVerifyClientCert" : "NoClientCert");
    if (auth !== "NoClientCert" && o.maxVersion !== "VersionTLS10" && o.maxVersion !== "VersionTLS11") {
      // Names with client-certificate terms are ended by Portico, which honours the bounds.
      if (o.cipherSuites.length) out.push(`tls.options.${name}.cipherSuites: ignored; the TLS stack uses its own safe suites`);
      continue;
    }
    const where = "on HTTPS routers (Deno's TLS offers 1.2 and 1.3); enforced on TCP routers";
    if (o.minVersion && !["VersionTLS12", "VersionTLS10", "VersionTLS11"].includes(o.minVersion)) {
      out.push(`tls.options.${name}.minVersion=${o.minVersion}: not enforced ${where}`);
    }
    if (o.maxVersion && o.maxVersion !== "VersionTLS13") {
      out.push(`tls.options.${name}.maxVersion=${o.maxVersion}: not enforced ${where}`);
    }
    if (o.cipherSuites.length) {
      out.push(`tls.options.${name}.cipherSuites: ignored; the TLS stack uses its own safe suites`);
    }
  }
  return out;
}

/**
 * The per-name handshake policy: a router's `tls.options` applies to the
 * literal hosts of its rule and its `tls.domains`; every other name gets
 * `tls.options.default`.
 */
export function handshakePolicy(merged: MergedConfig): ((name: string) => HandshakePolicy) & { peek: boolean } {
  const fallback = merged.tls.options.get("default");
  const defaultPolicy: HandshakePolicy = fallback ? policyOf("default", fallback) : { sniStrict: false };
  const byName = new Map<string, HandshakePolicy>();
  for (const [, router] of merged.routers) {
    const optionsName = router.config.tls?.options?.replace(/@.*$/, "");
    if (!optionsName || optionsName === "default") continue;
    const o = merged.tls.options.get(optionsName);
    if (!o) continue;
    const policy = policyOf(optionsName, o);
    const names = [
      ...parseDomains(router.config.rule),
      ...(router.config.tls?.domains ?? []).flatMap((d) => [d.main, ...d.sans]),
    ];
    for (const n of names) byName.set(normalizeServerName(n), policy);
  }
  const lookup = (name: string) => byName.get(name) ?? defaultPolicy;
  const peek = defaultPolicy.termination !== undefined || [...byName.values()].some((p) => p.termination);
  return Object.assign(lookup, { peek });
}

/** The ALPN protocols of `tls.options.default` that the listener can offer. */
export function listenerAlpn(merged: MergedConfig | undefined): string[] {
  const wanted = merged?.tls.options.get("default")?.alpnProtocols ??
    ["h2", "http/1.1", "acme-tls/1"];
  const offered = wanted.filter((p) => p === "h2" || p === "http/1.1" || p === "acme-tls/1");
  return offered.length ? offered : ["h2", "http/1.1"];
}

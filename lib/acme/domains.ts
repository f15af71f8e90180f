/**
 * Which certificates the ACME resolvers should hold, from the routers:
 * `tls.domains` (`main` + `sans`) when given, otherwise the literal hosts of
 * the rule (`Host(...)`), as one certificate per router like Traefik.
 * Routers on an entrypoint with `http.tls.certResolver` inherit it.
 * Wildcards (`*.example.com`) are wanted only from resolvers with
 * `dnsChallenge`: a CA validates them by DNS-01 alone.
 * Terminating TCP routers ask the same way, with their `HostSNI` names.
 *
 * @module
 */

import type { StaticConfig } from "../config/types.ts";
import type { MergedConfig } from "../providers/merge.ts";
import { parseDomains } from "../rules/mod.ts";
import { parseHostSNI } from "../rules/tcp.ts";

/** One certificate a resolver should obtain. */
export interface WantedCertificate {
  resolver: string;
  main: string;
  sans: string[];
  /** The routers that asked for it (for errors and the API). */
  routers: string[];
}

/** Stable identity of a domain set: resolver + sorted names. */
export function certificateKey(resolver: string, main: string, sans: string[]): string {
  return `${resolver}|${[main, ...[...new Set(sans)].filter((s) => s !== main).sort()].join(",")}`;
}

/** The wanted certificates, and one error per router that cannot get one. */
export function wantedCertificates(merged: MergedConfig, staticConfig: StaticConfig): {
  wanted: WantedCertificate[];
  errors: string[];
} {
  const byKey = new Map<string, WantedCertificate>();
  const errors: string[] = [];
  const want = (name: string, resolver: string, sets: string[][]) => {
    if (!staticConfig.certificatesResolvers[resolver]) {
      errors.push(
        `router "${name}": tls.certResolver "${resolver}" is not defined in certificatesResolvers`,
      );
      return;
    }
    for (const names of sets) {
      const clean = [...new Set(names.map((n) => n.toLowerCase()))].filter(Boolean);
      if (clean.length === 0) continue;
      const wild = clean.find((n) => n.includes("*"));
      if (wild && !staticConfig.certificatesResolvers[resolver].acme.dnsChallenge) {
        errors.push(
          `router "${name}": "${wild}" needs a DNS-01 challenge, which resolver "${resolver}" does not offer (add dnsChallenge to it)`,
        );
        continue;
      }
      // CAs issue for a wildcard only as the whole leftmost label (RFC 8555 §7.1.3).
      const badWild = clean.find((n) => n.includes("*") && !/^\*\.[^*]+\.[^*]+$/.test(n));
      if (badWild) {
        errors.push(
          `router "${name}": "${badWild}" is not a wildcard a CA issues; expected "*." followed by a domain, like "*.example.com"`,
        );
        continue;
      }
      const [main, ...sans] = clean;
      const key = certificateKey(resolver, main, sans);
      const existing = byKey.get(key);
      if (existing) existing.routers.push(name);
      else byKey.set(key, { resolver, main, sans, routers: [name] });
    }
  };
  for (const [name, entry] of merged.tcp.routers) {
    const tls = entry.config.tls;
    if (!tls?.certResolver || tls.passthrough) continue;
    let sni: string[] = [];
    try {
      sni = parseHostSNI(entry.config.rule).filter((h) => h !== "*");
    } catch { /* the router reports its bad rule */ }
    want(name, tls.certResolver, tls.domains.length ? tls.domains.map((d) => [d.main, ...d.sans]) : [sni]);
  }
  for (const [name, entry] of merged.routers) {
    const tls = entry.config.tls;
    const eps = entry.config.entryPoints.length
      ? entry.config.entryPoints
      : Object.keys(staticConfig.entryPoints);
    const epTls = eps.map((e) => staticConfig.entryPoints[e]?.http.tls).find((t) =>
      t?.certResolver
    );
    const resolver = tls?.certResolver ?? (tls || epTls ? epTls?.certResolver : undefined);
    if (!resolver) continue;
    const declared = tls?.domains?.length ? tls.domains : epTls?.domains ?? [];
    want(name, resolver, declared.length ? declared.map((d) => [d.main, ...d.sans]) : [parseDomains(entry.config.rule)]);
  }
  for (const [store, config] of Object.entries(merged.tls.stores)) {
    const generated = config.defaultGeneratedCert;
    if (!generated) continue;
    if (store !== "default") {
      errors.push(`tls.stores.${store}.defaultGeneratedCert: only the "default" store exists`);
      continue;
    }
    want(`tls.stores.${store}.defaultGeneratedCert`, generated.resolver, [[generated.domain.main, ...generated.domain.sans]]);
  }
  return { wanted: [...byKey.values()], errors };
}

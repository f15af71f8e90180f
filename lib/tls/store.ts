/**
 * The live TLS certificate store: certificates grouped by source (file
 * config, each ACME resolver, the KV store), SNI selection, the default
 * certificate, TLS-ALPN-01 challenge certificates, and change
 * notifications so listeners can pick up new certificates for new
 * handshakes. Lookups are in memory only: the handshake path never waits
 * on disk or the network.
 *
 * @module
 */

import type { StoredCertificate } from "./certificate.ts";
import type { TerminationOptions } from "./options.ts";

/** The PEM pair a handshake gets. */
export interface KeyPair {
  cert: string;
  key: string;
}

/** What the store decides for one SNI name. */
export type Selection =
  | {
    kind: "certificate";
    pair: KeyPair;
    certificate?: StoredCertificate;
    via: "exact" | "wildcard" | "default" | "challenge";
    /** Client-certificate terms: this handshake must be ended by Portico, not Deno's TLS. */
    termination?: TerminationOptions;
  }
  | { kind: "refuse"; reason: string };

/** Per-name handshake rules derived from `tls.options` (see lib/tls/options.ts). */
export interface HandshakePolicy {
  /** Refuse names that have no certificate of their own (no default fallback). */
  sniStrict: boolean;
  /** Set when the options cannot be honoured (fail closed), e.g. a CA file cannot be read. */
  refuse?: string;
  /** Set when the options ask for client certificates. */
  termination?: TerminationOptions;
}

const OPEN: HandshakePolicy = { sniStrict: false };

/** Normalises an SNI value: lower case, no trailing dot. */
export function normalizeServerName(sni: string): string {
  return sni.toLowerCase().replace(/\.$/, "");
}

/**
 * @example
 * ```ts
 * const store = new CertificateStore(defaultCert);
 * store.replaceSource("file", [parseCertificate("tls.certificates[0]", cert, key, "file")]);
 * store.select("a.example.com"); // exact, then *.example.com, then the default
 * ```
 */
export class CertificateStore {
  #bySource = new Map<string, StoredCertificate[]>();
  #exact = new Map<string, StoredCertificate>();
  #wildcard = new Map<string, StoredCertificate>();
  #default: StoredCertificate;
  #challenges = new Map<string, KeyPair>();
  #policy: (name: string) => HandshakePolicy = () => OPEN;
  #peek = false;
  #listeners = new Set<() => void>();
  #version = 0;

  constructor(defaultCertificate: StoredCertificate) {
    this.#default = defaultCertificate;
  }

  /** Bumped on every change; listeners compare it to know whether to re-resolve. */
  get version(): number {
    return this.#version;
  }

  get defaultCertificate(): StoredCertificate {
    return this.#default;
  }

  setDefault(certificate: StoredCertificate): void {
    this.#default = certificate;
    this.#changed();
  }

  /** Replaces every certificate of `source` (e.g. "file", "acme:le") at once. */
  replaceSource(source: string, certificates: StoredCertificate[]): void {
    if (certificates.length === 0) this.#bySource.delete(source);
    else this.#bySource.set(source, certificates);
    this.#rebuild();
  }

  /** Adds or replaces one certificate of `source` identified by `id` (its main domain). */
  putOne(source: string, id: string, certificate: StoredCertificate | undefined): void {
    const list = (this.#bySource.get(source) ?? []).filter((c) => (c as { id?: string }).id !== id);
    if (certificate) list.push(Object.assign({ id }, certificate));
    this.replaceSource(source, list);
  }

  /** Certificates of one source. */
  certificates(source?: string): StoredCertificate[] {
    if (source !== undefined) return [...(this.#bySource.get(source) ?? [])];
    return [...this.#bySource.values()].flat();
  }

  /** Installs (or with `undefined` removes) the TLS-ALPN-01 certificate for `domain`. */
  setChallengeCertificate(domain: string, pair: KeyPair | undefined): void {
    const name = normalizeServerName(domain);
    if (pair) this.#challenges.set(name, pair);
    else if (!this.#challenges.delete(name)) return;
    this.#changed();
  }

  /**
   * Sets the per-name handshake policy (from `tls.options`); `peek` says
   * whether some name's policy has client-certificate terms.
   */
  setPolicy(policy: ((name: string) => HandshakePolicy) & { peek?: boolean }): void {
    this.#policy = policy;
    this.#peek = policy.peek ?? false;
    this.#changed();
  }

  /** True while some names need their ClientHello seen first (their TLS ended by Portico). */
  get peek(): boolean {
    return this.#peek;
  }

  /** The certificate for `name` without the default fallback: exact, then one-level wildcard. */
  lookup(name: string): { certificate: StoredCertificate; via: "exact" | "wildcard" } | undefined {
    const n = normalizeServerName(name);
    const exact = this.#exact.get(n);
    if (exact) return { certificate: exact, via: "exact" };
    const dot = n.indexOf(".");
    if (dot > 0) {
      const wild = this.#wildcard.get(n.slice(dot + 1));
      if (wild) return { certificate: wild, via: "wildcard" };
    }
    return undefined;
  }

  /** What a handshake with this SNI (empty when the client sent none) gets. */
  select(sni: string): Selection {
    const name = normalizeServerName(sni);
    const challenge = this.#challenges.get(name);
    if (challenge) return { kind: "certificate", pair: challenge, via: "challenge" };
    const policy = this.#policy(name);
    if (policy.refuse) return { kind: "refuse", reason: policy.refuse };
    const found = this.lookup(name);
    if (found) {
      const c = found.certificate;
      return {
        kind: "certificate",
        pair: { cert: c.certPem, key: c.keyPem },
        certificate: c,
        via: found.via,
        termination: policy.termination,
      };
    }
    if (policy.sniStrict) {
      return { kind: "refuse", reason: `no certificate for "${name}" and sniStrict is set` };
    }
    const d = this.#default;
    return {
      kind: "certificate",
      pair: { cert: d.certPem, key: d.keyPem },
      certificate: d,
      via: "default",
      termination: policy.termination,
    };
  }

  /** Calls `fn` after every change; returns an unsubscribe function. */
  onChange(fn: () => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  #rebuild(): void {
    this.#exact.clear();
    this.#wildcard.clear();
    for (const list of this.#bySource.values()) {
      for (const c of list) {
        for (const name of c.names) {
          const wildcard = name.startsWith("*.");
          const map = wildcard ? this.#wildcard : this.#exact;
          const key = wildcard ? name.slice(2) : name;
          const current = map.get(key);
          // Of two certificates for one name, the one valid longest wins (a renewal replaces its predecessor).
          if (!current || c.notAfter > current.notAfter) map.set(key, c);
        }
      }
    }
    this.#changed();
  }

  #changed(): void {
    this.#version++;
    for (const fn of this.#listeners) {
      try {
        fn();
      } catch {
        // A listener's failure must not stop the others from seeing the change.
      }
    }
  }
}

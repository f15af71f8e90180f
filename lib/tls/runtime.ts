/**
 * TLS as an instance serves it: the live certificate store, the default
 * certificate (configured, or self-signed on first need), the certificates
 * and handshake policy of each configuration generation, and the TLS
 * listeners — for TLS entrypoints, and the loopback TLS side that plain
 * entrypoints relay TLS connections to.
 *
 * A generation's TLS part is built with the routers ({@linkcode buildTls},
 * which throws on a certificate that cannot be read, so the reload is
 * rejected whole) and applied with {@linkcode TlsRuntime.apply} just before
 * the routers switch.
 *
 * @module
 */

import type { ConnectionInfo } from "../contracts.ts";
import type { EntryPointConfig } from "../config/types.ts";
import type { Logger } from "../log/logger.ts";
import type { MergedConfig } from "../providers/merge.ts";
import { parseCertificate, type StoredCertificate } from "./certificate.ts";
import {
  configuredCertificates,
  handshakePolicy,
  listenerAlpn,
  unsupportedOptionWarnings,
} from "./config.ts";
import { type AcceptedConnections, startTlsListener, type TlsListener } from "./listener.ts";
import { generateSelfSigned } from "./self_signed.ts";
import { CertificateStore, type HandshakePolicy } from "./store.ts";

/** Stands in for the default certificate until a TLS listener needs one; never served. */
const NO_DEFAULT_YET: StoredCertificate = {
  certPem: "",
  keyPem: "",
  names: [],
  issuer: "",
  notBefore: new Date(0),
  notAfter: new Date(0),
  source: "default",
};

/** The TLS part of one configuration generation. */
export interface TlsBuild {
  certificates: StoredCertificate[];
  defaultCertificate?: StoredCertificate;
  policy: (name: string) => HandshakePolicy;
  /** Options that cannot be enforced on this TLS stack, by key. */
  warnings: string[];
  /** ALPN protocols the listeners offer. */
  alpn: string[];
  /**
   * `tls.stores.default.defaultGeneratedCert`: the default is the ACME
   * certificate of `source` for `main`, once there is one (as in Traefik,
   * only when no `defaultCertificate` is configured).
   */
  defaultGenerated?: { source: string; main: string };
}

/** Reads and checks a generation's certificates; throws naming the first one that is bad. */
export function buildTls(merged: MergedConfig): TlsBuild {
  const { certificates, defaultCertificate, errors } = configuredCertificates(merged);
  if (errors.length > 0) throw new Error(errors.join("; "));
  const generated = merged.tls.stores["default"]?.defaultGeneratedCert;
  return {
    certificates,
    defaultCertificate,
    defaultGenerated: generated && !defaultCertificate
      ? { source: `acme:${generated.resolver}`, main: generated.domain.main.toLowerCase() }
      : undefined,
    policy: handshakePolicy(merged),
    warnings: unsupportedOptionWarnings(merged),
    alpn: listenerAlpn(merged),
  };
}

/** The TLS side of a plain entrypoint: a loopback TLS listener that TLS connections are relayed to. */
export interface TlsRelay {
  /** The loopback port of the TLS side (started on first use). */
  port(): Promise<number>;
  /** Who the relayed connection from loopback port `localPort` really is. */
  register(localPort: number, info: ConnectionInfo): void;
  unregister(localPort: number): void;
  shutdown(): Promise<void>;
}

export class TlsRuntime {
  readonly store: CertificateStore = new CertificateStore(NO_DEFAULT_YET);
  readonly #log: Logger;
  #selfSigned?: StoredCertificate;
  #configuredDefault?: StoredCertificate;
  #makingSelfSigned?: Promise<StoredCertificate>;
  #listening = false;
  #lastFileKey = "";
  #lastWarnings = "";
  #alpn: string[] = [];
  #generated?: TlsBuild["defaultGenerated"];
  #firstListener!: () => void;
  /** Resolves once a TLS listener accepts (TLS-ALPN challenges wait for it). */
  readonly listening: Promise<void> = new Promise<void>((r) => (this.#firstListener = r));

  constructor(log: Logger) {
    this.#log = log;
    // An ACME certificate arriving may be the one the default is generated from.
    this.store.onChange(() => this.#pickGeneratedDefault());
  }

  /** Applies a generation's certificates and policy; runs right before its routers serve. */
  apply(build: TlsBuild): void {
    const key = build.certificates.map((c) => c.certPem).join("|") + "#" +
      (build.defaultCertificate?.certPem ?? "") + "#" + JSON.stringify(build.defaultGenerated ?? null);
    this.#generated = build.defaultGenerated;
    if (key !== this.#lastFileKey) {
      this.#lastFileKey = key;
      this.store.replaceSource("file", build.certificates);
      this.#configuredDefault = build.defaultCertificate;
      if (build.defaultCertificate) this.store.setDefault(build.defaultCertificate);
      else if (this.#selfSigned) this.store.setDefault(this.#selfSigned);
      else if (this.#listening) {
        this.#useSelfSigned().catch((err) =>
          this.#log.error("default certificate", { error: (err as Error).message })
        );
      }
    }
    if (build.warnings.join() !== this.#lastWarnings) {
      this.#lastWarnings = build.warnings.join();
      for (const w of build.warnings) this.#log.warn("TLS option not enforced", { option: w });
    }
    this.store.setPolicy(build.policy);
    this.#alpn = build.alpn;
    this.#pickGeneratedDefault();
  }

  #pickGeneratedDefault(): void {
    const generated = this.#generated;
    if (!generated) return;
    const issued = this.store.certificates(generated.source)
      .find((c) => c.names.some((n) => n.toLowerCase() === generated.main));
    // Until the resolver has it, the self-signed default serves, as in Traefik.
    const wanted = issued ?? this.#selfSigned;
    if (wanted && wanted !== this.store.defaultCertificate) this.store.setDefault(wanted);
  }

  /** The listener of a TLS entrypoint (`http.tls` set). */
  async listen(name: string, entryPoint: EntryPointConfig, connections: AcceptedConnections): Promise<TlsListener> {
    const listener = await this.#start(name, entryPoint.hostname || "0.0.0.0", entryPoint.port, connections);
    this.#firstListener();
    return listener;
  }

  /** The loopback TLS side of a plain entrypoint; only connections the relay registered are served. */
  relay(name: string, tls: AcceptedConnections): TlsRelay {
    const real = new Map<number, ConnectionInfo>();
    const waiting = new Map<number, (info: ConnectionInfo) => void>();
    let started: Promise<TlsListener> | undefined;
    const connections: AcceptedConnections = {
      async serve(conn: Deno.Conn) {
        // The accept can run before the relay's connect continuation has
        // registered the port: then wait for the registration (briefly).
        const port = (conn.remoteAddr as Deno.NetAddr).port;
        let info = real.get(port);
        if (!info) {
          let timer: ReturnType<typeof setTimeout> | undefined;
          info = await new Promise<ConnectionInfo | undefined>((resolve) => {
            waiting.set(port, resolve);
            timer = setTimeout(() => resolve(undefined), 1000);
          });
          clearTimeout(timer);
          waiting.delete(port);
        }
        // Only the relay may connect here; anything else is dropped.
        if (!info) {
          try {
            conn.close();
          } catch { /* closed */ }
          return;
        }
        tls.serve(conn, info);
      },
      shutdown: () => tls.shutdown(),
    };
    return {
      port: () => {
        started ??= this.#start(name, "127.0.0.1", 0, connections);
        return started.then((l) => l.port);
      },
      register: (localPort, info) => {
        real.set(localPort, info);
        waiting.get(localPort)?.(info);
      },
      unregister: (localPort) => void real.delete(localPort),
      shutdown: async () => {
        if (started) await (await started).shutdown();
      },
    };
  }

  async #start(name: string, hostname: string, port: number, connections: AcceptedConnections): Promise<TlsListener> {
    this.#listening = true;
    // The self-signed default is made when a listener first needs it:
    // generating it loads @peculiar/x509 (about 12 MB of RSS), which an
    // instance without TLS, or with its own default certificate, never needs.
    if (!this.#configuredDefault && !this.#selfSigned) await this.#useSelfSigned();
    return await startTlsListener({
      hostname,
      port,
      store: this.store,
      connections,
      alpnProtocols: this.#alpn,
      onEvent: (event, fields) => this.#log.debug(event, { entryPoint: name, ...fields }),
      onError: (error) => this.#log.error("TLS listener", { entryPoint: name, error: String(error) }),
    });
  }

  async #useSelfSigned(): Promise<void> {
    this.#makingSelfSigned ??= generateSelfSigned().then((g) =>
      this.#selfSigned = parseCertificate("default certificate", g.certPem, g.keyPem, "default")
    );
    const made = await this.#makingSelfSigned;
    if (!this.#configuredDefault) this.store.setDefault(made);
  }
}

/**
 * The certificate resolvers' orchestration: which certificates are wanted
 * (from the routers), which are held (from storage), and, while this node
 * is the manager, ordering the missing ones and renewing those in their
 * renewal window. Orders run independently: one failing domain backs off
 * on its own and never blocks the others.
 *
 * The view registered as `certificates` is `CertificateView[]`.
 *
 * @module
 */

import type { CertificateResolverConfig } from "../config/types.ts";
import type { Logger } from "../log/logger.ts";
import { X509Certificate } from "node:crypto";
import { parseCertificate, pemBlocks, type StoredCertificate } from "../tls/certificate.ts";
import type { CertificateStore } from "../tls/store.ts";
import type { ChallengeSink } from "./challenges.ts";
import { certificateKey, type WantedCertificate } from "./domains.ts";
import { createKey, orderCertificate, type OrderInput } from "./issuer.ts";
import {
  RENEWAL_CHECK_INTERVAL_MS,
  renewalCheckIntervalMs,
  renewalDue,
  retryDelayMs,
} from "./renewal.ts";
import type { AcmeStorage, CertificateRecord, ResealReport } from "./storage.ts";

/** One certificate as the API, dashboard and metrics see it. */
export interface CertificateView {
  resolver: string;
  domains: string[];
  issuer?: string;
  /** The leaf's serial number in decimal (Traefik's `serial` label). */
  serial?: string;
  /** ISO 8601. */
  notAfter?: string;
  daysLeft?: number;
  /** missing: wanted, not held; valid; renewing: in its window; ordering; backoff: waiting after a failure. */
  state: "missing" | "valid" | "renewing" | "ordering" | "backoff";
  failures: number;
  lastError?: string;
  /** ISO 8601, when in backoff. */
  nextAttempt?: string;
  routers: string[];
}

interface OrderState {
  failures: number;
  nextAttempt: number;
  lastError?: string;
  ordering: boolean;
}

/** Options of {@linkcode AcmeManager}. */
export interface AcmeManagerOptions {
  resolvers: Record<string, CertificateResolverConfig>;
  storage: AcmeStorage;
  challenges: ChallengeSink;
  tlsStore: CertificateStore;
  log: Logger;
  now?: () => Date;
  /** Replaces the real order (tests). */
  order?: (input: OrderInput) => Promise<CertificateRecord>;
  /** Orders in flight at once; default 4. */
  concurrency?: number;
  /** First retry delay; default 60 s. */
  backoffBaseMs?: number;
  /** Told after each successful order (metrics, tests). */
  onIssued?: (resolver: string, record: CertificateRecord) => void;
  /** Told after each failed order. */
  onFailed?: (resolver: string, domains: string[], error: Error) => void;
  /**
   * Environment, read once for the test hook that shortens the renewal
   * check (see {@linkcode renewalCheckIntervalMs}); default: no hooks, 12 h.
   */
  env?: (name: string) => string | undefined;
}

export class AcmeManager {
  #wanted = new Map<string, WantedCertificate>();
  #held = new Map<
    string,
    { resolver: string; record: CertificateRecord; stored: StoredCertificate; serial?: string }
  >();
  #states = new Map<string, OrderState>();
  #active = false;
  #timer?: ReturnType<typeof setInterval>;
  #retryTimer?: ReturnType<typeof setTimeout>;
  #running = 0;
  #reconciling?: Promise<void>;
  #again = false;
  readonly #now: () => Date;
  readonly #checkIntervalMs: number;
  /** Failed orders, all time (for the failures counter). */
  failures = 0;
  /** Successful orders, all time. */
  issued = 0;
  /** Failed orders by resolver, all time (`portico_acme_order_failures_total{resolver}`). */
  readonly failuresByResolver = new Map<string, number>();
  /** The last re-seal pass (KV storage), for the `acme` view. */
  reseal?: ResealReport;

  constructor(private readonly options: AcmeManagerOptions) {
    this.#now = options.now ?? (() => new Date());
    this.#checkIntervalMs = renewalCheckIntervalMs(options.env ?? (() => undefined));
  }

  get active(): boolean {
    return this.#active;
  }

  /** Replaces the wanted set (after every config generation). */
  setWanted(wanted: WantedCertificate[]): void {
    this.#wanted = new Map(wanted.map((w) => [certificateKey(w.resolver, w.main, w.sans), w]));
    if (this.#active) this.reconcile();
  }

  /** Puts a stored certificate into the TLS store (from storage at start, or a KV watch on any node). */
  install(resolver: string, record: CertificateRecord): string | undefined {
    const key = certificateKey(resolver, record.main, record.sans);
    try {
      const stored = parseCertificate(
        `acme ${resolver} certificate "${record.main}"`,
        record.certPem,
        record.keyPem,
        `acme:${resolver}`,
      );
      const current = this.#held.get(key);
      if (current && current.stored.notAfter > stored.notAfter) return undefined;
      this.#held.set(key, { resolver, record, stored, serial: leafSerial(stored.certPem) });
      this.options.tlsStore.putOne(`acme:${resolver}`, record.main, stored);
      return undefined;
    } catch (err) {
      const message = (err as Error).message;
      this.options.log.error("stored ACME certificate is unusable; keeping the others", {
        error: message,
      });
      return message;
    }
  }

  /** Loads every resolver's stored certificates into the TLS store; returns the errors. */
  async loadStored(): Promise<string[]> {
    const errors: string[] = [];
    for (const resolver of Object.keys(this.options.resolvers)) {
      try {
        const { certificates, errors: e } = await this.options.storage.loadCertificates(resolver);
        errors.push(...e);
        for (const c of certificates) {
          const err = this.install(resolver, c);
          if (err) errors.push(err);
        }
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
    for (const e of errors) this.options.log.error("ACME storage", { error: e });
    return errors;
  }

  /** Becomes the node that orders: reloads storage, then orders what is missing; re-checks every 12 h (or the test hook's interval). */
  async activate(): Promise<void> {
    if (this.#active) return;
    this.#active = true;
    await this.loadStored();
    if (!this.#active) return;
    await this.#reseal();
    if (!this.#active) return;
    if (this.#checkIntervalMs !== RENEWAL_CHECK_INTERVAL_MS) {
      this.options.log.warn("renewal check interval shortened by a test hook", {
        intervalMs: this.#checkIntervalMs,
      });
    }
    this.#timer = setInterval(() => this.reconcile(), this.#checkIntervalMs);
    await this.reconcile();
  }

  /**
   * Re-seals private keys found under a previous encryption key (KV storage
   * only). Runs before any order of this term, after orders of an earlier
   * term have settled, so it never overwrites a certificate being stored.
   */
  async #reseal(): Promise<void> {
    if (!this.options.storage.reseal) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.idle(),
      new Promise((r) => (timer = setTimeout(r, 30_000))),
    ]);
    clearTimeout(timer);
    try {
      const report = await this.options.storage.reseal();
      this.reseal = report;
      if (report.resealed > 0) {
        this.options.log.info("re-sealed private keys with the current encryption key", {
          count: report.resealed,
          keyId: report.keyId,
        });
      }
      for (const e of report.errors) {
        this.options.log.error("private key not re-sealed; it keeps its old key", { error: e });
      }
    } catch (err) {
      this.options.log.error("re-sealing private keys failed; will retry on the next term", {
        error: (err as Error).message,
      });
    }
  }

  /** Stops ordering (lost the manager role, or shutdown). Orders in flight finish but are not retried. */
  deactivate(): void {
    this.#active = false;
    clearInterval(this.#timer);
    clearTimeout(this.#retryTimer);
  }

  /** Runs one pass: orders every wanted certificate that is missing or due, within the concurrency limit. */
  reconcile(): Promise<void> {
    if (this.#reconciling) {
      this.#again = true;
      return this.#reconciling;
    }
    this.#reconciling = (async () => {
      do {
        this.#again = false;
        await this.#pass();
      } while (this.#again && this.#active);
    })().finally(() => (this.#reconciling = undefined));
    return this.#reconciling;
  }

  /** Resolves when no order is in flight (tests). */
  async idle(): Promise<void> {
    while (this.#running > 0 || this.#reconciling) await new Promise((r) => setTimeout(r, 10));
  }

  async #pass(): Promise<void> {
    if (!this.#active) return;
    const now = this.#now();
    const limit = this.options.concurrency ?? 4;
    const jobs: Promise<void>[] = [];
    let nextRetry = Infinity;
    for (const [key, wanted] of this.#wanted) {
      const held = this.#held.get(key);
      if (held && !renewalDue(held.stored.notBefore, held.stored.notAfter, now)) continue;
      const state = this.#states.get(key) ?? { failures: 0, nextAttempt: 0, ordering: false };
      this.#states.set(key, state);
      if (state.ordering) continue;
      if (state.nextAttempt > now.getTime()) {
        nextRetry = Math.min(nextRetry, state.nextAttempt);
        continue;
      }
      if (this.#running >= limit) {
        this.#again = true;
        break;
      }
      jobs.push(this.#order(key, wanted, state));
    }
    if (nextRetry < Infinity) {
      clearTimeout(this.#retryTimer);
      this.#retryTimer = setTimeout(
        () => this.reconcile(),
        Math.max(10, nextRetry - now.getTime()),
      );
    }
    // Wait for one slot at least, so a pass with more work than slots continues.
    if (jobs.length) await Promise.race(jobs);
  }

  async #order(key: string, wanted: WantedCertificate, state: OrderState): Promise<void> {
    state.ordering = true;
    this.#running++;
    const domains = [wanted.main, ...wanted.sans];
    const log = this.options.log;
    const config = this.options.resolvers[wanted.resolver].acme;
    try {
      let account = await this.options.storage.loadAccount(wanted.resolver);
      if (!account) {
        account = { email: config.email, keyPem: await createKey("EC256") };
        await this.options.storage.saveAccount(wanted.resolver, account);
      }
      log.info("ordering certificate", { resolver: wanted.resolver, domains });
      const record = await (this.options.order ?? orderCertificate)({
        config,
        account,
        main: wanted.main,
        sans: wanted.sans,
        challenges: this.options.challenges,
        onAccount: (a) => this.options.storage.saveAccount(wanted.resolver, a),
      });
      if (!this.#active) throw new Error("no longer the manager; certificate not stored");
      await this.options.storage.saveCertificate(wanted.resolver, record);
      const err = this.install(wanted.resolver, record);
      if (err) throw new Error(err);
      this.#states.delete(key);
      this.issued++;
      log.info("certificate obtained", { resolver: wanted.resolver, domains });
      this.options.onIssued?.(wanted.resolver, record);
    } catch (err) {
      const e = err as Error & { retryAfterMs?: number };
      state.failures++;
      state.lastError = e.message;
      state.nextAttempt = this.#now().getTime() +
        retryDelayMs(state.failures, e.retryAfterMs, this.options.backoffBaseMs);
      this.failures++;
      this.failuresByResolver.set(
        wanted.resolver,
        (this.failuresByResolver.get(wanted.resolver) ?? 0) + 1,
      );
      log.error("certificate order failed", {
        resolver: wanted.resolver,
        domains,
        error: e.message,
        failures: state.failures,
        retryAt: new Date(state.nextAttempt).toISOString(),
      });
      this.options.onFailed?.(wanted.resolver, domains, e);
    } finally {
      state.ordering = false;
      this.#running--;
      if (this.#active) this.reconcile();
    }
  }

  /** The `certificates` view. */
  view(): CertificateView[] {
    const now = this.#now();
    const out: CertificateView[] = [];
    const keys = new Set([...this.#wanted.keys(), ...this.#held.keys()]);
    for (const key of keys) {
      const wanted = this.#wanted.get(key);
      const held = this.#held.get(key);
      const state = this.#states.get(key);
      const resolver = wanted?.resolver ?? held!.resolver;
      const domains = wanted
        ? [wanted.main, ...wanted.sans]
        : [held!.record.main, ...held!.record.sans];
      const due = held ? renewalDue(held.stored.notBefore, held.stored.notAfter, now) : true;
      out.push({
        resolver,
        domains,
        issuer: held?.stored.issuer,
        serial: held?.serial,
        notAfter: held?.stored.notAfter.toISOString(),
        daysLeft: held
          ? Math.floor((held.stored.notAfter.getTime() - now.getTime()) / 86_400_000)
          : undefined,
        state: state?.ordering
          ? "ordering"
          : state && state.failures > 0 && state.nextAttempt > now.getTime()
          ? "backoff"
          : !held
          ? "missing"
          : due
          ? "renewing"
          : "valid",
        failures: state?.failures ?? 0,
        lastError: state?.lastError,
        nextAttempt: state?.failures ? new Date(state.nextAttempt).toISOString() : undefined,
        routers: wanted?.routers ?? [],
      });
    }
    return out;
  }
}

/**
 * The leaf's serial number in decimal, as Traefik's `serial` label
 * (`x509Cert.SerialNumber.String()`), or undefined when it cannot be read.
 */
export function leafSerial(certPem: string): string | undefined {
  try {
    const leaf = pemBlocks(certPem).find((b) => b.label === "CERTIFICATE");
    if (!leaf) return undefined;
    const hex = new X509Certificate(leaf.pem).serialNumber;
    return /^[0-9a-f]+$/i.test(hex) ? BigInt(`0x${hex}`).toString(10) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The certificate resolvers' orchestration: which certificates are wanted
 * (from the routers), which are held (from storage), and, while this node
 * is the manager, ordering the missing ones and renewing those in their
 * renewal window. Orders run independently: one failing domain backs off
 * on its own and never blocks the others.
 *
 * Every order is journalled ({@linkcode OrderJournal}) before its challenges
 * are published, and a journalled order is resumed rather than placed
 * again; retries follow the pure policy in ./retry_policy.ts, whose state is
 * stored with the journal so a new manager continues it.
 *
 * The view registered as `certificates` is `CertificateView[]`.
 *
 * @module
 */

import { settleWithin } from "../deadline.ts";
import type { CertificateResolverConfig } from "../config/types.ts";
import type { Logger } from "../log/logger.ts";
import { X509Certificate } from "node:crypto";
import { parseCertificate, pemBlocks, type StoredCertificate } from "../tls/certificate.ts";
import type { CertificateStore } from "../tls/store.ts";
import type { ChallengeSink } from "./challenges.ts";
import { certificateKey, type WantedCertificate } from "./domains.ts";
import {
  createKey,
  orderCertificate,
  OrderError,
  type OrderHooks,
  type OrderInput,
  type PublishedChallenge,
} from "./issuer.ts";
import { type JournalEntry, MemoryOrderJournal, type OrderJournal } from "./journal.ts";
import type { ReadinessReport } from "./readiness.ts";
import { RENEWAL_CHECK_INTERVAL_MS, renewalCheckIntervalMs, renewalDue } from "./renewal.ts";
import {
  afterFailure,
  FAILED_AUTHZ_WINDOW_MS,
  type FailureKind,
  mayAttempt,
  type ProblemDocument,
  type RetryState,
} from "./retry_policy.ts";
import type { AcmeStorage, CertificateRecord, ResealReport } from "./storage.ts";
import { type DnsRecordJournal, MemoryDnsRecordJournal } from "./dns/record_journal.ts";
import { DnsSolver } from "./dns/solver.ts";
import { DnsConfigError, type DnsProvider, type TxtRecord } from "./dns/types.ts";
import type { DnsQuery } from "./dns/propagation.ts";

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
  /** How the last failure was classified (see lib/acme/retry_policy.ts). */
  failureKind?: FailureKind;
  /** The CA's problem document of the last failure. */
  problem?: ProblemDocument;
  /** Failed authorizations within the last hour (at most 5 before a forced wait). */
  failedAuthorizationsLastHour?: number;
  /** ISO 8601, when in backoff. */
  nextAttempt?: string;
  /** The last readiness wait before validation: which members confirmed, and how long it took. */
  readiness?: ReadinessReport;
  /** URL of the order in flight (journalled), while ordering. */
  orderUrl?: string;
  routers: string[];
}

/** Counters of the ACME manager, for the API and metrics. */
export interface AcmeView {
  issued: number;
  failures: number;
  active: boolean;
  failuresByResolver: Record<string, number>;
  reseal?: ResealReport;
}

interface OrderState {
  retry?: RetryState;
  ordering: boolean;
  orderUrl?: string;
}

/** Who writes journal entries: the term and node of this manager. */
export interface ManagerIdentity {
  term: number;
  nodeId: string;
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
  /** Orders in flight and retry states; default in memory (single node). */
  journal?: OrderJournal;
  /** This manager's term and node id for journal entries; default term 0, "standalone". */
  identity?: () => ManagerIdentity;
  /**
   * The readiness gate: resolves once the published answers can be served
   * where the CA may look (bounded); default none (single node: its own
   * listener is awaited before activation).
   */
  gate?: (resolver: string, challenges: PublishedChallenge[]) => Promise<ReadinessReport>;
  /** Told after each successful order (metrics, tests). */
  onIssued?: (resolver: string, record: CertificateRecord) => void;
  /** Told after each failed order. */
  onFailed?: (resolver: string, domains: string[], error: Error) => void;
  /**
   * Environment, read once for the test hook that shortens the renewal
   * check (see {@linkcode renewalCheckIntervalMs}); default: no hooks, 12 h.
   */
  env?: (name: string) => string | undefined;
  /**
   * DNS-01 records in flight (see lib/acme/dns/record_journal.ts): the KV
   * journal in a cluster; default in memory.
   */
  dnsRecords?: DnsRecordJournal;
  /** Replaces the configured DNS provider of a resolver (tests). */
  dnsProviders?: Record<string, DnsProvider>;
  /** Replaces `Deno.resolveDns` in the DNS-01 propagation check and zone lookups (tests). */
  dnsQuery?: DnsQuery;
}

export class AcmeManager {
  #wanted = new Map<string, WantedCertificate>();
  #held = new Map<
    string,
    { resolver: string; record: CertificateRecord; stored: StoredCertificate; serial?: string }
  >();
  #states = new Map<string, OrderState>();
  #readiness = new Map<string, ReadinessReport>();
  readonly #journal: OrderJournal;
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
  /** DNS-01 solvers of the resolvers that have `dnsChallenge`. */
  readonly #dns = new Map<string, DnsSolver>();
  readonly #dnsRecords: DnsRecordJournal;

  constructor(private readonly options: AcmeManagerOptions) {
    this.#now = options.now ?? (() => new Date());
    this.#journal = options.journal ??
      new MemoryOrderJournal((r, c) => options.storage.saveCertificate(r, c));
    this.#checkIntervalMs = renewalCheckIntervalMs(options.env ?? (() => undefined));
    this.#dnsRecords = options.dnsRecords ?? new MemoryDnsRecordJournal();
    for (const [name, r] of Object.entries(options.resolvers)) {
      if (!r.acme.dnsChallenge) continue;
      const solver = new DnsSolver({
        resolver: name,
        config: r.acme.dnsChallenge,
        env: options.env ?? (() => undefined),
        journal: this.#dnsRecords,
        log: options.log,
        identity: () => options.identity?.() ?? { term: 0, nodeId: "standalone" },
        mayAct: () => this.#active,
        provider: options.dnsProviders?.[name],
        query: options.dnsQuery,
      });
      this.#dns.set(name, solver);
      for (const w of solver.deprecations()) options.log.warn(w);
      try {
        // Built once at start so a bad provider or missing variable is reported at once, on every node.
        const provider = solver.refresh();
        options.log.info("DNS-01 challenge ready", { resolver: name, provider: provider.name });
      } catch (err) {
        options.log.error("DNS-01 challenge cannot run; this resolver's DNS-01 orders fail", {
          resolver: name,
          error: (err as Error).message,
        });
      }
    }
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
    await this.#loadRetries();
    await this.#cleanStaleTokens();
    if (!this.#active) return;
    await this.#cleanStaleDnsRecords();
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
    await settleWithin(this.idle(), 30_000);
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

  /** Loads every certificate's retry state, so a new manager does not start each from zero. */
  async #loadRetries(): Promise<void> {
    for (const resolver of Object.keys(this.options.resolvers)) {
      try {
        for (const [main, retry] of await this.#journal.loadRetries(resolver)) {
          for (const [key, w] of this.#wanted) {
            if (w.resolver === resolver && w.main === main) {
              this.#states.set(key, { ...(this.#states.get(key) ?? { ordering: false }), retry });
            }
          }
          this.#pendingRetries.set(`${resolver}/${main}`, retry);
        }
      } catch (err) {
        this.options.log.warn("retry states unreadable; those domains start from zero", {
          resolver,
          error: (err as Error).message,
        });
      }
    }
  }
  /** Retry states loaded for certificates not (yet) wanted, by `resolver/main`. */
  #pendingRetries = new Map<string, RetryState>();

  /**
   * After a manager change: removes challenge tokens that no journalled
   * order references (left by a manager that died between publishing and
   * cleaning up). Tokens of journalled orders stay: the CA may be
   * validating them right now, and the resumed order needs them.
   */
  async #cleanStaleTokens(): Promise<void> {
    if (!this.#journal.staleTokens || !this.#journal.removeTokens) return;
    try {
      const stale = await this.#journal.staleTokens();
      if (stale.length) {
        await this.#journal.removeTokens(stale);
        this.options.log.info("removed stale challenge tokens of an earlier manager", {
          count: stale.length,
        });
      }
    } catch (err) {
      this.options.log.warn("stale challenge tokens not removed", {
        error: (err as Error).message,
      });
    }
  }

  /**
   * After a manager change: removes, at the DNS provider, TXT records whose
   * order is no longer journalled (an earlier manager died between storing
   * the certificate and cleaning up). Records of journalled orders stay:
   * the resumed order publishes them again and removes them when it ends.
   */
  async #cleanStaleDnsRecords(): Promise<void> {
    if (this.#dns.size === 0) return;
    try {
      const live = new Set((await this.#journal.list()).map((e) => `${e.resolver}/${e.main}`));
      const stale = (await this.#dnsRecords.list()).filter((e) => !live.has(`${e.resolver}/${e.main}`));
      let removed = 0;
      for (const e of stale) {
        const solver = this.#dns.get(e.resolver);
        if (solver && await solver.cleanUpEntry(e)) removed++;
      }
      if (stale.length) {
        this.options.log.info("removed stale DNS-01 records of an earlier manager", {
          count: removed,
          left: stale.length - removed,
        });
      }
    } catch (err) {
      this.options.log.warn("stale DNS-01 records not removed", {
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
      const state = this.#states.get(key) ??
        { ordering: false, retry: this.#pendingRetries.get(`${wanted.resolver}/${wanted.main}`) };
      this.#states.set(key, state);
      if (state.ordering) continue;
      if (!mayAttempt(state.retry, now.getTime())) {
        nextRetry = Math.min(nextRetry, state.retry!.nextAttempt);
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
    const { resolver, main } = wanted;
    const log = this.options.log;
    const config = this.options.resolvers[resolver].acme;
    const journal = this.#journal;
    const sink = this.options.challenges;
    const identity = () => this.options.identity?.() ?? { term: 0, nodeId: "standalone" };
    let entry: JournalEntry | undefined;
    /** The order ended (issued, or can never complete): its tokens go. */
    let ended = false;
    const dns = this.#dns.get(resolver);
    /** TXT records published by this attempt, checked before validation. */
    let published: TxtRecord[] = [];
    try {
      if (dns && (!config.httpChallenge || domains.some((d) => d.startsWith("*.")))) {
        try {
          dns.refresh();
        } catch (err) {
          if (err instanceof DnsConfigError) {
            throw new OrderError(err.message, { kind: "rejected" }, { cause: err });
          }
          throw err;
        }
      }
      entry = await journal.load(resolver, main).catch((err) => {
        log.error("journalled order unreadable; a new order will be placed", {
          resolver,
          domains,
          error: (err as Error).message,
        });
        return undefined;
      });
      if (entry && entry.domains.join(",") !== domains.join(",")) {
        // The router's names changed since: that order cannot give the certificate wanted now.
        await journal.remove(resolver, main);
        entry = undefined;
      }
      let account = await this.options.storage.loadAccount(resolver);
      if (!account) {
        account = { email: config.email, keyPem: await createKey("EC256") };
        await this.options.storage.saveAccount(resolver, account);
      }
      if (entry) {
        log.info("resuming journalled order", {
          resolver,
          domains,
          orderUrl: entry.orderUrl,
          state: entry.state,
          journalledBy: entry.nodeId,
          journalledAtTerm: entry.term,
        });
      } else log.info("ordering certificate", { resolver, domains });
      state.orderUrl = entry?.orderUrl;
      const save = async (change: Partial<JournalEntry>) => {
        entry = { ...entry!, ...change, ...identity() };
        await journal.save(entry);
      };
      const hooks: OrderHooks = {
        mayCreate: () => this.#active,
        creating: async (keyPem) => {
          entry = {
            resolver,
            main,
            domains,
            orderUrl: "",
            state: "creating",
            tokens: [],
            keyPem,
            createdAt: this.#now().toISOString(),
            ...identity(),
          };
          await journal.save(entry);
        },
        created: async ({ url, keyPem }) => {
          state.orderUrl = url;
          entry = {
            resolver,
            main,
            domains,
            orderUrl: url,
            state: "created",
            tokens: [],
            keyPem,
            createdAt: this.#now().toISOString(),
            ...identity(),
          };
          await journal.save(entry);
        },
        publish: async (challenges) => {
          const http = challenges.filter((c) => (c.type ?? "http-01") === "http-01");
          const viaDns = challenges.filter((c) => c.type === "dns-01");
          // Journal first: a manager dying after the tokens went out leaves
          // them referenced, so its successor neither loses nor leaks them.
          if (http.length) {
            await save({
              tokens: [...new Set([...entry!.tokens, ...http.map((c) => c.token)])],
            });
          }
          for (const c of http) await sink.putHttp(c.token, c.keyAuthorization);
          if (viaDns.length) {
            if (!dns) throw new Error(`resolver ${resolver} has no dnsChallenge`);
            // Each record is journalled (fenced) before the provider sees it.
            published = await dns.present(
              main,
              viaDns.map((c) => ({
                domain: c.domain,
                token: c.token,
                keyAuthorization: c.keyAuthorization,
                txtValue: c.txtValue!,
              })),
            );
          }
        },
        ready: async (challenges) => {
          if (!this.#active) throw new Error("no longer the manager; validation not requested");
          const http = challenges.filter((c) => (c.type ?? "http-01") === "http-01");
          if (http.length) {
            const report = await this.options.gate?.(resolver, http);
            if (report) this.#readiness.set(key, report);
          }
          // DNS-01's readiness is propagation: the CA asks the authoritative servers.
          if (published.length) await dns!.awaitPropagation(published);
          if (!this.#active) throw new Error("no longer the manager; validation not requested");
        },
        progress: (s) => save({ state: s }),
      };
      const record = await (this.options.order ?? orderCertificate)({
        config,
        account,
        main,
        sans: wanted.sans,
        hooks,
        resume: entry ? { url: entry.orderUrl || undefined, keyPem: entry.keyPem } : undefined,
        onAccount: (a) => this.options.storage.saveAccount(resolver, a),
        onResumed: (status) =>
          log.info("journalled order found at the CA", { resolver, domains, status }),
        now: this.#now,
      });
      if (!this.#active) throw new Error("no longer the manager; certificate not stored");
      await journal.complete(resolver, record);
      ended = true;
      const err = this.install(resolver, record);
      if (err) throw new Error(err);
      state.retry = undefined;
      this.#pendingRetries.delete(`${resolver}/${main}`);
      this.issued++;
      log.info("certificate obtained", { resolver, domains });
      this.options.onIssued?.(resolver, record);
    } catch (err) {
      const e = err as Partial<OrderError> & Error;
      const kind: FailureKind = e.kind ?? "network";
      if (e.orderDead && entry) {
        ended = true;
        await journal.remove(resolver, main).catch(() => {});
      }
      this.failures++;
      this.failuresByResolver.set(resolver, (this.failuresByResolver.get(resolver) ?? 0) + 1);
      if (this.#active) {
        state.retry = afterFailure(state.retry, {
          kind,
          message: e.message,
          failedAuthorizations: e.failedAuthorizations ?? 0,
          retryAfterMs: e.retryAfterMs,
          problem: e.problem,
        }, this.#now().getTime());
        this.#pendingRetries.set(`${resolver}/${main}`, state.retry);
        await journal.saveRetry(resolver, main, state.retry).catch((err2) =>
          log.warn("retry state not stored", { resolver, domains, error: (err2 as Error).message })
        );
        const fields = {
          resolver,
          domains,
          error: e.message,
          kind,
          failures: state.retry.failures,
          failedValidationsLastHour: state.retry.failedAuthzAt.length,
          retryAt: new Date(state.retry.nextAttempt).toISOString(),
          ...(e.problem ? { problem: e.problem } : {}),
        };
        if (kind === "rejected" && e.cause instanceof DnsConfigError) {
          log.error("DNS-01 challenge cannot run; not retried before retryAt", fields);
        } else if (kind === "rejected") {
          log.error("certificate refused by the CA; not retried before retryAt", fields);
        } else log.error("certificate order failed", fields);
      } else {
        // Deposed mid-order: the successor resumes the journalled order.
        log.warn("order interrupted by losing the manager role", {
          resolver,
          domains,
          error: e.message,
        });
      }
      this.options.onFailed?.(resolver, domains, e);
    } finally {
      if (ended && entry && this.#active) {
        for (const t of entry.tokens) await sink.removeHttp(t).catch(() => {});
      }
      // TXT records go after every attempt, validated or not (a retry
      // publishes them again); a deposed manager leaves them to its successor.
      if (dns && this.#active) await dns.cleanUp(main);
      state.ordering = false;
      state.orderUrl = undefined;
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
      const retry = state?.retry;
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
          : retry && retry.nextAttempt > now.getTime()
          ? "backoff"
          : !held
          ? "missing"
          : due
          ? "renewing"
          : "valid",
        failures: retry?.failures ?? 0,
        lastError: retry?.lastError,
        ...(retry
          ? {
            failureKind: retry.kind,
            problem: retry.problem,
            failedAuthorizationsLastHour: retry.failedAuthzAt
              .filter((t) => t > now.getTime() - FAILED_AUTHZ_WINDOW_MS).length,
            nextAttempt: new Date(retry.nextAttempt).toISOString(),
          }
          : {}),
        ...(this.#readiness.has(key) ? { readiness: this.#readiness.get(key) } : {}),
        ...(state?.orderUrl ? { orderUrl: state.orderUrl } : {}),
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

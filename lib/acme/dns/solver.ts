/**
 * One resolver's DNS-01 challenges, as the manager runs them: the record
 * name (`_acme-challenge.` + the domain without `*.`, after CNAMEs), the
 * record journal, the provider calls, the propagation check and the
 * cleanup.
 *
 * - Every record is journalled (fenced, in a cluster) before the provider
 *   is asked to publish it, and `mayAct` is checked right before each
 *   provider call: a node that is not the manager never touches the DNS
 *   provider.
 * - A wildcard and its apex share one name: both values are published
 *   (calls for one name are serialised, so read-modify-write providers
 *   such as Route 53 never lose one), both checked, then both removed.
 * - `cleanUp(main)` removes every journalled record of that order, also
 *   those an earlier manager published; `cleanUpStale` removes records
 *   whose order is no longer journalled (a manager died after storing the
 *   certificate and before cleaning up).
 *
 * @module
 */

import type { DnsChallengeConfig } from "../../config/types.ts";
import type { Logger } from "../../log/logger.ts";
import type { NameServer } from "../../config/name_server.ts";
import type { ReadFile } from "./credentials.ts";
import {
  absoluteName,
  awaitPropagation,
  type DnsQuery,
  followCnames,
  type PropagationReport,
  resolveDnsQuery,
} from "./propagation.ts";
import { configuredResolvers, createDnsProvider, dnsChallengePath } from "./providers.ts";
import type { DnsRecordEntry, DnsRecordJournal } from "./record_journal.ts";
import { type DnsProvider, DnsProviderError, type TxtRecord } from "./types.ts";

/** One dns-01 challenge of an order. */
export interface DnsChallengeInput {
  /** The identifier: `example.com` or `*.example.com`. */
  domain: string;
  token: string;
  keyAuthorization: string;
  /** base64url(SHA-256(keyAuthorization)). */
  txtValue: string;
}

/** Options of {@linkcode DnsSolver}. */
export interface DnsSolverOptions {
  resolver: string;
  config: DnsChallengeConfig;
  env: (name: string) => string | undefined;
  journal: DnsRecordJournal;
  log: Logger;
  /** Term and node id written into journal entries. */
  identity: () => { term: number; nodeId: string };
  /** False once this node is not the manager: no provider call is made then. */
  mayAct: () => boolean;
  /** Replaces the configured provider (tests). */
  provider?: DnsProvider;
  query?: DnsQuery;
  readFile?: ReadFile;
}

/** Provider calls for one record name run one after the other, process-wide. */
const nameLocks = new Map<string, Promise<unknown>>();

function withNameLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const before = nameLocks.get(key) ?? Promise.resolve();
  const run = before.catch(() => {}).then(fn);
  const tail = run.catch(() => {});
  nameLocks.set(key, tail);
  tail.then(() => {
    if (nameLocks.get(key) === tail) nameLocks.delete(key);
  });
  return run;
}

/** The provider answered that it did not make the change (so it did not). */
function refused(err: unknown): boolean {
  if (!(err instanceof DnsProviderError) || err.status === undefined) return false;
  return typeof err.status === "string" || (err.status >= 400 && err.status < 500);
}

export class DnsSolver {
  readonly #resolvers: NameServer[];
  readonly #query: DnsQuery;
  #provider?: DnsProvider;

  constructor(private readonly options: DnsSolverOptions) {
    this.#query = options.query ?? resolveDnsQuery;
    let resolvers: NameServer[] = [];
    try {
      resolvers = configuredResolvers(options.config);
    } catch { /* validated with the static config; reported by provider() */ }
    this.#resolvers = resolvers;
  }

  /**
   * The provider, built anew (so a fixed credentials file is picked up by
   * the next attempt). Throws {@linkcode DnsConfigError} naming the resolver.
   */
  refresh(): DnsProvider {
    this.#provider = this.options.provider ??
      createDnsProvider(
        this.options.resolver,
        this.options.config,
        this.options.env,
        this.options.readFile,
      );
    return this.#provider;
  }

  get #current(): DnsProvider {
    return this.#provider ?? this.refresh();
  }

  /** Deprecation warnings for the keys Traefik deprecated, as Traefik words them. */
  deprecations(): string[] {
    const out: string[] = [];
    const where = dnsChallengePath(this.options.resolver);
    if (this.options.config.disablePropagationCheck !== undefined) {
      out.push(
        `${where}.disablePropagationCheck is deprecated, use propagation.disableChecks instead`,
      );
    }
    if (this.options.config.delayBeforeCheck !== undefined) {
      out.push(
        `${where}.delayBeforeCheck is deprecated, use propagation.delayBeforeChecks instead`,
      );
    }
    return out;
  }

  /** `_acme-challenge.<domain>.`, following CNAMEs unless `LEGO_DISABLE_CNAME_SUPPORT=true`. */
  async recordName(domain: string): Promise<string> {
    const fqdn = absoluteName(`_acme-challenge.${domain.replace(/^\*\./, "")}`);
    if (/^(true|1)$/i.test(this.options.env("LEGO_DISABLE_CNAME_SUPPORT") ?? "")) return fqdn;
    return await followCnames(fqdn, this.#resolvers, this.#query, 3000);
  }

  /** Journals, then publishes, each record; returns what was published. */
  async present(main: string, challenges: DnsChallengeInput[]): Promise<TxtRecord[]> {
    const provider = this.#current;
    const out: TxtRecord[] = [];
    for (const c of challenges) {
      const record: TxtRecord = {
        domain: c.domain,
        fqdn: await this.recordName(c.domain),
        value: c.txtValue,
        token: c.token,
        keyAuthorization: c.keyAuthorization,
      };
      const entry: DnsRecordEntry = {
        ...record,
        resolver: this.options.resolver,
        main,
        ...this.options.identity(),
        presentedAt: new Date().toISOString(),
      };
      await this.options.journal.save(entry);
      if (!this.options.mayAct()) {
        throw new Error("no longer the manager; TXT record not published");
      }
      let handle: string | undefined;
      try {
        handle = await withNameLock(
          `${provider.name} ${record.fqdn}`,
          () => provider.present(record),
        );
      } catch (err) {
        // A refusal (an rcode, an HTTP 4xx) created nothing: nothing to clean up.
        // Anything else (a timeout) may have: the entry stays for the cleanup.
        if (refused(err)) await this.options.journal.remove(entry).catch(() => {});
        throw err;
      }
      if (handle !== undefined) await this.options.journal.save({ ...entry, handle });
      this.options.log.info("DNS-01: TXT record published", {
        resolver: this.options.resolver,
        provider: provider.name,
        domain: c.domain,
        record: record.fqdn,
      });
      out.push(record);
    }
    return out;
  }

  /** Waits until the records are visible as configured (see ./propagation.ts). */
  async awaitPropagation(records: TxtRecord[]): Promise<PropagationReport> {
    const provider = this.#current;
    const p = this.options.config.propagation;
    const report = await awaitPropagation(
      records,
      {
        resolvers: this.#resolvers,
        requireAllRNS: p.requireAllRNS,
        disableANSChecks: p.disableANSChecks,
        disableChecks: p.disableChecks,
        delayBeforeChecksMs: p.delayBeforeChecks,
        timeoutMs: provider.propagationTimeoutMs,
        intervalMs: provider.pollingIntervalMs,
      },
      this.#query,
    );
    this.options.log.info("DNS-01: TXT records visible", {
      resolver: this.options.resolver,
      domains: records.map((r) => r.domain),
      waitedMs: Math.round(report.waitedMs),
      checks: report.rounds,
      confirmedBy: report.confirmedBy,
    });
    return report;
  }

  /** Removes every journalled record of the order for `main`; errors are logged, not thrown. */
  async cleanUp(main: string): Promise<number> {
    let entries: DnsRecordEntry[];
    try {
      entries = (await this.options.journal.list()).filter((e) =>
        e.resolver === this.options.resolver && e.main === main
      );
    } catch (err) {
      this.options.log.warn(
        "DNS-01: records in flight unreadable; cleanup left to the next manager",
        {
          resolver: this.options.resolver,
          error: (err as Error).message,
        },
      );
      return 0;
    }
    let removed = 0;
    for (const e of entries) if (await this.cleanUpEntry(e)) removed++;
    return removed;
  }

  /** Removes one journalled record at the provider, then from the journal; false when it failed. */
  async cleanUpEntry(entry: DnsRecordEntry): Promise<boolean> {
    if (!this.options.mayAct()) return false;
    let provider: DnsProvider;
    try {
      provider = this.#current;
    } catch (err) {
      this.options.log.error("DNS-01: TXT record left in place: the provider cannot be built", {
        resolver: this.options.resolver,
        record: entry.fqdn,
        error: (err as Error).message,
      });
      return false;
    }
    try {
      await withNameLock(
        `${provider.name} ${entry.fqdn}`,
        () => provider.cleanUp(entry, entry.handle),
      );
      await this.options.journal.remove(entry);
      this.options.log.info("DNS-01: TXT record removed", {
        resolver: this.options.resolver,
        provider: provider.name,
        domain: entry.domain,
        record: entry.fqdn,
      });
      return true;
    } catch (err) {
      this.options.log.error(
        "DNS-01: removing a TXT record failed; it stays journalled and is removed after the next attempt or by the next manager",
        {
          resolver: this.options.resolver,
          domain: entry.domain,
          record: entry.fqdn,
          error: (err as Error).message,
        },
      );
      return false;
    }
  }
}

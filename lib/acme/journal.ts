/**
 * The journal of orders in flight, and each certificate's retry state.
 *
 * The manager writes the order URL, domains and state right after the CA
 * creates an order and before any challenge is published, through the
 * cluster's fenced write (conditioned on its leader record, so its term).
 * A manager elected after a crash finds the entry and resumes that order
 * with POST-as-GET instead of opening a new one: the CA sees one order per
 * certificate however often the manager dies. The certificate is stored
 * and the entry removed in one transaction, so there is never both a stored
 * certificate and a live journal entry for the same order.
 *
 * The entry also holds the certificate key the order's CSR is made from
 * (sealed), because a resumed order that is already `ready` or `valid`
 * must be finalized or downloaded with that key.
 *
 * KV layout under `ROOT/acme/RESOLVER/`:
 * - `orders/MAIN`: {@linkcode JournalEntry} (key sealed)
 * - `retry/MAIN`: {@linkcode RetryState}
 *
 * @module
 */

import type { KVOperation, KVStore } from "../kv/types.ts";
import { decodeRetryState, encodeRetryState, type RetryState } from "./retry_policy.ts";
import type { SecretBox } from "./secret_box.ts";
import { storedObject } from "./stored_json.ts";
import type { CertificateRecord } from "./storage.ts";

/**
 * Where an order in flight stands. `creating`: written just before the
 * new-order request, without a URL yet, so a manager dying between the CA
 * creating the order and the journal recording it leaves a trace: its
 * successor looks the order up in the account's order list (RFC 8555
 * 7.1.2.1) instead of opening another.
 */
export type JournalState = "creating" | "created" | "validating" | "finalizing";

/** One order in flight. */
export interface JournalEntry {
  resolver: string;
  main: string;
  /** main first, then the SANs. */
  domains: string[];
  /** Empty while `creating`. */
  orderUrl: string;
  state: JournalState;
  /** Term of the manager that last wrote the entry. */
  term: number;
  /** Node id of that manager. */
  nodeId: string;
  /** HTTP-01 tokens published for this order (cleaned after it ends). */
  tokens: string[];
  /** PEM certificate key (sealed in the store). */
  keyPem: string;
  /** ISO 8601. */
  createdAt: string;
}

/** Persistence of the journal and the retry states. */
export interface OrderJournal {
  load(resolver: string, main: string): Promise<JournalEntry | undefined>;
  /** Every entry (all resolvers), e.g. to find tokens still in use. */
  list(): Promise<JournalEntry[]>;
  save(entry: JournalEntry): Promise<void>;
  remove(resolver: string, main: string): Promise<void>;
  loadRetries(resolver: string): Promise<Map<string, RetryState>>;
  saveRetry(resolver: string, main: string, state: RetryState): Promise<void>;
  /** Stores the certificate and clears its journal entry and retry state, atomically. */
  complete(resolver: string, record: CertificateRecord): Promise<void>;
  /** Tokens published in the store (cluster) that no journal entry references. */
  staleTokens?(): Promise<string[]>;
  removeTokens?(tokens: string[]): Promise<void>;
}

const STATES: JournalState[] = ["creating", "created", "validating", "finalizing"];

/** Decodes a stored entry (key still sealed); throws naming the key and the field. */
export function decodeJournalEntry(where: string, text: string): JournalEntry {
  const { v, need } = storedObject(where, text);
  const strings = (x: unknown) => Array.isArray(x) && x.every((s) => typeof s === "string");
  need("resolver", typeof v.resolver === "string" && v.resolver !== "");
  need("main", typeof v.main === "string" && v.main !== "");
  need("domains", strings(v.domains) && (v.domains as string[]).length > 0);
  need("state", STATES.includes(v.state as JournalState));
  need(
    "orderUrl",
    typeof v.orderUrl === "string" &&
      (v.state === "creating" ? v.orderUrl === "" : /^https?:\/\//.test(v.orderUrl)),
  );
  need("term", Number.isSafeInteger(v.term) && (v.term as number) >= 0);
  need("nodeId", typeof v.nodeId === "string");
  need("tokens", strings(v.tokens));
  need("key", typeof v.key === "string" && v.key !== "");
  need("createdAt", typeof v.createdAt === "string");
  return {
    resolver: v.resolver as string,
    main: v.main as string,
    domains: v.domains as string[],
    orderUrl: v.orderUrl as string,
    state: v.state as JournalState,
    term: v.term as number,
    nodeId: v.nodeId as string,
    tokens: v.tokens as string[],
    keyPem: v.key as string,
    createdAt: v.createdAt as string,
  };
}

/** The KV journal of a cluster. Writes go through the fenced write. */
export class KvOrderJournal implements OrderJournal {
  constructor(
    private readonly store: KVStore,
    private readonly root: string,
    private readonly box: SecretBox,
    private readonly write: (ops: KVOperation[]) => Promise<void>,
    /** The certificate's stored value (sealed), from the certificate storage. */
    private readonly encodeCertificate: (c: CertificateRecord) => Promise<string>,
  ) {}

  #prefix(resolver: string) {
    return `${this.root}/acme/${resolver}/`;
  }
  orderKey(resolver: string, main: string) {
    return `${this.#prefix(resolver)}orders/${main}`;
  }
  retryKey(resolver: string, main: string) {
    return `${this.#prefix(resolver)}retry/${main}`;
  }
  #certKey(resolver: string, main: string) {
    return `${this.#prefix(resolver)}certificates/${main}`;
  }
  #tokenKey(token: string) {
    return `${this.root}/acme/challenges/http/${token}`;
  }

  async #decode(key: string, value: string): Promise<JournalEntry> {
    const raw = decodeJournalEntry(`KV key ${key}`, value);
    return { ...raw, keyPem: await this.box.open(`KV key ${key}`, raw.keyPem) };
  }

  async load(resolver: string, main: string): Promise<JournalEntry | undefined> {
    const key = this.orderKey(resolver, main);
    const entry = await this.store.get(key);
    return entry ? await this.#decode(key, entry.value) : undefined;
  }

  async list(): Promise<JournalEntry[]> {
    const { entries } = await this.store.list(`${this.root}/acme/`);
    const out: JournalEntry[] = [];
    for (const e of entries) {
      if (!/\/orders\/[^/]+$/.test(e.key) || e.key.includes("/challenges/")) continue;
      // An unreadable entry cannot be resumed; it is reported by load() when its certificate is ordered.
      try {
        out.push(await this.#decode(e.key, e.value));
      } catch { /* skipped */ }
    }
    return out;
  }

  async save(entry: JournalEntry): Promise<void> {
    const value = JSON.stringify({
      resolver: entry.resolver,
      main: entry.main,
      domains: entry.domains,
      orderUrl: entry.orderUrl,
      state: entry.state,
      term: entry.term,
      nodeId: entry.nodeId,
      tokens: entry.tokens,
      key: await this.box.seal(entry.keyPem),
      createdAt: entry.createdAt,
    });
    await this.write([{ kind: "put", key: this.orderKey(entry.resolver, entry.main), value }]);
  }

  async remove(resolver: string, main: string): Promise<void> {
    await this.write([{ kind: "delete", key: this.orderKey(resolver, main) }]);
  }

  async loadRetries(resolver: string): Promise<Map<string, RetryState>> {
    const prefix = `${this.#prefix(resolver)}retry/`;
    const { entries } = await this.store.list(prefix);
    const out = new Map<string, RetryState>();
    for (const e of entries) {
      try {
        out.set(e.key.slice(prefix.length), decodeRetryState(`KV key ${e.key}`, e.value));
      } catch { /* a damaged retry state only means starting that domain from zero */ }
    }
    return out;
  }

  async saveRetry(resolver: string, main: string, state: RetryState): Promise<void> {
    await this.write([{
      kind: "put",
      key: this.retryKey(resolver, main),
      value: encodeRetryState(state),
    }]);
  }

  async complete(resolver: string, record: CertificateRecord): Promise<void> {
    await this.write([
      {
        kind: "put",
        key: this.#certKey(resolver, record.main),
        value: await this.encodeCertificate(record),
      },
      { kind: "delete", key: this.orderKey(resolver, record.main) },
      { kind: "delete", key: this.retryKey(resolver, record.main) },
    ]);
  }

  async staleTokens(): Promise<string[]> {
    const prefix = `${this.root}/acme/challenges/http/`;
    const { entries } = await this.store.list(prefix);
    const inUse = new Set((await this.list()).flatMap((e) => e.tokens));
    return entries.map((e) => e.key.slice(prefix.length)).filter((t) => !inUse.has(t));
  }

  async removeTokens(tokens: string[]): Promise<void> {
    for (let i = 0; i < tokens.length; i += 64) {
      await this.write(
        tokens.slice(i, i + 64).map((t) => ({
          kind: "delete" as const,
          key: this.#tokenKey(t),
        })),
      );
    }
  }
}

/**
 * The journal of a single node: in memory (one process has nobody to hand
 * an order to), with certificates still going to the `storage` file.
 */
export class MemoryOrderJournal implements OrderJournal {
  #orders = new Map<string, JournalEntry>();
  #retries = new Map<string, Map<string, RetryState>>();
  constructor(
    private readonly saveCertificate: (r: string, c: CertificateRecord) => Promise<void>,
  ) {}

  load(resolver: string, main: string) {
    return Promise.resolve(this.#orders.get(`${resolver}/${main}`));
  }
  list() {
    return Promise.resolve([...this.#orders.values()]);
  }
  save(entry: JournalEntry) {
    this.#orders.set(`${entry.resolver}/${entry.main}`, entry);
    return Promise.resolve();
  }
  remove(resolver: string, main: string) {
    this.#orders.delete(`${resolver}/${main}`);
    return Promise.resolve();
  }
  loadRetries(resolver: string) {
    return Promise.resolve(new Map(this.#retries.get(resolver) ?? []));
  }
  saveRetry(resolver: string, main: string, state: RetryState) {
    if (!this.#retries.has(resolver)) this.#retries.set(resolver, new Map());
    this.#retries.get(resolver)!.set(main, state);
    return Promise.resolve();
  }
  async complete(resolver: string, record: CertificateRecord) {
    await this.saveCertificate(resolver, record);
    this.#orders.delete(`${resolver}/${record.main}`);
    this.#retries.get(resolver)?.delete(record.main);
  }
}

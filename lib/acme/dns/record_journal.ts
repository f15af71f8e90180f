/**
 * The journal of TXT records in flight. A record is written here before
 * the provider is asked to publish it, and removed after the provider
 * removed it, so a manager that dies in between leaves a trace its
 * successor cleans up (the provider, unlike the KV, is not something a
 * new manager could list). In a cluster every write is the fenced write,
 * so a deposed manager cannot journal (and so never publishes) a record.
 *
 * KV layout: `ROOT/acme/challenges/dns/ID` = {@linkcode DnsRecordEntry} as
 * JSON, ID a hash of resolver, name and value. Nothing here is secret: the
 * key authorization is what HTTP-01 would serve to anyone.
 *
 * @module
 */

import { createHash } from "node:crypto";
import type { KVOperation, KVStore } from "../../kv/types.ts";
import type { TxtRecord } from "./types.ts";

/** One journalled record. */
export interface DnsRecordEntry extends TxtRecord {
  resolver: string;
  /** Main domain of the certificate whose order published it. */
  main: string;
  /** What the provider returned to delete exactly this record (a record id). */
  handle?: string;
  /** Term and node of the manager that journalled it. */
  term: number;
  nodeId: string;
  /** ISO 8601. */
  presentedAt: string;
}

/** Persistence of the records in flight. */
export interface DnsRecordJournal {
  save(entry: DnsRecordEntry): Promise<void>;
  remove(entry: DnsRecordEntry): Promise<void>;
  list(): Promise<DnsRecordEntry[]>;
}

/** The stable id of a record: one entry per resolver, name and value. */
export function recordId(resolver: string, fqdn: string, value: string): string {
  return createHash("sha256").update(`${resolver}\n${fqdn.toLowerCase()}\n${value}`).digest("hex")
    .slice(0, 32);
}

/** Decodes a stored entry; throws naming the key and the field. */
export function decodeRecordEntry(where: string, text: string): DnsRecordEntry {
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(text);
  } catch {
    throw new Error(`${where}: not valid JSON`);
  }
  for (const f of ["resolver", "main", "domain", "fqdn", "value", "token", "keyAuthorization"]) {
    if (typeof v[f] !== "string" || v[f] === "") {
      throw new Error(`${where}: field "${f}" is missing`);
    }
  }
  return {
    resolver: v.resolver as string,
    main: v.main as string,
    domain: v.domain as string,
    fqdn: v.fqdn as string,
    value: v.value as string,
    token: v.token as string,
    keyAuthorization: v.keyAuthorization as string,
    ...(typeof v.handle === "string" ? { handle: v.handle } : {}),
    term: typeof v.term === "number" ? v.term : 0,
    nodeId: typeof v.nodeId === "string" ? v.nodeId : "",
    presentedAt: typeof v.presentedAt === "string" ? v.presentedAt : "",
  };
}

/** The cluster's journal, in the KV store; writes go through the fenced write. */
export class KvDnsRecordJournal implements DnsRecordJournal {
  constructor(
    private readonly store: KVStore,
    private readonly root: string,
    private readonly write: (ops: KVOperation[]) => Promise<void>,
  ) {}

  get prefix(): string {
    return `${this.root}/acme/challenges/dns/`;
  }

  key(entry: Pick<DnsRecordEntry, "resolver" | "fqdn" | "value">): string {
    return `${this.prefix}${recordId(entry.resolver, entry.fqdn, entry.value)}`;
  }

  async save(entry: DnsRecordEntry): Promise<void> {
    await this.write([{ kind: "put", key: this.key(entry), value: JSON.stringify(entry) }]);
  }

  async remove(entry: DnsRecordEntry): Promise<void> {
    await this.write([{ kind: "delete", key: this.key(entry) }]);
  }

  async list(): Promise<DnsRecordEntry[]> {
    const { entries } = await this.store.list(this.prefix);
    const out: DnsRecordEntry[] = [];
    for (const e of entries) {
      try {
        out.push(decodeRecordEntry(`KV key ${e.key}`, e.value));
      } catch { /* a damaged entry names no record that could be removed */ }
    }
    return out;
  }
}

/** A single node's journal: in memory (a restart forgets records a crash left behind). */
export class MemoryDnsRecordJournal implements DnsRecordJournal {
  #entries = new Map<string, DnsRecordEntry>();

  save(entry: DnsRecordEntry): Promise<void> {
    this.#entries.set(recordId(entry.resolver, entry.fqdn, entry.value), { ...entry });
    return Promise.resolve();
  }
  remove(entry: DnsRecordEntry): Promise<void> {
    this.#entries.delete(recordId(entry.resolver, entry.fqdn, entry.value));
    return Promise.resolve();
  }
  list(): Promise<DnsRecordEntry[]> {
    return Promise.resolve([...this.#entries.values()].map((e) => ({ ...e })));
  }
}
